//! The accept loop of every listener (API, tunnels, client mounts) and what keeps slow or
//! half-open connections from holding sockets: a header-read timeout on each request (which is
//! also the upgrade timeout of the WebSocket ports), an idle timeout on API connections (no
//! byte read or written for that long closes the connection, so a body shorter than its
//! `Content-Length` or a silent keep-alive connection cannot wait forever), and a cap on
//! concurrent connections per client address. [`ConnStats`] counts what happens, for `/health`
//! and `/metrics`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub use crate::config::ConnLimits;
use crate::config::edge::TrustedProxies;
use crate::http::forwarded::client_addr;

/// What one listener has seen, for `/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicU64,
    accepted: AtomicU64,
    refused_per_ip: AtomicU64,
    timed_out: AtomicU64,
    accept_errors: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

/// A snapshot of [`ConnStats`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConnSnapshot {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections refused because their address had too many open.
    pub refused_per_ip: u64,
    /// Connections closed by the header-read or idle timeout.
    pub timed_out: u64,
    /// `accept()` failures (for example out of file descriptors).
    pub accept_errors: u64,
}

impl ConnStats {
    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> ConnSnapshot {
        ConnSnapshot {
            open: self.open.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused_per_ip: self.refused_per_ip.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }

    /// Counts a new connection from `ip`, or refuses it when `ip` has `cap` open (0 = no cap).
    fn admit(self: &Arc<Self>, ip: IpAddr, cap: u32) -> Option<ConnGuard> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let count = per_ip.entry(ip).or_insert(0);
        if cap > 0 && *count >= cap {
            drop(per_ip);
            self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *count += 1;
        drop(per_ip);
        self.open.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(ConnGuard {
            stats: Arc::clone(self),
            ip,
        })
    }
}

/// One admitted connection; dropping it gives the address's slot back.
struct ConnGuard {
    stats: Arc<ConnStats>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = self
            .stats
            .per_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// The three listeners' counters and the process's file-descriptor limit.
#[derive(Debug, Default)]
pub struct Connections {
    pub http: Arc<ConnStats>,
    pub tunnel: Arc<ConnStats>,
    pub client: Arc<ConnStats>,
    /// The cluster listener (other nodes).
    pub cluster: Arc<ConnStats>,
    /// The soft `RLIMIT_NOFILE` the hub runs with (0 = unknown).
    pub fd_limit: AtomicU64,
    /// The listeners' TLS, when the hub serves it (for `/health` and `/metrics`).
    pub tls: std::sync::OnceLock<Arc<crate::tls::Tls>>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (every connection is a descriptor) and
/// returns the limit now in force.
#[must_use]
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read or raise the file-descriptor limit");
            None
        }
    }
}

/// The answer to a connection over its address's cap: written once, without waiting, then the
/// socket is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 5\r\ncontent-length: 113\r\n\r\n{\"error\":\"Too Many Requests\",\"code\":\"too_many_connections\",\"message\":\"Too many open connections from this address\"}";

/// What stands in front of a listener's connections: the TLS acceptor (when the hub serves
/// TLS) and the reverse proxies whose forwarding headers are believed.
#[derive(Clone, Default)]
pub struct Front {
    /// The handshake of each connection; `None` for plain HTTP/WebSocket.
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// Counters of the handshakes (and the ACME challenge hand-off).
    pub tls: Option<Arc<crate::tls::Tls>>,
    pub proxies: Arc<TrustedProxies>,
}

/// The answer to plain HTTP on a TLS port, written once before the socket closes.
const PLAIN_ON_TLS: &str = "{\"error\":\"Bad Request\",\"code\":\"tls_required\",\"message\":\"This port speaks TLS: use https:// or wss://\"}";

type ConnFuture =
    Pin<Box<dyn Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + Send>>;

/// One connection served by hyper (with the idle timeout when given), watched for graceful
/// shutdown.
fn connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    idle: Option<Duration>,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
) -> ConnFuture
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            axum::http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    match idle {
        Some(idle) => Box::pin(
            watcher.watch(
                builder
                    .serve_connection_with_upgrades(TokioIo::new(IdleIo::new(io, idle)), service)
                    .into_owned(),
            ),
        ),
        None => Box::pin(
            watcher.watch(
                builder
                    .serve_connection_with_upgrades(TokioIo::new(io), service)
                    .into_owned(),
            ),
        ),
    }
}

/// rustls reads at most 4 KiB per `read` call; this buffer turns those into one system call
/// per 64 KiB on a busy stream (writes pass straight through).
const TLS_READ_BUFFER: usize = 64 * 1024;

/// The TCP stream under a TLS session.
pub type BufferedTcp = tokio::io::BufReader<tokio::net::TcpStream>;

/// The TLS handshake of one connection. Anything but a ClientHello is refused before rustls
/// sees it: plain HTTP gets a short 400 naming the fix, other bytes a close.
async fn accept_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    mut tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::server::TlsStream<BufferedTcp>, &'static str> {
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await {
        Ok(0) | Err(_) => return Err("closed before the handshake"),
        Ok(_) => {}
    }
    // 0x16: a TLS handshake record.
    if first[0] != 0x16 {
        if first[0].is_ascii_uppercase() {
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{PLAIN_ON_TLS}",
                PLAIN_ON_TLS.len()
            );
            let _ = tcp.try_write(answer.as_bytes());
            // Close our side, then drain briefly so the close is a FIN, not a reset that
            // could destroy the answer before the client reads it.
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut tcp).await;
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::io::AsyncReadExt::read(&mut tcp, &mut sink),
            )
            .await;
            return Err("plain HTTP on a TLS port");
        }
        return Err("not a TLS ClientHello");
    }
    acceptor
        .accept(tokio::io::BufReader::with_capacity(TLS_READ_BUFFER, tcp))
        .await
        .map_err(|_| "TLS handshake failed")
}

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish. With TLS
/// the handshake runs on the connection's own task within the header-read timeout, so a slow
/// or garbage handshake costs one task until then and never the accept loop.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    idle_timeout: Option<Duration>,
    stats: Arc<ConnStats>,
    front: Front,
    shutdown: CancellationToken,
    name: &'static str,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(listener = name, error = %err, "accept failed");
                    // Out of descriptors or memory: give the open connections a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(guard) = stats.admit(peer.ip(), limits.per_ip) else {
            tracing::debug!(listener = name, ip = %peer.ip(), "connection refused: too many from this address");
            let _ = tcp.try_write(TOO_MANY);
            continue;
        };
        // Responses are written in pieces (head, streamed body chunks): without TCP_NODELAY
        // Nagle's algorithm holds the last piece back until the peer's delayed ACK (~40 ms).
        let _ = tcp.set_nodelay(true);
        let service = connection_service(
            router.clone(),
            peer,
            front.acceptor.is_some(),
            Arc::clone(&front.proxies),
        );
        let stats = Arc::clone(&stats);
        let Some(acceptor) = front.acceptor.clone() else {
            let conn = connection(&builder, tcp, idle_timeout, service, graceful.watcher());
            tokio::spawn(finish(conn, guard, stats));
            continue;
        };
        let (builder, watcher, shutdown) = (builder.clone(), graceful.watcher(), shutdown.clone());
        let tls = front.tls.clone();
        let header_read = limits.header_read;
        tokio::spawn(async move {
            let handshake = tokio::select! {
                () = shutdown.cancelled() => return,
                handshake = tokio::time::timeout(header_read, accept_tls(acceptor, tcp)) => handshake,
            };
            let failed = |why: &str| {
                if let Some(tls) = &tls {
                    tls.stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(listener = name, %peer, reason = why, "TLS connection closed");
            };
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(why)) => return failed(why),
                Err(_) => {
                    stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    return failed("handshake timed out");
                }
            };
            if stream.get_ref().1.alpn_protocol() == Some(crate::tls::ACME_TLS_ALPN) {
                // A TLS-ALPN-01 validation: the handshake was the whole answer.
                return;
            }
            finish(
                connection(&builder, stream, idle_timeout, service, watcher),
                guard,
                stats,
            )
            .await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Runs one connection to its end and counts a timeout.
async fn finish<E: std::fmt::Display>(
    conn: impl Future<Output = Result<(), E>>,
    guard: ConnGuard,
    stats: Arc<ConnStats>,
) {
    if let Err(err) = conn.await {
        let text = err.to_string();
        if text.contains("timed out") || text.contains("timeout") {
            stats.timed_out.fetch_add(1, Ordering::Relaxed);
        }
        tracing::trace!(error = %text, "connection ended with an error");
    }
    drop(guard);
}

/// The router as a hyper service of one connection: every request carries the peer address
/// (`ConnectInfo<SocketAddr>`, as `into_make_service_with_connect_info` would add it) and the
/// client as the proxy rules see it (`forwarded::ClientAddr`, computed here once).
fn connection_service(
    router: Router,
    peer: SocketAddr,
    tls: bool,
    proxies: Arc<TrustedProxies>,
) -> impl hyper::service::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            let client = client_addr(peer, request.headers(), tls, &proxies);
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(client);
            router.clone().oneshot(request)
        },
    )
}

/// A stream that fails with `TimedOut` once nothing has been read or written for `idle`.
struct IdleIo<T> {
    inner: T,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<T> IdleIo<T> {
    fn new(inner: T, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn progress(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// `Ready(Err(TimedOut))` once the deadline has passed; else registers the waker.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection idle timeout",
        ))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.progress();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.progress();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.progress();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
