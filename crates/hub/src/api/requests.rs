//! Media requests over HTTP (SPEC O): thin handlers over `crate::domain::requests`.

use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::domain::requests::{self, Created};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AdminUser, ClientInfo, CurrentUser, Json, MaybeJson, Path, Ready};

/// The query string as `(name, value)` pairs; 400 `invalid_query` when it is not
/// `application/x-www-form-urlencoded`.
fn query_pairs(raw: Option<String>) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).map_err(|_| ApiError::Invalid {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_query",
        message: "The query string is not valid".into(),
    })
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn listing(rows: &[crate::store::RequestRow]) -> Value {
    let views: Vec<Value> = rows.iter().map(requests::view).collect();
    json!({"count": views.len(), "requests": views})
}

/// `POST /api/v1/me/requests` → 201 `{"request","message"}`; 409 `request_exists` with the
/// existing request.
pub async fn create(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Response> {
    Ok(
        match requests::create(&core, &user.user, &client, body.as_ref()).await? {
            Created::New(row) => (
                StatusCode::CREATED,
                axum::Json(json!({
                    "request": requests::view(&row),
                    "message": "Request created successfully.",
                })),
            )
                .into_response(),
            Created::Exists(row) => (
                StatusCode::CONFLICT,
                axum::Json(json!({
                    "error": "Conflict",
                    "code": "request_exists",
                    "message": "You have already requested this",
                    "request": requests::view(&row),
                })),
            )
                .into_response(),
        },
    )
}

/// `GET /api/v1/me/requests[?status=]` → `{"requests","count"}` of the caller.
pub async fn mine(
    Ready(core): Ready,
    user: CurrentUser,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let pairs = query_pairs(raw)?;
    let rows = requests::mine(&core, &user.user.id, param(&pairs, "status")).await?;
    Ok(Json(listing(&rows)))
}

/// `GET /api/v1/me/requests/search?type=&q=` → `{"results"}`.
pub async fn search(
    Ready(core): Ready,
    _: CurrentUser,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let pairs = query_pairs(raw)?;
    let results = requests::search(&core, param(&pairs, "type"), param(&pairs, "q")).await?;
    Ok(Json(json!({ "results": results })))
}

/// `GET /api/v1/me/requests/{id}` → `{"request"}`.
pub async fn get(
    Ready(core): Ready,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = requests::get(&core, &user.user, &id).await?;
    Ok(Json(json!({ "request": requests::view(&row) })))
}

/// `DELETE /api/v1/me/requests/{id}` → 204.
pub async fn delete(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    requests::delete(&core, &user.user, &client, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/admin/requests[?status=]` (default `pending`; `all`).
pub async fn all(
    Ready(core): Ready,
    _: AdminUser,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let pairs = query_pairs(raw)?;
    let rows = requests::all(&core, param(&pairs, "status")).await?;
    Ok(Json(listing(&rows)))
}

/// `POST /api/v1/admin/requests/{id}/approve` → 200 `{"message","request_id"}`.
pub async fn approve(
    Ready(core): Ready,
    admin: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = requests::approve(&core, &admin.0.user, &client, &id).await?;
    Ok(Json(
        json!({"message": "Request approved successfully.", "request_id": row.id}),
    ))
}

/// `POST /api/v1/admin/requests/{id}/deny` `{"reason"?}` → 200 `{"message","request_id"}`.
pub async fn deny(
    Ready(core): Ready,
    admin: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<Value>> {
    let reason = body.as_ref().and_then(|b| b.get("reason"));
    let row = requests::deny(&core, &admin.0.user, &client, &id, reason).await?;
    Ok(Json(
        json!({"message": "Request denied successfully.", "request_id": row.id}),
    ))
}
