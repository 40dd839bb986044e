//! Relay bandwidth, quotas and throttles over HTTP (SPEC B.5): `GET /api/v1/me/bandwidth` and
//! the admin routes under `/api/v1/admin/users/{id}/`.

use phlix_proto::ErrorBody;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::DomainError;
use crate::domain::quotas::{self, BandwidthDoc, QuotaChange};
use crate::http::error::ApiResult;
use crate::http::extract::{AdminUser, CurrentUser, Json, Path, Ready};

/// `GET /api/v1/me/bandwidth`.
#[utoipa::path(
    get,
    path = "/api/v1/me/bandwidth",
    tag = "bandwidth",
    summary = "The caller's relay usage this month, limits and throttle (SPEC B.5)",
    responses(
        (status = 200, description = "Usage (0 = unlimited)", body = BandwidthDoc),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn mine(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<BandwidthDoc>> {
    Ok(Json(quotas::usage(&core, &user.user.id).await?))
}

/// `GET /api/v1/admin/users/{id}/bandwidth`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/bandwidth",
    tag = "bandwidth",
    summary = "A user's relay usage this month, limits and throttle",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Usage (0 = unlimited)", body = BandwidthDoc),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
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

/// Body of `PUT /api/v1/admin/users/{id}/quota`: at least one limit; absent or null keeps the
/// current value, 0 means unlimited.
#[derive(Debug, ToSchema)]
pub struct QuotaRequest {
    #[schema(minimum = 0)]
    pub quota_bytes_in: Option<i64>,
    #[schema(minimum = 0)]
    pub quota_bytes_out: Option<i64>,
    #[schema(minimum = 0)]
    pub max_concurrent_streams: Option<i64>,
}

/// Body of `PUT /api/v1/admin/users/{id}/throttle`.
#[derive(Debug, ToSchema)]
pub struct ThrottleRequest {
    /// Bytes per second for new client mounts; 0 = unlimited.
    #[schema(minimum = 0)]
    pub throttle_bps: i64,
}

/// `PUT /api/v1/admin/users/{id}/quota` `{quota_bytes_in?, quota_bytes_out?,
/// max_concurrent_streams?}` for the current month (and, carried over, the next ones).
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/quota",
    tag = "bandwidth",
    summary = "Set a user's monthly relay limits",
    description = "For the current month, carried over to the next ones.",
    params(("id" = String, Path, description = "User id")),
    request_body(
        content = QuotaRequest,
        example = json!({"quota_bytes_out": 107374182400i64, "max_concurrent_streams": 4})
    ),
    responses(
        (status = 200, description = "The usage with the new limits", body = BandwidthDoc),
        (status = 400, description = "`invalid_json`, or `invalid_request` (no limit given)",
            body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user.not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a limit is not a non-negative integer",
            body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
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
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/throttle",
    tag = "bandwidth",
    summary = "Set a user's relay throttle",
    description = "Applies to client mounts opened from now on.",
    params(("id" = String, Path, description = "User id")),
    request_body(content = ThrottleRequest, example = json!({"throttle_bps": 1048576})),
    responses(
        (status = 200, description = "The usage with the new throttle", body = BandwidthDoc),
        (status = 400, description = "`invalid_json`, or `invalid_request` (`throttle_bps` \
            missing)", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user.not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_request`: not a non-negative integer",
            body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
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
