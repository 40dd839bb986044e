//! Personal access tokens over HTTP (SPEC E "MCP": `/api/v1/me/mcp-tokens`): thin handlers
//! over `crate::domain::tokens`. A token cannot manage tokens: these routes take a signed-in
//! session only (`domain::tokens::required_scope` gives them no scope).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::tokens::{self, TokenView};
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, MaybeJson, Path, Ready};

/// Body of `POST /api/v1/me/mcp-tokens`.
#[derive(Debug, ToSchema)]
pub struct TokenRequest {
    /// 1–100 characters, no control characters.
    pub name: String,
    /// Space-separated (or a list): `servers:read`, `requests:read`, `requests:write`, `admin`
    /// (administrators only). Default `servers:read requests:read`.
    pub scopes: Option<String>,
    /// 1–365, default 90.
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: Option<i64>,
}

/// `GET /api/v1/me/mcp-tokens` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// `POST /api/v1/me/mcp-tokens` body: the token's view and the token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    /// The token: 64 lowercase hex characters. Shown only in this answer.
    pub token: String,
}

/// `GET /api/v1/me/mcp-tokens` → `{"tokens":[T]}` (revoked ones left out).
#[utoipa::path(
    get,
    path = "/api/v1/me/mcp-tokens",
    tag = "tokens",
    summary = "The caller's personal access tokens",
    description = "Revoked tokens are left out; expired ones are listed with `expired: true`. \
        Signed-in sessions only: a personal access token cannot list tokens.",
    responses(
        (status = 200, description = "The tokens, newest first", body = TokenList),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`token.route_not_allowed` (called with a token)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<TokenList>> {
    let tokens = tokens::list(&core, &user.user.id).await?;
    Ok(Json(TokenList { tokens }))
}

/// `POST /api/v1/me/mcp-tokens` `{"name","scopes"?,"expires_in_days"?}` → 201 T + `token`.
#[utoipa::path(
    post,
    path = "/api/v1/me/mcp-tokens",
    tag = "tokens",
    summary = "Create a personal access token",
    description = "The token (64 lowercase hex characters) is in this answer only; the hub \
        keeps its SHA-256. At most 50 live tokens per user.",
    request_body(
        content = TokenRequest,
        example = json!({"name": "Home Assistant", "scopes": "servers:read requests:read",
            "expires_in_days": 90})
    ),
    responses(
        (status = 201, description = "Created; the token is shown only here", body = CreatedToken,
        links(
            ("revoke" = (operation_id = "tokens_revoke", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "`invalid_body`, `invalid_json`, `token.invalid_name`, \
            `token.invalid_scope` or `token.invalid_expiry`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`token.admin_scope_admin_only`, or \
            `token.route_not_allowed` (called with a token)", body = ErrorBody),
        (status = 409, description = "`token.limit_reached`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn create(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Response> {
    let created = tokens::create(&core, &user.user, &client, body.as_ref()).await?;
    let body = CreatedToken {
        view: created.view,
        token: created.token,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `DELETE /api/v1/me/mcp-tokens/{id}` → 204; the token stops working at once.
#[utoipa::path(
    delete,
    path = "/api/v1/me/mcp-tokens/{id}",
    tag = "tokens",
    summary = "Revoke a personal access token",
    description = "The token stops working on the next request.",
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`token.route_not_allowed` (called with a token)", body = ErrorBody),
        (status = 404, description = "`token.not_found` (unknown, someone else's, or revoked \
            already)", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn revoke(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    tokens::revoke(&core, &user.user, &client, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
