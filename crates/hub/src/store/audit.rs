//! The audit log (`audit_logs`): who did what, from where, and whether it worked.

use super::{Store, StoreResult, dispatch};

/// One audit event.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AuditEntry {
    /// Dotted event name, e.g. `auth.login.failure`.
    pub event: String,
    pub user_id: Option<String>,
    pub resource: Option<String>,
    pub action: Option<String>,
    pub success: bool,
    pub reason: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub context_json: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Appends one audit row.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO audit_logs (event, user_id, resource, action, success, reason, ip_address, user_agent, context_json, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&entry.event)
            .bind(&entry.user_id)
            .bind(&entry.resource)
            .bind(&entry.action)
            .bind(entry.success)
            .bind(&entry.reason)
            .bind(&entry.ip_address)
            .bind(&entry.user_agent)
            .bind(&entry.context_json)
            .bind(entry.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The newest audit rows first (at most `limit`), optionally only one event.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn recent_audit(
        &self,
        event: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, AuditEntry>(
                "SELECT event, user_id, resource, action, success, reason, ip_address, user_agent, context_json, created_at \
                 FROM audit_logs WHERE ($1 IS NULL OR event = $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(event)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Whether `user_id` has ever signed in (or signed up) from `ip`, by the audit log.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn has_signed_in_from(&self, user_id: &str, ip: &str) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM (SELECT 1 FROM audit_logs WHERE user_id = $1 AND ip_address = $2 \
                 AND success AND event IN ('auth.login.success', 'auth.register') LIMIT 1) AS seen",
            )
            .bind(user_id)
            .bind(ip)
            .fetch_one(pool)
            .await?
                > 0)
        })
    }
}
