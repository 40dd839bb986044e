//! The admin console's JSON routes (SPEC Q): users (Q.1), thin handlers over
//! `crate::domain::admin`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::domain::admin;
use crate::http::error::ApiResult;
use crate::http::extract::{AdminUser, ClientInfo, Json, MaybeJson, Path, QueryPairs, Ready};

/// `GET /api/v1/admin/users[?q=&limit=&offset=]` → `{"users":[U],"total","limit","offset"}`.
pub async fn list_users(
    Ready(core): Ready,
    _: AdminUser,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let (rows, total, limit, offset) = admin::list(
        &core,
        query.get("q"),
        query.get("limit"),
        query.get("offset"),
    )
    .await?;
    let users: Vec<Value> = rows.iter().map(admin::view).collect();
    Ok(Json(
        json!({"users": users, "total": total, "limit": limit, "offset": offset}),
    ))
}

/// `GET /api/v1/admin/users/{id}` → `{"user":U}`.
pub async fn get_user(
    Ready(core): Ready,
    _: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = admin::get(&core, &id).await?;
    Ok(Json(json!({ "user": admin::view(&row) })))
}

/// `POST /api/v1/admin/users` → 201 `{"user_id","message"}`.
pub async fn create_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = admin::create(&core, &current.0.user, &client, body.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user_id": id, "message": "User created successfully"})),
    ))
}

/// `PUT /api/v1/admin/users/{id}` → `{"message"}`.
pub async fn update_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<Value>> {
    admin::update(&core, &current.0.user, &client, &id, body.as_ref()).await?;
    Ok(Json(json!({"message": "User updated successfully"})))
}

/// `DELETE /api/v1/admin/users/{id}` → `{"message"}`.
pub async fn delete_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    admin::delete(&core, &current.0.user, &client, &id).await?;
    Ok(Json(json!({"message": "User deleted successfully"})))
}

/// `POST /api/v1/admin/users/{id}/set-admin` `{"is_admin"}` → `{"message"}`.
pub async fn set_admin(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<Value>> {
    admin::set_admin(&core, &current.0.user, &client, &id, body.as_ref()).await?;
    Ok(Json(json!({"message": "User updated successfully"})))
}

/// `POST /api/v1/admin/users/{id}/reset-password` → `{"message","new_password"}`.
pub async fn reset_password(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let password = admin::reset_password(&core, &current.0.user, &client, &id).await?;
    Ok(Json(
        json!({"message": "Password reset successfully", "new_password": password}),
    ))
}

/// `GET /api/v1/admin/users/{id}/profiles` → `{"profiles":[]}` (the hub keeps none).
pub async fn profiles(
    Ready(core): Ready,
    _: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    admin::get(&core, &id).await?;
    Ok(Json(json!({ "profiles": [] })))
}

/// `POST /api/v1/admin/users/{id}/disable` → `{"user":U}`.
pub async fn disable(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = admin::set_disabled(&core, &current.0.user, &client, &id, true).await?;
    Ok(Json(json!({ "user": admin::view(&row) })))
}

/// `POST /api/v1/admin/users/{id}/enable` → `{"user":U}`.
pub async fn enable(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = admin::set_disabled(&core, &current.0.user, &client, &id, false).await?;
    Ok(Json(json!({ "user": admin::view(&row) })))
}

/// `POST /api/v1/admin/users/{id}/sign-out` → 204.
pub async fn sign_out(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin::sign_out(&core, &current.0.user, &client, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
