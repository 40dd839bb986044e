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

/// `$1, $2, …, $n`: one placeholder per value of an `IN (…)` list.
fn placeholder_list(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $width), ($width+1, …)`: one group of `width` placeholders per row.
fn placeholder_rows(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=width)
                .map(|col| format!("${}", row * width + col))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Servers per `UPDATE`: SQLite allows at most 500 terms in a compound `SELECT`.
const UPDATE_CHUNK: usize = 250;

/// `UPDATE servers … FROM (…)` for `rows` servers. `SELECT … UNION ALL` rather than `VALUES …
/// AS v (cols)`: SQLite has no column list on a derived table.
fn update_sql(rows: usize) -> String {
    let values = (0..rows)
        .map(|row| {
            let n = row * 4;
            format!(
                "SELECT CAST(${} AS TEXT) AS id, CAST(${} AS BIGINT) AS seen, \
                 CAST(${} AS TEXT) AS version, CAST(${} AS TEXT) AS hosts",
                n + 1,
                n + 2,
                n + 3,
                n + 4
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!(
        "UPDATE servers SET status = 'online', last_seen_at = v.seen, version = v.version, \
         hostname_candidates_json = COALESCE(v.hosts, servers.hostname_candidates_json), \
         updated_at = v.seen FROM ({values}) AS v WHERE servers.id = v.id"
    )
}

/// Reads the batch's servers (owner, status); on PostgreSQL also locks them, so a concurrent
/// delete cannot slip in before the writes.
fn lock_sql(servers: usize, postgres: bool) -> String {
    format!(
        "SELECT id, user_id, status FROM servers WHERE id IN ({}){}",
        placeholder_list(servers),
        if postgres { " FOR UPDATE" } else { "" }
    )
}

/// One multi-row `INSERT` of `rows` heartbeat rows.
fn insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO server_heartbeats (server_id, version, uptime_seconds, active_sessions, \
         active_transcodes, hostname_candidates_json, host_metrics_json, received_at, sent_at) \
         VALUES {}",
        placeholder_rows(rows, 9)
    )
}

/// The stored library hashes of `servers` servers.
fn hashes_sql(servers: usize) -> String {
    format!(
        "SELECT server_id, hash FROM server_library_hashes WHERE server_id IN ({})",
        placeholder_list(servers)
    )
}

impl Store {
    /// Stores a batch of heartbeats in one transaction, with a fixed number of statements per
    /// batch (lock, a multi-row `UPDATE … FROM` per 250 servers, one multi-row `INSERT`, one hash
    /// lookup) plus the library rewrites of servers whose list changed. For each record, its
    /// outcome when its server exists, `None` when it does not (nothing written for it).
    ///
    /// # Errors
    /// Database failures: then nothing of the batch is written.
    pub async fn write_heartbeats(
        &self,
        batch: &[HeartbeatRecord],
    ) -> StoreResult<Vec<Option<HeartbeatOutcome>>> {
        use std::collections::HashMap;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Distinct servers, in order of first appearance.
        let mut seen = std::collections::HashSet::new();
        let servers: Vec<&str> = batch
            .iter()
            .map(|hb| hb.server_id.as_str())
            .filter(|id| seen.insert(*id))
            .collect();
        let lock_sql = lock_sql(servers.len(), matches!(self, Store::Postgres(_)));
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut lock = sqlx::query_as::<_, (String, String, String)>(
                // Only `$n` placeholders are spliced in; every value is bound.
                sqlx::AssertSqlSafe(lock_sql.clone()),
            );
            for id in &servers {
                lock = lock.bind(*id);
            }
            let mut known: HashMap<String, (String, bool)> = lock
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, owner, status)| (id, (owner, status == "online")))
                .collect();
            // What each record did, and the rows to write.
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut rows: Vec<&HeartbeatRecord> = Vec::with_capacity(batch.len());
            let mut latest: HashMap<&str, (&HeartbeatRecord, Option<&str>)> = HashMap::new();
            let mut libraries: HashMap<&str, &Vec<LibraryRow>> = HashMap::new();
            for hb in batch {
                let Some((owner_id, online)) = known.get_mut(&hb.server_id) else {
                    outcomes.push(None);
                    continue;
                };
                outcomes.push(Some(HeartbeatOutcome {
                    owner_id: owner_id.clone(),
                    came_online: !*online,
                }));
                // A later heartbeat of the same server in this batch finds it online.
                *online = true;
                rows.push(hb);
                let hosts = hb.hostname_candidates_json.as_deref().or_else(|| {
                    latest
                        .get(hb.server_id.as_str())
                        .and_then(|(_, hosts)| *hosts)
                });
                latest.insert(&hb.server_id, (hb, hosts));
                if let Some(list) = &hb.libraries {
                    libraries.insert(&hb.server_id, list);
                }
            }
            if rows.is_empty() {
                tx.rollback().await?;
                return Ok(outcomes);
            }
            let updates: Vec<(&str, &HeartbeatRecord, Option<&str>)> = servers
                .iter()
                .filter_map(|id| latest.get(id).map(|(hb, hosts)| (*id, *hb, *hosts)))
                .collect();
            let with_libraries: Vec<&str> = servers
                .iter()
                .copied()
                .filter(|id| libraries.contains_key(id))
                .collect();

            for chunk in updates.chunks(UPDATE_CHUNK) {
                let mut update = sqlx::query(sqlx::AssertSqlSafe(update_sql(chunk.len())));
                for (id, hb, hosts) in chunk {
                    update = update
                        .bind(*id)
                        .bind(hb.received_at)
                        .bind(&hb.version)
                        .bind(*hosts);
                }
                update.execute(&mut *tx).await?;
            }

            let mut insert = sqlx::query(sqlx::AssertSqlSafe(insert_sql(rows.len())));
            for hb in &rows {
                insert = insert
                    .bind(&hb.server_id)
                    .bind(&hb.version)
                    .bind(hb.uptime_seconds)
                    .bind(hb.active_sessions)
                    .bind(hb.active_transcodes)
                    .bind(hb.hostname_candidates_json.as_deref().unwrap_or("[]"))
                    .bind(&hb.host_metrics_json)
                    .bind(hb.received_at)
                    .bind(hb.sent_at);
            }
            insert.execute(&mut *tx).await?;

            if !with_libraries.is_empty() {
                let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(
                    hashes_sql(with_libraries.len()),
                ));
                for id in &with_libraries {
                    query = query.bind(*id);
                }
                let stored: HashMap<String, String> =
                    query.fetch_all(&mut *tx).await?.into_iter().collect();
                for id in &with_libraries {
                    let list = libraries[id];
                    let hash = library_hash(list);
                    if stored.get(*id).map(String::as_str) == Some(hash.as_str()) {
                        continue;
                    }
                    let received_at = latest[id].0.received_at;
                    sqlx::query("DELETE FROM server_libraries WHERE server_id = $1")
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                    for library in list {
                        sqlx::query(
                            "INSERT INTO server_libraries (server_id, library_id, library_name, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (server_id, library_id) DO UPDATE SET \
                             library_name = excluded.library_name, updated_at = excluded.updated_at",
                        )
                        .bind(*id)
                        .bind(&library.library_id)
                        .bind(&library.library_name)
                        .bind(received_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query(
                        "INSERT INTO server_library_hashes (server_id, hash, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (server_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
                    )
                    .bind(*id)
                    .bind(&hash)
                    .bind(received_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{placeholder_list, placeholder_rows};

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(placeholder_rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholder_list(3), "$1, $2, $3");
    }
}
