//! Server-facing routes (SPEC C.5, C.6, D, E): heartbeat, renew, info, deregister, subdomain,
//! and the two WebSocket signposts.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phlix_proto::server::ServerInfo;
use serde_json::{Value, json};
use tracing::instrument;

use crate::auth::now_unix;
use crate::domain::Core;
use crate::domain::DomainError;
use crate::domain::claims::mint_enrollment;
use crate::domain::heartbeats::HeartbeatAck;
use crate::domain::heartbeats::{parse_body, validate_heartbeat};
use crate::http::error::ApiResult;
use crate::http::extract::{EnrolledServer, Json, Path, PhlixProtocol, Ready, ServerBearer};
use crate::store::StoreError;

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
        return Err(DomainError::RateLimited { retry_after }.into());
    }
    let record = validate_heartbeat(&server_id, &parse_body(&body)?, now)?;
    match core.heartbeats.submit(record).await {
        HeartbeatAck::Stored => Ok(Json(json!({"status": "ok"}))),
        HeartbeatAck::UnknownServer => Err(DomainError::ServerNotFound.into()),
        HeartbeatAck::Failed(err) => Err(match &*err {
            StoreError::Unavailable(_) => {
                DomainError::Unavailable(StoreError::Unavailable(sqlx::Error::PoolTimedOut))
            }
            _ => DomainError::Internal(anyhow::anyhow!("heartbeat batch failed: {err}")),
        }
        .into()),
    }
}

async fn existing_server(core: &Core, server_id: &str) -> ApiResult<crate::store::ServerRow> {
    core.store
        .server_by_id(server_id)
        .await?
        .ok_or(DomainError::ServerNotFound.into())
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
        return Err(DomainError::ServerNotFound.into());
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
            return Err(DomainError::BadRequest(
                "subdomain must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'".into(),
            )
            .into());
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
            return Err(DomainError::Conflict {
                code: "subdomain_taken",
                message: format!("{subdomain} is taken"),
            }
            .into());
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
        return Err(DomainError::ServerNotFound.into());
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
}
