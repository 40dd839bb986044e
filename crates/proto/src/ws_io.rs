//! WebSocket transport over any byte stream, with [`crate::ws`]'s codec: a reading half
//! that yields frames as they arrive (payloads split from its buffer, not copied), a writing
//! half that frames, masks in place (client role) and writes one message per call, and the
//! client side of the opening handshake. The hub answers the upgrade itself (axum/hyper) and
//! wraps the upgraded connection here; `phlix-agent` and the tests open client connections.
//!
//! It accepts TEXT messages that are not UTF-8 and unmasked client frames (SPEC A.6, L).

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ws::{self, Opcode, WsDecoder, WsError, WsFrame};

/// Largest WebSocket frame payload accepted from a peer.
pub const MAX_WS_FRAME: usize = 4 * 1024 * 1024;
/// At most this much of the body of a refused upgrade is read (to explain the refusal).
const REFUSAL_BODY_LIMIT: usize = 8 * 1024;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes
}

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// An upgraded connection, split into its reading and writing halves.
pub struct WsStream {
    pub reader: WsReader,
    pub writer: WsWriter,
}

impl WsStream {
    /// Wraps any byte stream halves (tests use this over a raw TCP connection).
    pub fn from_parts(read: BoxRead, write: BoxWrite, already_read: &[u8]) -> Self {
        let mut decoder = WsDecoder::new(MAX_WS_FRAME);
        decoder.push(already_read);
        Self {
            reader: WsReader {
                io: read,
                decoder,
                busy: false,
            },
            writer: WsWriter {
                io: write,
                buf: BytesMut::new(),
                mask: false,
            },
        }
    }
}

/// What the peer sent.
#[derive(Debug)]
pub enum WsEvent {
    /// A data frame (text, binary or continuation), payload as bytes.
    Data(WsFrame),
    Ping(Bytes),
    Pong,
    Close {
        code: u16,
        reason: String,
    },
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed without a close frame")]
    Eof,
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Protocol(#[from] WsError),
}

/// The reading half.
pub struct WsReader {
    io: BoxRead,
    decoder: WsDecoder,
    /// The last read filled the buffer: more is probably waiting.
    busy: bool,
}

impl WsReader {
    /// The next frame from the peer.
    ///
    /// # Errors
    /// EOF, I/O errors and protocol violations.
    pub async fn next(&mut self) -> Result<WsEvent, ReadError> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(match frame.opcode {
                    Opcode::Ping => WsEvent::Ping(frame.payload),
                    Opcode::Pong => WsEvent::Pong,
                    Opcode::Close => {
                        let (code, reason) = ws::parse_close(&frame.payload);
                        WsEvent::Close { code, reason }
                    }
                    Opcode::Text | Opcode::Binary | Opcode::Continuation => WsEvent::Data(frame),
                });
            }
            // Idle connections keep a small buffer; one that just filled it gets a large one.
            if !self.busy {
                self.decoder.release_if_empty();
            }
            let buf = self.decoder.buffer_mut();
            buf.reserve(if self.busy { 64 * 1024 } else { 1024 });
            let spare = buf.capacity() - buf.len();
            let read = self.io.read_buf(buf).await?;
            if read == 0 {
                return Err(ReadError::Eof);
            }
            self.busy = read == spare;
        }
    }

    /// Reads one whole message (for the HELLO), assembling continuation frames; answers
    /// nothing itself. Gives up after `timeout`.
    ///
    /// # Errors
    /// As [`Self::next`], plus a timed-out read (as `Io(TimedOut)`).
    pub async fn message(
        &mut self,
        limit: usize,
        timeout: Duration,
    ) -> Result<Option<Bytes>, ReadError> {
        let mut message = BytesMut::new();
        let read = async {
            loop {
                match self.next().await? {
                    WsEvent::Data(frame) => {
                        if message.len() + frame.payload.len() > limit {
                            return Err(ReadError::Protocol(WsError::TooBig(
                                (message.len() + frame.payload.len()) as u64,
                            )));
                        }
                        message.extend_from_slice(&frame.payload);
                        if frame.fin {
                            return Ok(Some(message.split().freeze()));
                        }
                    }
                    WsEvent::Ping(_) | WsEvent::Pong => {}
                    WsEvent::Close { .. } => return Ok(None),
                }
            }
        };
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            ReadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "no message in time",
            ))
        })?
    }
}

/// The writing half.
pub struct WsWriter {
    io: BoxWrite,
    buf: BytesMut,
    /// Client side masks its frames (tests); the hub does not.
    mask: bool,
}

impl WsWriter {
    /// Masks every frame from now on (RFC 6455 client role).
    pub fn set_client_role(&mut self) {
        self.mask = true;
    }

    fn mask_key(&self) -> Option<[u8; 4]> {
        self.mask.then(random_bytes::<4>)
    }

    /// Sends one message whose payload is the concatenation of `parts` (several relay frames
    /// coalesced into one WebSocket message).
    ///
    /// # Errors
    /// I/O errors.
    pub async fn send_parts(&mut self, opcode: Opcode, parts: &[Bytes]) -> io::Result<()> {
        let len: usize = parts.iter().map(Bytes::len).sum();
        self.send_with(opcode, len, |buf| {
            for part in parts {
                buf.extend_from_slice(part);
            }
        })
        .await
    }

    /// Sends relay frames coalesced into one binary message, copying each payload once.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn send_frames(&mut self, frames: &[crate::frame::Frame]) -> io::Result<()> {
        let len: usize = frames.iter().map(crate::frame::Frame::encoded_len).sum();
        self.send_with(Opcode::Binary, len, |buf| {
            for frame in frames {
                frame.encode_into(buf);
            }
        })
        .await
    }

    /// Frames one message of `len` payload bytes that `fill` appends to the writer's buffer
    /// (masked there, in place, in the client role) and writes it. `fill` must append exactly
    /// `len` bytes.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn send_with(
        &mut self,
        opcode: Opcode,
        len: usize,
        fill: impl FnOnce(&mut BytesMut),
    ) -> io::Result<()> {
        self.buf.clear();
        let mask = self.mask_key();
        ws::encode_header(true, opcode, len, mask, &mut self.buf);
        let start = self.buf.len();
        fill(&mut self.buf);
        if let Some(key) = mask {
            ws::apply_mask(&mut self.buf[start..], key, 0);
        }
        self.io.write_all(&self.buf).await?;
        // Over TLS, `write_all` can return once rustls has taken the plaintext while part of
        // the encrypted records still waits in rustls for the socket; only a flush pushes them
        // out, or the tail of a stream would sit there until the next message (the relay bench
        // saw 256 KiB stall that way). On plain TCP the flush is a no-op.
        self.io.flush().await?;
        // A burst keeps its large buffer; the first small message after it gives the buffer
        // back, so idle connections hold little memory without a reallocation per message.
        if len < 16 * 1024 && self.buf.capacity() > 64 * 1024 {
            self.buf = BytesMut::new();
        }
        Ok(())
    }

    /// Sends one message.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        self.send_with(opcode, payload.len(), |buf| buf.extend_from_slice(payload))
            .await
    }

    /// Sends a close frame and shuts the connection down.
    pub async fn close(&mut self, code: u16, reason: &str) {
        let _ = self
            .send(Opcode::Close, &ws::close_payload(code, reason))
            .await;
        let _ = self.io.shutdown().await;
    }
}

/// The answer to a client-side upgrade request.
pub enum Connected {
    /// 101: the WebSocket, with the response headers (lowercase names).
    Open {
        headers: Vec<(String, String)>,
        stream: WsStream,
    },
    /// Any other status, with headers and body.
    Refused {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
}

/// Opens a client WebSocket to `addr` `path` over plain TCP with our codec (masking frames as
/// a client must). Used by tests, benchmarks and tools that need to send what real Phlix
/// servers send (TEXT messages that are not UTF-8).
///
/// # Errors
/// I/O errors and a malformed HTTP answer.
pub async fn connect_client(
    addr: std::net::SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
) -> io::Result<Connected> {
    connect_client_from(None, addr, path, extra).await
}

/// [`connect_client`] from a chosen local address (load generators spread their connections
/// over many loopback addresses, as agents come from many hosts).
///
/// # Errors
/// I/O errors and a malformed HTTP answer.
pub async fn connect_client_from(
    local: Option<std::net::IpAddr>,
    addr: std::net::SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
) -> io::Result<Connected> {
    let stream = match local {
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
            socket.connect(addr).await?
        }
        None => tokio::net::TcpStream::connect(addr).await?,
    };
    stream.set_nodelay(true)?;
    connect_client_tcp(stream, &addr.to_string(), path, extra).await
}

/// [`connect_client`] over an already-connected TCP stream (split without a lock); `host`
/// goes into the `Host` header.
///
/// # Errors
/// I/O errors and a malformed HTTP answer.
pub async fn connect_client_tcp(
    stream: tokio::net::TcpStream,
    host: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> io::Result<Connected> {
    handshake_client(stream, host, path, extra, |stream| {
        let (read, write) = stream.into_split();
        (Box::new(read), Box::new(write))
    })
    .await
}

/// [`connect_client`] over an already-connected stream (a TLS session, for `wss://`); `host`
/// goes into the `Host` header.
///
/// # Errors
/// I/O errors and a malformed HTTP answer.
pub async fn connect_client_over<S>(
    stream: S,
    host: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> io::Result<Connected>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    handshake_client(stream, host, path, extra, |stream| {
        let (read, write) = tokio::io::split(stream);
        (Box::new(read), Box::new(write))
    })
    .await
}

async fn handshake_client<S>(
    mut stream: S,
    addr: &str,
    path: &str,
    extra: &[(&str, &str)],
    split: impl FnOnce(S) -> (BoxRead, BoxWrite),
) -> io::Result<Connected>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        random_bytes::<16>(),
    );
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
    );
    for (name, value) in extra {
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(4096);
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP answer head too large",
            ));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed during the handshake",
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if status != 101 {
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        // Enough of the body to explain the refusal, whatever Content-Length claims.
        let want = head_end.saturating_add(length.min(REFUSAL_BODY_LIMIT));
        while buf.len() < want {
            if stream.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        let end = buf.len().min(want);
        let body = String::from_utf8_lossy(&buf[head_end..end]).into_owned();
        return Ok(Connected::Refused {
            status,
            headers,
            body,
        });
    }
    let accept = headers
        .iter()
        .find(|(n, _)| n == "sec-websocket-accept")
        .map(|(_, v)| v.as_str());
    if accept != Some(ws::accept_key(&key).as_str()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "wrong Sec-WebSocket-Accept",
        ));
    }
    let leftover = buf.split_off(head_end);
    let (read, write) = split(stream);
    let mut stream = WsStream::from_parts(read, write, &leftover);
    stream.writer.set_client_role();
    Ok(Connected::Open { headers, stream })
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use super::*;

    /// A transport like a rustls session: `write` only takes the bytes into a buffer of its
    /// own; they reach the wire (`sent`) on `flush`.
    #[derive(Default, Clone)]
    struct HoldsUntilFlush {
        held: Arc<Mutex<Vec<u8>>>,
        sent: Arc<Mutex<Vec<u8>>>,
    }

    impl AsyncWrite for HoldsUntilFlush {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.held.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let held = std::mem::take(&mut *self.held.lock().unwrap());
            self.sent.lock().unwrap().extend_from_slice(&held);
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    #[tokio::test]
    async fn every_message_reaches_the_wire_without_waiting_for_the_next() {
        let transport = HoldsUntilFlush::default();
        let mut writer = WsWriter {
            io: Box::new(transport.clone()),
            buf: BytesMut::new(),
            mask: false,
        };
        writer
            .send(Opcode::Binary, b"tail of a stream")
            .await
            .unwrap();
        let sent = transport.sent.lock().unwrap().clone();
        assert!(transport.held.lock().unwrap().is_empty(), "bytes left held");
        assert!(sent.ends_with(b"tail of a stream"), "{sent:?}");
        let frames = [crate::frame::Frame::new(
            7,
            crate::frame::FrameType::Data,
            Bytes::from_static(b"last frame"),
        )
        .unwrap()];
        writer.send_frames(&frames).await.unwrap();
        assert!(transport.held.lock().unwrap().is_empty(), "bytes left held");
        assert!(transport.sent.lock().unwrap().ends_with(b"last frame"));
    }
}
