//! The JSON API on the HTTP listener (port 8800): thin handlers over the domain layer, JSON
//! everywhere. `crate::server` composes this router with the pages and the relay's HTTP routes.

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

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::http::state::AppState;

/// The JSON API routes (`/api/v1/…`, `/health`, JWKS, metrics, signposts), without the relay's
/// proxy route, the pages, fallbacks and layers, which `crate::server` adds.
pub fn router() -> Router<AppState> {
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
        .route("/me/libraries", get(shares::libraries))
        .route("/me/shares", get(shares::list).post(shares::create))
        .route("/me/shares/", get(shares::list).post(shares::create))
        .route(
            "/me/shares/{id}",
            axum::routing::patch(shares::update).delete(shares::revoke),
        )
        .route(
            "/me/invite-links",
            get(shares::invites).post(shares::create_invite),
        )
        .route(
            "/me/invite-links/",
            get(shares::invites).post(shares::create_invite),
        )
        .route("/me/invite-links/{id}", delete(shares::revoke_invite))
        .route("/me/invite-links/{token}/redeem", post(shares::redeem))
        .route("/me/mcp-tokens", get(tokens::list).post(tokens::create))
        .route("/me/mcp-tokens/", get(tokens::list).post(tokens::create))
        .route("/me/mcp-tokens/{id}", delete(tokens::revoke))
        .route("/me/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/me/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/me/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/me/webhooks/{id}/test", post(webhooks::test))
        .route("/me/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/me/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route(
            "/me/servers/{id}/sharing-policy",
            put(shares::set_sharing_policy),
        )
        .route(
            "/me/hub-settings",
            get(settings::get_settings).put(settings::put_settings),
        )
        .route("/me/servers/{id}/proxy-policy", put(directory::set_policy))
        .route("/me/requests", get(requests::mine).post(requests::create))
        .route("/me/requests/", get(requests::mine).post(requests::create))
        .route("/me/requests/search", get(requests::search))
        .route(
            "/me/requests/{id}",
            get(requests::get).delete(requests::delete),
        )
        .route("/admin/requests", get(requests::all))
        .route("/admin/requests/{id}/approve", post(requests::approve))
        .route("/admin/requests/{id}/deny", post(requests::deny))
        .route("/me/bandwidth", get(bandwidth::mine))
        .route("/admin/users/{id}/bandwidth", get(bandwidth::of_user))
        .route("/admin/users/{id}/quota", put(bandwidth::set_quota))
        .route("/admin/users/{id}/throttle", put(bandwidth::set_throttle))
        .route("/admin/users/{id}/unlock", post(auth::unlock))
        .route(
            "/admin/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route(
            "/admin/users/{id}",
            get(admin::get_user)
                .put(admin::update_user)
                .delete(admin::delete_user),
        )
        .route("/admin/users/{id}/set-admin", post(admin::set_admin))
        .route(
            "/admin/users/{id}/reset-password",
            post(admin::reset_password),
        )
        .route("/admin/users/{id}/profiles", get(admin::profiles))
        .route("/admin/users/{id}/disable", post(admin::disable))
        .route("/admin/users/{id}/enable", post(admin::enable))
        .route("/admin/users/{id}/sign-out", post(admin::sign_out))
        .route("/me/audit-logs", get(admin::audit_logs))
        .route("/admin/audit-logs", get(admin::audit_logs))
        .route("/admin/dashboard/summary", get(admin::dashboard_summary))
        .route("/admin/dashboard/activity", get(admin::dashboard_activity))
        .route("/me/logs", get(logs::list))
        .route("/me/logs/tail", get(logs::tail))
        .route("/admin/logs", get(logs::list))
        .route("/admin/logs/tail", get(logs::tail));
    let servers = Router::new()
        .route("/{id}", delete(servers::deregister))
        .route("/{id}/heartbeat", post(servers::heartbeat))
        .route("/{id}/renew", post(servers::renew))
        .route("/{id}/info", get(servers::info))
        .route("/{id}/relay", post(servers::relay_signpost))
        .route(
            "/{id}/subdomain",
            post(servers::claim_subdomain).delete(servers::release_subdomain),
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
            get(settings::get_settings).put(settings::put_settings),
        );
    Router::new()
        .route("/health", get(health::handler))
        .route("/.well-known/jwks.json", get(directory::jwks))
        .route("/metrics", get(metrics::loopback))
        .route("/client/{server_id}", get(servers::client_signpost))
        .nest("/api/v1", api)
}
