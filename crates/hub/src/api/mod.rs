//! The JSON API on the HTTP listener (port 8800): one router, one error type, JSON everywhere.

pub mod auth;
pub mod bandwidth;
pub mod claims;
pub mod directory;
pub mod error;
pub mod events;
pub mod extract;
pub mod proxy;
pub mod servers;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::{any, delete, get, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// Percent-encodes every byte but the unreserved characters (RFC 3986), for a path segment or
/// a query value.
#[must_use]
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Middleware: the PHP hub registers no HEAD routes, so HEAD to any of its paths is 404 (SPEC
/// E.1) — axum would otherwise answer HEAD wherever GET exists. The relay's proxy route keeps
/// HEAD (an upstream behind the `all` policy may need it); subdomain ingress runs before this.
async fn no_head(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let proxied = request
        .uri()
        .path()
        .strip_prefix("/api/v1/servers/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, tail)| tail == "proxy" || tail.starts_with("proxy/"));
    if request.method() == axum::http::Method::HEAD && !proxied {
        return axum::response::IntoResponse::into_response(error::ApiError::NotFound("not_found"));
    }
    next.run(request).await
}

/// Largest JSON body any API endpoint accepts.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The full HTTP router: API, health, and JSON answers for unknown paths and methods.
pub fn router(state: AppState) -> Router {
    let auth = Router::new()
        .route("/register", post(auth::register))
        .route("/signup", post(auth::register))
        .route("/login", post(auth::login))
        .route("/refresh", post(auth::refresh))
        .route("/logout", post(auth::logout))
        .route("/me", get(auth::me));
    let me = Router::new()
        .route("/me", get(auth::me))
        .route("/me/servers", get(directory::list))
        .route(
            "/me/servers/{id}",
            get(directory::detail).delete(directory::remove),
        )
        .route("/me/servers/{id}/access-info", get(directory::access_info))
        .route("/me/servers/{id}/metrics", get(events::metrics))
        .route("/me/events", get(events::stream))
        .route("/me/servers/{id}/relay-token", post(directory::relay_token))
        .route("/me/libraries", get(directory::libraries))
        .route(
            "/me/hub-settings",
            get(directory::get_settings).put(directory::put_settings),
        )
        .route("/me/servers/{id}/proxy-policy", put(proxy::set_policy))
        .route("/me/bandwidth", get(bandwidth::mine))
        .route("/admin/users/{id}/bandwidth", get(bandwidth::of_user))
        .route("/admin/users/{id}/quota", put(bandwidth::set_quota))
        .route("/admin/users/{id}/throttle", put(bandwidth::set_throttle));
    let servers = Router::new()
        .route("/{id}", delete(servers::deregister))
        .route("/{id}/heartbeat", post(servers::heartbeat))
        .route("/{id}/renew", post(servers::renew))
        .route("/{id}/info", get(servers::info))
        .route("/{id}/relay", post(servers::relay_signpost))
        .route(
            "/{id}/subdomain",
            post(servers::claim_subdomain).delete(servers::release_subdomain),
        )
        .route(
            "/{id}/proxy",
            any(proxy::proxy_route).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/{id}/proxy/",
            any(proxy::proxy_route).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/{id}/proxy/{*path}",
            any(proxy::proxy_route).layer(DefaultBodyLimit::disable()),
        );
    let claims = Router::new()
        .route("/new", post(claims::new_claim))
        .route("/claim", post(claims::redeem))
        .route("/{claim_id}", get(claims::poll_claim));
    let api = Router::new()
        .nest("/auth", auth)
        .merge(me)
        .nest("/servers", servers)
        .nest("/server-claims", claims)
        .route(
            "/admin/settings",
            get(directory::get_settings).put(directory::put_settings),
        );
    Router::new()
        .route("/health", get(crate::health::handler))
        .route("/.well-known/jwks.json", get(directory::jwks))
        .route("/metrics", get(crate::metrics::loopback))
        .route("/client/{server_id}", get(servers::client_signpost))
        .nest("/api/v1", api)
        .merge(crate::web::router(state.clone()))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(no_head))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            proxy::subdomain_ingress,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .with_state(state)
}
