//! The web UI: server-rendered pages under `/app/…` (askama templates checked at compile
//! time), our own small CSS and JS embedded in the binary, cookie sessions and CSRF-protected
//! forms. The pages call the same functions as the JSON API, so both enforce the same rules.
//!
//! - [`session`]: cookies, the page gate (redirect to `/app/login?next=…`), silent session
//!   renewal from the refresh cookie, the CSRF token and the form extractor;
//! - one file of handlers per domain ([`accounts`], [`servers`], [`claims`], [`settings`],
//!   [`shares`], [`invite`], [`webhooks`], [`requests`], [`logs`]) over the shared [`layout`]
//!   (which also carries the maintenance banner); [`sparkline`]: inline
//!   SVG charts; [`assets`]: CSS/JS.

pub mod accounts;
pub mod admin;
pub mod assets;
pub mod claims;
pub mod invite;
pub mod layout;
pub mod logs;
pub mod requests;
pub mod servers;
pub mod session;
pub mod settings;
pub mod shares;
pub mod sparkline;
pub mod tokens;
pub mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::http::found;
use crate::http::state::AppState;

/// Routes of the web UI, including the PHP hub's redirects and legacy page paths (SPEC E.2).
pub fn router(state: AppState) -> Router<AppState> {
    let app = Router::new()
        .route("/app", get(|| async { found("/app/servers") }))
        .route("/app/", get(|| async { found("/app/servers") }))
        .route(
            "/app/login",
            get(accounts::login_page).post(accounts::login),
        )
        .route(
            "/app/signup",
            get(accounts::signup_page).post(accounts::signup),
        )
        .route("/app/logout", post(accounts::logout))
        .route("/app/servers", get(servers::servers))
        .route("/app/servers/{id}", get(servers::server_detail))
        .route("/app/servers/{id}/relay-token", post(servers::mint_token))
        .route("/app/servers/{id}/proxy-policy", post(servers::set_policy))
        .route("/app/servers/{id}/remove", post(servers::remove_server))
        .route("/app/servers/{id}/shares", post(shares::share))
        .route("/app/servers/{id}/invites", post(shares::create_invite))
        .route(
            "/app/servers/{id}/sharing-policy",
            post(shares::set_sharing_policy),
        )
        .route("/app/shares", get(shares::shares_page))
        .route("/app/tokens", get(tokens::page).post(tokens::create))
        .route("/app/tokens/{id}/revoke", post(tokens::revoke))
        .route("/app/requests", get(requests::page).post(requests::create))
        .route("/app/requests/{id}/delete", post(requests::delete))
        .route("/app/admin", get(admin::dashboard))
        .route(
            "/app/admin/users",
            get(admin::users).post(admin::create_user),
        )
        .route("/app/admin/users/{id}", get(admin::user))
        .route("/app/admin/users/{id}/{action}", post(admin::user_action))
        .route("/app/admin/audit", get(admin::audit))
        .route("/app/admin/requests", get(requests::queue))
        .route("/app/admin/requests/{id}/approve", post(requests::approve))
        .route("/app/admin/requests/{id}/deny", post(requests::deny))
        .route("/app/admin/logs", get(logs::page))
        .route(
            "/app/shares/{id}/permission",
            post(shares::change_permission),
        )
        .route("/app/shares/{id}/revoke", post(shares::revoke))
        .route("/app/shares/{id}/leave", post(shares::leave))
        .route("/app/invites/{id}/revoke", post(shares::revoke_invite))
        .route(
            "/app/webhooks",
            get(webhooks::webhooks_page).post(webhooks::create),
        )
        .route("/app/webhooks/{id}", get(webhooks::webhook_page))
        .route("/app/webhooks/{id}/enabled", post(webhooks::set_enabled))
        .route("/app/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/app/webhooks/{id}/test", post(webhooks::send_test))
        .route("/app/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/app/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route(
            "/app/claim-server",
            get(claims::claim_page).post(claims::claim),
        )
        .route(
            "/app/settings",
            get(settings::settings_page).post(settings::save_settings),
        )
        .route(
            "/app/invite/{token}",
            get(invite::invite).post(invite::accept),
        )
        .route("/app/{*rest}", get(layout::not_found))
        .route(
            "/login",
            get(redirect_keeping_query("/app/login")).post(accounts::login),
        )
        .route(
            "/signup",
            get(redirect_keeping_query("/app/signup")).post(accounts::signup),
        )
        .route("/logout", post(accounts::logout))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::renew_session,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::csrf_cookie,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            layout::maintenance_banner,
        ))
        .layer(axum::middleware::from_fn(security_headers));
    Router::new()
        .merge(app)
        .route("/app/assets/{file}", get(assets::serve))
        .route("/", get(|| async { found("/app/servers") }))
        .route(
            "/invite/{token}",
            get(
                |crate::http::extract::Path(token): crate::http::extract::Path<String>| async move {
                    found(&format!(
                        "/app/invite/{}",
                        crate::http::percent_encode(&token)
                    ))
                },
            ),
        )
        .route("/my-servers", get(|| async { found("/app/servers") }))
        .route(
            "/claim-server",
            get(|| async { found("/app/claim-server") }),
        )
        .route("/hub-settings", get(|| async { found("/app/settings") }))
        .route("/requests", get(|| async { found("/app/requests") }))
        .route(
            "/admin/requests",
            get(|| async { found("/app/admin/requests") }),
        )
        .route(
            "/servers/{id}",
            get(
                |crate::http::extract::Path(id): crate::http::extract::Path<String>| async move {
                    found(&format!(
                        "/app/servers/{}",
                        crate::http::percent_encode(&id)
                    ))
                },
            ),
        )
}

/// A GET handler that redirects to `target` with the request's query string.
fn redirect_keeping_query(
    target: &'static str,
) -> impl Fn(axum::http::Uri) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move |uri: axum::http::Uri| {
        std::future::ready(match uri.query() {
            Some(query) => found(&format!("{target}?{query}")),
            None => found(target),
        })
    }
}

/// The content security policy of every page: only our own scripts, styles and endpoints.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: https://image.tmdb.org https://artworks.thetvdb.com https://assets.fanart.tv; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: security headers on every page; pages are never cached (they show a session).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    crate::http::page_security_headers(headers, CONTENT_SECURITY_POLICY);
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A rendered page with its status.
pub fn html(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    match body {
        Ok(body) => (status, Html(body)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>The page could not be rendered.</p>"),
            )
                .into_response()
        }
    }
}
