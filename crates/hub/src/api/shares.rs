//! Library sharing and invite links over HTTP (SPEC M, N, M.1): thin handlers over
//! `crate::domain::shares`.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::shares;
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, MaybeJson, Path, Ready};

/// `POST /api/v1/me/shares` → 201 Share.
pub async fn create(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Response> {
    let share = shares::create(&core, &client, &user.user, body.as_ref()).await?;
    Ok((StatusCode::CREATED, axum::Json(share)).into_response())
}

/// `GET /api/v1/me/shares` → `{"outgoing":[…],"incoming":[…]}`.
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<shares::Shares>> {
    Ok(Json(shares::list(&core, &user.user.id).await?))
}

/// `PATCH /api/v1/me/shares/{id}` `{"permission"}` → 200 Share.
pub async fn update(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(share_id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<crate::store::ShareRow>> {
    let share = shares::update(&core, &client, &user.user.id, &share_id, body.as_ref()).await?;
    Ok(Json(share))
}

/// `DELETE /api/v1/me/shares/{id}` → 204 (the owner revokes; the collaborator leaves).
pub async fn revoke(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(share_id): Path<String>,
) -> ApiResult<StatusCode> {
    shares::revoke(&core, &client, &user.user.id, &share_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/me/invite-links` → 201 `{"id","url","token","expires_at"}`.
pub async fn create_invite(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Response> {
    let invite = shares::create_invite(&core, &client, &user.user, body.as_ref()).await?;
    Ok((StatusCode::CREATED, axum::Json(invite)).into_response())
}

/// `GET /api/v1/me/invite-links` → `{"invite_links":[…]}`.
pub async fn invites(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<Value>> {
    let links = shares::invites(&core, &user.user.id).await?;
    Ok(Json(json!({ "invite_links": links })))
}

/// `DELETE /api/v1/me/invite-links/{id}` → 204.
pub async fn revoke_invite(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(invite_id): Path<String>,
) -> ApiResult<StatusCode> {
    shares::revoke_invite(&core, &client, &user.user.id, &invite_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/me/invite-links/{token}/redeem` → 201 Share.
pub async fn redeem(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let share = shares::redeem(&core, &client, &user.user, &token).await?;
    Ok((StatusCode::CREATED, axum::Json(share)).into_response())
}

/// `PUT /api/v1/me/servers/{id}/sharing-policy` `{"collaborator_relay": bool}` → 200
/// `{"server_id","collaborator_relay"}`.
pub async fn set_sharing_policy(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(server_id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let flag = body.get("collaborator_relay").and_then(Value::as_bool);
    let on = shares::set_sharing_policy(&core, &client, &user.user.id, &server_id, flag).await?;
    Ok(Json(
        json!({"server_id": server_id, "collaborator_relay": on}),
    ))
}

/// Query of `GET /api/v1/me/libraries`.
#[derive(Debug, Default, Deserialize)]
pub struct LibrariesQuery {
    pub server_id: Option<String>,
}

/// `GET /api/v1/me/libraries?server_id=ID` → `{"libraries":[{"id","name"}]}` (the owner's
/// picker, M); without the parameter every library of the caller's servers (E.2).
pub async fn libraries(
    Ready(core): Ready,
    user: CurrentUser,
    query: Result<Query<LibrariesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|rejection| {
        crate::domain::DomainError::invalid("invalid_query", rejection.body_text())
    })?;
    match query.server_id {
        Some(server_id) => {
            let libraries = shares::libraries_of(&core, &user.user.id, &server_id).await?;
            Ok(Json(json!({ "libraries": libraries })))
        }
        None => {
            let libraries =
                crate::domain::servers::libraries_of_owner(&core, &user.user.id).await?;
            Ok(Json(json!({ "libraries": libraries })))
        }
    }
}
