//! Library sharing and invite links over HTTP (SPEC M, N, M.1): thin handlers over
//! `crate::domain::shares`.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::domain::shares::{self, CreatedInvite, InviteView, LibraryChoice, Shares};
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, MaybeJson, Path, Ready};
use crate::store::{ShareRow, UserLibraryRow};

/// Body of `POST /api/v1/me/shares`.
#[derive(Debug, ToSchema)]
pub struct NewShare {
    /// The e-mail address of an existing account.
    pub collaborator_email: String,
    /// One of the caller's servers.
    pub server_id: String,
    /// The library id, or the empty string for all libraries.
    pub library_id: String,
    pub library_name: String,
    /// `read` (default) or `readwrite`.
    pub permission: Option<String>,
    /// Seconds until the share ends (ours), up to ten years.
    pub expires_in: Option<i64>,
}

/// Body of `PATCH /api/v1/me/shares/{id}`.
#[derive(Debug, ToSchema)]
pub struct SharePermission {
    /// `read` or `readwrite`.
    pub permission: String,
}

/// Body of `POST /api/v1/me/invite-links`.
#[derive(Debug, ToSchema)]
pub struct NewInvite {
    /// One of the caller's servers.
    pub server_id: String,
    /// One library, or null/empty for all.
    pub library_id: Option<String>,
    /// `read` (default) or `readwrite`.
    pub permission: Option<String>,
    /// Default 1, clamped to 1–1000000.
    pub max_uses: Option<i64>,
    /// Seconds (default: the hub's setting); 0 or less: never expires.
    pub expires_in: Option<i64>,
}

/// Body of `PUT /api/v1/me/servers/{id}/sharing-policy`.
#[derive(Debug, ToSchema)]
pub struct SharingPolicyRequest {
    /// Whether collaborators may reach the server through the hub (SPEC M.1).
    pub collaborator_relay: bool,
}

/// The server's sharing policy after the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingPolicy {
    pub collaborator_relay: bool,
    pub server_id: String,
}

/// `{"invite_links": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteList {
    #[serde(serialize_with = "super::sorted_keys")]
    pub invite_links: Vec<InviteView>,
}

/// `{"libraries": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Libraries {
    #[serde(serialize_with = "super::sorted_keys")]
    pub libraries: Vec<LibraryEntry>,
}

/// A library: `{id, name}` of one server (`server_id` given), or with its server (none given).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LibraryEntry {
    Choice(LibraryChoice),
    Owned(UserLibraryRow),
}

/// `POST /api/v1/me/shares` → 201 Share.
#[utoipa::path(
    post,
    path = "/api/v1/me/shares",
    tag = "sharing",
    summary = "Share a library of one of the caller's servers with another user (SPEC M)",
    description = "Also served as `POST /api/v1/me/shares/`.",
    request_body(
        content = NewShare,
        example = json!({"collaborator_email": "friend@example.com",
            "server_id": "5f0c6d1e-8a4b-4c1e-9a57-0d3f1b2c4e6a", "library_id": "lib-movies",
            "library_name": "Movies", "permission": "read"})
    ),
    responses(
        (status = 201, description = "The share", body = ShareRow,
        links(
            ("update" = (operation_id = "sharing_update", parameters(("id" = "$response.body#/id")))),
            ("revoke" = (operation_id = "sharing_revoke", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "`invalid_body`, `missing_collaborator_email`, \
            `missing_server_id`, `missing_library_id`, `missing_library_name` or \
            `invalid_request`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`not_server_owner`", body = ErrorBody),
        (status = 404, description = "`user_not_found`: no account with that address",
            body = ErrorBody),
        (status = 409, description = "`share_exists` or `quota.exceeded` (collaborator limit)",
            body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/me/shares",
    tag = "sharing",
    summary = "The caller's active shares, both ways",
    description = "Also served as `GET /api/v1/me/shares/`.",
    responses(
        (status = 200, description = "Newest first", body = Shares),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<Shares>> {
    Ok(Json(shares::list(&core, &user.user.id).await?))
}

/// `PATCH /api/v1/me/shares/{id}` `{"permission"}` → 200 Share.
#[utoipa::path(
    patch,
    path = "/api/v1/me/shares/{id}",
    tag = "sharing",
    summary = "Change the permission of a share the caller owns",
    params(("id" = String, Path, description = "Share id")),
    request_body(content = SharePermission, example = json!({"permission": "readwrite"})),
    responses(
        (status = 200, description = "The share", body = ShareRow),
        (status = 400, description = "`invalid_body`, `missing_permission` or \
            `invalid_permission`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`not_share_owner`", body = ErrorBody),
        (status = 404, description = "`share_not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn update(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(share_id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<ShareRow>> {
    let share = shares::update(&core, &client, &user.user.id, &share_id, body.as_ref()).await?;
    Ok(Json(share))
}

/// `DELETE /api/v1/me/shares/{id}` → 204 (the owner revokes; the collaborator leaves).
#[utoipa::path(
    delete,
    path = "/api/v1/me/shares/{id}",
    tag = "sharing",
    summary = "End a share: its owner revokes it, its collaborator leaves it",
    description = "The collaborator's relay uses of the server end within 5 s (SPEC M.1).",
    params(("id" = String, Path, description = "Share id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`not_share_owner`", body = ErrorBody),
        (status = 404, description = "`share_not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/me/invite-links",
    tag = "sharing",
    summary = "Create an invite link to a server's libraries (SPEC N)",
    description = "The token is shown this once. Also served as \
        `POST /api/v1/me/invite-links/`.",
    request_body(
        content = NewInvite,
        example = json!({"server_id": "5f0c6d1e-8a4b-4c1e-9a57-0d3f1b2c4e6a",
            "library_id": "lib-movies", "permission": "read", "max_uses": 5, "expires_in": 604800})
    ),
    responses(
        (status = 201, description = "The link", body = CreatedInvite,
        links(
            ("revoke" = (operation_id = "sharing_revoke_invite", parameters(("id" = "$response.body#/id")))),
            ("redeem" = (operation_id = "sharing_redeem", parameters(("token" = "$response.body#/token"))))
        )),
        (status = 400, description = "`invalid_body`, `missing_server_id` or `invalid_request`",
            body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`not_server_owner`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/me/invite-links",
    tag = "sharing",
    summary = "The caller's invite links",
    description = "Also served as `GET /api/v1/me/invite-links/`.",
    responses(
        (status = 200, description = "Newest first", body = InviteList),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn invites(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<InviteList>> {
    let invite_links = shares::invites(&core, &user.user.id).await?;
    Ok(Json(InviteList { invite_links }))
}

/// `DELETE /api/v1/me/invite-links/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/me/invite-links/{id}",
    tag = "sharing",
    summary = "Revoke an invite link",
    params(("id" = String, Path, description = "Invite link id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`not_link_owner`", body = ErrorBody),
        (status = 404, description = "`invite_link_not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/me/invite-links/{token}/redeem",
    tag = "sharing",
    summary = "Redeem an invite link: the caller becomes a collaborator",
    params(("token" = String, Path, description = "The link's token")),
    responses(
        (status = 201, description = "The new share", body = ShareRow),
        (status = 400, description = "`invalid_invite`: the caller's own link", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`invite_link_not_found`", body = ErrorBody),
        (status = 409, description = "`share_exists` or `quota.exceeded`", body = ErrorBody),
        (status = 410, description = "`invite_expired_or_exhausted`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    put,
    path = "/api/v1/me/servers/{id}/sharing-policy",
    tag = "sharing",
    summary = "Let collaborators reach the server through the hub, or not (SPEC M.1)",
    description = "Turning it off cuts the collaborators' relay uses within 5 s.",
    params(("id" = String, Path, description = "Server id")),
    request_body(content = SharingPolicyRequest, example = json!({"collaborator_relay": true})),
    responses(
        (status = 200, description = "Saved", body = SharingPolicy),
        (status = 400, description = "`invalid_json`, or `invalid_request` \
            (`collaborator_relay` is not a boolean)", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`server.not_owned`", body = ErrorBody),
        (status = 404, description = "`server.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn set_sharing_policy(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(server_id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<SharingPolicy>> {
    let flag = body.get("collaborator_relay").and_then(Value::as_bool);
    let on = shares::set_sharing_policy(&core, &client, &user.user.id, &server_id, flag).await?;
    Ok(Json(SharingPolicy {
        collaborator_relay: on,
        server_id,
    }))
}

/// Query of `GET /api/v1/me/libraries`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LibrariesQuery {
    /// One of the caller's servers; without it, the libraries of every server the caller owns.
    pub server_id: Option<String>,
}

/// `GET /api/v1/me/libraries?server_id=ID` → `{"libraries":[{"id","name"}]}` (the owner's
/// picker, M); without the parameter every library of the caller's servers (E.2).
#[utoipa::path(
    get,
    path = "/api/v1/me/libraries",
    tag = "sharing",
    summary = "The libraries of the caller's servers",
    description = "With `server_id`: that server's libraries by name, `{id, name}` (the share \
        picker, SPEC M). Without: every library of every server the caller owns, with its \
        server (SPEC E.2).",
    params(LibrariesQuery),
    responses(
        (status = 200, description = "The libraries, by name", body = Libraries),
        (status = 400, description = "`invalid_query` or `missing_server_id` (empty)",
            body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`not_server_owner`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn libraries(
    Ready(core): Ready,
    user: CurrentUser,
    query: Result<Query<LibrariesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Libraries>> {
    let Query(query) = query.map_err(|rejection| {
        crate::domain::DomainError::invalid("invalid_query", rejection.body_text())
    })?;
    match query.server_id {
        Some(server_id) => {
            let libraries = shares::libraries_of(&core, &user.user.id, &server_id).await?;
            Ok(Json(Libraries {
                libraries: libraries.into_iter().map(LibraryEntry::Choice).collect(),
            }))
        }
        None => {
            let libraries =
                crate::domain::servers::libraries_of_owner(&core, &user.user.id).await?;
            Ok(Json(Libraries {
                libraries: libraries.into_iter().map(LibraryEntry::Owned).collect(),
            }))
        }
    }
}
