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
/// One address of the host gets this long to accept the TCP connection.
const PER_ADDRESS_TIMEOUT: Duration = Duration::from_secs(8);

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
    if let Some(bad) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        bail!("{url:?} holds the character {bad:?}; URLs are percent-encoded");
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
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
    if let Some((name, _)) = extra
        .iter()
        .find(|(name, value)| !is_header_text(name) || !is_header_text(value))
    {
        bail!("the {name} header holds a line break or control character");
    }
    let open = async {
        let tcp = connect_tcp(&target.host, target.port).await?;
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
            let body: String = body.trim().chars().take(300).collect();
            if body.is_empty() {
                bail!("the hub answered HTTP {status} instead of switching to WebSocket")
            }
            bail!("the hub answered HTTP {status} instead of switching to WebSocket: {body}")
        }
    }
}

/// No CR, LF or other control character (they would end or split the header line).
fn is_header_text(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\t')
}

/// Connects to the first address of `host` that answers, each tried for at most
/// [`PER_ADDRESS_TIMEOUT`], so an address family that drops packets (IPv6 on some hosts) does
/// not use up the whole open timeout before the next is tried.
async fn connect_tcp(host: &str, port: u16) -> anyhow::Result<tokio::net::TcpStream> {
    let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .collect();
    let mut last = None;
    for address in &addresses {
        match tokio::time::timeout(PER_ADDRESS_TIMEOUT, tokio::net::TcpStream::connect(address))
            .await
        {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(err)) => last = Some(anyhow::Error::new(err)),
            Err(_) => {
                last = Some(anyhow!(
                    "no answer within {}s",
                    PER_ADDRESS_TIMEOUT.as_secs()
                ));
            }
        }
    }
    let cause = last.unwrap_or_else(|| anyhow!("{host} has no address"));
    Err(cause.context(format!("cannot connect to {host}:{port}")))
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
        let t = parse("ws://h#frag").unwrap();
        assert_eq!((t.host.as_str(), t.path.as_str()), ("h", "/"));
        assert!(is_header_text("Bearer abc") && !is_header_text("Bearer a\r\nX: y"));
        for bad in [
            "http://h",
            "h:1",
            "ws://",
            "ws://h:port",
            "ws://[::1",
            "ws://h/a b",
            "ws://h/\r\nX: y",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
