//! Relay bandwidth, quotas and throttles over HTTP (SPEC B.5): `GET /api/v1/me/bandwidth` and
//! the admin routes under `/api/v1/admin/users/{id}/`.

use serde_json::Value;

use crate::domain::DomainError;
use crate::domain::quotas::{self, BandwidthDoc, QuotaChange};
use crate::http::error::ApiResult;
use crate::http::extract::{AdminUser, CurrentUser, Json, Path, Ready};

/// `GET /api/v1/me/bandwidth`.
pub async fn mine(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<BandwidthDoc>> {
    Ok(Json(quotas::usage(&core, &user.user.id).await?))
}

/// `GET /api/v1/admin/users/{id}/bandwidth`.
pub async fn of_user(
    Ready(core): Ready,
    _: AdminUser,
    Path(user_id): Path<String>,
) -> ApiResult<Json<BandwidthDoc>> {
    Ok(Json(quotas::usage_of(&core, &user_id).await?))
}

/// `body[key]` as an integer: absent or `null` → `None`; anything but an integer → 422.
fn integer(body: &Value, key: &str) -> ApiResult<Option<i64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            DomainError::Unprocessable {
                code: "invalid_request",
                message: format!("{key} must be a non-negative integer (0 = unlimited)"),
            }
            .into()
        }),
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
    let change = QuotaChange {
        quota_bytes_in: integer(&body, "quota_bytes_in")?,
        quota_bytes_out: integer(&body, "quota_bytes_out")?,
        max_concurrent_streams: integer(&body, "max_concurrent_streams")?,
    };
    Ok(Json(
        quotas::set_quota(&core, &admin.0.user.id, &user_id, change).await?,
    ))
}

/// `PUT /api/v1/admin/users/{id}/throttle` `{throttle_bps}` (0 = unlimited); applies to new
/// client mounts.
pub async fn set_throttle(
    Ready(core): Ready,
    admin: AdminUser,
    Path(user_id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<BandwidthDoc>> {
    let bps = integer(&body, "throttle_bps")?.ok_or_else(|| DomainError::Invalid {
        code: "invalid_request",
        message: "throttle_bps is required".into(),
    })?;
    Ok(Json(
        quotas::set_throttle(&core, &admin.0.user.id, &user_id, bps).await?,
    ))
}
