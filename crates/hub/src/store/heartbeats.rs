//! Heartbeat writes (SPEC D), done in batches: one transaction stores many heartbeats, which is
//! what lets one node absorb thousands per second (see `crate::heartbeat`).

use sha2::{Digest, Sha256};

use super::servers::LibraryRow;
use super::{BeginWrite, Store, StoreResult, dispatch};

/// One validated heartbeat, ready to store.
#[derive(Debug, Clone)]
pub struct HeartbeatRecord {
    pub server_id: String,
    pub version: String,
    /// The DTO's `timestamp` (when the server sent it).
    pub sent_at: i64,
    pub uptime_seconds: i64,
    pub active_sessions: i64,
    pub active_transcodes: i64,
    /// `None` keeps the stored candidates.
    pub hostname_candidates_json: Option<String>,
    pub host_metrics_json: Option<String>,
    /// `None` when the heartbeat carried no `libraries` key.
    pub libraries: Option<Vec<LibraryRow>>,
    pub received_at: i64,
}

/// SHA-256 hex of the library list sorted by id, as JSON: unchanged lists skip the upsert.
#[must_use]
pub fn library_hash(libraries: &[LibraryRow]) -> String {
    let mut sorted: Vec<&LibraryRow> = libraries.iter().collect();
    sorted.sort_by(|a, b| a.library_id.cmp(&b.library_id));
    let json = serde_json::to_vec(&sorted).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}

/// What storing one heartbeat changed, for the live events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub owner_id: String,
    /// The server was not `online` before this heartbeat.
    pub came_online: bool,
}

impl Store {
    /// Stores a batch of heartbeats in one transaction. For each record, its outcome when its
    /// server exists (and was updated), `None` when it does not (nothing written for it).
    ///
    /// # Errors
    /// Database failures: then nothing of the batch is written.
    pub async fn write_heartbeats(
        &self,
        batch: &[HeartbeatRecord],
    ) -> StoreResult<Vec<Option<HeartbeatOutcome>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::with_capacity(batch.len());
        let placeholders: Vec<String> = (1..=batch.len()).map(|i| format!("${i}")).collect();
        let before_sql = format!(
            "SELECT id, user_id, status FROM servers WHERE id IN ({})",
            placeholders.join(", ")
        );
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut before_query = sqlx::query_as::<_, (String, String, String)>(
                // Only `$n` placeholders are spliced in; every value is bound.
                sqlx::AssertSqlSafe(before_sql.clone()),
            );
            for hb in batch {
                before_query = before_query.bind(&hb.server_id);
            }
            let mut before: std::collections::HashMap<String, (String, bool)> = before_query
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, owner, status)| (id, (owner, status == "online")))
                .collect();
            for hb in batch {
                let updated = sqlx::query(
                    "UPDATE servers SET status = 'online', last_seen_at = $1, version = $2, \
                     hostname_candidates_json = COALESCE($3, hostname_candidates_json), updated_at = $1 WHERE id = $4",
                )
                .bind(hb.received_at)
                .bind(&hb.version)
                .bind(&hb.hostname_candidates_json)
                .bind(&hb.server_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    found.push(None);
                    continue;
                }
                let (owner_id, was_online) = before.get(&hb.server_id).cloned().unwrap_or_default();
                found.push(Some(HeartbeatOutcome {
                    owner_id,
                    came_online: !was_online,
                }));
                // A second heartbeat of the same server in this batch finds it online.
                if let Some(entry) = before.get_mut(&hb.server_id) {
                    entry.1 = true;
                }
                sqlx::query(
                    "INSERT INTO server_heartbeats (server_id, version, uptime_seconds, active_sessions, active_transcodes, \
                     hostname_candidates_json, host_metrics_json, received_at, sent_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&hb.server_id)
                .bind(&hb.version)
                .bind(hb.uptime_seconds)
                .bind(hb.active_sessions)
                .bind(hb.active_transcodes)
                .bind(hb.hostname_candidates_json.as_deref().unwrap_or("[]"))
                .bind(&hb.host_metrics_json)
                .bind(hb.received_at)
                .bind(hb.sent_at)
                .execute(&mut *tx)
                .await?;
                let Some(libraries) = &hb.libraries else {
                    continue;
                };
                let hash = library_hash(libraries);
                let stored: Option<String> = sqlx::query_scalar(
                    "SELECT hash FROM server_library_hashes WHERE server_id = $1",
                )
                .bind(&hb.server_id)
                .fetch_optional(&mut *tx)
                .await?;
                if stored.as_deref() == Some(hash.as_str()) {
                    continue;
                }
                sqlx::query("DELETE FROM server_libraries WHERE server_id = $1")
                    .bind(&hb.server_id)
                    .execute(&mut *tx)
                    .await?;
                for library in libraries {
                    sqlx::query(
                        "INSERT INTO server_libraries (server_id, library_id, library_name, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (server_id, library_id) DO UPDATE SET \
                         library_name = excluded.library_name, updated_at = excluded.updated_at",
                    )
                    .bind(&hb.server_id)
                    .bind(&library.library_id)
                    .bind(&library.library_name)
                    .bind(hb.received_at)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO server_library_hashes (server_id, hash, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (server_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
                )
                .bind(&hb.server_id)
                .bind(&hash)
                .bind(hb.received_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(found)
    }
}
