//! Heartbeat ingest with group commit: handlers hand validated heartbeats to one writer task,
//! which stores whatever has queued up in a single transaction and then answers every handler.
//! A heartbeat is acknowledged only after its transaction commits (a crash loses nothing that
//! was answered 200), yet the cost per heartbeat is a fraction of a commit.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::domain::events::{EventBus, HubEvent};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{DomainError, DomainResult};
use crate::store::{HeartbeatRecord, LibraryRow, Store, StoreError};

/// Most heartbeats stored in one transaction.
pub const MAX_BATCH: usize = 512;

/// What happened to one submitted heartbeat.
#[derive(Debug, Clone)]
pub enum HeartbeatAck {
    Stored,
    /// The server row does not exist (deleted since its token was issued).
    UnknownServer,
    Failed(Arc<StoreError>),
}

type Job = (HeartbeatRecord, oneshot::Sender<HeartbeatAck>);

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub struct HeartbeatSink {
    jobs: mpsc::Sender<Job>,
}

impl HeartbeatSink {
    /// Starts the writer task; it stops when `shutdown` is cancelled and the queue is drained.
    #[must_use]
    pub fn spawn(
        store: Store,
        events: EventBus,
        shutdown: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (jobs, rx) = mpsc::channel(MAX_BATCH * 8);
        tracker.spawn(writer(store, events, rx, shutdown));
        Self { jobs }
    }

    /// Queues a heartbeat and waits until it is committed (or failed).
    pub async fn submit(&self, record: HeartbeatRecord) -> HeartbeatAck {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send((record, tx)).await.is_err() {
            return HeartbeatAck::Failed(Arc::new(StoreError::Unavailable(
                sqlx::Error::PoolClosed,
            )));
        }
        rx.await.unwrap_or_else(|_| {
            HeartbeatAck::Failed(Arc::new(StoreError::Unavailable(sqlx::Error::PoolClosed)))
        })
    }
}

async fn writer(
    store: Store,
    events: EventBus,
    mut rx: mpsc::Receiver<Job>,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            job = rx.recv() => job,
            () = shutdown.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else { return };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let records: Vec<HeartbeatRecord> =
            batch.iter().map(|(record, _)| record.clone()).collect();
        match store.write_heartbeats(&records).await {
            Ok(outcomes) => {
                for ((record, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let Some(outcome) = outcome else {
                        let _ = reply.send(HeartbeatAck::UnknownServer);
                        continue;
                    };
                    let _ = reply.send(HeartbeatAck::Stored);
                    publish(&events, &record, &outcome.owner_id, outcome.came_online);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, batch = batch.len(), "heartbeat batch failed");
                let err = Arc::new(err);
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(HeartbeatAck::Failed(err.clone()));
                }
            }
        }
    }
}

/// The live events of one committed heartbeat.
fn publish(events: &EventBus, record: &HeartbeatRecord, owner_id: &str, came_online: bool) {
    if came_online {
        events.publish(HubEvent::status(
            owner_id,
            &record.server_id,
            true,
            Some(record.received_at),
        ));
    }
    events.publish(HubEvent::heartbeat(
        owner_id,
        &record.server_id,
        record.received_at,
        &record.version,
        record.active_sessions,
        record.libraries.as_ref().map(Vec::len),
        record.host_metrics_json.as_deref(),
    ));
}

/// Largest number of libraries one heartbeat may list.
pub const MAX_LIBRARIES: usize = 2000;

fn bad(message: impl Into<String>) -> DomainError {
    DomainError::BadRequest(message.into())
}

fn int_field(body: &Map<String, Value>, name: &str) -> DomainResult<i64> {
    match body.get(name) {
        None | Some(Value::Null) => Err(bad(format!("HeartbeatDto \"{name}\" is required."))),
        Some(value) => value.as_i64().filter(|v| *v >= 0).ok_or_else(|| {
            bad(format!(
                "HeartbeatDto \"{name}\" must be a non-negative integer."
            ))
        }),
    }
}

fn string_field<'a>(body: &'a Map<String, Value>, name: &str, max: usize) -> DomainResult<&'a str> {
    let value = body.get(name).and_then(Value::as_str).ok_or_else(|| {
        bad(format!(
            "HeartbeatDto \"{name}\" is required and must be a string."
        ))
    })?;
    if value.is_empty() || value.len() > max {
        return Err(bad(format!(
            "HeartbeatDto \"{name}\" must be 1 to {max} bytes."
        )));
    }
    Ok(value)
}

/// Strict validation of a heartbeat body (SPEC D, J.5) into a record.
pub fn validate_heartbeat(
    server_id: &str,
    body: &Value,
    now: i64,
) -> DomainResult<HeartbeatRecord> {
    let body = body
        .as_object()
        .ok_or_else(|| bad("HeartbeatDto body must be a JSON object."))?;
    let body_server = string_field(body, "serverId", 64)?;
    if body_server != server_id {
        return Err(bad(
            "HeartbeatDto \"serverId\" does not match the server in the path.",
        ));
    }
    let version = string_field(body, "version", 32)?;
    let sent_at = int_field(body, "timestamp")?;
    let uptime_seconds = int_field(body, "uptimeSeconds")?;
    let active_sessions = int_field(body, "activeSessions")?;
    let active_transcodes = int_field(body, "activeTranscodes")?;
    let hostname_candidates_json = match body.get("hostnameCandidates") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let list = items
                .iter()
                .map(|v| v.as_str().filter(|s| s.len() <= 512).map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .filter(|l| l.len() <= 32)
                .ok_or_else(|| bad("HeartbeatDto \"hostnameCandidates\" must be at most 32 strings of at most 512 bytes."))?;
            Some(serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()))
        }
        Some(_) => {
            return Err(bad(
                "HeartbeatDto \"hostnameCandidates\" must be a list of strings.",
            ));
        }
    };
    let libraries = match body.get("libraries") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            if items.len() > MAX_LIBRARIES {
                return Err(bad(format!(
                    "HeartbeatDto \"libraries\" may list at most {MAX_LIBRARIES} libraries."
                )));
            }
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let entry = item
                    .as_object()
                    .ok_or_else(|| bad(format!("libraries[{i}] must be an object.")))?;
                let field = |name: &str| {
                    entry
                        .get(name)
                        .and_then(Value::as_str)
                        .filter(|v| !v.trim().is_empty() && v.len() <= 255)
                        .map(str::to_owned)
                        .ok_or_else(|| bad(format!("libraries[{i}].{name} must be a non-empty string of at most 255 bytes.")))
                };
                list.push(LibraryRow {
                    library_id: field("library_id")?,
                    library_name: field("library_name")?,
                });
            }
            Some(list)
        }
        Some(_) => return Err(bad("HeartbeatDto \"libraries\" must be a list.")),
    };
    let host_metrics_json = match body.get("hostMetrics") {
        None | Some(Value::Null) => None,
        Some(Value::Object(metrics)) => Some(validate_host_metrics(metrics)?),
        Some(_) => return Err(bad("HeartbeatDto \"hostMetrics\" must be an object.")),
    };
    Ok(HeartbeatRecord {
        server_id: server_id.to_owned(),
        version: version.to_owned(),
        sent_at,
        uptime_seconds,
        active_sessions,
        active_transcodes,
        hostname_candidates_json,
        host_metrics_json,
        libraries,
        received_at: now,
    })
}

/// Keeps the known `hostMetrics` keys (SPEC J.5), checks their types, drops unknown keys.
fn validate_host_metrics(metrics: &Map<String, Value>) -> DomainResult<String> {
    const FLOATS: [&str; 2] = ["cpuPercent", "load1"];
    const INTS: [&str; 6] = [
        "memUsedBytes",
        "memTotalBytes",
        "diskUsedBytes",
        "diskTotalBytes",
        "netRxBytes",
        "netTxBytes",
    ];
    let mut kept = Map::new();
    for key in FLOATS {
        if let Some(value) = metrics.get(key) {
            let number = value
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(format!("hostMetrics.{key} must be a non-negative number.")))?;
            kept.insert(key.to_owned(), json!(number));
        }
    }
    for key in INTS {
        if let Some(value) = metrics.get(key) {
            let number = value
                .as_u64()
                .ok_or_else(|| bad(format!("hostMetrics.{key} must be a non-negative integer.")))?;
            kept.insert(key.to_owned(), json!(number));
        }
    }
    Ok(Value::Object(kept).to_string())
}

/// A server's heartbeat (SPEC D): rate-limited per server (30 / 60 s), validated, and
/// acknowledged only once committed.
pub async fn accept(core: &super::Core, server_id: &str, body: &Bytes) -> DomainResult<()> {
    let now = crate::auth::now_unix();
    if let Err(retry_after) = core.limits.heartbeat.check(server_id, now) {
        return Err(DomainError::RateLimited { retry_after });
    }
    let record = validate_heartbeat(server_id, &parse_body(body)?, now)?;
    match core.heartbeats.submit(record).await {
        HeartbeatAck::Stored => Ok(()),
        HeartbeatAck::UnknownServer => Err(DomainError::ServerNotFound),
        HeartbeatAck::Failed(err) => Err(match &*err {
            StoreError::Unavailable(_) => {
                DomainError::Unavailable(StoreError::Unavailable(sqlx::Error::PoolTimedOut))
            }
            _ => DomainError::Internal(anyhow::anyhow!("heartbeat batch failed: {err}")),
        }),
    }
}

/// A JSON body, or the PHP hub's codeless 400 naming the parse error.
pub fn parse_body(bytes: &Bytes) -> DomainResult<Value> {
    serde_json::from_slice(bytes).map_err(|err| bad(format!("Invalid JSON body: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_validated_strictly() {
        let ok = json!({"serverId": "s", "version": "1", "timestamp": 1, "uptimeSeconds": 2,
            "activeSessions": 0, "activeTranscodes": 0, "libraries": [{"library_id": "l", "library_name": "M"}],
            "hostMetrics": {"cpuPercent": 1.5, "memUsedBytes": 10, "extra": "ignored"}});
        let record = validate_heartbeat("s", &ok, 9).unwrap();
        assert_eq!(record.libraries.unwrap().len(), 1);
        assert_eq!(
            record.host_metrics_json.as_deref(),
            Some(r#"{"cpuPercent":1.5,"memUsedBytes":10}"#)
        );
        for (patch, needle) in [
            (json!({"uptimeSeconds": 1.5}), "uptimeSeconds"),
            (json!({"activeSessions": "3"}), "activeSessions"),
            (json!({"timestamp": null}), "timestamp"),
            (json!({"version": ""}), "version"),
            (json!({"serverId": "other"}), "serverId"),
            (
                json!({"libraries": [{"library_id": "", "library_name": "M"}]}),
                "library_id",
            ),
            (json!({"libraries": ["x"]}), "libraries[0]"),
            (json!({"hostnameCandidates": [1]}), "hostnameCandidates"),
            (json!({"hostMetrics": {"cpuPercent": "hot"}}), "cpuPercent"),
        ] {
            let mut body = ok.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            let err = validate_heartbeat("s", &body, 9).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should name {needle}");
        }
    }
}
