//! WebSocket transport of the relay: the HTTP upgrade (axum parses the request, we answer 101
//! and take the raw connection from hyper). Frame-level reading and writing, and the client
//! side of the handshake, are `phlix_proto::ws_io` (shared with `phlix-agent`), re-exported
//! here.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use phlix_proto::ws;
pub use phlix_proto::ws_io::{
    Connected, MAX_WS_FRAME, ReadError, WsEvent, WsReader, WsStream, WsWriter, connect_client,
    connect_client_from, connect_client_over,
};

/// Why a WebSocket upgrade request is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnUpgrade;

/// Checks the upgrade headers and returns `Sec-WebSocket-Accept`.
///
/// # Errors
/// [`NotAnUpgrade`] unless this is a version-13 WebSocket upgrade with a key.
pub fn upgrade_accept(headers: &HeaderMap) -> Result<String, NotAnUpgrade> {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(NotAnUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(NotAnUpgrade);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .ok_or(NotAnUpgrade)?;
    Ok(ws::accept_key(key))
}

/// Answers 101 and hands the raw connection to `handle` once hyper has switched protocols.
pub fn upgrade<F, Fut>(
    mut request: Request,
    accept: &str,
    protocol: Option<&'static str>,
    handle: F,
) -> Response
where
    F: FnOnce(WsStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => handle(stream_of(upgraded)).await,
            Err(err) => tracing::debug!(error = %err, "websocket upgrade failed"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Some(protocol) = protocol {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol),
        );
    }
    response
}

/// The upgraded connection as a WebSocket stream.
fn stream_of(upgraded: hyper::upgrade::Upgraded) -> WsStream {
    // The common case is a plain TCP connection: split it without a lock.
    match upgraded.downcast::<hyper_util::rt::TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => {
            let stream = parts.io.into_inner();
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
            WsStream::from_parts(Box::new(read), Box::new(write), &parts.read_buf)
        }
        Err(upgraded) => tls_or_other(upgraded),
    }
}

/// A TLS session (the WebSocket ports with TLS on) is split with a lock, without hyper's
/// upgrade wrapper in between; anything else through that wrapper.
fn tls_or_other(upgraded: hyper::upgrade::Upgraded) -> WsStream {
    type Tls =
        hyper_util::rt::TokioIo<tokio_rustls::server::TlsStream<crate::http::conn::BufferedTcp>>;
    match upgraded.downcast::<Tls>() {
        Ok(parts) => {
            let (read, write) = tokio::io::split(parts.io.into_inner());
            WsStream::from_parts(Box::new(read), Box::new(write), &parts.read_buf)
        }
        Err(upgraded) => {
            let (read, write) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
            WsStream::from_parts(Box::new(read), Box::new(write), &[])
        }
    }
}
