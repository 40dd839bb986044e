//! Per-user relay usage, quotas (`relay_user_quotas`, one row per user and calendar month) and
//! throttles (`relay_user_settings`), SPEC B.5. Quota limits carry over from the previous
//! month's row when a new month starts.

use super::{Store, StoreResult, dispatch};

/// A user's bandwidth for one month.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Bandwidth {
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// 0 = unlimited.
    pub quota_bytes_in: i64,
    /// 0 = unlimited.
    pub quota_bytes_out: i64,
    /// 0 = unlimited.
    pub max_concurrent_streams: i64,
}

/// Default throttle of a user without a `relay_user_settings` row: 3 Mbit/s.
pub const DEFAULT_THROTTLE_BPS: i64 = 3_000_000;

/// `YYYY-MM-01` of the UTC month containing `unix`.
#[must_use]
pub fn period_start(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format!("{:04}-{:02}-01", t.year(), u8::from(t.month())))
        .unwrap_or_else(|_| "1970-01-01".into())
}

impl Store {
    /// Adds usage to the user's row of `period` (creating it with the carried-over limits).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn add_relay_usage(
        &self,
        user_id: &str,
        period: &str,
        bytes_in: i64,
        bytes_out: i64,
        now: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO relay_user_quotas (user_id, period_start, bytes_in, bytes_out, quota_bytes_in, quota_bytes_out, \
                 max_concurrent_streams, updated_at) VALUES ($1, $2, $3, $4, \
                 COALESCE((SELECT quota_bytes_in FROM relay_user_quotas WHERE user_id = $1 AND period_start < $2 ORDER BY period_start DESC LIMIT 1), 0), \
                 COALESCE((SELECT quota_bytes_out FROM relay_user_quotas WHERE user_id = $1 AND period_start < $2 ORDER BY period_start DESC LIMIT 1), 0), \
                 COALESCE((SELECT max_concurrent_streams FROM relay_user_quotas WHERE user_id = $1 AND period_start < $2 ORDER BY period_start DESC LIMIT 1), 0), \
                 $5) ON CONFLICT (user_id, period_start) DO UPDATE SET \
                 bytes_in = relay_user_quotas.bytes_in + excluded.bytes_in, \
                 bytes_out = relay_user_quotas.bytes_out + excluded.bytes_out, updated_at = excluded.updated_at",
            )
            .bind(user_id)
            .bind(period)
            .bind(bytes_in)
            .bind(bytes_out)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Usage and limits of `period` (limits carried over from earlier months when the month has
    /// no row yet).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn bandwidth(&self, user_id: &str, period: &str) -> StoreResult<Bandwidth> {
        let row: Option<Bandwidth> = dispatch!(self, |pool| {
            sqlx::query_as::<_, Bandwidth>(
                "SELECT CASE WHEN period_start = $2 THEN bytes_in ELSE 0 END AS bytes_in, \
                        CASE WHEN period_start = $2 THEN bytes_out ELSE 0 END AS bytes_out, \
                        quota_bytes_in, quota_bytes_out, max_concurrent_streams \
                 FROM relay_user_quotas WHERE user_id = $1 AND period_start <= $2 ORDER BY period_start DESC LIMIT 1",
            )
            .bind(user_id)
            .bind(period)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.unwrap_or(Bandwidth {
            bytes_in: 0,
            bytes_out: 0,
            quota_bytes_in: 0,
            quota_bytes_out: 0,
            max_concurrent_streams: 0,
        }))
    }

    /// Sets the limits of the user's row of `period` (fields left `None` keep their value).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn set_relay_quota(
        &self,
        user_id: &str,
        period: &str,
        quota_in: Option<i64>,
        quota_out: Option<i64>,
        max_streams: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        self.add_relay_usage(user_id, period, 0, 0, now).await?;
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE relay_user_quotas SET quota_bytes_in = COALESCE($3, quota_bytes_in), \
                 quota_bytes_out = COALESCE($4, quota_bytes_out), max_concurrent_streams = COALESCE($5, max_concurrent_streams), \
                 updated_at = $6 WHERE user_id = $1 AND period_start = $2",
            )
            .bind(user_id)
            .bind(period)
            .bind(quota_in)
            .bind(quota_out)
            .bind(max_streams)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The user's throttle in bit/s (0 = unlimited).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn throttle_bps(&self, user_id: &str) -> StoreResult<i64> {
        let value: Option<i64> = dispatch!(self, |pool| {
            sqlx::query_scalar("SELECT throttle_bps FROM relay_user_settings WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(value.unwrap_or(DEFAULT_THROTTLE_BPS))
    }

    /// Sets the user's throttle in bit/s (0 = unlimited).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn set_throttle_bps(&self, user_id: &str, bps: i64, now: i64) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO relay_user_settings (user_id, throttle_bps, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET throttle_bps = excluded.throttle_bps, updated_at = excluded.updated_at",
            )
            .bind(user_id)
            .bind(bps)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::period_start;

    #[test]
    fn periods_are_calendar_months_in_utc() {
        assert_eq!(period_start(0), "1970-01-01");
        assert_eq!(period_start(1_795_419_089), "2026-11-01");
        assert_eq!(period_start(1_798_761_599), "2026-12-01");
        assert_eq!(period_start(1_798_761_600), "2027-01-01");
    }
}
