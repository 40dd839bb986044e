//! Relay bandwidth, quotas and throttles (SPEC B.5): what a user has used this month, the
//! limits an admin sets, and the throttle new client mounts get.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::{Core, DomainError, DomainResult};
use crate::auth::now_unix;
use crate::store::period_start;

/// A user's relay usage this month, its limits (0 = unlimited) and its throttle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BandwidthDoc {
    pub user_id: String,
    pub period_start: String,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub quota_bytes_in: i64,
    pub quota_bytes_out: i64,
    pub max_concurrent_streams: i64,
    pub throttle_bps: i64,
    pub active_streams: u64,
}

/// The usage of `user_id`: what is stored plus what this node has counted and not flushed yet.
pub async fn usage(core: &Core, user_id: &str) -> DomainResult<BandwidthDoc> {
    let period = period_start(now_unix());
    let stored = core.store.bandwidth(user_id, &period).await?;
    let meter = core.relay.meter(user_id);
    let unflushed = |n: &AtomicU64| i64::try_from(n.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
    Ok(BandwidthDoc {
        user_id: user_id.to_owned(),
        period_start: period,
        bytes_in: stored.bytes_in.saturating_add(unflushed(&meter.bytes_in)),
        bytes_out: stored.bytes_out.saturating_add(unflushed(&meter.bytes_out)),
        quota_bytes_in: stored.quota_bytes_in,
        quota_bytes_out: stored.quota_bytes_out,
        max_concurrent_streams: stored.max_concurrent_streams,
        throttle_bps: core.store.throttle_bps(user_id).await?,
        active_streams: meter.streams.load(Ordering::Relaxed),
    })
}

/// 404 `user.not_found` unless `user_id` exists.
async fn existing_user(core: &Core, user_id: &str) -> DomainResult<()> {
    core.store
        .user_by_id(user_id)
        .await?
        .map(|_| ())
        .ok_or(DomainError::NotFound("user.not_found"))
}

/// The usage of another user, as an admin sees it.
pub async fn usage_of(core: &Core, user_id: &str) -> DomainResult<BandwidthDoc> {
    existing_user(core, user_id).await?;
    usage(core, user_id).await
}

/// A change of a user's monthly limits; `None` keeps a value, 0 means unlimited.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuotaChange {
    pub quota_bytes_in: Option<i64>,
    pub quota_bytes_out: Option<i64>,
    pub max_concurrent_streams: Option<i64>,
}

fn non_negative(value: Option<i64>, key: &str) -> DomainResult<()> {
    match value {
        Some(v) if v < 0 => Err(DomainError::Unprocessable {
            code: "invalid_request",
            message: format!("{key} must be a non-negative integer (0 = unlimited)"),
        }),
        _ => Ok(()),
    }
}

/// An admin sets `user_id`'s limits for the current month (carried over to the next ones).
pub async fn set_quota(
    core: &Core,
    admin_id: &str,
    user_id: &str,
    change: QuotaChange,
) -> DomainResult<BandwidthDoc> {
    existing_user(core, user_id).await?;
    non_negative(change.quota_bytes_in, "quota_bytes_in")?;
    non_negative(change.quota_bytes_out, "quota_bytes_out")?;
    non_negative(change.max_concurrent_streams, "max_concurrent_streams")?;
    if change.quota_bytes_in.is_none()
        && change.quota_bytes_out.is_none()
        && change.max_concurrent_streams.is_none()
    {
        return Err(DomainError::invalid(
            "invalid_request",
            "give at least one of quota_bytes_in, quota_bytes_out, max_concurrent_streams",
        ));
    }
    let now = now_unix();
    core.store
        .set_relay_quota(
            user_id,
            &period_start(now),
            change.quota_bytes_in,
            change.quota_bytes_out,
            change.max_concurrent_streams,
            now,
        )
        .await?;
    core.access.forget_usage(user_id);
    tracing::info!(target: "audit", event = "relay.quota.set", admin = %admin_id, %user_id, "audit");
    usage(core, user_id).await
}

/// An admin sets `user_id`'s throttle in bytes per second (0 = unlimited); it applies to new
/// client mounts.
pub async fn set_throttle(
    core: &Core,
    admin_id: &str,
    user_id: &str,
    bps: i64,
) -> DomainResult<BandwidthDoc> {
    existing_user(core, user_id).await?;
    non_negative(Some(bps), "throttle_bps")?;
    core.store
        .set_throttle_bps(user_id, bps, now_unix())
        .await?;
    tracing::info!(target: "audit", event = "relay.throttle.set", admin = %admin_id, %user_id, bps, "audit");
    usage(core, user_id).await
}

/// The throttle new client mounts of `user_id` get, in bytes per second (0 = unlimited).
pub async fn throttle_of(core: &Core, user_id: &str) -> DomainResult<i64> {
    Ok(core.store.throttle_bps(user_id).await?)
}
