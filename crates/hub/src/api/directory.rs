//! The user side of the server directory (SPEC E "Me / servers", B.2 relay tokens, J.1
//! proxy policy), the JWKS and the hub settings.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use phlix_proto::ErrorBody;
use phlix_proto::server::ServerInfo;
use serde::Serialize;
use serde_json::Value;

use tracing::instrument;
use utoipa::ToSchema;

use crate::domain::claims::published_keys;
use crate::domain::relay_tokens::mint_relay_token;
use crate::domain::servers::{self, AccessInfo};
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, Path, Ready};
use crate::store::{HeartbeatRow, LibraryRow, ServerRow};

/// `{"servers":[ServerInfoDto]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerList {
    /// The caller's servers, oldest first.
    #[serde(serialize_with = "super::sorted_keys")]
    pub servers: Vec<ServerInfo>,
}

/// `GET /api/v1/me/servers` → `{"servers":[ServerInfoDto]}`.
#[utoipa::path(
    get,
    path = "/api/v1/me/servers",
    tag = "directory",
    summary = "The caller's servers",
    responses(
        (status = 200, description = "The servers the caller owns", body = ServerList),
        (status = 401, description = "`auth.required`, `auth.invalid_token`, \
            `auth.user_not_found` or `account_disabled`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<ServerList>> {
    let servers: Vec<ServerInfo> = servers::list_owned(&core, &user.user.id)
        .await?
        .into_iter()
        .map(ServerRow::into_info)
        .collect();
    Ok(Json(ServerList { servers }))
}

/// Server detail (SPEC L): `server`, `relay_session`, `heartbeat_history` and `tls_status` in
/// snake_case as the PHP hub answers, followed by ours: the `ServerInfoDto` fields (camelCase)
/// and what else the directory knows about it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerDetail {
    #[serde(rename = "server")]
    pub server: DetailServer,
    /// The open relay session, `null` while no tunnel is up.
    #[serde(rename = "relay_session")]
    pub relay_session: Option<DetailRelaySession>,
    /// The last 20 heartbeats, newest first.
    #[serde(rename = "heartbeat_history")]
    pub heartbeat_history: Vec<DetailHeartbeat>,
    /// Always `null`: per-server certificates are not managed by the hub.
    #[serde(rename = "tls_status")]
    #[schema(value_type = Option<Object>)]
    pub tls_status: Option<Value>,
    #[serde(flatten)]
    pub info: ServerInfo,
    pub enrolled_at: i64,
    pub proxy_policy: String,
    /// `{library_id, library_name}` entries, as the heartbeat reported them.
    pub libraries: Vec<LibraryRow>,
    /// The newest heartbeats, newest first (at most 20).
    pub recent_heartbeats: Vec<HeartbeatView>,
}

/// The `server` object of the server detail (SPEC L, snake_case).
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailServer {
    pub id: String,
    pub server_name: String,
    pub version: String,
    /// `online`, `offline`, `claiming` or `disabled`.
    pub status: String,
    pub last_seen_at: Option<i64>,
    pub hostname_candidates: Vec<String>,
    pub relay_active: bool,
    pub subdomain: Option<String>,
    /// `{subdomain}.{public domain}`, `null` without a subdomain.
    pub fqdn: Option<String>,
}

/// The `relay_session` object of the server detail: the tunnel's `relay_sessions` row.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailRelaySession {
    pub id: String,
    /// The hub node holding the tunnel (its `--node-name`, the host name by default).
    pub worker_node: String,
    pub opened_at: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub last_frame_at: Option<i64>,
}

/// One entry of `heartbeat_history` (SPEC L).
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailHeartbeat {
    pub id: i64,
    pub version: String,
    pub uptime_seconds: i64,
    pub active_sessions: i64,
    pub active_transcodes: i64,
    pub received_at: i64,
}

/// One heartbeat in the server detail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatView {
    pub received_at: i64,
    pub sent_at: Option<i64>,
    pub version: String,
    pub uptime_seconds: i64,
    pub active_sessions: i64,
    pub active_transcodes: i64,
    /// The host metrics the heartbeat carried (SPEC J.5), when it carried any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
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
#[utoipa::path(
    get,
    path = "/api/v1/me/servers/{id}",
    tag = "directory",
    summary = "One of the caller's servers in detail",
    params(("id" = String, Path, description = "Server id")),
    responses(
        (status = 200, description = "The server", body = ServerDetail),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`server.not_owned`", body = ErrorBody),
        (status = 404, description = "`server.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn detail(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
) -> ApiResult<Json<ServerDetail>> {
    let overview = servers::overview(&core, &user.user.id, &server_id, 20, 0).await?;
    let server = overview.server;
    let relay_session = servers::current_relay_session(&core, &server_id)
        .await?
        .map(|session| DetailRelaySession {
            id: session.id,
            worker_node: session.worker_node,
            opened_at: session.opened_at,
            bytes_in: session.bytes_in,
            bytes_out: session.bytes_out,
            last_frame_at: session.last_frame_at,
        });
    let heartbeat_history = overview
        .recent_heartbeats
        .iter()
        .map(|beat| DetailHeartbeat {
            id: beat.id,
            version: beat.version.clone(),
            uptime_seconds: beat.uptime_seconds,
            active_sessions: beat.active_sessions,
            active_transcodes: beat.active_transcodes,
            received_at: beat.received_at,
        })
        .collect();
    let (enrolled_at, proxy_policy) = (server.enrolled_at, server.proxy_policy.clone());
    let info = server.into_info();
    Ok(Json(ServerDetail {
        server: DetailServer {
            id: info.server_id.clone(),
            server_name: info.server_name.clone(),
            version: info.version.clone(),
            status: info.status.clone(),
            last_seen_at: info.last_seen_at,
            hostname_candidates: info.hostname_candidates.clone(),
            relay_active: info.relay_active,
            fqdn: info
                .subdomain
                .as_deref()
                .map(|sub| servers::fqdn(&core, sub)),
            subdomain: info.subdomain.clone(),
        },
        relay_session,
        heartbeat_history,
        tls_status: None,
        enrolled_at,
        proxy_policy,
        info,
        libraries: overview.libraries,
        recent_heartbeats: overview
            .recent_heartbeats
            .into_iter()
            .map(HeartbeatView::from)
            .collect(),
    }))
}

/// `DELETE /api/v1/me/servers/{id}` → 204: the owner removes a server.
#[utoipa::path(
    delete,
    path = "/api/v1/me/servers/{id}",
    tag = "directory",
    summary = "Remove one of the caller's servers from the directory",
    params(("id" = String, Path, description = "Server id")),
    responses(
        (status = 204, description = "Removed; its tunnel and client mounts are closed"),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`server.not_owned`", body = ErrorBody),
        (status = 404, description = "`server.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/me/servers/{id}/access-info",
    tag = "directory",
    summary = "How a client reaches a server: directly or through the hub",
    description = "For the owner, and for a collaborator the owner lets through (SPEC M.1).",
    params(("id" = String, Path, description = "Server id")),
    responses(
        (status = 200, description = "The ways in", body = AccessInfo),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`server.not_owned`", body = ErrorBody),
        (status = 404, description = "`server.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn access_info(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
) -> ApiResult<Json<AccessInfo>> {
    Ok(Json(
        servers::access_info(&core, &user.user.id, &server_id).await?,
    ))
}

/// A client relay token for one server.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelayToken {
    /// Unix seconds (one hour from now).
    pub expires_at: i64,
    pub server_id: String,
    /// 64 lowercase hex characters; only its SHA-256 is stored.
    pub token: String,
}

/// `POST /api/v1/me/servers/{id}/relay-token` → 201 `{"token","expires_at","server_id"}`. The
/// token is 64 lowercase hex characters (32 random bytes); only its SHA-256 is stored.
#[utoipa::path(
    post,
    path = "/api/v1/me/servers/{id}/relay-token",
    tag = "directory",
    summary = "Mint a client relay token (SPEC B.2) for mounting the server",
    description = "For the owner, and for a collaborator the owner lets through (SPEC M.1). \
        The token opens client mounts on `client_ws_endpoint` for one hour.",
    params(("id" = String, Path, description = "Server id")),
    responses(
        (status = 201, description = "A fresh token", body = RelayToken),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`server.not_owned`", body = ErrorBody),
        (status = 404, description = "`server.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
#[instrument(skip_all, fields(user_id = %user.user.id, server_id = %server_id))]
pub async fn relay_token(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(server_id): Path<String>,
) -> ApiResult<Response> {
    let (token, expires_at) = mint_relay_token(&core, &user.user.id, &server_id, &client).await?;
    let body = RelayToken {
        expires_at,
        server_id,
        token,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Body of `PUT /api/v1/me/servers/{id}/proxy-policy`.
#[derive(Debug, ToSchema)]
pub struct ProxyPolicyRequest {
    /// `phlix` (only the Phlix client API goes through the proxy route) or `all`.
    pub policy: String,
}

/// The server's proxy policy after the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyPolicy {
    /// `phlix` or `all`.
    pub policy: String,
    pub server_id: String,
}

/// `PUT /api/v1/me/servers/{id}/proxy-policy` `{"policy":"phlix"|"all"}` → `{server_id, policy}`.
#[utoipa::path(
    put,
    path = "/api/v1/me/servers/{id}/proxy-policy",
    tag = "directory",
    summary = "Set what the proxy route lets through to the server (SPEC J.1)",
    params(("id" = String, Path, description = "Server id")),
    request_body(content = ProxyPolicyRequest, example = json!({"policy": "all"})),
    responses(
        (status = 200, description = "Saved", body = ProxyPolicy),
        (status = 400, description = "`invalid_json` or `invalid_request` (policy is not \
            `phlix` or `all`)", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`server.not_owned`", body = ErrorBody),
        (status = 404, description = "`server.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn set_policy(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<ProxyPolicy>> {
    let policy = body
        .get("policy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    servers::set_proxy_policy(&core, &user.user.id, &server_id, policy).await?;
    Ok(Json(ProxyPolicy {
        policy: policy.to_owned(),
        server_id,
    }))
}

/// The JSON Web Key Set of the hub's enrollment keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    #[serde(serialize_with = "super::sorted_keys")]
    pub keys: Vec<crate::auth::keys::Jwk>,
}

/// `GET /.well-known/jwks.json` → the Ed25519 keys that verify enrollment tokens now (the
/// previous key too inside its rotation overlap). Cacheable for an hour; 120/60 s per IP.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "meta",
    summary = "The Ed25519 keys that verify enrollment tokens (SPEC F.4)",
    description = "The current key, and the previous one inside the 24 h after a rotation. \
        Cacheable for an hour; 120 fetches per 60 s per address.",
    responses(
        (status = 200, description = "The key set", body = Jwks,
            headers(("Cache-Control" = String, description = "`public, max-age=3600`"))),
        (status = 429, description = "`rate_limited`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn jwks(Ready(core): Ready, client: ClientInfo) -> ApiResult<Response> {
    let keys = published_keys(&core, &client.ip)?;
    let mut response = axum::Json(Jwks { keys }).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
