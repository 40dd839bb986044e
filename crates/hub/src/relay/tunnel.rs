//! Server tunnels (SPEC A, B.1, B.3, B.4): HELLO/HELLO_ACK, the tunnel actor, its writer,
//! heartbeats, staleness, displacement and teardown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phlix_proto::control::{self, HelloError};
use phlix_proto::frame::{DEFAULT_DECODE_CAP, Frame, FrameDecoder, FrameError, FrameType};
use phlix_proto::ws::{Opcode, close_code};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::ws_io::{self, ReadError, WsEvent, WsReader, WsStream, WsWriter};
use super::{
    BACKPRESSURE_TIMEOUT, CLIENT_QUEUE, CONTROL_QUEUE, CloseReason, DATA_QUEUE, Outbound, Relay,
    ResponseEvent, TunnelCmd, TunnelCounters, TunnelHandle,
};
use crate::auth::now_unix;
use crate::domain::events::HubEvent;
use crate::domain::tunnels::close_session;
use crate::http::state::AppState;
use crate::store::SessionCounters;

/// Largest HELLO message accepted.
const HELLO_LIMIT: usize = 16 * 1024;
/// Most bytes coalesced into one outbound WebSocket message.
const COALESCE_BYTES: usize = 256 * 1024;

/// Router of the tunnel listener: every path upgrades (the server connects to bare `ws://hub:8802`).
pub fn router(state: AppState) -> Router {
    Router::new().fallback(upgrade).with_state(state)
}

async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    client: crate::http::forwarded::ClientAddr,
    request: Request,
) -> Response {
    let Ok(accept) = ws_io::upgrade_accept(request.headers()) else {
        return crate::http::error::ApiError::Invalid {
            status: StatusCode::UPGRADE_REQUIRED,
            code: "relay.websocket_required",
            message: "the tunnel listener only speaks WebSocket".into(),
        }
        .into_response();
    };
    let Some(core) = state.core() else {
        return crate::http::error::ApiError::Starting {
            step: state.health().step(),
        }
        .into_response();
    };
    let relay = core.relay.clone();
    let allowed = relay.allow_connect(&client.ip.to_string(), now_unix());
    ws_io::upgrade(request, &accept, None, move |stream| async move {
        let WsStream { reader, mut writer } = stream;
        if !allowed {
            tracing::info!(target: "relay", peer = %peer, "tunnel connect throttled");
            writer.close(close_code::AGAIN, "try again later").await;
            return;
        }
        handshake(core, reader, writer, peer).await;
    })
}

async fn reject(mut writer: WsWriter, error: HelloError) {
    tracing::info!(target: "relay", reason = error.reason(), "HELLO refused");
    writer.close(close_code::BAD_HELLO, error.reason()).await;
}

/// Reads and checks the HELLO, opens the session, answers HELLO_ACK and runs the tunnel.
async fn handshake(
    core: crate::domain::Core,
    mut reader: WsReader,
    mut writer: WsWriter,
    peer: SocketAddr,
) {
    let relay = core.relay.clone();
    let hello = match reader
        .message(HELLO_LIMIT, relay.timers().hello_timeout)
        .await
    {
        Ok(Some(message)) => message,
        Ok(None) | Err(_) => {
            writer
                .close(close_code::BAD_HELLO, HelloError::Malformed.reason())
                .await;
            return;
        }
    };
    let hello = match control::parse_hello(&hello) {
        Ok(hello) => hello,
        Err(error) => return reject(writer, error).await,
    };
    let owner =
        crate::domain::servers::tunnel_owner(&core, &hello.server_id, &hello.enrollment_jwt).await;
    let now = now_unix();
    let owner_id = match owner {
        Ok(Some(owner_id)) => owner_id,
        Ok(None) => {
            tracing::info!(target: "relay", server_id = %hello.server_id, %peer, "HELLO refused: unauthorized");
            writer.close(close_code::UNAUTHORIZED, "unauthorized").await;
            return;
        }
        Err(err) => {
            tracing::warn!(target: "relay", error = %err, "HELLO: store unavailable");
            writer.close(close_code::INTERNAL, "internal_error").await;
            return;
        }
    };
    let session_id = uuid::Uuid::new_v4().to_string();
    let tunnel_id = uuid::Uuid::new_v4().to_string();
    let epoch = match crate::domain::tunnels::open_session(
        &core,
        &session_id,
        &hello.server_id,
        &tunnel_id,
        now,
    )
    .await
    {
        Ok(epoch) => epoch,
        Err(err) => {
            tracing::warn!(target: "relay", error = %err, "cannot open relay session");
            writer.close(close_code::INTERNAL, "internal_error").await;
            return;
        }
    };
    if writer
        .send(
            Opcode::Text,
            control::hello_ack(&session_id, &tunnel_id).as_bytes(),
        )
        .await
        .is_err()
    {
        close_session(
            &core,
            &session_id,
            CloseReason::ServerClosed,
            SessionCounters::default(),
        )
        .await;
        crate::domain::cluster::release_tunnel(&core, &hello.server_id, epoch).await;
        return;
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (data_tx, data_rx) = mpsc::channel(DATA_QUEUE);
    let counters = Arc::new(TunnelCounters::default());
    counters
        .last_frame_at
        .store(u64::try_from(now).unwrap_or(0), Ordering::Relaxed);
    let handle = TunnelHandle {
        tunnel_id: tunnel_id.clone(),
        server_id: hello.server_id.clone(),
        owner_id,
        session_id: session_id.clone(),
        epoch,
        cmd: cmd_tx,
        control: control_tx,
        data: data_tx,
        requests: Arc::default(),
        counters: counters.clone(),
    };
    if let Some(old) = relay.register(handle.clone()) {
        tracing::info!(target: "relay", server_id = %hello.server_id, old = %old.tunnel_id, "displacing the previous tunnel");
        let _ = old.cmd.try_send(TunnelCmd::Displace);
    }
    relay.stats().tunnels_open.fetch_add(1, Ordering::Relaxed);
    core.events
        .publish(HubEvent::relay(&handle.owner_id, &hello.server_id, true));
    tracing::info!(target: "relay", server_id = %hello.server_id, %tunnel_id, %peer, "tunnel open");
    let writer_task = tokio::spawn(write_loop(writer, control_rx, data_rx, counters.clone()));
    let actor = TunnelActor {
        core: core.clone(),
        handle,
        reader,
        decoder: FrameDecoder::new(DEFAULT_DECODE_CAP),
        cmd_rx,
        clients: HashMap::new(),
        next_channel: 1,
        draining: None,
        last_inbound: Instant::now(),
    };
    actor.run(writer_task).await;
}

/// Takes the next queued control frame, else the next data frame, without waiting.
fn next_queued(
    control: &mut mpsc::Receiver<Outbound>,
    data: &mut mpsc::Receiver<Frame>,
) -> Option<Outbound> {
    control
        .try_recv()
        .ok()
        .or_else(|| data.try_recv().ok().map(Outbound::Frame))
}

/// Drains control before data and packs as many frames as are waiting (up to
/// [`COALESCE_BYTES`]) into one binary WebSocket message; ends with the close frame.
async fn write_loop(
    mut writer: WsWriter,
    mut control: mpsc::Receiver<Outbound>,
    mut data: mpsc::Receiver<Frame>,
    counters: Arc<TunnelCounters>,
) {
    let mut parts: Vec<Frame> = Vec::new();
    let mut pending: Option<Outbound> = None;
    loop {
        let next = match pending.take() {
            Some(out) => Some(out),
            None => tokio::select! {
                biased;
                out = control.recv() => out,
                frame = data.recv() => frame.map(Outbound::Frame),
            },
        };
        match next {
            None => return,
            Some(Outbound::Pong(payload)) => {
                if writer.send(Opcode::Pong, &payload).await.is_err() {
                    return;
                }
            }
            Some(Outbound::Close(reason)) => {
                // Flush what is queued (e.g. the last responses of a drained tunnel) first.
                let mut queued = Vec::new();
                while let Some(out) = next_queued(&mut control, &mut data) {
                    if let Outbound::Frame(frame) = out {
                        queued.push(frame);
                    }
                }
                if send_batched(&mut writer, queued).await.is_ok() {
                    writer.close(reason.close_code(), reason.as_str()).await;
                }
                return;
            }
            Some(Outbound::Frame(first)) => {
                let mut size = first.encoded_len();
                parts.clear();
                parts.push(first);
                while size < COALESCE_BYTES {
                    match next_queued(&mut control, &mut data) {
                        Some(Outbound::Frame(frame)) => {
                            size += frame.encoded_len();
                            parts.push(frame);
                        }
                        // A pong or the close: send the batch first, then handle it.
                        Some(other) => {
                            pending = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                if writer.send_frames(&parts).await.is_err() {
                    return;
                }
                counters.bytes_out.fetch_add(size as u64, Ordering::Relaxed);
            }
        }
    }
}

struct Client {
    client_id: String,
    tx: mpsc::Sender<Frame>,
    gone: tokio_util::sync::CancellationToken,
}

struct TunnelActor {
    core: crate::domain::Core,
    handle: TunnelHandle,
    reader: WsReader,
    decoder: FrameDecoder,
    cmd_rx: mpsc::Receiver<TunnelCmd>,
    clients: HashMap<u32, Client>,
    next_channel: u32,
    /// Set when displaced: close when no request is in flight or at this instant.
    draining: Option<Instant>,
    last_inbound: Instant,
}

impl TunnelActor {
    fn relay(&self) -> &Relay {
        &self.core.relay
    }

    async fn run(mut self, mut writer_task: tokio::task::JoinHandle<()>) {
        let timers = self.relay().timers();
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + timers.heartbeat, timers.heartbeat);
        let shutdown = self.relay().shutdown().clone();
        let reason = loop {
            let next_check = self.next_check(timers.stale_after);
            // Commands first: a request is registered (its command sent) before its HEAD goes
            // out, so handling every queued command before reading guarantees that a response
            // never arrives ahead of its registration.
            tokio::select! {
                biased;
                cmd = self.cmd_rx.recv() => {
                    let Some(cmd) = cmd else { break CloseReason::ServerClosed };
                    if let Some(reason) = self.command(cmd) { break reason; }
                }
                event = self.reader.next() => {
                    if let Some(reason) = self.drain_commands() { break reason; }
                    if let Some(reason) = self.inbound(event).await { break reason; }
                }
                _ = heartbeat.tick() => {
                    if self.handle.control.try_send(Outbound::Frame(Frame::empty(0, FrameType::Heartbeat))).is_err() {
                        break CloseReason::BackpressureOverflow;
                    }
                }
                // One timer per tunnel, armed for the next moment something can be due (idle
                // tunnels must not wake up several times a second).
                () = tokio::time::sleep_until(next_check) => {
                    if self.last_inbound.elapsed() > timers.stale_after {
                        break CloseReason::Timeout;
                    }
                    if let Some(deadline) = self.draining
                        && (self.handle.requests.is_empty() || Instant::now() >= deadline)
                    {
                        break CloseReason::ServerReplaced;
                    }
                }
                () = shutdown.cancelled() => break CloseReason::HubShutdown,
                _ = &mut writer_task => break CloseReason::ServerClosed,
            }
        };
        self.teardown(reason, writer_task).await;
    }

    /// When the stale check (and, while draining, the drain check) is next due.
    fn next_check(&self, stale_after: Duration) -> Instant {
        let stale = self.last_inbound + stale_after + Duration::from_millis(1);
        match self.draining {
            // While draining, look every 100 ms whether the last request has finished.
            Some(deadline) => stale
                .min(deadline)
                .min(Instant::now() + Duration::from_millis(100)),
            None => stale,
        }
    }

    /// Handles every command already queued (see the loop in [`Self::run`]).
    fn drain_commands(&mut self) -> Option<CloseReason> {
        while let Ok(cmd) = self.cmd_rx.try_recv() {
            if let Some(reason) = self.command(cmd) {
                return Some(reason);
            }
        }
        None
    }

    /// Handles one inbound WebSocket event; `Some` closes the tunnel.
    async fn inbound(&mut self, event: Result<WsEvent, ReadError>) -> Option<CloseReason> {
        match event {
            Ok(WsEvent::Data(frame)) => {
                self.last_inbound = Instant::now();
                let counters = &self.handle.counters;
                counters
                    .bytes_in
                    .fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
                counters
                    .last_frame_at
                    .store(u64::try_from(now_unix()).unwrap_or(0), Ordering::Relaxed);
                self.decoder.push(&frame.payload);
                loop {
                    match self.decoder.next_frame() {
                        Ok(Some(frame)) => {
                            if let Some(reason) = self.relay_frame(frame).await {
                                return Some(reason);
                            }
                        }
                        Ok(None) => break,
                        Err(FrameError::UnknownType(kind)) => {
                            tracing::info!(target: "relay", server_id = %self.handle.server_id, kind, "invalid frame type");
                            return Some(CloseReason::InvalidFrame);
                        }
                        Err(_) => return Some(CloseReason::ProtocolError),
                    }
                }
                if self.decoder.check_overflow().is_err() {
                    return Some(CloseReason::FrameBufferOverflow);
                }
                self.decoder.release_if_empty();
                None
            }
            Ok(WsEvent::Ping(payload)) => {
                self.last_inbound = Instant::now();
                let _ = self.handle.control.try_send(Outbound::Pong(payload));
                None
            }
            Ok(WsEvent::Pong) => {
                self.last_inbound = Instant::now();
                None
            }
            Ok(WsEvent::Close { .. }) | Err(ReadError::Eof | ReadError::Io(_)) => {
                Some(CloseReason::ServerClosed)
            }
            Err(ReadError::Protocol(err)) => {
                tracing::info!(target: "relay", server_id = %self.handle.server_id, error = %err, "websocket protocol error");
                Some(CloseReason::ProtocolError)
            }
        }
    }

    /// Routes one relay frame from the server (SPEC A.2 "what the hub accepts").
    async fn relay_frame(&mut self, frame: Frame) -> Option<CloseReason> {
        match frame.kind {
            FrameType::Data => {
                let channel = frame.id;
                let Some(client) = self.clients.get(&channel) else {
                    tracing::debug!(target: "relay", channel, "DATA for an unknown channel dropped");
                    self.relay()
                        .stats()
                        .frames_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                if !deliver(&client.tx, frame).await {
                    // The client left, or did not take a frame for STALL_LIMIT: it loses its own
                    // channel, not the tunnel.
                    tracing::info!(target: "relay", channel, "client gone or stalled; closing its channel");
                    self.relay()
                        .stats()
                        .frames_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    self.drop_client(channel, true);
                }
                None
            }
            FrameType::HttpResponse => {
                let id = frame.id;
                let Some(tx) = self.handle.requests.sender(id) else {
                    self.relay()
                        .stats()
                        .frames_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                if !deliver(&tx, ResponseEvent::Chunk(frame.payload)).await {
                    // The HTTP client is gone or stalled: cancel that request only.
                    self.handle.requests.forget(id);
                    let _ = self
                        .handle
                        .control
                        .try_send(Outbound::Frame(Frame::empty(id, FrameType::HttpCancel)));
                }
                None
            }
            // The real server sends HTTP_CANCEL after every response as a "done" marker.
            FrameType::HttpCancel | FrameType::Heartbeat => None,
            other => {
                tracing::info!(target: "relay", server_id = %self.handle.server_id, kind = ?other, "unexpected frame from server");
                Some(CloseReason::ProtocolError)
            }
        }
    }

    fn command(&mut self, cmd: TunnelCmd) -> Option<CloseReason> {
        match cmd {
            TunnelCmd::Mount(request) => {
                let super::MountRequest {
                    client_id,
                    tx,
                    gone,
                    reply,
                } = *request;
                if self.draining.is_some() {
                    let _ = reply.send(None);
                    return None;
                }
                let channel = self.next_channel;
                self.next_channel = self.next_channel.wrapping_add(1).max(1);
                let sent = Frame::new(
                    channel,
                    FrameType::ClientConnect,
                    control::client_connect(&client_id, ""),
                )
                .map(|frame| self.handle.control.try_send(Outbound::Frame(frame)).is_ok());
                match sent {
                    Ok(true) => {
                        self.clients.insert(
                            channel,
                            Client {
                                client_id,
                                tx,
                                gone,
                            },
                        );
                        self.relay()
                            .stats()
                            .clients_mounted
                            .fetch_add(1, Ordering::Relaxed);
                        let _ = reply.send(Some(channel));
                        None
                    }
                    _ => {
                        let _ = reply.send(None);
                        Some(CloseReason::BackpressureOverflow)
                    }
                }
            }
            TunnelCmd::Unmount { channel } => {
                self.drop_client(channel, true);
                None
            }
            TunnelCmd::Displace => {
                let grace = self.relay().drain_grace();
                self.draining = Some(Instant::now() + grace);
                // Mounted clients are not migrated: they reconnect to the new tunnel.
                let channels: Vec<u32> = self.clients.keys().copied().collect();
                for channel in channels {
                    self.disconnect_client(channel, CloseReason::ServerReplaced);
                }
                None
            }
            TunnelCmd::Backpressure => Some(CloseReason::BackpressureTimeout),
            TunnelCmd::Remove => Some(CloseReason::ServerRemoved),
            TunnelCmd::Leave => Some(CloseReason::HubShutdown),
        }
    }

    /// Removes a client; tells the server when `notify`.
    fn drop_client(&mut self, channel: u32, notify: bool) {
        if let Some(client) = self.clients.remove(&channel) {
            client.gone.cancel();
            self.relay()
                .stats()
                .clients_mounted
                .fetch_sub(1, Ordering::Relaxed);
            if notify
                && let Ok(frame) = Frame::new(
                    channel,
                    FrameType::ClientDisconnect,
                    control::client_disconnect(&client.client_id),
                )
            {
                let _ = self.handle.control.try_send(Outbound::Frame(frame));
            }
        }
    }

    /// Sends a client DISCONNECTED with `reason` and forgets it (its socket then closes).
    fn disconnect_client(&mut self, channel: u32, reason: CloseReason) {
        if let Some(client) = self.clients.get(&channel)
            && let Ok(frame) = Frame::new(
                0,
                FrameType::Disconnected,
                control::disconnected(reason.as_str()),
            )
        {
            let _ = client.tx.try_send(frame);
        }
        self.drop_client(channel, false);
    }

    async fn teardown(mut self, reason: CloseReason, writer_task: tokio::task::JoinHandle<()>) {
        let relay = self.relay().clone();
        relay.unregister(&self.handle.server_id, &self.handle.tunnel_id);
        let channels: Vec<u32> = self.clients.keys().copied().collect();
        for channel in channels {
            self.disconnect_client(channel, reason);
        }
        for tx in self.handle.requests.close() {
            let _ = tx.try_send(ResponseEvent::TunnelClosed);
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.handle.control.send(Outbound::Close(reason)),
        )
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
        let counters = &self.handle.counters;
        let session = SessionCounters {
            bytes_in: i64::try_from(counters.bytes_in.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(counters.bytes_out.load(Ordering::Relaxed))
                .unwrap_or(i64::MAX),
            last_frame_at: i64::try_from(counters.last_frame_at.load(Ordering::Relaxed)).ok(),
        };
        relay
            .stats()
            .bytes_in
            .fetch_add(counters.bytes_in.load(Ordering::Relaxed), Ordering::Relaxed);
        relay.stats().bytes_out.fetch_add(
            counters.bytes_out.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        relay.stats().tunnels_open.fetch_sub(1, Ordering::Relaxed);
        relay.stats().count_close(reason.as_str());
        close_session(&self.core, &self.handle.session_id, reason, session).await;
        crate::domain::cluster::release_tunnel(
            &self.core,
            &self.handle.server_id,
            self.handle.epoch,
        )
        .await;
        // A displaced tunnel closes after its successor opened (here, or on another node of
        // the cluster): the relay is still active.
        if reason != CloseReason::ServerReplaced && relay.tunnel(&self.handle.server_id).is_none() {
            self.core.events.publish(HubEvent::relay(
                &self.handle.owner_id,
                &self.handle.server_id,
                false,
            ));
        }
        tracing::info!(target: "relay", server_id = %self.handle.server_id, tunnel_id = %self.handle.tunnel_id, reason = reason.as_str(), "tunnel closed");
    }
}

/// How long the tunnel's inbound side waits for a consumer (client mount or HTTP response)
/// whose queue is full. The Phlix protocol has no per-channel flow control, so a slow
/// consumer is followed at its pace (the server is slowed through TCP); one that takes
/// nothing for this long is dropped so it cannot hold the tunnel up.
pub const STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Queues `item` for a consumer: at once if there is room, else waiting up to
/// [`STALL_LIMIT`]. `false` when the consumer is gone or stalled.
async fn deliver<T>(tx: &mpsc::Sender<T>, item: T) -> bool {
    match tx.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
        Err(mpsc::error::TrySendError::Full(item)) => matches!(
            tokio::time::timeout(STALL_LIMIT, tx.send(item)).await,
            Ok(Ok(()))
        ),
    }
}

/// Sends frames in messages of at most [`COALESCE_BYTES`] (plus one frame).
///
/// # Errors
/// I/O errors.
pub async fn send_batched(writer: &mut WsWriter, frames: Vec<Frame>) -> std::io::Result<()> {
    let mut batch = Vec::new();
    let mut size = 0;
    for frame in frames {
        size += frame.encoded_len();
        batch.push(frame);
        if size >= COALESCE_BYTES {
            writer.send_frames(&batch).await?;
            batch.clear();
            size = 0;
        }
    }
    if !batch.is_empty() {
        writer.send_frames(&batch).await?;
    }
    Ok(())
}

/// Queue size of a client's outbound frames, re-exported for the client module.
pub const CLIENT_QUEUE_SIZE: usize = CLIENT_QUEUE;

/// Sends a frame to the tunnel's data queue, waiting up to [`BACKPRESSURE_TIMEOUT`]; on
/// timeout the tunnel is told to close (`backpressure_timeout`).
///
/// # Errors
/// When the tunnel is gone or stuck.
pub async fn send_data(tunnel: &TunnelHandle, frame: Frame) -> Result<(), ()> {
    send_data_together(tunnel, [frame]).await
}

/// Queues frames that belong together (a bodiless request's HEAD and END) as one, on the terms
/// of [`send_data`]: the writer finds them all queued when it wakes, so they leave in one
/// WebSocket message.
///
/// # Errors
/// When the tunnel is gone or stuck.
pub async fn send_data_together<const N: usize>(
    tunnel: &TunnelHandle,
    frames: [Frame; N],
) -> Result<(), ()> {
    match tokio::time::timeout(BACKPRESSURE_TIMEOUT, tunnel.data.reserve_many(N)).await {
        Ok(Ok(permits)) => {
            for (permit, frame) in permits.zip(frames) {
                permit.send(frame);
            }
            Ok(())
        }
        Ok(Err(_)) => Err(()),
        Err(_) => {
            let _ = tunnel.cmd.try_send(TunnelCmd::Backpressure);
            Err(())
        }
    }
}

/// Mounts a client on a tunnel: its channel id, or `None` when the tunnel is closing.
pub async fn mount(
    tunnel: &TunnelHandle,
    client_id: String,
    tx: mpsc::Sender<Frame>,
    gone: tokio_util::sync::CancellationToken,
) -> Option<u32> {
    let (reply_tx, reply_rx) = oneshot::channel();
    tunnel
        .cmd
        .send(TunnelCmd::Mount(Box::new(super::MountRequest {
            client_id,
            tx,
            gone,
            reply: reply_tx,
        })))
        .await
        .ok()?;
    reply_rx.await.ok().flatten()
}
