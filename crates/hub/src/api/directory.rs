//! The user side of the server directory (SPEC E "Me / servers", B.2 relay tokens, J.1
//! proxy policy), the JWKS and the hub settings.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use phlix_proto::server::ServerInfo;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tracing::instrument;

use super::error::{ApiError, ApiResult};
use super::extract::{AdminUser, ClientInfo, CurrentUser, Json, Path, Ready};
use crate::auth::keys::Jwk;
use crate::auth::now_unix;
use crate::settings;
use crate::state::Core;
use crate::store::{HeartbeatRow, LibraryRow, ServerRow, StoreError, UserLibraryRow};

/// Lifetime of a client relay token.
pub const RELAY_TOKEN_TTL_SECS: i64 = 3600;

/// The server `server_id` if `user_id` owns it: 404 `server.not_found`, 403 `server.not_owned`.
pub(crate) async fn owned_server(
    core: &Core,
    user_id: &str,
    server_id: &str,
) -> ApiResult<ServerRow> {
    owner_check(core.store.server_by_id(server_id).await?, user_id)
}

/// 404 `server.not_found` for no server, 403 `server.not_owned` for another user's.
pub(crate) fn owner_check(server: Option<ServerRow>, user_id: &str) -> ApiResult<ServerRow> {
    let server = server.ok_or(ApiError::NotFound("server.not_found"))?;
    if server.user_id != user_id {
        return Err(ApiError::Forbidden("server.not_owned"));
    }
    Ok(server)
}

/// `GET /api/v1/me/servers` → `{"servers":[ServerInfoDto]}`.
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<Value>> {
    let servers: Vec<ServerInfo> = core
        .store
        .servers_of_user(&user.user.id)
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
    let server = owned_server(&core, &user.user.id, &server_id).await?;
    let libraries = core.store.libraries_of_server(&server_id).await?;
    let recent_heartbeats = core
        .store
        .recent_heartbeats(&server_id, 20)
        .await?
        .into_iter()
        .map(HeartbeatView::from)
        .collect();
    Ok(Json(ServerDetail {
        enrolled_at: server.enrolled_at,
        proxy_policy: server.proxy_policy.clone(),
        info: server.into_info(),
        libraries,
        recent_heartbeats,
    }))
}

/// `DELETE /api/v1/me/servers/{id}` → 204: the owner removes a server.
#[instrument(skip_all, fields(user_id = %user.user.id, server_id = %server_id))]
pub async fn remove(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
) -> ApiResult<StatusCode> {
    owned_server(&core, &user.user.id, &server_id).await?;
    core.store.delete_server(&server_id).await?;
    core.access.forget_server(&server_id);
    tracing::info!("server removed by its owner");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me/servers/{id}/access-info` → how a client reaches the server: directly
/// (its hostname candidates) or through the hub.
pub async fn access_info(
    Ready(core): Ready,
    user: CurrentUser,
    Path(server_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let server = owned_server(&core, &user.user.id, &server_id).await?;
    let config = &core.config;
    let subdomain_url = match (&config.public_domain, &server.subdomain) {
        (Some(domain), Some(sub)) => Some(format!("{}://{sub}.{domain}", config.public_scheme())),
        _ => None,
    };
    let info = server.into_info();
    Ok(Json(json!({
        "server_id": info.server_id,
        "status": info.status,
        "direct": { "hostname_candidates": info.hostname_candidates },
        "relay": {
            "active": info.relay_active,
            "client_ws_endpoint": core.client_ws_endpoint(&info.server_id),
            "http_proxy_base": core.proxy_base(&info.server_id),
            "token_endpoint": format!("{}/api/v1/me/servers/{}/relay-token", config.public_url, info.server_id),
        },
        "subdomain": info.subdomain,
        "subdomain_url": subdomain_url,
    })))
}

/// `GET /api/v1/me/libraries` → `{"libraries":[{server_id, server_name, library_id,
/// library_name}]}` across the user's servers.
pub async fn libraries(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<Value>> {
    let libraries: Vec<UserLibraryRow> = core.store.libraries_of_user(&user.user.id).await?;
    Ok(Json(json!({ "libraries": libraries })))
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
    owned_server(&core, &user.user.id, &server_id).await?;
    let (token, expires_at) = mint_relay_token(&core, &user.user.id, &server_id, &client).await?;
    let body = json!({"token": token, "expires_at": expires_at, "server_id": server_id});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Mints a client relay token for a server the caller has checked `user_id` may use: the
/// token (shown once) and its expiry. Only its SHA-256 is stored.
///
/// # Errors
/// Database failures only.
pub(crate) async fn mint_relay_token(
    core: &Core,
    user_id: &str,
    server_id: &str,
    client: &ClientInfo,
) -> ApiResult<(String, i64)> {
    let token = URL_SAFE_NO_PAD.encode(crate::auth::random_bytes::<32>());
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let now = now_unix();
    let expires_at = now + RELAY_TOKEN_TTL_SECS;
    let id = uuid::Uuid::new_v4().to_string();
    core.store
        .insert_relay_token(&id, &hash, user_id, server_id, expires_at, now)
        .await?;
    tracing::info!(target: "audit", event = "relay.token.minted", %server_id, ip = %client.ip, "audit");
    Ok((token, expires_at))
}

/// `GET /.well-known/jwks.json` → the Ed25519 keys that verify enrollment tokens now (the
/// previous key too inside its rotation overlap). Cacheable for an hour; 120/60 s per IP.
pub async fn jwks(Ready(core): Ready, client: ClientInfo) -> ApiResult<Response> {
    let now = now_unix();
    if let Err(retry_after) = core.limits.jwks.check(&client.ip, now) {
        return Err(ApiError::RateLimited { retry_after });
    }
    let ring = core.keys.current();
    let keys: Vec<Jwk> = ring
        .verifying_keys(now)
        .into_iter()
        .map(|k| k.jwk())
        .collect();
    let mut response = axum::Json(json!({ "keys": keys })).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}

/// The settings document: current values and their schema.
async fn settings_document(core: &Core) -> ApiResult<Value> {
    let mut values = Map::new();
    let mut schema = Vec::new();
    for setting in settings::ALL {
        values.insert(
            setting.key.to_owned(),
            json!(setting.get(&core.store).await?),
        );
        schema.push(json!({
            "key": setting.key, "type": "integer", "default": setting.default,
            "min": setting.min, "max": setting.max, "restart": false,
        }));
    }
    Ok(json!({ "settings": values, "schema": schema }))
}

/// `GET /api/v1/me/hub-settings` (alias `/api/v1/admin/settings`), admins only.
pub async fn get_settings(Ready(core): Ready, _: AdminUser) -> ApiResult<Json<Value>> {
    Ok(Json(settings_document(&core).await?))
}

/// `PUT /api/v1/me/hub-settings` `{"settings":{key: int}}` (or the bare map). Every key is
/// checked before any is written: an unknown key or an out-of-range value changes nothing.
#[instrument(skip_all, fields(user_id = %admin.0.user.id))]
pub async fn put_settings(
    Ready(core): Ready,
    admin: AdminUser,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let map = match body.get("settings") {
        Some(Value::Object(map)) => map,
        _ => body.as_object().ok_or_else(|| ApiError::Invalid {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: "body must be {\"settings\": {key: value}}".into(),
        })?,
    };
    let mut updates = Vec::new();
    for (key, value) in map {
        let setting =
            settings::ALL
                .iter()
                .find(|s| s.key == key)
                .ok_or_else(|| ApiError::Invalid {
                    status: StatusCode::BAD_REQUEST,
                    code: "unknown_setting",
                    message: format!("{key} is not a hub setting"),
                })?;
        let number = value
            .as_i64()
            .filter(|v| setting.accepts(*v))
            .ok_or_else(|| ApiError::Invalid {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid_setting",
                message: format!(
                    "{key} must be an integer from {} to {}",
                    setting.min, setting.max
                ),
            })?;
        updates.push((setting.key, number));
    }
    save_settings(&core, &updates).await?;
    Ok(Json(settings_document(&core).await?))
}

/// Writes already-validated setting values.
///
/// # Errors
/// Database failures only.
pub(crate) async fn save_settings(core: &Core, updates: &[(&'static str, i64)]) -> ApiResult<()> {
    let now = now_unix();
    for (key, value) in updates {
        core.store
            .put_setting(key, &value.to_string(), "int", now)
            .await
            .map_err(|e: StoreError| ApiError::from(e))?;
        tracing::info!(target: "audit", event = "settings.changed", key, value, "audit");
    }
    Ok(())
}
