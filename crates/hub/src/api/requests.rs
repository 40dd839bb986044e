//! Media requests over HTTP (SPEC O): thin handlers over `crate::domain::requests`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::domain::requests::{self, Created};
use crate::http::error::ApiResult;
use crate::http::extract::{
    AdminUser, ClientInfo, CurrentUser, Json, MaybeJson, Path, QueryPairs, Ready,
};

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
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let rows = requests::mine(&core, &user.user.id, query.get("status")).await?;
    Ok(Json(listing(&rows)))
}

/// `GET /api/v1/me/requests/search?type=&q=` → `{"results"}`.
pub async fn search(
    Ready(core): Ready,
    _: CurrentUser,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let results = requests::search(&core, query.get("type"), query.get("q")).await?;
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
pub async fn all(Ready(core): Ready, _: AdminUser, query: QueryPairs) -> ApiResult<Json<Value>> {
    let rows = requests::all(&core, query.get("status")).await?;
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
