//! The maintenance gate (SPEC Q.4): while `hub.maintenance_mode` is on, every API request
//! answers 503 `provider_unavailable` with `Retry-After: 60`, except those that let the hub be
//! run and repaired:
//!
//! - sign-in and tokens: `/api/v1/auth/…`;
//! - the settings (to turn it off again): `/api/v1/me/hub-settings`, `/api/v1/admin/settings`;
//! - the admin routes: `/api/v1/admin/…` and the admin-gated `/api/v1/me/logs…`,
//!   `/api/v1/me/audit-logs…`;
//! - the server-facing routes: `/api/v1/servers/{id}/…` (heartbeats, renewal, signposts,
//!   subdomains) and `/api/v1/server-claims/…` (pairing);
//! - the relay's HTTP proxy route `/api/v1/servers/{id}/proxy/…`, which belongs to the relay
//!   data plane like tunnels, client mounts and subdomain ingress: open streams and media
//!   playback keep working, only the hub's own features pause;
//! - the API description: `/api/openapi.json` and the `/api/docs` page.
//!
//! The MCP endpoint `/mcp` pauses like the user API it fronts (its tools are that API's
//! actions). Other paths outside `/api/` are not API requests and never pass this gate: `/health`, JWKS,
//! `/metrics`, the client signpost and the pages (which show a banner instead).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::domain::maintenance;

/// Seconds a refused client is told to wait.
pub const RETRY_AFTER_SECS: u16 = 60;

/// Path prefixes that stay open during maintenance (see the module documentation).
const OPEN_PREFIXES: [&str; 9] = [
    "/api/v1/auth/",
    "/api/v1/admin/",
    "/api/v1/me/logs",
    "/api/v1/me/audit-logs",
    "/api/v1/me/hub-settings",
    "/api/v1/servers/",
    "/api/v1/server-claims/",
    "/api/openapi.json",
    "/api/docs",
];

/// Whether `path` is an API request that maintenance mode pauses.
#[must_use]
pub fn paused(path: &str) -> bool {
    if path == "/mcp" {
        return true;
    }
    path.starts_with("/api/")
        && path != "/api/v1/auth"
        && !OPEN_PREFIXES.iter().any(|prefix| {
            path.strip_prefix(prefix).is_some_and(|rest| {
                // `/api/v1/me/logs` covers `/…/logs/tail`, not `/…/logsomething`.
                prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')
            })
        })
}

/// Middleware: the 503 of maintenance mode for the paused API paths. Before start-up has
/// finished the request passes (the handlers answer 503 `hub.starting` themselves).
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if paused(request.uri().path())
        && let Some(core) = state.core_ref()
        && maintenance::is_on(core).await
    {
        return refusal();
    }
    next.run(request).await
}

/// 503 `{"error":"Service Unavailable","code":"provider_unavailable","message":…}` with
/// `Retry-After`.
#[must_use]
pub fn refusal() -> Response {
    let mut response = ApiError::Invalid {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "provider_unavailable",
        message: "The hub is in maintenance mode; try again later".into(),
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

#[cfg(test)]
mod tests {
    use super::paused;

    #[test]
    fn the_user_api_pauses_and_the_operator_paths_stay_open() {
        for path in [
            "/api/v1/me/servers",
            "/api/v1/me/requests",
            "/api/v1/me",
            "/api/v1/me/events",
            "/api/v1/me/logsx",
            "/api/v1/unknown",
            "/mcp",
        ] {
            assert!(paused(path), "{path}");
        }
        for path in [
            "/api/v1/auth/login",
            "/api/v1/auth",
            "/api/v1/admin/users",
            "/api/v1/admin/settings",
            "/api/v1/me/hub-settings",
            "/api/v1/me/logs",
            "/api/v1/me/logs/tail",
            "/api/v1/me/audit-logs",
            "/api/v1/servers/s1/heartbeat",
            "/api/v1/servers/s1/proxy/web/index.html",
            "/api/v1/server-claims/new",
            "/api/openapi.json",
            "/api/docs",
            "/api/docs/swagger-ui.css",
            "/health",
            "/.well-known/jwks.json",
            "/metrics",
            "/app/servers",
        ] {
            assert!(!paused(path), "{path}");
        }
    }
}
