//! Personal access tokens over HTTP (SPEC E "MCP": `/api/v1/me/mcp-tokens`): thin handlers
//! over `crate::domain::tokens`. A token cannot manage tokens: these routes take a signed-in
//! session only (`domain::tokens::required_scope` gives them no scope).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::tokens::{self, TokenView};
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, MaybeJson, Path, Ready};

/// `GET /api/v1/me/mcp-tokens` body.
#[derive(Debug, Serialize)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// `POST /api/v1/me/mcp-tokens` body: the token's view and the token, shown this once.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    /// The token: 64 lowercase hex characters. Shown only in this answer.
    pub token: String,
}

/// `GET /api/v1/me/mcp-tokens` → `{"tokens":[T]}` (revoked ones left out).
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<TokenList>> {
    let tokens = tokens::list(&core, &user.user.id).await?;
    Ok(Json(TokenList { tokens }))
}

/// `POST /api/v1/me/mcp-tokens` `{"name","scopes"?,"expires_in_days"?}` → 201 T + `token`.
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
pub async fn revoke(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    tokens::revoke(&core, &user.user, &client, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
