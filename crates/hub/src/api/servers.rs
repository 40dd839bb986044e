//! Server-facing routes (SPEC C.5, C.6, D, E): heartbeat, renew, info, deregister, subdomain,
//! and the two WebSocket signposts.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phlix_proto::server::ServerInfo;
use serde_json::{Value, json};
use tracing::instrument;

use crate::domain::DomainError;
use crate::domain::heartbeats;
use crate::domain::servers;
use crate::http::error::ApiResult;
use crate::http::extract::{
    EnrolledServer, Json, Path, PhlixProtocol, RawBody, Ready, ServerBearer,
};

/// `POST /api/v1/servers/{id}/heartbeat` → 200 `{"status":"ok"}` once the heartbeat is
/// committed.
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn heartbeat(
    Ready(core): Ready,
    _: PhlixProtocol,
    server: EnrolledServer,
    Path(server_id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    server.require_server(&server_id)?;
    heartbeats::accept(&core, &server_id, &body).await?;
    Ok(Json(json!({"status": "ok"})))
}

/// `POST /api/v1/servers/{id}/renew` → 200 `{"enrollment_jwt","expires_in":604800}` (the
/// PHP hub reports 604800 whatever the TTL setting; the token's own `exp` is right).
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn renew(
    Ready(core): Ready,
    _: PhlixProtocol,
    server: EnrolledServer,
    Path(server_id): Path<String>,
) -> ApiResult<Json<Value>> {
    server.require_server(&server_id)?;
    let token = servers::renew(&core, &server_id).await?;
    Ok(Json(
        json!({"enrollment_jwt": token, "expires_in": 604_800}),
    ))
}

/// `GET /api/v1/servers/{id}/info` → `ServerInfoDto`.
pub async fn info(
    Ready(core): Ready,
    _: PhlixProtocol,
    server: EnrolledServer,
    Path(server_id): Path<String>,
) -> ApiResult<Json<ServerInfo>> {
    server.require_server(&server_id)?;
    Ok(Json(
        servers::existing(&core, &server_id).await?.into_info(),
    ))
}

/// `DELETE /api/v1/servers/{id}` → 204: the server deregisters itself.
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn deregister(
    Ready(core): Ready,
    _: PhlixProtocol,
    server: EnrolledServer,
    Path(server_id): Path<String>,
) -> ApiResult<StatusCode> {
    server.require_server(&server_id)?;
    servers::deregister(&core, &server_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/servers/{id}/subdomain` (optional body `{"subdomain"}`) → 200
/// `{subdomain, fqdn, tls_cert_path: "", tls_key_path: ""}`.
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn claim_subdomain(
    Ready(core): Ready,
    ServerBearer(server): ServerBearer,
    Path(server_id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    server.require_server(&server_id)?;
    let requested = requested_subdomain(&headers, &body)?;
    let claimed = servers::claim_subdomain(&core, &server_id, requested.as_deref()).await?;
    Ok(Json(json!({
        "subdomain": claimed.subdomain,
        "fqdn": claimed.fqdn,
        "tls_cert_path": "",
        "tls_key_path": "",
    })))
}

/// The optional `{"subdomain": "<label>"}` body: empty, or a JSON object sent as
/// `application/json` whose `subdomain` is a string or null. Anything else is a 400 rather
/// than a body silently ignored.
fn requested_subdomain(headers: &HeaderMap, body: &[u8]) -> Result<Option<String>, DomainError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(DomainError::BadRequest(
            "The body must be JSON with Content-Type: application/json.".into(),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| DomainError::BadRequest(format!("Invalid JSON body: {err}")))?;
    let Value::Object(fields) = value else {
        return Err(DomainError::BadRequest(
            "The body must be a JSON object such as {\"subdomain\":\"my-server\"}.".into(),
        ));
    };
    match fields.get("subdomain") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(label)) => Ok(Some(label.clone())),
        Some(_) => Err(DomainError::BadRequest(
            "\"subdomain\" must be a string.".into(),
        )),
    }
}

/// `DELETE /api/v1/servers/{id}/subdomain` → 204.
pub async fn release_subdomain(
    Ready(core): Ready,
    ServerBearer(server): ServerBearer,
    Path(server_id): Path<String>,
) -> ApiResult<StatusCode> {
    server.require_server(&server_id)?;
    servers::release_subdomain(&core, &server_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn signpost(upgrade: bool, code: &'static str, ws_endpoint: &str, what: &str) -> Response {
    let (status, error, message) = if upgrade {
        (
            StatusCode::NOT_IMPLEMENTED,
            "NOT_IMPLEMENTED_VIA_HTTP",
            format!("{what} WebSocket is served on its own port; connect to ws_endpoint."),
        )
    } else {
        (
            StatusCode::UPGRADE_REQUIRED,
            "UPGRADE_REQUIRED",
            format!("{what} is a WebSocket endpoint; connect to ws_endpoint."),
        )
    };
    let body =
        json!({"error": error, "code": code, "message": message, "ws_endpoint": ws_endpoint});
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(ws_endpoint) {
        response.headers_mut().insert("x-ws-endpoint", value);
    }
    response
}

/// `POST /api/v1/servers/{id}/relay`: signpost to the tunnel port (401 without a valid
/// enrollment token, 426 without `Upgrade: websocket`, else 501).
pub async fn relay_signpost(
    Ready(core): Ready,
    ServerBearer(server): ServerBearer,
    Path(server_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    server.require_server(&server_id)?;
    let endpoint = core.tunnel_ws_endpoint();
    let mut response = signpost(
        is_websocket_upgrade(&headers),
        "relay.ws_http_endpoint",
        &endpoint,
        "The relay tunnel",
    );
    if let Ok(link) = HeaderValue::from_str(&format!(
        "<{}/docs/relay>; rel=\"help\"",
        core.config.public_url
    )) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// `GET /client/{server_id}`: signpost to the client-mount port (426 / 501).
pub async fn client_signpost(
    Ready(core): Ready,
    Path(server_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let endpoint = core.client_ws_endpoint(&server_id);
    signpost(
        is_websocket_upgrade(&headers),
        "relay.client_ws_endpoint",
        &endpoint,
        "The client mount",
    )
}
