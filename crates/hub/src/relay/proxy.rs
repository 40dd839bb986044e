//! HTTP-over-relay (SPEC A.5, J.1, J.2): an HTTP request to the hub becomes HTTP_REQUEST
//! frames down the server's tunnel (chunked form: HEAD, BODY ≤ 65 534 bytes each, END), and the
//! HTTP_RESPONSE chunks are streamed back to the client as they arrive.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use phlix_proto::frame::{Frame, FrameType};
use phlix_proto::relay_http::{self, MAX_BODY_CHUNK, RequestHead, ResponsePayload};
use tokio::sync::mpsc;

use super::tunnel::{send_data, send_data_together};
use super::{Outbound, ResponseEvent, TunnelHandle};

/// Default wait for the response head, and between response chunks.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Wait under `/hls` and `/dash` (streaming segments).
pub const STREAMING_TIMEOUT: Duration = Duration::from_secs(60);
/// Response chunks buffered per request before the request is cancelled as too slow.
const RESPONSE_QUEUE: usize = 256;

/// Request headers never forwarded (hop-by-hop, credentials, forwarding claims; SPEC A.5).
const STRIPPED: [&str; 19] = [
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "authorization",
    "cookie",
    "x-phlix-relay",
    "x-phlix-relay-user",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

/// Response headers the hub sets itself.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
];

/// An error answer of the proxy: `{"error": "<human sentence>", "code": "<code>"}` (SPEC A.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    NoTunnel,
    Offline,
    Timeout,
    BadGateway,
    ScopeDenied,
    InvalidPath,
    /// The caller lost access mid-request (share revoked, collaborators switched off).
    Revoked,
}

impl ProxyError {
    fn parts(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::NoTunnel => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is not connected to the hub.",
                "server.no_tunnel",
            ),
            Self::Offline => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The relay tunnel closed before the response completed.",
                "server.offline",
            ),
            Self::Revoked => (
                StatusCode::FORBIDDEN,
                "Access to this server was revoked.",
                "relay.access_revoked",
            ),
            Self::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "The server did not answer in time.",
                "gateway.timeout",
            ),
            Self::BadGateway => (
                StatusCode::BAD_GATEWAY,
                "The server sent an invalid response.",
                "relay.bad_response",
            ),
            Self::ScopeDenied => (
                StatusCode::FORBIDDEN,
                "This path is not reachable through the relay.",
                "proxy.scope_denied",
            ),
            Self::InvalidPath => (
                StatusCode::BAD_REQUEST,
                "The path is not allowed.",
                "proxy.invalid_path",
            ),
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let (status, error, code) = self.parts();
        (
            status,
            axum::Json(serde_json::json!({"error": error, "code": code})),
        )
            .into_response()
    }
}

fn has_bad_bytes(path: &str) -> bool {
    path.contains("..")
        || path.contains('\\')
        || path.contains("://")
        || path.contains('?')
        || path.contains('#')
        || path.bytes().any(|b| b < 0x20 || b == 0x7F)
}

/// One round of percent-decoding (invalid escapes are kept as they are).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SPEC A.5 path safety: one leading `/`, and no `..`, `\`, `://`, `?`, `#`, NUL or control
/// byte, checked on the raw path and again after one round of percent-decoding.
#[must_use]
pub fn path_is_safe(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !has_bad_bytes(path) && {
        let decoded = percent_decode(path);
        !decoded.starts_with("//") && !has_bad_bytes(&decoded)
    }
}

/// GET prefixes of the `phlix` policy (exact or `/`-delimited sub-paths).
const GET_PREFIXES: [&str; 8] = [
    "/api/v1/libraries",
    "/api/v1/media",
    "/api/v1/collections",
    "/api/v1/music",
    "/hls",
    "/dash",
    "/media",
    "/api/v1/transcode",
];

/// Write actions of the `phlix` policy: `/api/v1/media/{id}/<action>`.
const WRITE_ACTIONS: [&str; 7] = [
    "favorite",
    "rating",
    "like",
    "watched",
    "unwatched",
    "poster",
    "progress",
];

/// Paths never reachable through the relay, whatever the method.
const DENIED_PREFIXES: [&str; 3] = ["/api/v1/admin", "/api/v1/auth", "/api/v1/system"];

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether the `phlix` allowlist admits `method path`.
#[must_use]
pub fn phlix_policy_allows(method: &Method, path: &str) -> bool {
    if DENIED_PREFIXES.iter().any(|p| under(path, p)) {
        return false;
    }
    match *method {
        Method::GET => {
            GET_PREFIXES.iter().any(|p| under(path, p))
                || path.starts_with("/api/v1/users/") && path.ends_with("/avatar")
        }
        Method::POST | Method::PUT | Method::DELETE => {
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            matches!(segments.as_slice(), ["api", "v1", "media", id, action] if !id.is_empty() && WRITE_ACTIONS.contains(action))
                || matches!(segments.as_slice(), ["api", "v1", "playlists", ..])
                || (*method == Method::POST && under(path, "/api/v1/transcode/start"))
        }
        _ => false,
    }
}

/// What to forward.
pub struct ProxyRequest {
    pub method: Method,
    /// Starts with `/`.
    pub path: String,
    /// Without the leading `?`.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Body,
    pub user_id: String,
    pub client_ip: String,
    pub forwarded_proto: &'static str,
}

/// The headers of the relayed request: the client's, without [`STRIPPED`] and any
/// `x-forwarded-*` or `x-phlix-relay*`, then the hub's own forwarding headers and trust markers.
fn forwarded_headers(request: &ProxyRequest) -> std::collections::BTreeMap<String, String> {
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in &request.headers {
        let name = name.as_str();
        if STRIPPED.contains(&name)
            || name.starts_with("x-forwarded-")
            || name.starts_with("x-phlix-relay")
        {
            continue;
        }
        if let Ok(value) = value.to_str() {
            headers
                .entry(name.to_owned())
                .and_modify(|existing: &mut String| {
                    existing.push_str(", ");
                    existing.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
    }
    if let Some(host) = request.headers.get("host").and_then(|h| h.to_str().ok()) {
        headers.insert("x-forwarded-host".into(), host.to_owned());
    }
    headers.insert("x-forwarded-for".into(), request.client_ip.clone());
    headers.insert(
        "x-forwarded-proto".into(),
        request.forwarded_proto.to_owned(),
    );
    // The trust markers real Phlix servers read, spelled as the PHP hub spells them (SPEC A.5).
    headers.insert("X-Phlix-Relay".into(), "1".into());
    headers.insert("X-Phlix-Relay-User".into(), request.user_id.clone());
    headers
}

/// Cancels the request on the server unless it completed.
struct RequestGuard {
    meter: std::sync::Arc<super::UserMeter>,
    relay: super::Relay,
    tunnel: TunnelHandle,
    id: u32,
    done: bool,
    /// The caller's hold on the server; cancelled when their access ends.
    grant: super::RelayGrant,
}

impl RequestGuard {
    /// The response ended normally: nothing to cancel.
    fn complete(mut self) {
        self.done = true;
    }

    /// The whole announced body went out (hyper stops polling at `Content-Length`, so END may
    /// never be read): nothing to cancel either.
    fn mark_done(&mut self) {
        self.done = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.tunnel.requests.forget(self.id) && !self.done {
            let _ = self.tunnel.control.try_send(Outbound::Frame(Frame::empty(
                self.id,
                FrameType::HttpCancel,
            )));
        }
        self.relay
            .stats()
            .http_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Forwards `request` over `tunnel` and streams the answer back.
pub async fn forward(
    relay: &super::Relay,
    tunnel: TunnelHandle,
    request: ProxyRequest,
    grant: super::RelayGrant,
) -> Response {
    let id = relay.next_request_id();
    let timeout = if under(&request.path, "/hls") || under(&request.path, "/dash") {
        STREAMING_TIMEOUT
    } else {
        DEFAULT_TIMEOUT
    };
    let (tx, rx) = mpsc::channel(RESPONSE_QUEUE);
    if !tunnel.requests.register(id, tx) {
        return ProxyError::NoTunnel.into_response();
    }
    relay
        .stats()
        .http_in_flight
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let meter = relay.meter(&request.user_id);
    let guard = RequestGuard {
        meter: meter.clone(),
        relay: relay.clone(),
        tunnel: tunnel.clone(),
        id,
        done: false,
        grant,
    };
    let cut = guard.grant.cut.clone();
    let head = RequestHead {
        method: request.method.as_str().to_owned(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: forwarded_headers(&request),
    };
    let Ok(head_frame) = Frame::new(
        id,
        FrameType::HttpRequest,
        relay_http::encode_request_head(&head),
    ) else {
        return ProxyError::BadGateway.into_response();
    };
    let Ok(end) = Frame::new(id, FrameType::HttpRequest, relay_http::end_chunk()) else {
        return ProxyError::BadGateway.into_response();
    };
    if axum::body::HttpBody::is_end_stream(&request.body) {
        // No body (most GETs): HEAD and END leave together, in one message.
        if send_data_together(&tunnel, [head_frame, end])
            .await
            .is_err()
        {
            return ProxyError::Offline.into_response();
        }
        return receive(rx, guard, cut, timeout).await;
    }
    if send_data(&tunnel, head_frame).await.is_err() {
        return ProxyError::Offline.into_response();
    }
    let mut body = request.body.into_data_stream();
    while let Some(chunk) = body.next().await {
        let Ok(mut chunk) = chunk else {
            // The client aborted its upload; the guard cancels on the server.
            return (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": "The request body could not be read.", "code": "proxy.body_aborted"}))).into_response();
        };
        meter
            .bytes_in
            .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        while !chunk.is_empty() {
            let piece = chunk.split_to(chunk.len().min(MAX_BODY_CHUNK));
            let Ok(frame) = Frame::new(id, FrameType::HttpRequest, relay_http::body_chunk(piece))
            else {
                return ProxyError::BadGateway.into_response();
            };
            if send_data(&tunnel, frame).await.is_err() {
                return ProxyError::Offline.into_response();
            }
        }
    }
    if send_data(&tunnel, end).await.is_err() {
        return ProxyError::Offline.into_response();
    }
    receive(rx, guard, cut, timeout).await
}

/// Waits for the response head and streams the body behind it.
async fn receive(
    mut rx: mpsc::Receiver<ResponseEvent>,
    guard: RequestGuard,
    cut: tokio_util::sync::CancellationToken,
    timeout: Duration,
) -> Response {
    let head = loop {
        let next = tokio::select! {
            next = tokio::time::timeout(timeout, rx.recv()) => next,
            () = cut.cancelled() => return ProxyError::Revoked.into_response(),
        };
        match next {
            Err(_) => return ProxyError::Timeout.into_response(),
            Ok(None | Some(ResponseEvent::TunnelClosed)) => {
                return ProxyError::Offline.into_response();
            }
            Ok(Some(ResponseEvent::Chunk(payload))) => {
                match relay_http::decode_response(&payload) {
                    Ok(ResponsePayload::Head(head)) => break head,
                    // END without HEAD (SPEC A.5): 502; the request is over, nothing to cancel.
                    Ok(ResponsePayload::End) => {
                        guard.complete();
                        return ProxyError::BadGateway.into_response();
                    }
                    // BODY before HEAD, or an undecodable chunk: dropped (SPEC A.5).
                    Ok(ResponsePayload::Body(_)) | Err(_) => {}
                }
            }
        }
    };
    let Ok(status) = StatusCode::from_u16(head.status) else {
        return ProxyError::BadGateway.into_response();
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    for (name, value) in &head.headers {
        let lower = name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_str()) || lower == "content-length" {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(lower.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    if let Some(length) = head.body_length {
        response.headers_mut().insert(
            axum::http::header::CONTENT_LENGTH,
            HeaderValue::from(length),
        );
    }
    let stream = async_stream_body(rx, guard, timeout, head.body_length);
    *response.body_mut() = Body::from_stream(stream);
    response
}

/// The response body: BODY chunks as they arrive; ends at END; fails (aborting the client's
/// response) when the tunnel closes or the server stalls.
fn async_stream_body(
    rx: mpsc::Receiver<ResponseEvent>,
    guard: RequestGuard,
    timeout: Duration,
    body_length: Option<u64>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct State {
        rx: mpsc::Receiver<ResponseEvent>,
        guard: RequestGuard,
        /// Bytes still announced by `bodyLength`, if any.
        remaining: Option<u64>,
    }
    let state = State {
        rx,
        guard,
        remaining: body_length,
    };
    futures_util::stream::unfold(Some(state), move |state| async move {
        let mut state = state?;
        let cut = state.guard.grant.cut.clone();
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(timeout, state.rx.recv()) => next,
                () = cut.cancelled() => {
                    let err = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "access revoked");
                    return Some((Err(err), None));
                }
            };
            match next {
                Err(_) => {
                    let err = std::io::Error::new(std::io::ErrorKind::TimedOut, "server stalled");
                    return Some((Err(err), None));
                }
                Ok(None | Some(ResponseEvent::TunnelClosed)) => {
                    let err = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "tunnel closed");
                    return Some((Err(err), None));
                }
                Ok(Some(ResponseEvent::Chunk(payload))) => {
                    match relay_http::decode_response(&payload) {
                        Ok(ResponsePayload::Body(data)) if !data.is_empty() => {
                            let len = data.len() as u64;
                            state
                                .guard
                                .meter
                                .bytes_out
                                .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                            if let Some(remaining) = state.remaining.as_mut() {
                                *remaining = remaining.saturating_sub(len);
                                if *remaining == 0 {
                                    state.guard.mark_done();
                                }
                            }
                            return Some((Ok(data), Some(state)));
                        }
                        Ok(ResponsePayload::End) => {
                            state.guard.complete();
                            return None;
                        }
                        _ => {}
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_encoded_separators_are_refused() {
        for bad in [
            "",
            "x",
            "//evil",
            "/a/../b",
            "/a/%2e%2e/b",
            "/a%00",
            "/a\\b",
            "/a?b",
            "/a#b",
            "/http://x",
            "/a%2F%2Fb%3F",
            "/%2f%2fx",
        ] {
            assert!(!path_is_safe(bad), "{bad:?} must be refused");
        }
        for good in ["/", "/api/v1/libraries", "/hls/seg%201.ts", "/media/a.b/c"] {
            assert!(path_is_safe(good), "{good:?}");
        }
    }

    #[test]
    fn the_phlix_allowlist_admits_media_reads_and_a_few_writes() {
        assert!(phlix_policy_allows(&Method::GET, "/api/v1/libraries"));
        assert!(phlix_policy_allows(
            &Method::GET,
            "/api/v1/libraries/3/items"
        ));
        assert!(phlix_policy_allows(&Method::GET, "/hls/abc/seg1.ts"));
        assert!(!phlix_policy_allows(&Method::GET, "/api/v1/librariesX"));
        assert!(!phlix_policy_allows(&Method::GET, "/api/v1/admin/users"));
        assert!(phlix_policy_allows(
            &Method::POST,
            "/api/v1/media/42/favorite"
        ));
        assert!(!phlix_policy_allows(
            &Method::POST,
            "/api/v1/media/42/delete"
        ));
        assert!(!phlix_policy_allows(
            &Method::PATCH,
            "/api/v1/media/42/favorite"
        ));
        assert!(!phlix_policy_allows(&Method::POST, "/api/v1/libraries"));
    }
}
