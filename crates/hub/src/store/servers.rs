//! The server directory as the user side sees it.

use phlix_proto::server::ServerInfo;

use super::{Store, StoreResult, dispatch};

/// A `servers` row joined with its live facts (open relay session, library count).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: String,
    pub user_id: String,
    pub server_name: String,
    pub version: String,
    pub status: String,
    pub last_seen_at: Option<i64>,
    pub hostname_candidates_json: String,
    pub subdomain: Option<String>,
    pub relay_active: bool,
    pub library_count: i64,
}

impl ServerRow {
    /// The `ServerInfoDto` of this row.
    #[must_use]
    pub fn into_info(self) -> ServerInfo {
        ServerInfo {
            hostname_candidates: serde_json::from_str(&self.hostname_candidates_json)
                .unwrap_or_default(),
            server_id: self.id,
            user_id: self.user_id,
            server_name: self.server_name,
            version: self.version,
            last_seen_at: self.last_seen_at,
            status: self.status,
            relay_active: self.relay_active,
            library_count: Some(self.library_count),
            subdomain: self.subdomain,
        }
    }
}

impl Store {
    /// The servers a user owns, oldest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn servers_of_user(&self, user_id: &str) -> StoreResult<Vec<ServerRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, ServerRow>(
                "SELECT s.id, s.user_id, s.server_name, s.version, s.status, s.last_seen_at, \
                        s.hostname_candidates_json, s.subdomain, \
                        EXISTS (SELECT 1 FROM relay_sessions r WHERE r.server_id = s.id AND r.closed_at IS NULL) AS relay_active, \
                        (SELECT COUNT(*) FROM server_libraries l WHERE l.server_id = s.id) AS library_count \
                 FROM servers s WHERE s.user_id = $1 ORDER BY s.created_at, s.id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }
}
