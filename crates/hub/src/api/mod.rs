//! The JSON API on the HTTP listener (port 8800): thin handlers over the domain layer, JSON
//! everywhere. `crate::server` composes this router with the pages and the relay's HTTP routes.
//!
//! Every route is registered with `routes!` from the handler's `#[utoipa::path]`, so the
//! router and the OpenAPI document (`crate::openapi`) come from this one list. The few alias
//! paths (a second name for the same handler) are served by [`alias`], which copies the
//! documented operations of the original path under the alias.

pub mod admin;
pub mod auth;
pub mod bandwidth;
pub mod claims;
pub mod directory;
pub mod events;
pub mod health;
pub mod logs;
pub mod mcp;
pub mod metrics;
pub mod requests;
pub mod servers;
pub mod settings;
pub mod shares;
pub mod tokens;
pub mod webhooks;

use axum::routing::{MethodRouter, get, post};
use serde::{Serialize, Serializer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::state::AppState;

/// The JSON API routes (`/api/v1/…`, `/health`, JWKS, metrics, signposts), without the relay's
/// proxy route, the pages, fallbacks and layers, which `crate::server` adds.
pub fn router() -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::new()
        // Accounts (SPEC E "Auth").
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        // The directory (SPEC E "Me / servers").
        .routes(routes!(directory::list))
        .routes(routes!(directory::detail, directory::remove))
        .routes(routes!(directory::access_info))
        .routes(routes!(directory::relay_token))
        .routes(routes!(directory::set_policy))
        .routes(routes!(events::metrics))
        .routes(routes!(events::stream))
        // Sharing (SPEC M, N).
        .routes(routes!(shares::libraries))
        .routes(routes!(shares::list, shares::create))
        .routes(routes!(shares::update, shares::revoke))
        .routes(routes!(shares::invites, shares::create_invite))
        .routes(routes!(shares::revoke_invite))
        .routes(routes!(shares::redeem))
        .routes(routes!(shares::set_sharing_policy))
        // Personal access tokens (SPEC E "MCP").
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        // Webhooks (SPEC P).
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::redeliver))
        // Settings (SPEC H.3).
        .routes(routes!(settings::get_settings, settings::put_settings))
        // Media requests (SPEC O).
        .routes(routes!(requests::mine, requests::create))
        .routes(routes!(requests::search))
        .routes(routes!(requests::get, requests::delete))
        .routes(routes!(requests::all))
        .routes(routes!(requests::approve))
        .routes(routes!(requests::deny))
        // Relay bandwidth (SPEC B.5).
        .routes(routes!(bandwidth::mine))
        .routes(routes!(bandwidth::of_user))
        .routes(routes!(bandwidth::set_quota))
        .routes(routes!(bandwidth::set_throttle))
        // Administration (SPEC Q).
        .routes(routes!(auth::unlock))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(
            admin::get_user,
            admin::update_user,
            admin::delete_user
        ))
        .routes(routes!(admin::set_admin))
        .routes(routes!(admin::reset_password))
        .routes(routes!(admin::profiles))
        .routes(routes!(admin::disable))
        .routes(routes!(admin::enable))
        .routes(routes!(admin::sign_out))
        .routes(routes!(admin::audit_logs))
        .routes(routes!(admin::dashboard_summary))
        .routes(routes!(admin::dashboard_activity))
        .routes(routes!(logs::list))
        .routes(routes!(logs::tail))
        // Server-facing routes (SPEC C.5, C.6, D).
        .routes(routes!(servers::deregister))
        .routes(routes!(servers::heartbeat))
        .routes(routes!(servers::renew))
        .routes(routes!(servers::info))
        .routes(routes!(servers::relay_signpost))
        .routes(routes!(
            servers::claim_subdomain,
            servers::release_subdomain
        ))
        // Pairing (SPEC C.1–C.3).
        .routes(routes!(claims::new_claim))
        .routes(routes!(claims::redeem))
        .routes(routes!(claims::poll_claim))
        // Outside /api/v1.
        .routes(routes!(health::handler))
        .routes(routes!(directory::jwks))
        .routes(routes!(metrics::loopback))
        .routes(routes!(servers::client_signpost));
    // Second names of documented routes (the PHP hub's aliases and trailing slashes).
    [
        (
            "/api/v1/auth/signup",
            "/api/v1/auth/register",
            post(auth::register),
        ),
        ("/api/v1/auth/me", "/api/v1/me", get(auth::me)),
        (
            "/api/v1/me/shares/",
            "/api/v1/me/shares",
            get(shares::list).post(shares::create),
        ),
        (
            "/api/v1/me/invite-links/",
            "/api/v1/me/invite-links",
            get(shares::invites).post(shares::create_invite),
        ),
        (
            "/api/v1/me/requests/",
            "/api/v1/me/requests",
            get(requests::mine).post(requests::create),
        ),
        (
            "/api/v1/me/mcp-tokens/",
            "/api/v1/me/mcp-tokens",
            get(tokens::list).post(tokens::create),
        ),
        (
            "/api/v1/admin/audit-logs",
            "/api/v1/me/audit-logs",
            get(admin::audit_logs),
        ),
        ("/api/v1/admin/logs", "/api/v1/me/logs", get(logs::list)),
        (
            "/api/v1/admin/logs/tail",
            "/api/v1/me/logs/tail",
            get(logs::tail),
        ),
        (
            "/api/v1/admin/settings",
            "/api/v1/me/hub-settings",
            get(settings::get_settings).put(settings::put_settings),
        ),
    ]
    .into_iter()
    .fold(router, |router, (path, original, methods)| {
        alias(router, path, original, methods)
    })
}

/// Serves `methods` at `path`, a second name of the documented route `original`, and documents
/// it as a copy of `original`'s operations (operation ids suffixed with `_alias_` and the
/// path, so they stay unique). `methods` must be the handlers of `original`:
/// `tests/openapi.rs` requests every documented method of every path, aliases included.
fn alias(
    mut router: OpenApiRouter<AppState>,
    path: &str,
    original: &str,
    methods: MethodRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let document = router.get_openapi_mut();
    if let Some(mut item) = document.paths.paths.get(original).cloned() {
        let suffix: String = path
            .trim_matches('/')
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        for operation in crate::http::doc::operations_mut(&mut item) {
            if let Some(id) = &mut operation.operation_id {
                id.push_str("_alias_");
                id.push_str(&suffix);
            }
            let note = format!("Alias of `{original}`.");
            operation.description = Some(match operation.description.take() {
                Some(text) => format!("{note} {text}"),
                None => note,
            });
        }
        document.paths.paths.insert(path.to_owned(), item);
    }
    router.route(path, methods)
}

/// Serialises `value` through a `serde_json::Value`, so the keys of its objects come out
/// sorted: the bytes of the `json!` objects these answers were built from before they had a
/// type (serde_json's map is a `BTreeMap`).
pub(crate) fn sorted_keys<T: Serialize, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde_json::to_value(value)
        .map_err(serde::ser::Error::custom)?
        .serialize(serializer)
}
