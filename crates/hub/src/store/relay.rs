//! Relay bookkeeping: `relay_sessions` rows of tunnels and client relay tokens.

use super::{Store, StoreResult, dispatch};

/// Byte counters and last inbound frame of a tunnel, flushed to its session row.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionCounters {
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub last_frame_at: Option<i64>,
}

/// A valid client relay token: who minted it, for which server.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RelayTokenGrant {
    pub user_id: String,
    pub server_id: String,
    pub expires_at: i64,
}

impl Store {
    /// Opens a `relay_sessions` row for a tunnel that completed its HELLO.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn open_relay_session(
        &self,
        id: &str,
        server_id: &str,
        tunnel_id: &str,
        node: &str,
        now: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO relay_sessions (id, server_id, tunnel_id, worker_node, opened_at, last_frame_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(id)
            .bind(server_id)
            .bind(tunnel_id)
            .bind(node)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Writes the counters of an open session.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn flush_relay_session(
        &self,
        id: &str,
        counters: SessionCounters,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query("UPDATE relay_sessions SET bytes_in = $1, bytes_out = $2, last_frame_at = COALESCE($3, last_frame_at) WHERE id = $4")
                .bind(counters.bytes_in)
                .bind(counters.bytes_out)
                .bind(counters.last_frame_at)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Closes a session with its reason and final counters.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn close_relay_session(
        &self,
        id: &str,
        reason: &str,
        counters: SessionCounters,
        now: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE relay_sessions SET closed_at = $1, close_reason = $2, bytes_in = $3, bytes_out = $4, \
                 last_frame_at = COALESCE($5, last_frame_at) WHERE id = $6 AND closed_at IS NULL",
            )
            .bind(now)
            .bind(reason)
            .bind(counters.bytes_in)
            .bind(counters.bytes_out)
            .bind(counters.last_frame_at)
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Closes every session this node left open (a crash or kill), with reason
    /// `reconciled_on_start`. Returns how many.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn reconcile_relay_sessions(&self, node: &str, now: i64) -> StoreResult<u64> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE relay_sessions SET closed_at = $1, close_reason = 'reconciled_on_start' \
                 WHERE closed_at IS NULL AND worker_node = $2",
            )
            .bind(now)
            .bind(node)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }

    /// The grant behind a relay token hash, if the token is unrevoked, unexpired and its server
    /// still exists (whether its user may still use the server is the domain's check).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn relay_token_grant(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<RelayTokenGrant>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, RelayTokenGrant>(
                "SELECT t.user_id, t.server_id, t.expires_at FROM client_relay_tokens t \
                 JOIN servers s ON s.id = t.server_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The owner of a server, `None` when the row does not exist (a tunnel may only open for
    /// an existing server).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn server_owner(&self, server_id: &str) -> StoreResult<Option<String>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_scalar::<_, String>("SELECT user_id FROM servers WHERE id = $1")
                    .bind(server_id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }
}
