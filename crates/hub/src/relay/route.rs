//! HTTP entry points of the relay: `/api/v1/servers/{id}/proxy/{path}` (SPEC A.5, E), the
//! owner's proxy policy (J.1) and subdomain ingress (J.1).

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum_extra::extract::CookieJar;
use phlix_proto::ErrorBody;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use super::proxy::{self, ProxyError, ProxyRequest};
use crate::auth::now_unix;
use crate::domain::Core;
use crate::http::cookies::ACCESS_COOKIE;
use crate::http::error::ApiError;
use crate::http::extract::{CachedUser, ClientInfo, CurrentUser, Ready};
use crate::http::state::AppState;
use crate::store::ServerRow;

/// The documented proxy route (its `{*path}` is `{path}` in the document).
const PROXY_DOC_PATH: &str = "/api/v1/servers/{id}/proxy/{path}";

/// The proxy route's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(proxy_route))]
struct ProxyDoc;

/// The proxy routes: `/api/v1/servers/{id}/proxy[/…]`, every method, bodies streamed (no
/// body limit; quotas and the throttle bound them). Documented once with its `{path}`
/// (`#[utoipa::path]` of [`proxy_route`]), and again for the bare `…/proxy` and `…/proxy/`
/// without it: `routes!` cannot register `any` or a `{*path}` wildcard.
pub fn router() -> OpenApiRouter<AppState> {
    let route = || any(proxy_route).layer(DefaultBodyLimit::disable());
    let mut document = ProxyDoc::openapi();
    if let Some(item) = document.paths.paths.get(PROXY_DOC_PATH).cloned() {
        for bare in ["/api/v1/servers/{id}/proxy", "/api/v1/servers/{id}/proxy/"] {
            let mut item = item.clone();
            let suffix = if bare.ends_with('/') {
                "_slash"
            } else {
                "_bare"
            };
            for operation in crate::http::doc::operations_mut(&mut item) {
                if let Some(params) = &mut operation.parameters {
                    params
                        .retain(|p| !matches!(p, utoipa::openapi::RefOr::T(p) if p.name == "path"));
                }
                if let Some(id) = &mut operation.operation_id {
                    id.push_str(suffix);
                }
            }
            document.paths.paths.insert(bare.to_owned(), item);
        }
    }
    OpenApiRouter::with_openapi(document)
        .route("/api/v1/servers/{id}/proxy", route())
        .route("/api/v1/servers/{id}/proxy/", route())
        .route("/api/v1/servers/{id}/proxy/{*path}", route())
}

/// Relays one request to `server`, or forwards it to the node holding the server's tunnel
/// (unless it was `forwarded` here by another node already).
pub(super) async fn relay_request(
    core: &Core,
    server: &ServerRow,
    request: ProxyRequest,
    forwarded: bool,
) -> Response {
    if !forwarded {
        match crate::domain::cluster::route(core, &server.id).await {
            Ok(crate::domain::cluster::Route::Local) => {}
            Ok(crate::domain::cluster::Route::Remote(owner)) => {
                return super::cluster::forward_relay(core, &owner, &server.id, request).await;
            }
            Err(err) => return ApiError::from(err).into_response(),
        }
    }
    if !proxy::path_is_safe(&request.path) {
        return ProxyError::InvalidPath.into_response();
    }
    if server.proxy_policy != "all" && !proxy::phlix_policy_allows(&request.method, &request.path) {
        return ProxyError::ScopeDenied.into_response();
    }
    if let Err(retry_after) = core.limits.proxy.check(&request.user_id, now_unix()) {
        return crate::domain::DomainError::RateLimited { retry_after }.into_response();
    }
    match crate::relay::check_quota(core, &request.user_id, false).await {
        Ok(None) => {}
        Ok(Some(crate::relay::QuotaRefusal::Bytes { retry_after })) => {
            return crate::domain::DomainError::QuotaExceeded {
                retry_after,
                streams: false,
            }
            .into_response();
        }
        Ok(Some(crate::relay::QuotaRefusal::Streams)) => {
            return crate::domain::DomainError::QuotaExceeded {
                retry_after: 60,
                streams: true,
            }
            .into_response();
        }
        Err(err) => return ApiError::from(err).into_response(),
    }
    let Some(tunnel) = core.relay.tunnel(&server.id) else {
        return ProxyError::NoTunnel.into_response();
    };
    let grant = core.relay.hold(
        &server.id,
        &request.user_id,
        server.user_id != request.user_id,
    );
    proxy::forward(&core.relay, tunnel, request, grant).await
}

/// `ANY /api/v1/servers/{id}/proxy/{path}`: the owner, or a collaborator (SPEC M.1).
#[utoipa::path(
    method(get, post, put, delete, patch, head, options),
    path = "/api/v1/servers/{id}/proxy/{path}",
    tag = "relay",
    summary = "HTTP over the relay to the server (SPEC A.5)",
    description = "Forwards the request (any method, the body streamed without a size limit) \
        through the server's tunnel and streams its answer back unchanged: the status, headers \
        and body below are the home server's. With the proxy policy `phlix` only the Phlix \
        client API is let through. The hub's own refusals are JSON: 400 \
        `proxy.invalid_path`, 401 (`auth.*`), 403 `server.not_owned`/`proxy.scope_denied`/ \
        `relay.access_revoked`, 404 `server.not_found`, 429 `rate_limited`/`relay.*`, 502 \
        `relay.bad_response`, 503 `server.no_tunnel`/`server.offline`, 504 `gateway.timeout`. \
        Also served as `…/proxy` and `…/proxy/` (the server's root).",
    params(
        ("id" = String, Path, description = "Server id"),
        ("path" = String, Path, description = "The path on the home server, slashes included"),
    ),
    request_body(
        content = String,
        content_type = "*/*",
        description = "Any body; forwarded as it streams in",
        example = json!("")
    ),
    responses(
        (status = "default", description = "The home server's answer, or one of the hub's \
            refusals listed above (JSON)", content_type = "*/*"),
        (status = 400, description = "`proxy.invalid_path`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`server.not_owned`, `proxy.scope_denied` or \
            `relay.access_revoked`", body = ErrorBody),
        (status = 404, description = "`server.not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, `relay.quota_exceeded` or \
            `relay.stream_limit`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 502, description = "`relay.bad_response`", body = ErrorBody),
        (status = 503, description = "`server.no_tunnel` or `server.offline`", body = ErrorBody),
        (status = 504, description = "`gateway.timeout`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn proxy_route(
    Ready(core): Ready,
    CachedUser(user): CachedUser,
    client: ClientInfo,
    OriginalUri(uri): OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve_proxy(&core, &user, client, &uri, method, headers, body).await
}

/// The proxy route's work once its caller is known: the server, the caller's right to it,
/// then [`relay_request`].
async fn serve_proxy(
    core: &Core,
    user: &CurrentUser,
    client: ClientInfo,
    uri: &Uri,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The raw (still percent-encoded) path after `/proxy`.
    let full = uri.path();
    let Some(rest) = full.strip_prefix("/api/v1/servers/") else {
        return ApiError::not_found("not_found").into_response();
    };
    let Some((server_id, tail)) = rest.split_once("/proxy") else {
        return ApiError::not_found("not_found").into_response();
    };
    let raw_path = if tail.is_empty() { "/" } else { tail };
    let server = match core.access.server(&core.store, server_id).await {
        Ok(server) => server,
        Err(err) => return ApiError::from(err).into_response(),
    };
    // The owner, or an active collaborator while the owner lets them through (SPEC M.1).
    let server = match crate::domain::shares::relay_server(core, server, &user.user.id).await {
        Ok(server) => server,
        Err(err) => return err.into_response(),
    };
    let request = ProxyRequest {
        method,
        path: raw_path.to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
        user_id: user.user.id.clone(),
        client_ip: client.ip,
        forwarded_proto: core.config.public_scheme(),
    };
    relay_request(core, &server, request, false).await
}

/// The subdomain label of `host` under `domain`, if any.
#[must_use]
pub fn subdomain_of<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let host = host.split(':').next().unwrap_or(host);
    let label = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!label.is_empty() && !label.contains('.')).then_some(label)
}

/// Middleware: the relay's two HTTP entry points, served here, before the router and the
/// layers behind it, so a proxied request pays for no routing and no layer stack it does not
/// need (the maintenance gate leaves the relay open, the body limit does not apply to it):
/// - requests for `<subdomain>.<public domain>` go over the relay to that server, path and
///   query unchanged, authenticated by the owner's session cookie;
/// - `/api/v1/servers/{id}/proxy[/…]` is [`proxy_route`], with [`crate::http::body::guard`]'s
///   `Connection: close` on a refused request that carried a body.
pub async fn ingress(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
    next: Next,
) -> Response {
    if let Some(domain) = &state.config().public_domain {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if let Some(label) = subdomain_of(&host, &domain.to_ascii_lowercase()) {
            let label = label.to_owned();
            return subdomain(&state, client, request, host, &label).await;
        }
    }
    if crate::http::body::is_proxy_path(request.uri().path()) {
        let carried_body = crate::http::body::has_body(request.headers());
        let (mut parts, body) = request.into_parts();
        // The proxy route's extractors, in its order: `Ready`, then `CachedUser`.
        let response = match crate::http::extract::ready_core(&state) {
            Err(err) => err.into_response(),
            Ok(core) => match CachedUser::from_request_parts(&mut parts, &state).await {
                Ok(CachedUser(user)) => {
                    serve_proxy(
                        core,
                        &user,
                        client,
                        &parts.uri,
                        parts.method,
                        parts.headers,
                        body,
                    )
                    .await
                }
                Err(err) => err.into_response(),
            },
        };
        return crate::http::body::close_if_refused(carried_body, response);
    }
    next.run(request).await
}

/// A request for the server whose subdomain is `label`.
async fn subdomain(
    state: &AppState,
    client: ClientInfo,
    request: Request,
    host: String,
    label: &str,
) -> Response {
    let Some(core) = state.core() else {
        return ApiError::Starting {
            step: state.health().step(),
        }
        .into_response();
    };
    let server = match core.access.server_by_subdomain(&core.store, label).await {
        Ok(Some(server)) => server,
        Ok(None) => return ApiError::not_found("server.not_found").into_response(),
        Err(err) => return ApiError::from(err).into_response(),
    };
    let uri = request.uri().clone();
    let signed_in = CookieJar::from_headers(request.headers())
        .get(ACCESS_COOKIE)
        .and_then(|cookie| {
            core.access
                .access_claims(&core.sessions, cookie.value())
                .ok()
        })
        .map(|claims| claims.sub);
    let user_id = match signed_in {
        Some(sub) => match crate::domain::shares::may_relay(&core, &server, &sub).await {
            Ok(true) => Some(sub),
            Ok(false) => None,
            Err(err) => return err.into_response(),
        },
        None => None,
    };
    let Some(user_id) = user_id else {
        let original = format!(
            "{}://{host}{}",
            core.config.public_scheme(),
            uri.path_and_query().map_or("/", |pq| pq.as_str())
        );
        return crate::http::found(&format!(
            "{}/app/login?next={}",
            core.config.public_url,
            crate::http::percent_encode(&original)
        ));
    };
    let (parts, body) = request.into_parts();
    let request = ProxyRequest {
        method: parts.method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
        user_id,
        client_ip: client.ip,
        forwarded_proto: core.config.public_scheme(),
    };
    relay_request(&core, &server, request, false).await
}

#[cfg(test)]
mod tests {
    use super::subdomain_of;

    #[test]
    fn subdomains_are_single_labels_of_the_public_domain() {
        assert_eq!(
            subdomain_of("nas-1.hub.example.com", "hub.example.com"),
            Some("nas-1")
        );
        assert_eq!(
            subdomain_of("nas-1.hub.example.com:8800", "hub.example.com"),
            Some("nas-1")
        );
        assert_eq!(subdomain_of("hub.example.com", "hub.example.com"), None);
        assert_eq!(subdomain_of("a.b.hub.example.com", "hub.example.com"), None);
        assert_eq!(subdomain_of("evilhub.example.com", "hub.example.com"), None);
    }
}
