//! One tunnel connection of `phlix-agent run` (SPEC A, B): HELLO and its answer, then a
//! reader that dispatches the hub's frames to raw channels and HTTP-over-relay requests
//! ([`crate::upstream`]) and a writer task that coalesces what goes back.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use phlix_proto::frame::{DEFAULT_DECODE_CAP, Frame, FrameDecoder, FrameType};
use phlix_proto::ws::{Opcode, close_code};
use phlix_proto::ws_io::{ReadError, WsEvent, WsReader, WsStream, WsWriter};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::run::Reporter;
use crate::state::Enrollment;
use crate::tls::TlsClient;
use crate::upstream::{CHANNEL_QUEUE, Outgoing, Request, Upstream, handle_request, pipe_channel};

/// Frames waiting for the tunnel writer.
const WRITER_QUEUE: usize = 256;
/// Heartbeat ticks (30 s) without a frame from the hub before the tunnel counts as stale.
const STALE_TICKS: u32 = 3;
/// Largest answer to HELLO accepted.
const HELLO_ACK_LIMIT: usize = 64 * 1024;

/// How a tunnel connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Refused or closed before HELLO_ACK.
    Refused,
    /// Closed after HELLO_ACK (the back-off starts again from its base).
    Closed,
    /// The hub node went away (close 1001, `hub_shutdown`): a restart, or a node leaving its
    /// cluster. Reconnect at once — through the load balancer, another node takes the tunnel.
    HubLeft,
}

/// One tunnel connection.
pub(crate) async fn session(
    url: &str,
    enrollment: &Enrollment,
    upstream: &Upstream,
    reporter: &Reporter,
    tls: &TlsClient,
    shutdown: &CancellationToken,
) -> anyhow::Result<Ended> {
    let WsStream {
        mut reader,
        mut writer,
    } = crate::ws::connect(url, &[], tls)
        .await
        .map_err(|err| crate::tls::explain(err.context(format!("connecting to {url}")), url))?;
    let hello = json!({"type": "hello", "enrollment_jwt": enrollment.enrollment_jwt, "server_id": enrollment.server_id});
    let ack = match hello_answer(&mut reader, &mut writer, &hello.to_string()).await? {
        HelloAnswer::Message(ack) => serde_json::from_slice::<Value>(&ack).unwrap_or(Value::Null),
        HelloAnswer::Closed(reason) => {
            tracing::error!(%reason, "the hub refused the HELLO");
            return Ok(Ended::Refused);
        }
    };
    if ack.get("type").and_then(Value::as_str) != Some("hello_ack") {
        bail!("unexpected answer to HELLO: {ack}");
    }
    tracing::info!(relay_session_id = %ack["relay_session_id"], "tunnel open");
    reporter.tunnel("connected");

    let (frames_tx, frames_rx) = mpsc::channel::<Outgoing>(WRITER_QUEUE);
    let (pong_tx, pong_rx) = mpsc::channel::<Bytes>(4);
    let writer = tokio::spawn(write_tunnel(writer, frames_rx, pong_rx));
    let mut heartbeat = tokio::time::interval(Duration::from_secs(30));
    let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
    let mut channels: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut requests: HashMap<u32, Request> = HashMap::new();
    let mut going_away = false;
    // Heartbeat ticks since the hub last sent anything: it sends a HEARTBEAT every 30 s (SPEC
    // B.3), so more than three means a dead hub or path that never closed the connection.
    let mut quiet_ticks = 0u32;
    let result = loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break Ok(true),
            _ = heartbeat.tick() => {
                quiet_ticks += 1;
                if quiet_ticks > STALE_TICKS {
                    break Err(anyhow::anyhow!("nothing from the hub for 90 s; the tunnel is stale"));
                }
                let _ = frames_tx.try_send(Frame::empty(0, FrameType::Heartbeat).into());
                continue;
            }
            event = reader.next() => event,
        };
        quiet_ticks = 0;
        let payload = match event {
            Ok(WsEvent::Data(frame)) => frame.payload,
            Ok(WsEvent::Ping(payload)) => {
                let _ = pong_tx.try_send(payload);
                continue;
            }
            Ok(WsEvent::Pong) => continue,
            Ok(WsEvent::Close { code, .. }) => {
                // 1001: the hub node is going away (restart, or leaving its cluster).
                going_away = code == close_code::GOING_AWAY;
                break Ok(true);
            }
            Err(ReadError::Eof) => break Ok(true),
            Err(err) => break Err(anyhow::Error::new(err).context("reading the tunnel")),
        };
        decoder.push(&payload);
        let mut stop = false;
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    tracing::error!(error = %err, "the hub sent an invalid frame; reconnecting");
                    stop = true;
                    break;
                }
            };
            match frame.kind {
                FrameType::ClientConnect => {
                    let (tx, rx) = mpsc::channel(CHANNEL_QUEUE);
                    channels.insert(frame.id, tx);
                    tokio::spawn(pipe_channel(
                        frame.id,
                        upstream.addr.clone(),
                        rx,
                        frames_tx.clone(),
                    ));
                }
                FrameType::ClientDisconnect => {
                    channels.remove(&frame.id);
                }
                FrameType::Data => {
                    if let Some(tx) = channels.get(&frame.id)
                        && tx.send(frame.payload).await.is_err()
                    {
                        channels.remove(&frame.id);
                    }
                }
                FrameType::HttpRequest => {
                    handle_request(frame, upstream, &mut requests, &frames_tx).await
                }
                FrameType::HttpCancel => {
                    if let Some(request) = requests.remove(&frame.id) {
                        request.task.abort();
                    }
                }
                FrameType::Heartbeat => {
                    let _ = frames_tx.try_send(Frame::empty(0, FrameType::Heartbeat).into());
                }
                FrameType::Disconnected => {
                    let payload = String::from_utf8_lossy(&frame.payload);
                    going_away |= payload.contains("hub_shutdown");
                    tracing::info!(%payload, "the hub closed the tunnel");
                    stop = true;
                    break;
                }
                FrameType::Error => {
                    tracing::warn!(payload = %String::from_utf8_lossy(&frame.payload), "the hub reported an error")
                }
                _ => {}
            }
        }
        requests.retain(|_, r| !r.task.is_finished());
        if stop {
            break Ok(true);
        }
    };
    for (_, request) in requests {
        request.task.abort();
    }
    drop(frames_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    result.map(|_: bool| {
        if going_away {
            Ended::HubLeft
        } else {
            Ended::Closed
        }
    })
}

/// What the hub answered to HELLO.
enum HelloAnswer {
    /// One whole message (HELLO_ACK, normally).
    Message(Bytes),
    /// A close frame, with its reason.
    Closed(String),
}

/// Sends HELLO and reads the hub's answer, both within 15 s.
async fn hello_answer(
    reader: &mut WsReader,
    writer: &mut WsWriter,
    hello: &str,
) -> anyhow::Result<HelloAnswer> {
    let read = async {
        writer
            .send(Opcode::Text, hello.as_bytes())
            .await
            .context("sending HELLO")?;
        let mut message = BytesMut::new();
        loop {
            match reader.next().await {
                Ok(WsEvent::Data(frame)) => {
                    if message.len() + frame.payload.len() > HELLO_ACK_LIMIT {
                        bail!("the answer to HELLO is over {HELLO_ACK_LIMIT} bytes");
                    }
                    message.extend_from_slice(&frame.payload);
                    if frame.fin {
                        return Ok(HelloAnswer::Message(message.freeze()));
                    }
                }
                Ok(WsEvent::Ping(_) | WsEvent::Pong) => {}
                Ok(WsEvent::Close { reason, .. }) => return Ok(HelloAnswer::Closed(reason)),
                Err(ReadError::Eof) => bail!("the hub closed the connection before HELLO_ACK"),
                Err(err) => return Err(anyhow::Error::new(err).context("reading HELLO_ACK")),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .context("no HELLO_ACK within 15 s")?
}

/// The tunnel's writer: queued frames, coalesced up to 256 KiB per WebSocket message, and
/// the answers to the hub's pings.
async fn write_tunnel(
    mut writer: WsWriter,
    mut frames: mpsc::Receiver<Outgoing>,
    mut pongs: mpsc::Receiver<Bytes>,
) {
    let mut batch: Vec<Outgoing> = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(payload) = pongs.recv() => {
                if writer.send(Opcode::Pong, &payload).await.is_err() {
                    return;
                }
            }
            first = frames.recv() => {
                let Some(first) = first else { break };
                let mut len = first.encoded_len();
                batch.push(first);
                while len < 256 * 1024 {
                    let Ok(next) = frames.try_recv() else { break };
                    len += next.encoded_len();
                    batch.push(next);
                }
                let sent = writer
                    .send_with(Opcode::Binary, len, |buf| {
                        batch.iter().for_each(|item| item.encode_into(buf));
                    })
                    .await;
                batch.clear();
                if sent.is_err() {
                    return;
                }
            }
        }
    }
    writer.close(close_code::NORMAL, "").await;
}
