//! A raw WebSocket client for tests, on our own frame codec: it can send TEXT messages that are
//! not UTF-8, unmasked frames, or frames split anyhow — what real Phlix servers do (SPEC A.6).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use phlix_hub::relay::ws_io::{Connected, WsEvent, WsReader, WsStream, WsWriter, connect_client};
use phlix_proto::frame::{Frame, FrameDecoder};
use phlix_proto::ws::Opcode;

/// The HTTP answer to an upgrade request that was refused.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A connected client: the response headers and the WebSocket halves.
pub struct WsClient {
    pub headers: Vec<(String, String)>,
    pub reader: WsReader,
    pub writer: WsWriter,
    decoder: FrameDecoder,
}

/// Opens a WebSocket to `addr` `path` with extra request headers.
pub async fn connect(
    addr: SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
) -> Result<WsClient, Refused> {
    match connect_client(addr, path, extra).await.unwrap() {
        Connected::Open {
            headers,
            stream: WsStream { reader, writer },
        } => Ok(WsClient {
            headers,
            reader,
            writer,
            decoder: FrameDecoder::new(1 << 20),
        }),
        Connected::Refused {
            status,
            headers,
            body,
        } => Err(Refused {
            status,
            headers,
            body,
        }),
    }
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Close(u16, String),
    Eof,
}

impl WsClient {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sends relay frames coalesced into one message of `opcode`.
    pub async fn send_frames(&mut self, opcode: Opcode, frames: &[Frame]) {
        let parts: Vec<Bytes> = frames.iter().map(Frame::to_bytes).collect();
        self.writer.send_parts(opcode, &parts).await.unwrap();
    }

    /// Sends raw bytes as one message.
    pub async fn send_raw(&mut self, opcode: Opcode, bytes: &[u8]) {
        self.writer.send(opcode, bytes).await.unwrap();
    }

    /// The next whole text/binary message (pings are answered by nobody; tests do not need it).
    pub async fn next_message(&mut self) -> Result<Bytes, Ended> {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), self.reader.next())
                .await
                .expect("message within 20 s")
            {
                Ok(WsEvent::Data(frame)) => return Ok(frame.payload),
                Ok(WsEvent::Ping(_) | WsEvent::Pong) => {}
                Ok(WsEvent::Close { code, reason }) => return Err(Ended::Close(code, reason)),
                Err(_) => return Err(Ended::Eof),
            }
        }
    }

    /// The next relay frame (several may share one message).
    pub async fn next_frame(&mut self) -> Result<Frame, Ended> {
        loop {
            if let Some(frame) = self.decoder.next_frame().unwrap() {
                return Ok(frame);
            }
            let message = self.next_message().await?;
            self.decoder.push(&message);
        }
    }

    /// Reads until the connection ends, returning how (frames are discarded).
    pub async fn ended(&mut self) -> Ended {
        loop {
            if let Err(ended) = self.next_message().await {
                return ended;
            }
        }
    }
}
