//! Who acts ([`ClientInfo`]) and the audit rows every action writes.

use crate::auth::now_unix;
use crate::store::AuditEntry;

/// The peer address and user agent of the request, for rate limits and the audit log.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
}

/// An audit row for `event` (resource `auth`, action = the last dotted part), also logged at
/// info under the `audit` target.
#[must_use]
pub fn entry(
    event: &str,
    client: &ClientInfo,
    user_id: Option<&str>,
    success: bool,
    reason: Option<&str>,
) -> AuditEntry {
    tracing::info!(target: "audit", event, user_id, success, reason, ip = %client.ip, "audit");
    AuditEntry {
        event: event.to_owned(),
        user_id: user_id.map(str::to_owned),
        resource: Some("auth".into()),
        action: event.rsplit('.').next().map(str::to_owned),
        success,
        reason: reason.map(str::to_owned),
        ip_address: Some(client.ip.clone()),
        user_agent: client.user_agent.clone(),
        context_json: None,
        created_at: now_unix(),
    }
}
