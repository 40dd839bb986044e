//! Servers in the directory: what their owner sees and does (SPEC E "Me / servers", J.1, J.5)
//! and what an enrolled server does to its own entry (C.5, C.6, D: renew, info, deregister,
//! subdomain).

use serde::Serialize;

use super::claims::mint_enrollment;
use super::{Core, DomainError, DomainResult};
use crate::auth::now_unix;
use crate::store::{
    HeartbeatRow, LibraryRow, RelaySessionRow, ServerRow, StoreError, UserLibraryRow,
};

/// The server `server_id` if `user_id` owns it: 404 `server.not_found`, 403 `server.not_owned`.
pub async fn owned_server(core: &Core, user_id: &str, server_id: &str) -> DomainResult<ServerRow> {
    owner_check(core.store.server_by_id(server_id).await?, user_id)
}

/// 404 `server.not_found` for no server, 403 `server.not_owned` for another user's.
pub fn owner_check(server: Option<ServerRow>, user_id: &str) -> DomainResult<ServerRow> {
    let server = server.ok_or(DomainError::NotFound("server.not_found"))?;
    if server.user_id != user_id {
        return Err(DomainError::Forbidden("server.not_owned"));
    }
    Ok(server)
}

/// The servers `user_id` owns, oldest first.
pub async fn list_owned(core: &Core, user_id: &str) -> DomainResult<Vec<ServerRow>> {
    Ok(core.store.servers_of_user(user_id).await?)
}

/// The libraries of every server `user_id` owns.
pub async fn libraries_of_owner(core: &Core, user_id: &str) -> DomainResult<Vec<UserLibraryRow>> {
    Ok(core.store.libraries_of_user(user_id).await?)
}

/// What the directory knows about one server: its row, its libraries, its newest heartbeats
/// (newest first) and its newest relay sessions.
#[derive(Debug)]
pub struct ServerOverview {
    pub server: ServerRow,
    pub libraries: Vec<LibraryRow>,
    pub recent_heartbeats: Vec<HeartbeatRow>,
    pub relay_sessions: Vec<RelaySessionRow>,
}

/// The overview of a server `user_id` owns, with at most `heartbeats` heartbeats and
/// `sessions` relay sessions.
pub async fn overview(
    core: &Core,
    user_id: &str,
    server_id: &str,
    heartbeats: i64,
    sessions: i64,
) -> DomainResult<ServerOverview> {
    let server = owned_server(core, user_id, server_id).await?;
    let libraries = core.store.libraries_of_server(server_id).await?;
    let recent_heartbeats = core.store.recent_heartbeats(server_id, heartbeats).await?;
    let relay_sessions = if sessions > 0 {
        core.store
            .relay_sessions_of_server(server_id, sessions)
            .await?
    } else {
        Vec::new()
    };
    Ok(ServerOverview {
        server,
        libraries,
        recent_heartbeats,
        relay_sessions,
    })
}

/// The open relay session of a server's tunnel (see [`crate::store::Store::current_relay_session`]);
/// the caller has checked who may see it.
///
/// # Errors
/// Database failures only.
pub async fn current_relay_session(
    core: &Core,
    server_id: &str,
) -> DomainResult<Option<RelaySessionRow>> {
    Ok(core.store.current_relay_session(server_id).await?)
}

/// The heartbeats of a server `user_id` owns received at or after `since`, oldest first, at
/// most `limit` (SPEC J.5).
pub async fn heartbeats_since(
    core: &Core,
    user_id: &str,
    server_id: &str,
    since: i64,
    limit: i64,
) -> DomainResult<Vec<HeartbeatRow>> {
    owned_server(core, user_id, server_id).await?;
    Ok(core.store.heartbeats_since(server_id, since, limit).await?)
}

/// The owner removes a server: it disappears from the directory at once and its tunnel may no
/// longer be used. Returns the removed row.
pub async fn remove_owned(
    core: &Core,
    user_id: &str,
    server_id: &str,
    client: &super::ClientInfo,
) -> DomainResult<ServerRow> {
    let server = owned_server(core, user_id, server_id).await?;
    let deleted = core.store.delete_server(server_id).await;
    super::cluster::forget_server(core, server_id);
    deleted?;
    super::cluster::close_tunnel(core, server_id);
    tracing::info!(%user_id, %server_id, "server removed by its owner");
    let mut entry = super::audit::entry("server.removed", client, Some(user_id), true, None);
    entry.resource = Some(format!("server:{server_id}"));
    entry.action = Some("server.remove".into());
    entry.context_json = Some(
        serde_json::json!({"server_id": server_id, "server_name": server.server_name}).to_string(),
    );
    core.store.audit(&entry).await?;
    core.events.publish(super::events::HubEvent::named(
        "server.removed",
        &server.user_id,
        server_id,
        serde_json::json!({"server_id": server_id, "server_name": server.server_name}),
    ));
    Ok(server)
}

/// The proxy policies of SPEC J.1.
pub const PROXY_POLICIES: [&str; 2] = ["phlix", "all"];

/// The owner sets which paths the proxy route forwards (`phlix` allowlist or `all`).
pub async fn set_proxy_policy(
    core: &Core,
    user_id: &str,
    server_id: &str,
    policy: &str,
) -> DomainResult<()> {
    owned_server(core, user_id, server_id).await?;
    if !PROXY_POLICIES.contains(&policy) {
        return Err(DomainError::invalid(
            "invalid_request",
            "policy must be \"phlix\" or \"all\"",
        ));
    }
    let saved = core
        .store
        .set_proxy_policy(server_id, policy, now_unix())
        .await;
    super::cluster::forget_server(core, server_id);
    saved?;
    Ok(())
}

/// How a client reaches a server: directly (its hostname candidates) or through the hub.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessInfo {
    pub direct: DirectAccess,
    pub relay: RelayAccess,
    pub server_id: String,
    pub status: String,
    pub subdomain: Option<String>,
    pub subdomain_url: Option<String>,
}

/// The home-network addresses a server reported.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DirectAccess {
    pub hostname_candidates: Vec<String>,
}

/// The hub's ways in to a server.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RelayAccess {
    pub active: bool,
    pub client_ws_endpoint: String,
    pub http_proxy_base: String,
    pub token_endpoint: String,
}

/// The access information of a server `user_id` owns or may use as a collaborator (M.1).
pub async fn access_info(core: &Core, user_id: &str, server_id: &str) -> DomainResult<AccessInfo> {
    let server =
        super::shares::relay_server(core, core.store.server_by_id(server_id).await?, user_id)
            .await?;
    let config = &core.config;
    let subdomain_url = match (&config.public_domain, &server.subdomain) {
        (Some(domain), Some(sub)) => Some(format!("{}://{sub}.{domain}", config.public_scheme())),
        _ => None,
    };
    let info = server.into_info();
    Ok(AccessInfo {
        relay: RelayAccess {
            active: info.relay_active,
            client_ws_endpoint: core.client_ws_endpoint(&info.server_id),
            http_proxy_base: core.proxy_base(&info.server_id),
            token_endpoint: format!(
                "{}/api/v1/me/servers/{}/relay-token",
                config.public_url, info.server_id
            ),
        },
        direct: DirectAccess {
            hostname_candidates: info.hostname_candidates,
        },
        status: info.status,
        subdomain: info.subdomain,
        subdomain_url,
        server_id: info.server_id,
    })
}

// ---------------------------------------------------------------------------------------------
// What an enrolled server does to its own entry

/// The server `server_id` as a server-facing route sees it: 404 `SERVER_NOT_FOUND` when gone.
pub async fn existing(core: &Core, server_id: &str) -> DomainResult<ServerRow> {
    core.store
        .server_by_id(server_id)
        .await?
        .ok_or(DomainError::ServerNotFound)
}

/// The owner of `server_id`, if `enrollment_jwt` is a valid enrollment token of that server
/// and the server still exists: who a tunnel's HELLO acts for (SPEC B.3).
///
/// # Errors
/// Database failures.
pub async fn tunnel_owner(
    core: &Core,
    server_id: &str,
    enrollment_jwt: &str,
) -> DomainResult<Option<String>> {
    let authorised =
        crate::auth::enrollment::verify(&core.keys.current(), enrollment_jwt, now_unix())
            .is_ok_and(|claims| claims.server_id == server_id);
    if !authorised {
        return Ok(None);
    }
    Ok(core.store.server_owner(server_id).await?)
}

/// A fresh enrollment token for a server that still exists (SPEC C.5).
pub async fn renew(core: &Core, server_id: &str) -> DomainResult<String> {
    existing(core, server_id).await?;
    mint_enrollment(core, server_id).await
}

/// The server removes itself from the directory (SPEC C.6).
pub async fn deregister(core: &Core, server_id: &str) -> DomainResult<()> {
    super::cluster::forget_server(core, server_id);
    let server = core.store.server_by_id(server_id).await?;
    if !core.store.delete_server(server_id).await? {
        return Err(DomainError::ServerNotFound);
    }
    tracing::info!(%server_id, "server deregistered itself");
    if let Some(server) = server {
        core.events.publish(super::events::HubEvent::named(
            "server.removed",
            &server.user_id,
            server_id,
            serde_json::json!({"server_id": server_id, "server_name": server.server_name}),
        ));
    }
    Ok(())
}

/// A DNS label: 1–63 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
#[must_use]
pub fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// The default subdomain of a server: its name as a DNS label plus 6 characters of its id.
#[must_use]
pub fn default_subdomain(server_name: &str, server_id: &str) -> String {
    let mut slug = String::new();
    for c in server_name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let suffix: String = server_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect::<String>()
        .to_lowercase();
    if slug.is_empty() {
        format!("server-{suffix}")
    } else {
        format!("{slug}-{suffix}")
    }
}

/// The host name a subdomain answers on: `{subdomain}.{public domain}` (the WebSocket host when
/// no `--public-domain` is set).
#[must_use]
pub fn fqdn(core: &Core, subdomain: &str) -> String {
    let domain = core
        .config
        .public_domain
        .as_deref()
        .unwrap_or(&core.config.ws_host);
    format!("{subdomain}.{domain}")
}

/// A claimed subdomain and the name it answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedSubdomain {
    pub subdomain: String,
    pub fqdn: String,
}

/// The server claims `requested` as its subdomain (J.1), or keeps the one it has, or gets its
/// default one. 400 for a label that is not a DNS label, 409 `subdomain_taken`.
pub async fn claim_subdomain(
    core: &Core,
    server_id: &str,
    requested: Option<&str>,
) -> DomainResult<ClaimedSubdomain> {
    let row = existing(core, server_id).await?;
    let subdomain = match requested {
        Some(label) if is_dns_label(label) => label.to_owned(),
        Some(_) => {
            return Err(DomainError::BadRequest(
                "subdomain must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'".into(),
            ));
        }
        None => row
            .subdomain
            .clone()
            .unwrap_or_else(|| default_subdomain(&row.server_name, &row.id)),
    };
    let saved = core
        .store
        .set_subdomain(server_id, Some(&subdomain), now_unix())
        .await;
    super::cluster::forget_server(core, server_id);
    match saved {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(DomainError::Conflict {
                code: "subdomain_taken",
                message: format!("{subdomain} is taken"),
            });
        }
        Err(err) => return Err(err.into()),
    }
    Ok(ClaimedSubdomain {
        fqdn: fqdn(core, &subdomain),
        subdomain,
    })
}

/// The server gives its subdomain up.
pub async fn release_subdomain(core: &Core, server_id: &str) -> DomainResult<()> {
    let released = core
        .store
        .set_subdomain(server_id, None, now_unix())
        .await?;
    super::cluster::forget_server(core, server_id);
    if !released {
        return Err(DomainError::ServerNotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_are_dns_labels() {
        assert_eq!(
            default_subdomain("Alice's NAS", "4f1c2d3e-aaaa"),
            "alice-s-nas-4f1c2d"
        );
        assert_eq!(default_subdomain("!!!", "abcdef12"), "server-abcdef");
        assert!(is_dns_label(&default_subdomain(&"x".repeat(300), "abcdef")));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label(""));
    }
}
