//! `GET /api/v1/me/events` (SPEC J.4): the user's live events as server-sent events, and
//! `GET /api/v1/me/servers/{id}/metrics` (J.5): the host-metrics history of one server.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use phlix_proto::ErrorBody;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

use crate::auth::now_unix;
use crate::domain::{servers, shares};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{CurrentUser, Json, Path, Ready};

/// Interval of the `: keep-alive` comment (shorter when the idle timeout is short).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Most points `…/metrics` returns.
pub const METRICS_LIMIT: i64 = 1440;

/// `GET /api/v1/me/events` → `text/event-stream`. The stream ends when the access token
/// expires (the browser's `EventSource` reconnects with its renewed cookie) and when the hub
/// shuts down.
#[utoipa::path(
    get,
    path = "/api/v1/me/events",
    tag = "events",
    summary = "The caller's live events (SPEC J.4) as server-sent events",
    description = "Events about the caller's servers (and servers shared with the caller): \
        `server.online`, `server.offline`, `server.heartbeat`, `relay.opened`, `relay.closed`, \
        `server.claimed`, `share.*`, `invite.*`; each `data` is one JSON object. A \
        `: keep-alive` comment comes at least every 15 s. The stream ends when the access token \
        expires and when the hub shuts down.",
    responses(
        (status = 200, description = "An endless `text/event-stream`",
            content_type = "text/event-stream", body = String,
            headers(("Cache-Control" = String, description = "`no-cache`"))),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn stream(Ready(core): Ready, current: CurrentUser) -> Response {
    let user_id = current.user.id;
    let is_admin = current.user.is_admin;
    let lifetime = u64::try_from(current.claims.exp - now_unix()).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(lifetime);
    let shutdown = core.relay.shutdown().clone();
    let rx = core.events.subscribe();
    // Servers shared with the user: their state events reach this stream too (SPEC M.1).
    let shared = shares::servers_shared_with(&core, &user_id)
        .await
        .unwrap_or_default();
    tracing::debug!(%user_id, "event stream opened");
    let stream_core = core.clone();
    let events = futures_util::stream::unfold((rx, shared), move |(mut rx, mut shared)| {
        let user_id = user_id.clone();
        let shutdown = shutdown.clone();
        let core = stream_core.clone();
        async move {
            loop {
                let received = tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep_until(deadline) => return None,
                    received = rx.recv() => received,
                };
                match received {
                    Ok(event)
                        if event.is_for(&user_id)
                            || (event.admins && is_admin)
                            || (event.is_server_state() && shared.contains(&event.server_id)) =>
                    {
                        if event.is_sharing() {
                            // A share came or went: the set of shared servers changed.
                            if let Ok(now) = shares::servers_shared_with(&core, &user_id).await {
                                shared = now;
                            }
                        }
                        let sse = Event::default().event(event.kind.name()).data(&event.data);
                        return Some((Ok::<_, Infallible>(sse), (rx, shared)));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "event stream lagged; events skipped");
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    // A comment at least three times per idle timeout keeps a quiet stream from being cut.
    let keep_alive = KEEP_ALIVE.min(core.config.connections.idle / 3);
    sse_response(events, keep_alive)
}

/// An SSE answer with keep-alive comments and the headers that stop caches and proxies from
/// buffering it.
pub(super) fn sse_response(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies such as nginx must not buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Query of `…/metrics`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// Unix seconds; default: the last 24 hours.
    pub since: Option<i64>,
}

/// The host-metrics history of a server.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsHistory {
    /// Oldest first, at most 1440.
    pub points: Vec<MetricsPoint>,
    #[serde(rename = "serverId")]
    pub server_id: String,
    /// Unix seconds: the start of the history.
    pub since: i64,
}

/// One heartbeat of the history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsPoint {
    pub active_sessions: i64,
    pub active_transcodes: i64,
    /// The heartbeat's host metrics (SPEC J.5), when it carried any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub host_metrics: Option<Value>,
    /// Unix seconds.
    pub received_at: i64,
}

/// `GET /api/v1/me/servers/{id}/metrics?since=<unix>` → `{"serverId","since","points":[{
/// "receivedAt", "activeSessions", "hostMetrics"?}]}`, oldest first, at most
/// [`METRICS_LIMIT`] points.
#[utoipa::path(
    get,
    path = "/api/v1/me/servers/{id}/metrics",
    tag = "events",
    summary = "The host-metrics history of a server (SPEC J.5)",
    params(("id" = String, Path, description = "Server id"), MetricsQuery),
    responses(
        (status = 200, description = "The history", body = MetricsHistory),
        (status = 400, description = "`invalid_query`: `since` is not an integer", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`server.not_owned`", body = ErrorBody),
        (status = 404, description = "`server.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn metrics(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
    query: Result<axum::extract::Query<MetricsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<MetricsHistory>> {
    let query = query.map_err(|rejection| ApiError::Invalid {
        status: axum::http::StatusCode::BAD_REQUEST,
        code: "invalid_query",
        message: format!(
            "since must be a unix time in seconds ({})",
            rejection.body_text()
        ),
    })?;
    let since = query.since.unwrap_or_else(|| now_unix() - 86_400);
    let points: Vec<MetricsPoint> =
        servers::heartbeats_since(&core, &user.user.id, &server_id, since, METRICS_LIMIT)
            .await?
            .into_iter()
            .map(|row| MetricsPoint {
                active_sessions: row.active_sessions,
                active_transcodes: row.active_transcodes,
                host_metrics: row
                    .host_metrics_json
                    .and_then(|m| serde_json::from_str::<Value>(&m).ok()),
                received_at: row.received_at,
            })
            .collect();
    Ok(Json(MetricsHistory {
        points,
        server_id,
        since,
    }))
}
