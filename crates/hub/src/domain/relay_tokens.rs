//! Client relay tokens (SPEC B.2, F.3): minted for a server the caller may use, shown once,
//! stored as SHA-256.

use sha2::{Digest, Sha256};

use super::{ClientInfo, Core, DomainResult};
use crate::auth::now_unix;

/// Lifetime of a client relay token.
pub const RELAY_TOKEN_TTL_SECS: i64 = 3600;

/// Mints a client relay token for `user_id` on a server they own or may use as a collaborator:
/// the token (shown once) and its expiry. Only its SHA-256 is stored.
///
/// # Errors
/// 404 / 403 for a server that is not theirs; database failures.
pub async fn mint_relay_token(
    core: &Core,
    user_id: &str,
    server_id: &str,
    client: &ClientInfo,
) -> DomainResult<(String, i64)> {
    // The owner, or a collaborator while the owner lets them through (SPEC M.1).
    let server = core.store.server_by_id(server_id).await?;
    super::shares::relay_server(core, server, user_id).await?;
    // 64 lowercase hex (SPEC L). Tokens minted earlier as 43 characters of base64url keep
    // working until they expire: only the SHA-256 of the text is looked up.
    let token = hex::encode(crate::auth::random_bytes::<32>());
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let now = now_unix();
    let expires_at = now + RELAY_TOKEN_TTL_SECS;
    let id = uuid::Uuid::new_v4().to_string();
    core.store
        .insert_relay_token(&id, &hash, user_id, server_id, expires_at, now)
        .await?;
    let mut entry = super::audit::entry("relay.token_minted", client, Some(user_id), true, None);
    entry.resource = Some(format!("server:{server_id}"));
    entry.action = Some("relay.token_mint".into());
    entry.context_json =
        Some(serde_json::json!({"server_id": server_id, "expires_at": expires_at}).to_string());
    core.store.audit(&entry).await?;
    Ok((token, expires_at))
}

/// What a presented client relay token grants on `server_id`: its user, if the token is known,
/// unexpired and minted for this server.
///
/// # Errors
/// Database failures.
pub async fn grant(
    core: &Core,
    token: &str,
    server_id: &str,
) -> DomainResult<Option<crate::store::RelayTokenGrant>> {
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    Ok(core
        .store
        .relay_token_grant(&hash, now_unix())
        .await?
        .filter(|grant| grant.server_id == server_id))
}
