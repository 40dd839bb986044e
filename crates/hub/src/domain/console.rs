//! The admin console's read side (SPEC Q.2, Q.3): the audit-log query with its filters and
//! the CSV export, the dashboard's summary and activity, and the per-minute statistics behind
//! the 24 h charts (a sampler loop per node).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Core, DomainError, DomainResult};
use crate::auth::now_unix;
use crate::store::{AuditFilter, AuditRow, StatsPoint, Summary};

/// Rows of one keyset page of the CSV export.
pub const EXPORT_PAGE: i64 = 1000;
/// Longest filter value accepted.
pub const MAX_FILTER: usize = 200;
/// How long the per-minute statistics are kept.
pub const STATS_KEEP_SECS: i64 = 8 * 86_400;

fn bad(message: impl Into<String>) -> DomainError {
    DomainError::invalid("invalid_query", message)
}

/// The audit filters of a query string (SPEC Q.3): `event`, `user_id`, `resource`, `action`,
/// `success` (`0`/`1`), `from`/`to` (unix seconds).
///
/// # Errors
/// 400 `invalid_query` naming the bad filter.
pub fn audit_filter(get: impl Fn(&str) -> Option<String>) -> DomainResult<AuditFilter> {
    let text = |name: &str| -> DomainResult<Option<String>> {
        match get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
        {
            Some(v) if v.chars().count() > MAX_FILTER => Err(bad(format!(
                "{name} must be at most {MAX_FILTER} characters"
            ))),
            other => Ok(other),
        }
    };
    let time = |name: &str| -> DomainResult<Option<i64>> {
        text(name)?
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad(format!("{name} must be a unix time in seconds")))
            })
            .transpose()
    };
    let success = match text("success")?.as_deref() {
        None => None,
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        Some(_) => return Err(bad("success must be 0 or 1")),
    };
    let filter = AuditFilter {
        event: text("event")?,
        user_id: text("user_id")?,
        resource: text("resource")?,
        action: text("action")?,
        success,
        from: time("from")?,
        to: time("to")?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(bad("from must not be after to"));
    }
    Ok(filter)
}

/// An audit row as the API shows it (SPEC Q.3). Fields in alphabetical order: the bytes the
/// `json!` object had.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub action: Option<String>,
    /// Display name, else user name, of `user_id` (if it still exists).
    pub actor: Option<String>,
    /// The row's JSON context, if any.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    pub event: String,
    pub id: i64,
    pub ip_address: Option<String>,
    pub reason: Option<String>,
    pub resource: Option<String>,
    /// `1` or `0`.
    pub success: i32,
    pub user_agent: Option<String>,
    pub user_id: Option<String>,
}

/// An audit row as the API shows it (SPEC Q.3).
#[must_use]
pub fn audit_view(row: &AuditRow) -> AuditView {
    AuditView {
        action: row.action.clone(),
        actor: row.actor.clone(),
        context: row
            .context_json
            .as_deref()
            .and_then(|c| serde_json::from_str::<Value>(c).ok()),
        created_at: super::accounts::format_datetime(row.created_at),
        event: row.event.clone(),
        id: row.id,
        ip_address: row.ip_address.clone(),
        reason: row.reason.clone(),
        resource: row.resource.clone(),
        success: i32::from(row.success),
        user_agent: row.user_agent.clone(),
        user_id: row.user_id.clone(),
    }
}

/// A page of audit rows and the total.
///
/// # Errors
/// Database failures only.
pub async fn audit_page(
    core: &Core,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> DomainResult<(Vec<AuditRow>, i64)> {
    Ok(core.store.audit_query(filter, limit, offset).await?)
}

/// The next keyset page of the CSV export (rows below `before`).
///
/// # Errors
/// Database failures only.
pub async fn audit_export_page(
    core: &Core,
    filter: &AuditFilter,
    before: Option<i64>,
) -> DomainResult<Vec<AuditRow>> {
    Ok(core.store.audit_before(filter, before, EXPORT_PAGE).await?)
}

/// The CSV header line.
pub const CSV_HEADER: &str = "id,event,user_id,actor,resource,action,success,reason,ip_address,user_agent,context,created_at\r\n";

/// One CSV cell (RFC 4180 quoting). A cell a spreadsheet would run as a formula (`=`, `+`,
/// `-`, `@`, tab or carriage return first) is prefixed with `'`.
fn cell(out: &mut String, text: &str) {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

/// One audit row as a CSV line.
#[must_use]
pub fn csv_line(row: &AuditRow) -> String {
    let mut out = String::with_capacity(256);
    let id = row.id.to_string();
    let success = i32::from(row.success).to_string();
    let created = super::accounts::format_datetime(row.created_at);
    let cells: [&str; 12] = [
        &id,
        &row.event,
        row.user_id.as_deref().unwrap_or_default(),
        row.actor.as_deref().unwrap_or_default(),
        row.resource.as_deref().unwrap_or_default(),
        row.action.as_deref().unwrap_or_default(),
        &success,
        row.reason.as_deref().unwrap_or_default(),
        row.ip_address.as_deref().unwrap_or_default(),
        row.user_agent.as_deref().unwrap_or_default(),
        row.context_json.as_deref().unwrap_or_default(),
        &created,
    ];
    for (i, text) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(&mut out, text);
    }
    out.push_str("\r\n");
    out
}

/// The dashboard's figures.
///
/// # Errors
/// Database failures only.
pub async fn summary(core: &Core) -> DomainResult<Summary> {
    let now = now_unix();
    Ok(core
        .store
        .dashboard_summary(now, now - now.rem_euclid(86_400))
        .await?)
}

/// `{"success":true,"data":{…}}` of the dashboard summary (SPEC Q.2); fields in alphabetical
/// order, the bytes the `json!` object had.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SummaryView {
    pub data: SummaryData,
    /// Always `true`.
    pub success: bool,
}

/// The figures of the dashboard.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SummaryData {
    pub active_relay_sessions: i64,
    pub heartbeats_per_minute: i64,
    pub pending_requests: i64,
    pub relay_bytes_today: i64,
    pub servers: ServerCounts,
    pub user_count: i64,
    pub webhook_failures_24h: i64,
}

/// Servers by state.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ServerCounts {
    pub offline: i64,
    pub online: i64,
    pub total: i64,
}

/// The summary as SPEC Q.2 shows it.
#[must_use]
pub fn summary_view(summary: &Summary) -> SummaryView {
    SummaryView {
        data: SummaryData {
            active_relay_sessions: summary.active_relay_sessions,
            heartbeats_per_minute: summary.heartbeats_last_minute,
            pending_requests: summary.pending_requests,
            relay_bytes_today: summary.relay_bytes_today,
            servers: ServerCounts {
                offline: summary.servers_total - summary.servers_online,
                online: summary.servers_online,
                total: summary.servers_total,
            },
            user_count: summary.user_count,
            webhook_failures_24h: summary.webhook_failures_24h,
        },
        success: true,
    }
}

/// One entry of the recent activity.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Activity {
    pub id: i64,
    pub action: String,
    pub actor: String,
    pub target: Option<String>,
    pub created_at: String,
    pub success: bool,
}

/// The newest `limit` (1–100, default 20) audit rows as activity (SPEC Q.2).
///
/// # Errors
/// 400 `invalid_query` for a non-numeric limit.
pub async fn activity(core: &Core, limit: Option<&str>) -> DomainResult<Vec<Activity>> {
    let (limit, _) = super::admin::page(limit, None, 20, 100)?;
    let (rows, _) = core
        .store
        .audit_query(&AuditFilter::default(), limit, 0)
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let context = row
                .context_json
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok());
            let target = context.as_ref().and_then(|c| {
                [
                    "target_user_id",
                    "request_id",
                    "server_id",
                    "share_id",
                    "key",
                    "login",
                ]
                .iter()
                .find_map(|k| {
                    c.get(*k)
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                })
            });
            Activity {
                id: row.id,
                // A dotted action (`user.delete`) says what happened; a bare one (`success`)
                // needs its event (`auth.login.success`).
                action: row
                    .action
                    .clone()
                    .filter(|a| a.contains('.'))
                    .unwrap_or_else(|| row.event.clone()),
                actor: row.actor.clone().unwrap_or_else(|| "system".to_owned()),
                target: target.or_else(|| row.resource.clone()),
                created_at: super::accounts::format_datetime(row.created_at),
                success: row.success,
            }
        })
        .collect())
}

/// The per-minute statistics of the last 24 hours, oldest first.
///
/// # Errors
/// Database failures only.
pub async fn last_day(core: &Core) -> DomainResult<Vec<StatsPoint>> {
    Ok(core.store.stats_since(now_unix() - 86_400).await?)
}

/// Samples this node's statistics every `stats_interval` (one row per node and minute).
pub async fn stats_loop(core: Core, shutdown: CancellationToken) {
    let stats = core.relay.stats();
    let moved = || stats.bytes_in.load(Ordering::Relaxed) + stats.bytes_out.load(Ordering::Relaxed);
    let mut last = moved();
    let interval = core.config.stats_interval.max(Duration::from_millis(50));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let now_bytes = moved();
        let delta = i64::try_from(now_bytes.saturating_sub(last)).unwrap_or(i64::MAX);
        let now = now_unix();
        let minute = now - now.rem_euclid(60);
        match core
            .store
            .record_stats(core.relay.node(), minute, delta, now - STATS_KEEP_SECS)
            .await
        {
            Ok(()) => last = now_bytes,
            Err(err) => tracing::warn!(error = %err, "cannot record the dashboard statistics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        cell(&mut out, "plain");
        assert_eq!(out, "plain");
        let mut out = String::new();
        cell(&mut out, "a,\"b\"\nc");
        assert_eq!(out, "\"a,\"\"b\"\"\nc\"");
        let mut out = String::new();
        cell(&mut out, "=HYPERLINK(\"x\")");
        assert_eq!(out, "\"'=HYPERLINK(\"\"x\"\")\"");
    }

    #[test]
    fn filters_are_checked() {
        let pairs = |list: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                list.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(audit_filter(pairs(&[("from", "10"), ("to", "5")])).is_err());
        assert!(audit_filter(pairs(&[("success", "maybe")])).is_err());
        assert!(audit_filter(pairs(&[("from", "yesterday")])).is_err());
        let filter = audit_filter(pairs(&[("success", "1"), ("event", "admin_action")])).unwrap();
        assert_eq!(
            (filter.success, filter.event.as_deref()),
            (Some(true), Some("admin_action"))
        );
    }
}
