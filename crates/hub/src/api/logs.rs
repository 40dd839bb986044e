//! The hub's own recent log records (SPEC Q.4), for administrators:
//! `GET /api/v1/me/logs?level=&target=&limit=` (alias `/api/v1/admin/logs`) and the live tail
//! `GET /api/v1/me/logs/tail?level=&target=` (alias `/api/v1/admin/logs/tail`). Both read the
//! in-memory ring of `crate::telemetry`, which never holds secrets.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use axum::response::sse::Event;
use phlix_proto::ErrorBody;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use crate::auth::now_unix;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AdminUser, Json, QueryPairs, Ready};
use crate::telemetry::{LogFilter, LogRecord, RING_CAPACITY, Severity, log_ring};

/// Records `GET …/logs` returns without `limit`.
pub const DEFAULT_LIMIT: usize = 200;

/// Body of `GET …/logs`: the newest records that pass the filters, oldest first (newest
/// last, like a log file).
#[derive(Debug, Serialize, ToSchema)]
pub struct LogsBody {
    pub logs: Vec<LogRecord>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_query",
        message: message.into(),
    }
}

/// The filter of `level` (minimum level; default: every level) and `target` (prefix).
///
/// # Errors
/// 400 `invalid_query` for an unknown level.
pub fn filter_of(query: &QueryPairs) -> ApiResult<LogFilter> {
    let level = match query.get("level").filter(|l| !l.is_empty()) {
        None => Severity::Trace,
        Some(text) => Severity::parse(text)
            .ok_or_else(|| invalid("level must be one of error, warn, info, debug, trace"))?,
    };
    let target = query
        .get("target")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Ok(LogFilter { level, target })
}

/// `limit`: 1 and more, above [`RING_CAPACITY`] clamped to it; default [`DEFAULT_LIMIT`].
///
/// # Errors
/// 400 `invalid_query` when it is not a whole number of at least 1.
pub fn limit_of(query: &QueryPairs) -> ApiResult<usize> {
    let Some(text) = query.get("limit") else {
        return Ok(DEFAULT_LIMIT);
    };
    let limit: i64 = text
        .trim()
        .parse()
        .map_err(|_| invalid("limit must be a whole number from 1 to 5000"))?;
    if limit < 1 {
        return Err(invalid("limit must be a whole number from 1 to 5000"));
    }
    Ok(usize::try_from(limit).map_or(RING_CAPACITY, |l| l.min(RING_CAPACITY)))
}

/// `GET /api/v1/me/logs` → `{"logs":[{"ts","level","target","message","fields"}]}`.
#[utoipa::path(
    get,
    path = "/api/v1/me/logs",
    tag = "logs",
    summary = "The hub's recent log records (SPEC Q.4)",
    description = "From the in-memory ring of the last 5000 records of this node, secrets \
        redacted. Also served as `GET /api/v1/admin/logs`.",
    params(
        ("level" = Option<String>, Query, description = "Minimum level: `error`, `warn`, \
            `info`, `debug` or `trace` (default: every level)"),
        ("target" = Option<String>, Query, description = "Prefix of the record's target"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "Newest records kept, \
            default 200, above 5000 clamped")
    ),
    responses(
        (status = 200, description = "Oldest first", body = LogsBody),
        (status = 400, description = "`invalid_query`: unknown level, or `limit` not a whole \
            number of at least 1", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn list(_admin: AdminUser, query: QueryPairs) -> ApiResult<Json<LogsBody>> {
    let filter = filter_of(&query)?;
    let limit = limit_of(&query)?;
    Ok(Json(LogsBody {
        logs: log_ring()
            .recent(&filter, limit)
            .iter()
            .map(|record| LogRecord::clone(record))
            .collect(),
    }))
}

/// `GET /api/v1/me/logs/tail` → `text/event-stream`: each new record that passes the filters
/// as an event `log` whose data is the record's JSON. The stream ends when the access token
/// expires (the logs page reconnects with its renewed cookie) and when the hub shuts down; a
/// tail that falls more than a thousand records behind skips the missed ones.
#[utoipa::path(
    get,
    path = "/api/v1/me/logs/tail",
    tag = "logs",
    summary = "Follow the hub's log records live, as server-sent events",
    description = "Each new record that passes the filters is an event `log` whose data is the \
        record's JSON. The stream ends when the access token expires and when the hub shuts \
        down. Also served as `GET /api/v1/admin/logs/tail`.",
    params(
        ("level" = Option<String>, Query, description = "Minimum level"),
        ("target" = Option<String>, Query, description = "Prefix of the record's target")
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream`",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_query`: unknown level", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn tail(Ready(core): Ready, admin: AdminUser, query: QueryPairs) -> ApiResult<Response> {
    let filter = filter_of(&query)?;
    let lifetime = u64::try_from(admin.0.claims.exp - now_unix()).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(lifetime);
    let shutdown = core.relay.shutdown().clone();
    let rx = log_ring().subscribe();
    let records = futures_util::stream::unfold(rx, move |mut rx| {
        let shutdown = shutdown.clone();
        let filter = filter.clone();
        async move {
            loop {
                let received = tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep_until(deadline) => return None,
                    received = rx.recv() => received,
                };
                match received {
                    Ok(record) if filter.matches(&record) => {
                        let event = Event::default().event("log").data(record.to_json());
                        return Some((Ok::<_, Infallible>(event), rx));
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    let keep_alive = super::events::KEEP_ALIVE.min(core.config.connections.idle / 3);
    Ok(super::events::sse_response(records, keep_alive))
}
