//! The admin console's read side (SPEC Q.2, Q.3): the audit-log query and its keyset pages for
//! the CSV export, the dashboard's figures, and the per-minute statistics behind its charts.

use super::{Store, StoreResult, dispatch};

/// An audit row with its actor's name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub event: String,
    pub user_id: Option<String>,
    /// Display name, else user name, of `user_id` (if it still exists).
    pub actor: Option<String>,
    pub resource: Option<String>,
    pub action: Option<String>,
    pub success: bool,
    pub reason: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub context_json: Option<String>,
    pub created_at: i64,
}

/// The filters of the audit-log query (`None` = any).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub event: Option<String>,
    pub user_id: Option<String>,
    pub resource: Option<String>,
    pub action: Option<String>,
    pub success: Option<bool>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// `WHERE` of the audit query over `$1..$7` (the filters) — shared by the page, the count and
/// the keyset pages.
macro_rules! audit_where {
    () => {
        "WHERE ($1 IS NULL OR a.event = $1) AND ($2 IS NULL OR a.user_id = $2) \
         AND ($3 IS NULL OR a.resource = $3) AND ($4 IS NULL OR a.action = $4) \
         AND ($5 IS NULL OR a.success = $5) AND ($6 IS NULL OR a.created_at >= $6) \
         AND ($7 IS NULL OR a.created_at <= $7) "
    };
}

/// Binds the filters to `$1..$7` of [`audit_where!`].
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {
        $query
            .bind(&$filter.event)
            .bind(&$filter.user_id)
            .bind(&$filter.resource)
            .bind(&$filter.action)
            .bind($filter.success)
            .bind($filter.from)
            .bind($filter.to)
    };
}

macro_rules! audit_select {
    () => {
        "SELECT a.id, a.event, a.user_id, COALESCE(u.display_name, u.username) AS actor, \
                a.resource, a.action, a.success, a.reason, a.ip_address, a.user_agent, \
                a.context_json, a.created_at \
         FROM audit_logs a LEFT JOIN users u ON u.id = a.user_id "
    };
}

/// The dashboard's figures (SPEC Q.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub servers_total: i64,
    pub servers_online: i64,
    pub active_relay_sessions: i64,
    pub pending_requests: i64,
    pub user_count: i64,
    pub relay_bytes_today: i64,
    pub heartbeats_last_minute: i64,
    pub webhook_failures_24h: i64,
}

/// One minute of the charts, summed over the nodes (servers online: the largest report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct StatsPoint {
    pub minute: i64,
    pub servers_online: i64,
    pub relay_bytes: i64,
    pub heartbeats: i64,
}

impl Store {
    /// A page of audit rows matching `filter`, newest first, and the total.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn audit_query(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditRow>, i64)> {
        dispatch!(self, |pool| {
            let rows = bind_filter!(
                sqlx::query_as::<_, AuditRow>(concat!(
                    audit_select!(),
                    audit_where!(),
                    "ORDER BY a.id DESC LIMIT $8 OFFSET $9"
                )),
                filter
            )
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total: i64 = bind_filter!(
                sqlx::query_scalar(concat!(
                    "SELECT COUNT(*) FROM audit_logs a ",
                    audit_where!()
                )),
                filter
            )
            .fetch_one(pool)
            .await?;
            Ok((rows, total))
        })
    }

    /// Up to `limit` audit rows matching `filter` with an id below `before` (all when `None`),
    /// newest first: the keyset pages of the streamed CSV export.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn audit_before(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRow>> {
        dispatch!(self, |pool| {
            Ok(bind_filter!(
                sqlx::query_as::<_, AuditRow>(concat!(
                    audit_select!(),
                    audit_where!(),
                    "AND ($8 IS NULL OR a.id < $8) ORDER BY a.id DESC LIMIT $9"
                )),
                filter
            )
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The dashboard's figures at `now` (`day_start` = UTC midnight).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn dashboard_summary(&self, now: i64, day_start: i64) -> StoreResult<Summary> {
        dispatch!(self, |pool| {
            let (servers_total, servers_online): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'online' THEN 1 ELSE 0 END), 0) FROM servers",
            )
            .fetch_one(pool)
            .await?;
            let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
            let active_relay_sessions =
                count("SELECT COUNT(*) FROM relay_sessions WHERE closed_at IS NULL")
                    .fetch_one(pool)
                    .await?;
            let pending_requests = count("SELECT COUNT(*) FROM requests WHERE status = 'pending'")
                .fetch_one(pool)
                .await?;
            let user_count = count("SELECT COUNT(*) FROM users").fetch_one(pool).await?;
            let relay_bytes_today: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(relay_bytes), 0) AS BIGINT) FROM hub_stats WHERE minute >= $1",
            )
            .bind(day_start)
            .fetch_one(pool)
            .await?;
            let heartbeats_last_minute: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM server_heartbeats WHERE received_at > $1")
                    .bind(now - 60)
                    .fetch_one(pool)
                    .await?;
            let webhook_failures_24h: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM webhook_attempts WHERE at_ms > $1 \
                 AND (status_code IS NULL OR status_code < 200 OR status_code >= 300)",
            )
            .bind((now - 86_400) * 1000)
            .fetch_one(pool)
            .await?;
            Ok(Summary {
                servers_total,
                servers_online,
                active_relay_sessions,
                pending_requests,
                user_count,
                relay_bytes_today,
                heartbeats_last_minute,
                webhook_failures_24h,
            })
        })
    }

    /// Records one minute of this node's statistics (a second sample in the same minute adds
    /// to it). Rows older than `keep_after` are deleted.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn record_stats(
        &self,
        node: &str,
        minute: i64,
        relay_bytes: i64,
        keep_after: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            let online: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM servers WHERE status = 'online'")
                    .fetch_one(pool)
                    .await?;
            let heartbeats: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM server_heartbeats WHERE received_at >= $1 AND received_at < $2",
            )
            .bind(minute)
            .bind(minute + 60)
            .fetch_one(pool)
            .await?;
            sqlx::query(
                "INSERT INTO hub_stats (node, minute, servers_online, relay_bytes, heartbeats) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node, minute) DO UPDATE SET \
                 servers_online = excluded.servers_online, \
                 relay_bytes = hub_stats.relay_bytes + excluded.relay_bytes, \
                 heartbeats = excluded.heartbeats",
            )
            .bind(node)
            .bind(minute)
            .bind(online)
            .bind(relay_bytes)
            .bind(heartbeats)
            .execute(pool)
            .await?;
            sqlx::query("DELETE FROM hub_stats WHERE minute < $1")
                .bind(keep_after)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The per-minute statistics since `since`, oldest first, summed over the nodes.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn stats_since(&self, since: i64) -> StoreResult<Vec<StatsPoint>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, StatsPoint>(
                "SELECT minute, CAST(MAX(servers_online) AS BIGINT) AS servers_online, \
                        CAST(SUM(relay_bytes) AS BIGINT) AS relay_bytes, \
                        CAST(MAX(heartbeats) AS BIGINT) AS heartbeats \
                 FROM hub_stats WHERE minute >= $1 GROUP BY minute ORDER BY minute",
            )
            .bind(since)
            .fetch_all(pool)
            .await?)
        })
    }
}
