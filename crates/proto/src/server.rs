//! Server directory types (SPEC E.2 `ServerInfoDto`).

use serde::{Deserialize, Serialize};

/// `ServerInfoDto`: camelCase, exactly as the PHP hub serialises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub server_id: String,
    pub user_id: String,
    pub server_name: String,
    pub version: String,
    /// Unix seconds of the last heartbeat, or `null` before the first.
    pub last_seen_at: Option<i64>,
    /// `online | offline | claiming | disabled`.
    pub status: String,
    pub hostname_candidates: Vec<String>,
    pub relay_active: bool,
    pub library_count: Option<i64>,
    pub subdomain: Option<String>,
}
