//! Durable fixed-window failure counters (`login_rate_limit`): they survive restarts and are
//! shared by every hub node on one database.

use super::{Store, StoreResult, dispatch};

impl Store {
    /// Seconds until `key` may try again, when it has used up `max_attempts` in its window.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn rate_limit_retry_after(
        &self,
        key: &str,
        max_attempts: i64,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let row: Option<(i64, i64)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT attempts, reset_at FROM login_rate_limit WHERE rate_key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        });
        Ok(match row {
            Some((attempts, reset_at)) if attempts >= max_attempts && reset_at > now => {
                Some(reset_at - now)
            }
            _ => None,
        })
    }

    /// Counts one failure for `key` and returns the failures in its window now; a window that
    /// has ended starts over at 1.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn record_rate_limit_failure(
        &self,
        key: &str,
        window_secs: i64,
        now: i64,
    ) -> StoreResult<i64> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar(
                "INSERT INTO login_rate_limit (rate_key, attempts, reset_at, created_at) VALUES ($1, 1, $2, $3) \
                 ON CONFLICT (rate_key) DO UPDATE SET \
                   attempts = CASE WHEN login_rate_limit.reset_at <= $3 THEN 1 ELSE login_rate_limit.attempts + 1 END, \
                   reset_at = CASE WHEN login_rate_limit.reset_at <= $3 THEN $2 ELSE login_rate_limit.reset_at END \
                 RETURNING attempts",
            )
            .bind(key)
            .bind(now + window_secs)
            .bind(now)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Forgets the failures of `key` (a successful sign-in, an admin's unlock).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn clear_rate_limit(&self, key: &str) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query("DELETE FROM login_rate_limit WHERE rate_key = $1")
                    .bind(key)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    > 0,
            )
        })
    }

    /// Deletes counters whose window has ended.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn prune_rate_limits(&self, now: i64) -> StoreResult<u64> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query("DELETE FROM login_rate_limit WHERE reset_at <= $1")
                    .bind(now)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            )
        })
    }
}
