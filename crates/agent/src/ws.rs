//! The agent's WebSocket connections to the hub — the reverse tunnel (`run`) and client mounts
//! (`connect`) — on the hub's own codec (`phlix_proto::ws_io`): frames are read straight into
//! one buffer and handed on as slices of it, and written from one buffer masked in place, with
//! no library buffer in between. `ws://` over TCP, `wss://` over rustls with the agent's
//! trust roots ([`TlsClient`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use phlix_proto::ws_io::{self, Connected, WsStream};
use rustls::pki_types::ServerName;

use crate::tls::TlsClient;

/// TCP connect, TLS and the opening handshake together must finish within this.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a `ws://` or `wss://` URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// `Host` header value: the authority as written.
    authority: String,
    /// Path and query, at least `/`.
    path: String,
}

fn parse(url: &str) -> anyhow::Result<Target> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow!("{url} is not a ws:// or wss:// URL"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "ws" => false,
        "wss" => true,
        other => bail!("{url}: unsupported scheme {other}:// (ws:// or wss://)"),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.split('#').next().unwrap_or("/").to_owned(),
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| anyhow!("{url}: unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        bail!("{url}: no host");
    }
    let port = match port {
        Some(port) => port
            .parse()
            .map_err(|_| anyhow!("{url}: {port} is not a port"))?,
        None if tls => 443,
        None => 80,
    };
    Ok(Target {
        tls,
        host: host.to_owned(),
        port,
        authority: authority.to_owned(),
        path,
    })
}

/// Opens a WebSocket to `url` with the extra request headers, as a client (frames masked).
///
/// # Errors
/// A bad URL, connection and TLS failures (the rustls error stays in the chain for
/// [`crate::tls::explain`]), a timeout, or an answer other than 101 (its status and body in
/// the message).
pub async fn connect(
    url: &str,
    extra: &[(&str, &str)],
    tls: &TlsClient,
) -> anyhow::Result<WsStream> {
    let target = parse(url)?;
    let open = async {
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .with_context(|| format!("cannot connect to {}:{}", target.host, target.port))?;
        tcp.set_nodelay(true)?;
        let connected = if target.tls {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| anyhow!("{url}: {} is not a valid TLS server name", target.host))?;
            let session = tokio_rustls::TlsConnector::from(Arc::clone(tls.config()))
                .connect(name, tcp)
                .await?;
            ws_io::connect_client_over(session, &target.authority, &target.path, extra).await?
        } else {
            ws_io::connect_client_tcp(tcp, &target.authority, &target.path, extra).await?
        };
        anyhow::Ok(connected)
    };
    let connected = tokio::time::timeout(OPEN_TIMEOUT, open)
        .await
        .map_err(|_| anyhow!("no WebSocket connection within {}s", OPEN_TIMEOUT.as_secs()))??;
    match connected {
        Connected::Open { stream, .. } => Ok(stream),
        Connected::Refused { status, body, .. } => {
            let body = body.trim();
            if body.is_empty() {
                bail!("the hub answered HTTP {status} instead of switching to WebSocket")
            }
            bail!("the hub answered HTTP {status} instead of switching to WebSocket: {body}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_and_path() {
        let t = parse("ws://127.0.0.1:8802").unwrap();
        assert_eq!(
            t,
            Target {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8802,
                authority: "127.0.0.1:8802".into(),
                path: "/".into()
            }
        );
        let t = parse("wss://hub.example/relay/client/abc?x=1#frag").unwrap();
        assert_eq!(
            (t.tls, t.port, t.path.as_str()),
            (true, 443, "/relay/client/abc?x=1")
        );
        let t = parse("ws://[::1]:9000?a=b").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 9000, "/?a=b")
        );
        assert_eq!(parse("WS://h").unwrap().port, 80);
        for bad in ["http://h", "h:1", "ws://", "ws://h:port", "ws://[::1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
