//! Heartbeat ingest with group commit: handlers hand validated heartbeats to one writer task,
//! which stores whatever has queued up in a single transaction and then answers every handler.
//! A heartbeat is acknowledged only after its transaction commits (a crash loses nothing that
//! was answered 200), yet the cost per heartbeat is a fraction of a commit.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::events::{EventBus, HubEvent};
use crate::store::{HeartbeatRecord, Store, StoreError};

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
