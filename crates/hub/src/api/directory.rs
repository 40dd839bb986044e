//! The user side of the server directory (SPEC E "Me / servers", B.2 relay tokens, J.1
//! proxy policy), the JWKS and the hub settings.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use phlix_proto::server::ServerInfo;
use serde::Serialize;
use serde_json::{Value, json};

use tracing::instrument;

use crate::domain::claims::published_keys;
use crate::domain::relay_tokens::mint_relay_token;
use crate::domain::servers::{self, AccessInfo};
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, Path, Ready};
use crate::store::{HeartbeatRow, LibraryRow, ServerRow};

/// `GET /api/v1/me/servers` → `{"servers":[ServerInfoDto]}`.
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<Value>> {
    let servers: Vec<ServerInfo> = servers::list_owned(&core, &user.user.id)
        .await?
        .into_iter()
        .map(ServerRow::into_info)
        .collect();
    Ok(Json(json!({ "servers": servers })))
}

/// Server detail: the `ServerInfoDto` fields plus what the directory knows about it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerDetail {
    #[serde(flatten)]
    pub info: ServerInfo,
    pub enrolled_at: i64,
    pub proxy_policy: String,
    /// `{library_id, library_name}` entries, as the heartbeat reported them.
    pub libraries: Vec<LibraryRow>,
    /// The newest heartbeats, newest first (at most 20).
    pub recent_heartbeats: Vec<HeartbeatView>,
}

/// One heartbeat in the server detail.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatView {
    pub received_at: i64,
    pub sent_at: Option<i64>,
    pub version: String,
    pub uptime_seconds: i64,
    pub active_sessions: i64,
    pub active_transcodes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_metrics: Option<Value>,
}

impl From<HeartbeatRow> for HeartbeatView {
    fn from(row: HeartbeatRow) -> Self {
        Self {
            received_at: row.received_at,
            sent_at: row.sent_at,
            version: row.version,
            uptime_seconds: row.uptime_seconds,
            active_sessions: row.active_sessions,
            active_transcodes: row.active_transcodes,
            host_metrics: row
                .host_metrics_json
                .and_then(|j| serde_json::from_str(&j).ok()),
        }
    }
}

/// `GET /api/v1/me/servers/{id}` → [`ServerDetail`].
pub async fn detail(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
) -> ApiResult<Json<ServerDetail>> {
    let overview = servers::overview(&core, &user.user.id, &server_id, 20, 0).await?;
    let server = overview.server;
    Ok(Json(ServerDetail {
        enrolled_at: server.enrolled_at,
        proxy_policy: server.proxy_policy.clone(),
        info: server.into_info(),
        libraries: overview.libraries,
        recent_heartbeats: overview
            .recent_heartbeats
            .into_iter()
            .map(HeartbeatView::from)
            .collect(),
    }))
}

/// `DELETE /api/v1/me/servers/{id}` → 204: the owner removes a server.
pub async fn remove(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(server_id): Path<String>,
) -> ApiResult<StatusCode> {
    servers::remove_owned(&core, &user.user.id, &server_id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me/servers/{id}/access-info` → how a client reaches the server: directly
/// (its hostname candidates) or through the hub.
pub async fn access_info(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
) -> ApiResult<Json<AccessInfo>> {
    Ok(Json(
        servers::access_info(&core, &user.user.id, &server_id).await?,
    ))
}

/// `POST /api/v1/me/servers/{id}/relay-token` → 201 `{"token","expires_at","server_id"}`. The
/// token is 43 characters of base64url (32 random bytes); only its SHA-256 is stored.
#[instrument(skip_all, fields(user_id = %user.user.id, server_id = %server_id))]
pub async fn relay_token(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(server_id): Path<String>,
) -> ApiResult<Response> {
    let (token, expires_at) = mint_relay_token(&core, &user.user.id, &server_id, &client).await?;
    let body = json!({"token": token, "expires_at": expires_at, "server_id": server_id});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `PUT /api/v1/me/servers/{id}/proxy-policy` `{"policy":"phlix"|"all"}` → `{server_id, policy}`.
pub async fn set_policy(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let policy = body
        .get("policy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    servers::set_proxy_policy(&core, &user.user.id, &server_id, policy).await?;
    Ok(Json(json!({"server_id": server_id, "policy": policy})))
}

/// `GET /.well-known/jwks.json` → the Ed25519 keys that verify enrollment tokens now (the
/// previous key too inside its rotation overlap). Cacheable for an hour; 120/60 s per IP.
pub async fn jwks(Ready(core): Ready, client: ClientInfo) -> ApiResult<Response> {
    let keys = published_keys(&core, &client.ip)?;
    let mut response = axum::Json(json!({ "keys": keys })).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
