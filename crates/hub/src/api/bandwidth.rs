//! Relay bandwidth, quotas and throttles over HTTP (SPEC B.5): `GET /api/v1/me/bandwidth` and
//! the admin routes under `/api/v1/admin/users/{id}/`.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::auth::now_unix;
use crate::domain::{Core, DomainError};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AdminUser, CurrentUser, Json, Path, Ready};
use crate::store::period_start;

/// A user's relay usage this month, its limits (0 = unlimited) and its throttle.
#[derive(Debug, Serialize)]
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

async fn document(core: &Core, user_id: &str) -> ApiResult<BandwidthDoc> {
    let period = period_start(now_unix());
    let stored = core.store.bandwidth(user_id, &period).await?;
    let meter = core.relay.meter(user_id);
    let unflushed = |n: &std::sync::atomic::AtomicU64| {
        i64::try_from(n.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    };
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

/// `GET /api/v1/me/bandwidth`.
pub async fn mine(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<BandwidthDoc>> {
    Ok(Json(document(&core, &user.user.id).await?))
}

async fn existing_user(core: &Core, user_id: &str) -> ApiResult<()> {
    core.store
        .user_by_id(user_id)
        .await?
        .map(|_| ())
        .ok_or(ApiError::not_found("user.not_found"))
}

/// `GET /api/v1/admin/users/{id}/bandwidth`.
pub async fn of_user(
    Ready(core): Ready,
    _: AdminUser,
    Path(user_id): Path<String>,
) -> ApiResult<Json<BandwidthDoc>> {
    existing_user(&core, &user_id).await?;
    Ok(Json(document(&core, &user_id).await?))
}

fn non_negative(body: &Value, key: &str) -> ApiResult<Option<i64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            value
                .as_i64()
                .filter(|v| *v >= 0)
                .map(Some)
                .ok_or_else(|| ApiError::Invalid {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "invalid_request",
                    message: format!("{key} must be a non-negative integer (0 = unlimited)"),
                })
        }
    }
}

/// `PUT /api/v1/admin/users/{id}/quota` `{quota_bytes_in?, quota_bytes_out?,
/// max_concurrent_streams?}` for the current month (and, carried over, the next ones).
pub async fn set_quota(
    Ready(core): Ready,
    admin: AdminUser,
    Path(user_id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<BandwidthDoc>> {
    existing_user(&core, &user_id).await?;
    let quota_in = non_negative(&body, "quota_bytes_in")?;
    let quota_out = non_negative(&body, "quota_bytes_out")?;
    let streams = non_negative(&body, "max_concurrent_streams")?;
    if quota_in.is_none() && quota_out.is_none() && streams.is_none() {
        return Err(DomainError::Invalid {
            code: "invalid_request",
            message: "give at least one of quota_bytes_in, quota_bytes_out, max_concurrent_streams"
                .into(),
        }
        .into());
    }
    let now = now_unix();
    core.store
        .set_relay_quota(
            &user_id,
            &period_start(now),
            quota_in,
            quota_out,
            streams,
            now,
        )
        .await?;
    core.access.forget_usage(&user_id);
    tracing::info!(target: "audit", event = "relay.quota.set", admin = %admin.0.user.id, %user_id, "audit");
    Ok(Json(document(&core, &user_id).await?))
}

/// `PUT /api/v1/admin/users/{id}/throttle` `{throttle_bps}` (0 = unlimited); applies to new
/// client mounts.
pub async fn set_throttle(
    Ready(core): Ready,
    admin: AdminUser,
    Path(user_id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<BandwidthDoc>> {
    existing_user(&core, &user_id).await?;
    let bps = non_negative(&body, "throttle_bps")?.ok_or_else(|| DomainError::Invalid {
        code: "invalid_request",
        message: "throttle_bps is required".into(),
    })?;
    core.store
        .set_throttle_bps(&user_id, bps, now_unix())
        .await?;
    tracing::info!(target: "audit", event = "relay.throttle.set", admin = %admin.0.user.id, %user_id, bps, "audit");
    Ok(Json(document(&core, &user_id).await?))
}
