//! Server-facing routes (SPEC C.5, C.6, D, E): heartbeat, renew, info, deregister, subdomain,
//! and the two WebSocket signposts.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;
use phlix_proto::server::ServerInfo;
use serde::Serialize;
use serde_json::Value;
use tracing::instrument;
use utoipa::ToSchema;

use crate::domain::DomainError;
use crate::domain::heartbeats;
use crate::domain::servers;
use crate::http::error::ApiResult;
use crate::http::extract::{
    EnrolledServer, Json, Path, PhlixProtocol, RawBody, Ready, ServerBearer,
};

/// A heartbeat (SPEC D, J.5): checked strictly, field by field, so a refused heartbeat writes
/// nothing and its 400 names the field.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct HeartbeatRequest {
    /// Must equal the server id of the path.
    pub server_id: String,
    /// 1–32 bytes.
    pub version: String,
    /// Unix seconds when the server sent it.
    #[schema(minimum = 0)]
    pub timestamp: i64,
    #[schema(minimum = 0)]
    pub uptime_seconds: i64,
    #[schema(minimum = 0)]
    pub active_sessions: i64,
    #[schema(minimum = 0)]
    pub active_transcodes: i64,
    /// At most 32 URLs of at most 512 bytes.
    pub hostname_candidates: Option<Vec<String>>,
    /// At most 2000 libraries.
    pub libraries: Option<Vec<crate::store::LibraryRow>>,
    /// Host metrics: `cpuPercent`, `load1` (non-negative numbers), `memUsedBytes`,
    /// `memTotalBytes`, `diskUsedBytes`, `diskTotalBytes`, `netRxBytes`, `netTxBytes`
    /// (non-negative integers); other keys are dropped.
    #[schema(value_type = Option<Object>)]
    pub host_metrics: Option<Value>,
}

/// `{"status":"ok"}`: the heartbeat is committed.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatAck {
    /// Always `ok`.
    pub status: &'static str,
}

/// A fresh enrollment token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Renewed {
    pub enrollment_jwt: String,
    /// Always 604800 (the PHP hub's figure); the token's own `exp` is the truth.
    pub expires_in: i64,
}

/// `POST /api/v1/servers/{id}/heartbeat` → 200 `{"status":"ok"}` once the heartbeat is
/// committed.
#[utoipa::path(
    post,
    path = "/api/v1/servers/{id}/heartbeat",
    tag = "servers",
    summary = "A server reports it is alive (SPEC D)",
    description = "Answered once the heartbeat is committed. 30 heartbeats per 60 s per server.",
    params(
        ("id" = String, Path, description = "Server id"),
        ("Accept-Phlix-Protocol" = String, Header, pattern = "^v1$", description = "Must be `v1`")
    ),
    request_body(
        content = HeartbeatRequest,
        example = json!({"serverId": "5f0c6d1e-8a4b-4c1e-9a57-0d3f1b2c4e6a", "version": "0.45.0",
            "timestamp": 1767225600, "uptimeSeconds": 3600, "activeSessions": 1,
            "activeTranscodes": 0, "libraries": [{"library_id": "lib-movies", "library_name": "Movies"}],
            "hostMetrics": {"cpuPercent": 12.5, "memUsedBytes": 1073741824}})
    ),
    responses(
        (status = 200, description = "Stored", body = HeartbeatAck),
        (status = 400, description = "`HUB_PROTOCOL_UNSUPPORTED`, or `Bad Request` with a \
            message naming the field", body = ErrorBody),
        (status = 401, description = "`ENROLLMENT_TOKEN_EXPIRED`: no valid enrollment token",
            body = ErrorBody),
        (status = 403, description = "`AUTHORIZATION_FAILED`: the token is another server's",
            body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("enrollmentAuth" = []))
)]
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn heartbeat(
    Ready(core): Ready,
    _: PhlixProtocol,
    server: EnrolledServer,
    Path(server_id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<HeartbeatAck>> {
    server.require_server(&server_id)?;
    heartbeats::accept(&core, &server_id, &body).await?;
    Ok(Json(HeartbeatAck { status: "ok" }))
}

/// `POST /api/v1/servers/{id}/renew` → 200 `{"enrollment_jwt","expires_in":604800}` (the
/// PHP hub reports 604800 whatever the TTL setting; the token's own `exp` is right).
#[utoipa::path(
    post,
    path = "/api/v1/servers/{id}/renew",
    tag = "servers",
    summary = "A server trades its enrollment token for a fresh one",
    params(
        ("id" = String, Path, description = "Server id"),
        ("Accept-Phlix-Protocol" = String, Header, pattern = "^v1$", description = "Must be `v1`")
    ),
    responses(
        (status = 200, description = "A fresh token", body = Renewed),
        (status = 400, description = "`HUB_PROTOCOL_UNSUPPORTED`", body = ErrorBody),
        (status = 401, description = "`ENROLLMENT_TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "`AUTHORIZATION_FAILED`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ),
    security(("enrollmentAuth" = []))
)]
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn renew(
    Ready(core): Ready,
    _: PhlixProtocol,
    server: EnrolledServer,
    Path(server_id): Path<String>,
) -> ApiResult<Json<Renewed>> {
    server.require_server(&server_id)?;
    let token = servers::renew(&core, &server_id).await?;
    Ok(Json(Renewed {
        enrollment_jwt: token,
        expires_in: 604_800,
    }))
}

/// `GET /api/v1/servers/{id}/info` → `ServerInfoDto`.
#[utoipa::path(
    get,
    path = "/api/v1/servers/{id}/info",
    tag = "servers",
    summary = "The server's own directory entry",
    params(
        ("id" = String, Path, description = "Server id"),
        ("Accept-Phlix-Protocol" = String, Header, pattern = "^v1$", description = "Must be `v1`")
    ),
    responses(
        (status = 200, description = "The directory entry", body = ServerInfo),
        (status = 400, description = "`HUB_PROTOCOL_UNSUPPORTED`", body = ErrorBody),
        (status = 401, description = "`ENROLLMENT_TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "`AUTHORIZATION_FAILED`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ),
    security(("enrollmentAuth" = []))
)]
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
#[utoipa::path(
    delete,
    path = "/api/v1/servers/{id}",
    tag = "servers",
    summary = "A server deregisters itself",
    params(
        ("id" = String, Path, description = "Server id"),
        ("Accept-Phlix-Protocol" = String, Header, pattern = "^v1$", description = "Must be `v1`")
    ),
    responses(
        (status = 204, description = "Removed from the directory"),
        (status = 400, description = "`HUB_PROTOCOL_UNSUPPORTED`", body = ErrorBody),
        (status = 401, description = "`ENROLLMENT_TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "`AUTHORIZATION_FAILED`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ),
    security(("enrollmentAuth" = []))
)]
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

/// Optional body of `POST /api/v1/servers/{id}/subdomain`.
#[derive(Debug, ToSchema)]
pub struct SubdomainRequest {
    /// The label wanted (a DNS label); absent or null: the hub picks one.
    pub subdomain: Option<String>,
}

/// The server's subdomain under the hub's public domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubdomainClaim {
    pub fqdn: String,
    pub subdomain: String,
    /// Always empty: the hub terminates TLS itself.
    pub tls_cert_path: &'static str,
    /// Always empty.
    pub tls_key_path: &'static str,
}

/// `POST /api/v1/servers/{id}/subdomain` (optional body `{"subdomain"}`) → 200
/// `{subdomain, fqdn, tls_cert_path: "", tls_key_path: ""}`.
#[utoipa::path(
    post,
    path = "/api/v1/servers/{id}/subdomain",
    tag = "servers",
    summary = "A server claims a subdomain of the hub's public domain",
    params(("id" = String, Path, description = "Server id")),
    request_body(
        content = Option<SubdomainRequest>,
        description = "Optional; when present, JSON with `Content-Type: application/json`",
        example = json!({"subdomain": "living-room"})
    ),
    responses(
        (status = 200, description = "The subdomain now routes to this server", body = SubdomainClaim),
        (status = 400, description = "`Bad Request`: the body is not a JSON object with a string \
            `subdomain`, the label is not valid, or the hub has no public domain", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: missing or invalid enrollment token",
            body = ErrorBody),
        (status = 403, description = "`AUTHORIZATION_FAILED`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`subdomain_taken`", body = ErrorBody),
    ),
    security(("enrollmentAuth" = []))
)]
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn claim_subdomain(
    Ready(core): Ready,
    ServerBearer(server): ServerBearer,
    Path(server_id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<SubdomainClaim>> {
    server.require_server(&server_id)?;
    let requested = requested_subdomain(&headers, &body)?;
    let claimed = servers::claim_subdomain(&core, &server_id, requested.as_deref()).await?;
    Ok(Json(SubdomainClaim {
        fqdn: claimed.fqdn,
        subdomain: claimed.subdomain,
        tls_cert_path: "",
        tls_key_path: "",
    }))
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
#[utoipa::path(
    delete,
    path = "/api/v1/servers/{id}/subdomain",
    tag = "servers",
    summary = "A server gives its subdomain up",
    params(("id" = String, Path, description = "Server id")),
    responses(
        (status = 204, description = "Released (also when it had none)"),
        (status = 401, description = "`UNAUTHORIZED`", body = ErrorBody),
        (status = 403, description = "`AUTHORIZATION_FAILED`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ),
    security(("enrollmentAuth" = []))
)]
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

/// The answer of a WebSocket signpost: where the WebSocket really is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Signpost {
    /// `relay.ws_http_endpoint` or `relay.client_ws_endpoint`.
    pub code: &'static str,
    /// `UPGRADE_REQUIRED` (426) or `NOT_IMPLEMENTED_VIA_HTTP` (501).
    pub error: &'static str,
    pub message: String,
    /// The `ws://` or `wss://` URL to connect to.
    pub ws_endpoint: String,
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
    let body = Signpost {
        code,
        error,
        message,
        ws_endpoint: ws_endpoint.to_owned(),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(ws_endpoint) {
        response.headers_mut().insert("x-ws-endpoint", value);
    }
    response
}

/// `POST /api/v1/servers/{id}/relay`: signpost to the tunnel port (401 without a valid
/// enrollment token, 426 without `Upgrade: websocket`, else 501).
#[utoipa::path(
    post,
    path = "/api/v1/servers/{id}/relay",
    tag = "servers",
    summary = "Signpost to the tunnel listener",
    description = "The relay tunnel is a WebSocket on the tunnel port (8802), not on this port: \
        426 without `Upgrade: websocket`, 501 with it; both name the endpoint in `ws_endpoint` \
        and `X-WS-Endpoint`.",
    params(("id" = String, Path, description = "Server id")),
    responses(
        (status = 401, description = "`UNAUTHORIZED`", body = ErrorBody),
        (status = 403, description = "`AUTHORIZATION_FAILED`", body = ErrorBody),
        (status = 426, description = "`UPGRADE_REQUIRED`", body = Signpost,
            headers(("X-WS-Endpoint" = String, description = "The tunnel endpoint"),
                ("Link" = String, description = "Help page, `rel=\"help\"`"))),
        (status = 501, description = "`NOT_IMPLEMENTED_VIA_HTTP`", body = Signpost,
            headers(("X-WS-Endpoint" = String, description = "The tunnel endpoint"))),
    ),
    security(("enrollmentAuth" = []))
)]
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
#[utoipa::path(
    get,
    path = "/client/{server_id}",
    tag = "relay",
    summary = "Client mount: a WebSocket on the client listener (signpost on this port)",
    description = "On the client listener (port 8803, the `client_ws_endpoint` of \
        `…/access-info`) this path upgrades to the client-mount WebSocket (101) when it carries \
        a client relay token (`Authorization: Bearer`, or the first `Sec-WebSocket-Protocol` \
        entry that is not `bearer`); there it refuses with 401 `relay.token_invalid`, 426 \
        `relay.websocket_required`, 429 `rate_limited`/`relay.*` or 503 `server_offline`. On \
        the API port it is only a signpost: 426 without `Upgrade: websocket`, 501 with it.",
    params(("server_id" = String, Path, description = "Server id")),
    responses(
        (status = 101, description = "Client listener only: the mount is open"),
        (status = 426, description = "`UPGRADE_REQUIRED` (API port) or \
            `relay.websocket_required` (client listener)", body = Signpost,
            headers(("X-WS-Endpoint" = String, description = "The client-mount endpoint"))),
        (status = 501, description = "`NOT_IMPLEMENTED_VIA_HTTP` (API port, upgrade requested)",
            body = Signpost,
            headers(("X-WS-Endpoint" = String, description = "The client-mount endpoint"))),
    ),
    security((), ("relayToken" = []))
)]
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
