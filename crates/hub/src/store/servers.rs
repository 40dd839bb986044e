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
    pub enrolled_at: i64,
    pub proxy_policy: String,
    /// Whether collaborators may use the relay to this server (SPEC M.1).
    pub collaborator_relay: bool,
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

/// The columns of [`ServerRow`], for every query that returns one.
macro_rules! server_row_sql {
    ($tail:literal) => {
        concat!(
            "SELECT s.id, s.user_id, s.server_name, s.version, s.status, s.last_seen_at, \
                    s.hostname_candidates_json, s.subdomain, s.enrolled_at, s.proxy_policy, s.collaborator_relay, \
                    EXISTS (SELECT 1 FROM relay_sessions r WHERE r.server_id = s.id AND r.closed_at IS NULL) AS relay_active, \
                    (SELECT COUNT(*) FROM server_libraries l WHERE l.server_id = s.id) AS library_count \
             FROM servers s ",
            $tail
        )
    };
}

/// One library of a server, as the heartbeat reports it.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    utoipa::ToSchema,
)]
pub struct LibraryRow {
    pub library_id: String,
    pub library_name: String,
}

/// A library with the server it lives on, for `/api/v1/me/libraries`.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UserLibraryRow {
    pub server_id: String,
    pub server_name: String,
    pub library_id: String,
    pub library_name: String,
}

/// One stored heartbeat.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct HeartbeatRow {
    pub id: i64,
    pub version: String,
    pub uptime_seconds: i64,
    pub active_sessions: i64,
    pub active_transcodes: i64,
    pub host_metrics_json: Option<String>,
    pub received_at: i64,
    pub sent_at: Option<i64>,
}

/// One relay session of a server, for its detail page.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct RelaySessionRow {
    pub id: String,
    pub worker_node: String,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub close_reason: Option<String>,
    pub last_frame_at: Option<i64>,
}

impl Store {
    /// One server by id.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn server_by_id(&self, id: &str) -> StoreResult<Option<ServerRow>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_as::<_, ServerRow>(server_row_sql!("WHERE s.id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// Deletes a server and, by cascade, its heartbeats, libraries, tokens and sessions.
    /// Returns whether it existed.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn delete_server(&self, id: &str) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query("DELETE FROM servers WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
                == 1)
        })
    }

    /// The libraries of one server, by id.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn libraries_of_server(&self, server_id: &str) -> StoreResult<Vec<LibraryRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, LibraryRow>(
                "SELECT library_id, library_name FROM server_libraries WHERE server_id = $1 ORDER BY library_id",
            )
            .bind(server_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The libraries of every server a user owns.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn libraries_of_user(&self, user_id: &str) -> StoreResult<Vec<UserLibraryRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, UserLibraryRow>(
                "SELECT s.id AS server_id, s.server_name, l.library_id, l.library_name \
                 FROM server_libraries l JOIN servers s ON s.id = l.server_id \
                 WHERE s.user_id = $1 ORDER BY s.server_name, s.id, l.library_name, l.library_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The newest heartbeats of a server (at most `limit`), newest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn recent_heartbeats(
        &self,
        server_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<HeartbeatRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, HeartbeatRow>(
                "SELECT id, version, uptime_seconds, active_sessions, active_transcodes, host_metrics_json, received_at, sent_at \
                 FROM server_heartbeats WHERE server_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(server_id)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Heartbeats received at or after `since`, oldest first, at most `limit` (the newest).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn heartbeats_since(
        &self,
        server_id: &str,
        since: i64,
        limit: i64,
    ) -> StoreResult<Vec<HeartbeatRow>> {
        let mut rows = dispatch!(self, |pool| {
            sqlx::query_as::<_, HeartbeatRow>(
                "SELECT id, version, uptime_seconds, active_sessions, active_transcodes, host_metrics_json, received_at, sent_at \
                 FROM server_heartbeats WHERE server_id = $1 AND received_at >= $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(server_id)
            .bind(since)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.reverse();
        Ok(rows)
    }

    /// The newest relay sessions of a server, newest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn relay_sessions_of_server(
        &self,
        server_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<RelaySessionRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, RelaySessionRow>(
                "SELECT id, worker_node, opened_at, closed_at, bytes_in, bytes_out, close_reason, last_frame_at \
                 FROM relay_sessions WHERE server_id = $1 ORDER BY opened_at DESC, id LIMIT $2",
            )
            .bind(server_id)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The open relay session of a server's tunnel: with several nodes, the one on the node
    /// that owns the tunnel (a killed node's session stays open until it is reconciled), else
    /// the newest.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn current_relay_session(
        &self,
        server_id: &str,
    ) -> StoreResult<Option<RelaySessionRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, RelaySessionRow>(
                "SELECT r.id, r.worker_node, r.opened_at, r.closed_at, r.bytes_in, r.bytes_out, \
                 r.close_reason, r.last_frame_at FROM relay_sessions r \
                 LEFT JOIN relay_owners o ON o.server_id = r.server_id AND o.node = r.worker_node \
                 WHERE r.server_id = $1 AND r.closed_at IS NULL \
                 ORDER BY CASE WHEN o.node IS NULL THEN 1 ELSE 0 END, r.opened_at DESC, r.id LIMIT 1",
            )
            .bind(server_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Sets a server's subdomain (`None` clears it).
    ///
    /// # Errors
    /// `Conflict("subdomain")` when another server has it.
    pub async fn set_subdomain(
        &self,
        server_id: &str,
        subdomain: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query("UPDATE servers SET subdomain = $1, updated_at = $2 WHERE id = $3")
                    .bind(subdomain)
                    .bind(now)
                    .bind(server_id)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1,
            )
        })
    }

    /// Stores a client relay token (only its SHA-256) and prunes tokens expired for a day or
    /// revoked.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn insert_relay_token(
        &self,
        id: &str,
        token_hash: &str,
        user_id: &str,
        server_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO client_relay_tokens (id, token_hash, user_id, server_id, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(token_hash)
            .bind(user_id)
            .bind(server_id)
            .bind(expires_at)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query(
                "DELETE FROM client_relay_tokens WHERE expires_at < $1 OR revoked_at IS NOT NULL",
            )
            .bind(now - 86_400)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks servers offline that have not been heard from since `stale_before` and hold no
    /// open relay session. Returns the `(server id, owner id)` pairs flipped.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn reap_offline_servers(
        &self,
        stale_before: i64,
        now: i64,
    ) -> StoreResult<Vec<(String, String)>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, (String, String)>(
                "UPDATE servers SET status = 'offline', updated_at = $2 \
                 WHERE status <> 'offline' AND (last_seen_at IS NULL OR last_seen_at < $1) \
                 AND NOT EXISTS (SELECT 1 FROM relay_sessions r WHERE r.server_id = servers.id AND r.closed_at IS NULL) \
                 RETURNING id, user_id",
            )
            .bind(stale_before)
            .bind(now)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Deletes heartbeats older than `older_than` and keeps at most `keep` per server.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn prune_heartbeats(&self, older_than: i64, keep: i64) -> StoreResult<u64> {
        dispatch!(self, |pool| {
            let mut deleted = sqlx::query("DELETE FROM server_heartbeats WHERE received_at < $1")
                .bind(older_than)
                .execute(pool)
                .await?
                .rows_affected();
            let crowded: Vec<String> = sqlx::query_scalar(
                "SELECT server_id FROM server_heartbeats GROUP BY server_id HAVING COUNT(*) > $1",
            )
            .bind(keep)
            .fetch_all(pool)
            .await?;
            for server_id in crowded {
                deleted += sqlx::query(
                    "DELETE FROM server_heartbeats WHERE server_id = $1 AND id <= \
                     (SELECT id FROM server_heartbeats WHERE server_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                )
                .bind(&server_id)
                .bind(keep)
                .execute(pool)
                .await?
                .rows_affected();
            }
            Ok(deleted)
        })
    }

    /// The servers a user owns, oldest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn servers_of_user(&self, user_id: &str) -> StoreResult<Vec<ServerRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, ServerRow>(server_row_sql!(
                "WHERE s.user_id = $1 ORDER BY s.created_at, s.id"
            ))
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }
}

impl Store {
    /// The server registered under a subdomain label.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn server_by_subdomain(&self, subdomain: &str) -> StoreResult<Option<ServerRow>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_as::<_, ServerRow>(server_row_sql!("WHERE s.subdomain = $1"))
                    .bind(subdomain)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// Sets a server's proxy policy (`phlix` or `all`).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn set_proxy_policy(
        &self,
        server_id: &str,
        policy: &str,
        now: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query("UPDATE servers SET proxy_policy = $1, updated_at = $2 WHERE id = $3")
                    .bind(policy)
                    .bind(now)
                    .bind(server_id)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1,
            )
        })
    }
}
