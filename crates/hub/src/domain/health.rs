//! Readiness (SPEC 0): start-up steps, ready, degraded; and `GET /health`.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Where the hub is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    /// Start-up step in progress: `load-config`, `open-store`, `run-migrations`, `load-keys`,
    /// `bind-listeners`, `ready`.
    Starting(&'static str),
    Ready,
    /// Started, but a subsystem fails; each issue is one sentence.
    Degraded(Vec<String>),
    /// The node is leaving (SIGTERM in a cluster): a load balancer should send nothing new.
    Draining,
}

/// A handle on the hub's health, shared by start-up, the probe task and `/health`.
#[derive(Debug, Clone)]
pub struct Health(watch::Sender<HealthState>);

impl Default for Health {
    fn default() -> Self {
        Self(watch::Sender::new(HealthState::Starting("load-config")))
    }
}

impl Health {
    /// Sets the current state.
    pub fn set(&self, state: HealthState) {
        self.0.send_replace(state);
    }

    /// The current state.
    #[must_use]
    pub fn get(&self) -> HealthState {
        self.0.borrow().clone()
    }

    /// The start-up step, or `ready` once started.
    #[must_use]
    pub fn step(&self) -> &'static str {
        match *self.0.borrow() {
            HealthState::Starting(step) => step,
            _ => "ready",
        }
    }
}

/// Probes the database every `interval` and flips between ready and degraded.
pub async fn probe_loop(
    store: Store,
    health: Health,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let timeout = interval.clamp(Duration::from_millis(500), Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let result = tokio::time::timeout(timeout, store.ping()).await;
        let issue = match result {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(format!("database unreachable: {err}")),
            Err(_) => Some(format!(
                "database did not answer within {} ms",
                timeout.as_millis()
            )),
        };
        let was = health.get();
        if was == HealthState::Draining {
            return;
        }
        match issue {
            Some(issue) => {
                if was == HealthState::Ready {
                    tracing::error!(%issue, "hub degraded");
                }
                health.set(HealthState::Degraded(vec![issue]));
            }
            None if was != HealthState::Ready => {
                tracing::info!("database reachable again; hub ready");
                health.set(HealthState::Ready);
            }
            None => {}
        }
    }
}
