//! The state every HTTP surface is built with (`with_state`, no globals): the configuration,
//! the health of start-up, and the domain's [`Core`] once start-up has published it.

use std::sync::{Arc, OnceLock};

use super::conn::Connections;
use crate::config::Config;
use crate::domain::Core;
use crate::domain::health::Health;

#[derive(Debug)]
struct Shared {
    config: Config,
    health: Health,
    core: OnceLock<Core>,
    connections: Arc<Connections>,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// State of a hub that is starting: `/health` answers, everything else waits for [`Self::set_ready`].
    #[must_use]
    pub fn new(config: Config, health: Health) -> Self {
        Self(Arc::new(Shared {
            config,
            health,
            core: OnceLock::new(),
            connections: Arc::default(),
        }))
    }

    /// The configuration the hub runs with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Start-up and liveness state for `/health`.
    #[must_use]
    pub fn health(&self) -> &Health {
        &self.0.health
    }

    /// The connection counters of the three listeners.
    #[must_use]
    pub fn connections(&self) -> &Arc<Connections> {
        &self.0.connections
    }

    /// Store and keys, once start-up is done.
    #[must_use]
    pub fn core(&self) -> Option<Core> {
        self.0.core.get().cloned()
    }

    /// The same, borrowed: for layers and extractors that need it only while they run (a clone
    /// of `Core` is some twenty reference counts and two key copies, on every request).
    #[must_use]
    pub fn core_ref(&self) -> Option<&Core> {
        self.0.core.get()
    }

    /// Publishes the ready core. Called once; later calls are ignored.
    pub fn set_ready(&self, core: Core) {
        let _ = self.0.core.set(core);
    }
}
