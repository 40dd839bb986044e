//! In-memory fixed-window limiter keyed by a string (per node), for the limits that need no
//! durability (heartbeats 30/60 s, and later the relay profiles of SPEC B.6).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// `max` events per `window_secs` per key.
#[derive(Debug)]
pub struct WindowLimiter {
    max: u32,
    window_secs: i64,
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl WindowLimiter {
    /// A limiter of `max` events per `window_secs`.
    #[must_use]
    pub fn new(max: u32, window_secs: i64) -> Self {
        Self {
            max,
            window_secs,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event for `key`; `Err(retry_after_secs)` when over the limit. A limiter of
    /// `max` 0 admits everything.
    ///
    /// # Errors
    /// The seconds until the key's window ends, when the limit is used up.
    pub fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window_secs {
            *entry = (now, 0);
        }
        if entry.1 >= self.max {
            return Err(u64::try_from(entry.0 + self.window_secs - now)
                .unwrap_or(1)
                .max(1));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Forgets windows that have ended, so the map does not grow with every key ever seen.
    pub fn prune(&self, now: i64) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.retain(|_, (start, _)| now < *start + self.window_secs);
    }
}

#[cfg(test)]
mod tests {
    use super::WindowLimiter;

    #[test]
    fn allows_max_per_window_then_reports_the_wait() {
        let limiter = WindowLimiter::new(3, 60);
        for _ in 0..3 {
            assert_eq!(limiter.check("a", 100), Ok(()));
        }
        assert_eq!(limiter.check("a", 130), Err(30));
        assert_eq!(limiter.check("b", 130), Ok(()), "keys are independent");
        assert_eq!(limiter.check("a", 160), Ok(()), "a new window starts");
        limiter.prune(1000);
        assert!(limiter.windows.lock().unwrap().is_empty());
    }
}
