//! Server-facing routes (SPEC C.5, C.6, D, E): heartbeat, renew, info, deregister, subdomain,
//! and the two WebSocket signposts.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phlix_proto::server::ServerInfo;
use serde_json::{Map, Value, json};
use tracing::instrument;

use super::claims::mint_enrollment;
use super::error::{ApiError, ApiResult};
use super::extract::{EnrolledServer, Json, Path, PhlixProtocol, Ready, ServerBearer};
use crate::auth::now_unix;
use crate::heartbeat::HeartbeatAck;
use crate::state::Core;
use crate::store::{HeartbeatRecord, LibraryRow, StoreError};

/// Largest number of libraries one heartbeat may list.
pub const MAX_LIBRARIES: usize = 2000;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

fn int_field(body: &Map<String, Value>, name: &str) -> ApiResult<i64> {
    match body.get(name) {
        None | Some(Value::Null) => Err(bad(format!("HeartbeatDto \"{name}\" is required."))),
        Some(value) => value.as_i64().filter(|v| *v >= 0).ok_or_else(|| {
            bad(format!(
                "HeartbeatDto \"{name}\" must be a non-negative integer."
            ))
        }),
    }
}

fn string_field<'a>(body: &'a Map<String, Value>, name: &str, max: usize) -> ApiResult<&'a str> {
    let value = body.get(name).and_then(Value::as_str).ok_or_else(|| {
        bad(format!(
            "HeartbeatDto \"{name}\" is required and must be a string."
        ))
    })?;
    if value.is_empty() || value.len() > max {
        return Err(bad(format!(
            "HeartbeatDto \"{name}\" must be 1 to {max} bytes."
        )));
    }
    Ok(value)
}

/// Strict validation of a heartbeat body (SPEC D, J.5) into a record.
fn validate_heartbeat(server_id: &str, body: &Value, now: i64) -> ApiResult<HeartbeatRecord> {
    let body = body
        .as_object()
        .ok_or_else(|| bad("HeartbeatDto body must be a JSON object."))?;
    let body_server = string_field(body, "serverId", 64)?;
    if body_server != server_id {
        return Err(bad(
            "HeartbeatDto \"serverId\" does not match the server in the path.",
        ));
    }
    let version = string_field(body, "version", 32)?;
    let sent_at = int_field(body, "timestamp")?;
    let uptime_seconds = int_field(body, "uptimeSeconds")?;
    let active_sessions = int_field(body, "activeSessions")?;
    let active_transcodes = int_field(body, "activeTranscodes")?;
    let hostname_candidates_json = match body.get("hostnameCandidates") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let list = items
                .iter()
                .map(|v| v.as_str().filter(|s| s.len() <= 512).map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .filter(|l| l.len() <= 32)
                .ok_or_else(|| bad("HeartbeatDto \"hostnameCandidates\" must be at most 32 strings of at most 512 bytes."))?;
            Some(serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()))
        }
        Some(_) => {
            return Err(bad(
                "HeartbeatDto \"hostnameCandidates\" must be a list of strings.",
            ));
        }
    };
    let libraries = match body.get("libraries") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            if items.len() > MAX_LIBRARIES {
                return Err(bad(format!(
                    "HeartbeatDto \"libraries\" may list at most {MAX_LIBRARIES} libraries."
                )));
            }
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let entry = item
                    .as_object()
                    .ok_or_else(|| bad(format!("libraries[{i}] must be an object.")))?;
                let field = |name: &str| {
                    entry
                        .get(name)
                        .and_then(Value::as_str)
                        .filter(|v| !v.trim().is_empty() && v.len() <= 255)
                        .map(str::to_owned)
                        .ok_or_else(|| bad(format!("libraries[{i}].{name} must be a non-empty string of at most 255 bytes.")))
                };
                list.push(LibraryRow {
                    library_id: field("library_id")?,
                    library_name: field("library_name")?,
                });
            }
            Some(list)
        }
        Some(_) => return Err(bad("HeartbeatDto \"libraries\" must be a list.")),
    };
    let host_metrics_json = match body.get("hostMetrics") {
        None | Some(Value::Null) => None,
        Some(Value::Object(metrics)) => Some(validate_host_metrics(metrics)?),
        Some(_) => return Err(bad("HeartbeatDto \"hostMetrics\" must be an object.")),
    };
    Ok(HeartbeatRecord {
        server_id: server_id.to_owned(),
        version: version.to_owned(),
        sent_at,
        uptime_seconds,
        active_sessions,
        active_transcodes,
        hostname_candidates_json,
        host_metrics_json,
        libraries,
        received_at: now,
    })
}

/// Keeps the known `hostMetrics` keys (SPEC J.5), checks their types, drops unknown keys.
fn validate_host_metrics(metrics: &Map<String, Value>) -> ApiResult<String> {
    const FLOATS: [&str; 2] = ["cpuPercent", "load1"];
    const INTS: [&str; 6] = [
        "memUsedBytes",
        "memTotalBytes",
        "diskUsedBytes",
        "diskTotalBytes",
        "netRxBytes",
        "netTxBytes",
    ];
    let mut kept = Map::new();
    for key in FLOATS {
        if let Some(value) = metrics.get(key) {
            let number = value
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(format!("hostMetrics.{key} must be a non-negative number.")))?;
            kept.insert(key.to_owned(), json!(number));
        }
    }
    for key in INTS {
        if let Some(value) = metrics.get(key) {
            let number = value
                .as_u64()
                .ok_or_else(|| bad(format!("hostMetrics.{key} must be a non-negative integer.")))?;
            kept.insert(key.to_owned(), json!(number));
        }
    }
    Ok(Value::Object(kept).to_string())
}

fn parse_body(bytes: &Bytes) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(|err| bad(format!("Invalid JSON body: {err}")))
}

/// `POST /api/v1/servers/{id}/heartbeat` → 200 `{"status":"ok"}` once the heartbeat is
/// committed.
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn heartbeat(
    Ready(core): Ready,
    _: PhlixProtocol,
    server: EnrolledServer,
    Path(server_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    server.require_server(&server_id)?;
    let now = now_unix();
    if let Err(retry_after) = core.limits.heartbeat.check(&server_id, now) {
        return Err(ApiError::RateLimited { retry_after });
    }
    let record = validate_heartbeat(&server_id, &parse_body(&body)?, now)?;
    match core.heartbeats.submit(record).await {
        HeartbeatAck::Stored => Ok(Json(json!({"status": "ok"}))),
        HeartbeatAck::UnknownServer => Err(ApiError::ServerNotFound),
        HeartbeatAck::Failed(err) => Err(match &*err {
            StoreError::Unavailable(_) => {
                ApiError::StoreUnavailable(StoreError::Unavailable(sqlx::Error::PoolTimedOut))
            }
            _ => ApiError::Internal(anyhow::anyhow!("heartbeat batch failed: {err}")),
        }),
    }
}

async fn existing_server(core: &Core, server_id: &str) -> ApiResult<crate::store::ServerRow> {
    core.store
        .server_by_id(server_id)
        .await?
        .ok_or(ApiError::ServerNotFound)
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
    existing_server(&core, &server_id).await?;
    let token = mint_enrollment(&core, &server_id).await?;
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
    Ok(Json(existing_server(&core, &server_id).await?.into_info()))
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
    core.access.forget_server(&server_id);
    if !core.store.delete_server(&server_id).await? {
        return Err(ApiError::ServerNotFound);
    }
    tracing::info!("server deregistered itself");
    Ok(StatusCode::NO_CONTENT)
}

/// A DNS label: 1–63 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
#[must_use]
pub fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// The default subdomain of a server: its name as a DNS label plus 6 characters of its id.
#[must_use]
pub fn default_subdomain(server_name: &str, server_id: &str) -> String {
    let mut slug = String::new();
    for c in server_name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let suffix: String = server_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect::<String>()
        .to_lowercase();
    if slug.is_empty() {
        format!("server-{suffix}")
    } else {
        format!("{slug}-{suffix}")
    }
}

/// `POST /api/v1/servers/{id}/subdomain` (optional body `{"subdomain"}`) → 200
/// `{subdomain, fqdn, tls_cert_path: "", tls_key_path: ""}`.
#[instrument(skip_all, fields(server_id = %server_id))]
pub async fn claim_subdomain(
    Ready(core): Ready,
    ServerBearer(server): ServerBearer,
    Path(server_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    server.require_server(&server_id)?;
    let row = existing_server(&core, &server_id).await?;
    let requested = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        parse_body(&body)?
            .get("subdomain")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let subdomain = match requested {
        Some(label) if is_dns_label(&label) => label,
        Some(_) => {
            return Err(bad(
                "subdomain must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            ));
        }
        None => row
            .subdomain
            .clone()
            .unwrap_or_else(|| default_subdomain(&row.server_name, &row.id)),
    };
    match core
        .store
        .set_subdomain(&server_id, Some(&subdomain), now_unix())
        .await
        .inspect(|_| core.access.forget_server(&server_id))
    {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict {
                code: "subdomain_taken",
                message: format!("{subdomain} is taken"),
            });
        }
        Err(err) => return Err(err.into()),
    }
    let domain = core
        .config
        .public_domain
        .clone()
        .unwrap_or_else(|| core.config.ws_host.clone());
    Ok(Json(json!({
        "subdomain": subdomain,
        "fqdn": format!("{subdomain}.{domain}"),
        "tls_cert_path": "",
        "tls_key_path": "",
    })))
}

/// `DELETE /api/v1/servers/{id}/subdomain` → 204.
pub async fn release_subdomain(
    Ready(core): Ready,
    ServerBearer(server): ServerBearer,
    Path(server_id): Path<String>,
) -> ApiResult<StatusCode> {
    server.require_server(&server_id)?;
    let released = core
        .store
        .set_subdomain(&server_id, None, now_unix())
        .await?;
    core.access.forget_server(&server_id);
    if !released {
        return Err(ApiError::ServerNotFound);
    }
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
    let endpoint = format!("ws://{}:{}", core.config.ws_host, core.tunnel_port);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_are_dns_labels() {
        assert_eq!(
            default_subdomain("Alice's NAS", "4f1c2d3e-aaaa"),
            "alice-s-nas-4f1c2d"
        );
        assert_eq!(default_subdomain("!!!", "abcdef12"), "server-abcdef");
        assert!(is_dns_label(&default_subdomain(&"x".repeat(300), "abcdef")));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label(""));
    }

    #[test]
    fn heartbeats_are_validated_strictly() {
        let ok = json!({"serverId": "s", "version": "1", "timestamp": 1, "uptimeSeconds": 2,
            "activeSessions": 0, "activeTranscodes": 0, "libraries": [{"library_id": "l", "library_name": "M"}],
            "hostMetrics": {"cpuPercent": 1.5, "memUsedBytes": 10, "extra": "ignored"}});
        let record = validate_heartbeat("s", &ok, 9).unwrap();
        assert_eq!(record.libraries.unwrap().len(), 1);
        assert_eq!(
            record.host_metrics_json.as_deref(),
            Some(r#"{"cpuPercent":1.5,"memUsedBytes":10}"#)
        );
        for (patch, needle) in [
            (json!({"uptimeSeconds": 1.5}), "uptimeSeconds"),
            (json!({"activeSessions": "3"}), "activeSessions"),
            (json!({"timestamp": null}), "timestamp"),
            (json!({"version": ""}), "version"),
            (json!({"serverId": "other"}), "serverId"),
            (
                json!({"libraries": [{"library_id": "", "library_name": "M"}]}),
                "library_id",
            ),
            (json!({"libraries": ["x"]}), "libraries[0]"),
            (json!({"hostnameCandidates": [1]}), "hostnameCandidates"),
            (json!({"hostMetrics": {"cpuPercent": "hot"}}), "cpuPercent"),
        ] {
            let mut body = ok.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            let err = validate_heartbeat("s", &body, 9).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should name {needle}");
        }
    }
}
