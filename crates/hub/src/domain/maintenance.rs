//! Maintenance mode (SPEC Q.4, setting `hub.maintenance_mode`): whether the hub's user API is
//! paused. The flag is read on every API request, so it is cached: [`is_on`] reads the setting
//! at most once per [`REFRESH`] (one request refreshes while the others use the cached value),
//! and a change through [`super::settings::update`] sets it on this node at once; other nodes
//! follow within [`REFRESH`].

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Core;
use super::settings::{self, MAINTENANCE_MODE};

/// How old the cached flag may be.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The cached flag of one node.
#[derive(Debug, Default)]
pub struct Maintenance {
    on: AtomicBool,
    checked_at: Mutex<Option<Instant>>, // when the setting was last read; `None` = never
    refreshing: tokio::sync::Mutex<()>, // held by the one request that reads the setting
}

impl Maintenance {
    /// Sets the flag (this node, at once) and restarts the refresh period.
    pub fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
        *self
            .checked_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// The cached value, without reading the setting.
    #[must_use]
    pub fn cached(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    fn stale(&self) -> bool {
        self.checked_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= REFRESH)
    }
}

/// Whether maintenance mode is on (at most [`REFRESH`] old). When the database cannot be read
/// the last known value stands.
pub async fn is_on(core: &Core) -> bool {
    let cache = &core.maintenance;
    if !cache.stale() {
        return cache.cached();
    }
    // Someone else is reading it: their answer is at most a moment away; use the cached one.
    let Ok(_guard) = cache.refreshing.try_lock() else {
        return cache.cached();
    };
    if !cache.stale() {
        return cache.cached();
    }
    match settings::flag(core, MAINTENANCE_MODE).await {
        Ok(on) => {
            if on != cache.cached() {
                tracing::info!(on, "maintenance mode changed");
            }
            cache.set(on);
            on
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the maintenance setting; keeping the last value");
            cache.cached()
        }
    }
}
