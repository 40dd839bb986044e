//! Client mounts (SPEC B.2, A.2 "on a client mount"): `ws://hub:8803/client/{server_id}`
//! authenticated by a client relay token; each mount is one raw channel of the server's tunnel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use phlix_proto::control;
use phlix_proto::frame::{DEFAULT_DECODE_CAP, Frame, FrameDecoder, FrameError, FrameType};
use phlix_proto::ws::{Opcode, close_code};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::tunnel::{CLIENT_QUEUE_SIZE, mount, send_data};
use super::ws_io::{self, ReadError, WsEvent, WsReader, WsStream, WsWriter};
use super::{TunnelCmd, TunnelHandle};
use crate::auth::now_unix;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Router of the client listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/client/{server_id}", any(mount_client))
        .route("/client/{server_id}/", any(mount_client))
        .fallback(crate::http::error::not_found)
        .with_state(state)
}

/// The relay token of a mount request: `Authorization: Bearer`, else the first entry of
/// `Sec-WebSocket-Protocol` that is not the literal `bearer`.
fn presented_token(headers: &HeaderMap) -> Option<(String, bool)> {
    let offered_protocol = headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL);
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|t| !t.is_empty())
    {
        return Some((token, offered_protocol));
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|entry| !entry.is_empty() && !entry.eq_ignore_ascii_case("bearer"))
        .map(|token| (token.to_owned(), true))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(phlix_proto::ErrorBody {
            error: "Unauthorized".into(),
            code: Some("relay.token_invalid".into()),
            message: Some("A valid client relay token for this server is required".into()),
        }),
    )
        .into_response()
}

async fn mount_client(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    client: crate::http::forwarded::ClientAddr,
    crate::http::extract::Path(server_id): crate::http::extract::Path<String>,
    request: Request,
) -> Response {
    let server_id = server_id.trim().to_owned();
    let Ok(accept) = ws_io::upgrade_accept(request.headers()) else {
        return ApiError::Invalid {
            status: StatusCode::UPGRADE_REQUIRED,
            code: "relay.websocket_required",
            message: "the client listener only speaks WebSocket".into(),
        }
        .into_response();
    };
    let Some(core) = state.core() else {
        return ApiError::Starting {
            step: state.health().step(),
        }
        .into_response();
    };
    if request
        .extensions()
        .get::<super::cluster::Forwarded>()
        .is_none()
    {
        match crate::domain::cluster::route(&core, &server_id).await {
            Ok(crate::domain::cluster::Route::Local) => {}
            Ok(crate::domain::cluster::Route::Remote(owner)) => {
                return super::cluster::forward_mount(&core, &owner, &server_id, client, request)
                    .await;
            }
            Err(err) => return ApiError::from(err).into_response(),
        }
    }
    let relay = core.relay.clone();
    if let Err(retry_after) = relay.allow_mount(&client.ip.to_string(), now_unix()) {
        return crate::domain::DomainError::RateLimited { retry_after }.into_response();
    }
    let Some((token, offered_protocol)) = presented_token(request.headers()) else {
        return unauthorized();
    };
    let grant = match crate::domain::relay_tokens::grant(&core, &token, &server_id).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return unauthorized(),
        Err(err) => return err.into_response(),
    };
    // The token's user must still be the owner, or a collaborator let through (SPEC M.1).
    let collaborator =
        match crate::domain::shares::relay_server_by_id(&core, &server_id, &grant.user_id).await {
            Ok(server) => server.user_id != grant.user_id,
            Err(err) => return err.into_response(),
        };
    match super::check_quota(&core, &grant.user_id, true).await {
        Ok(None) => {}
        Ok(Some(super::QuotaRefusal::Bytes { retry_after })) => {
            return crate::domain::DomainError::QuotaExceeded {
                retry_after,
                streams: false,
            }
            .into_response();
        }
        Ok(Some(super::QuotaRefusal::Streams)) => {
            return crate::domain::DomainError::QuotaExceeded {
                retry_after: 60,
                streams: true,
            }
            .into_response();
        }
        Err(err) => return ApiError::from(err).into_response(),
    }
    let throttle = match crate::domain::quotas::throttle_of(&core, &grant.user_id).await {
        Ok(bps) => bps,
        Err(err) => return err.into_response(),
    };
    let Some(tunnel) = relay.tunnel(&server_id) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(phlix_proto::ErrorBody {
                error: "Service Unavailable".into(),
                code: Some("server_offline".into()),
                message: Some("The server has no open tunnel to this hub".into()),
            }),
        )
            .into_response();
    };
    let protocol = offered_protocol.then_some("bearer");
    let held = relay.hold(&server_id, &grant.user_id, collaborator);
    ws_io::upgrade(request, &accept, protocol, move |stream| async move {
        run_client(core, tunnel, stream, grant.user_id, throttle, peer, held).await;
    })
}

/// Decrements the user's open-stream count when the mount ends.
struct StreamGuard(Arc<super::UserMeter>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn run_client(
    core: crate::domain::Core,
    tunnel: TunnelHandle,
    stream: WsStream,
    user_id: String,
    throttle_bps: i64,
    peer: SocketAddr,
    held: super::RelayGrant,
) {
    let meter = core.relay.meter(&user_id);
    meter.streams.fetch_add(1, Ordering::Relaxed);
    let _stream = StreamGuard(meter.clone());
    let WsStream { reader, mut writer } = stream;
    let client_id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE_SIZE);
    let gone = tokio_util::sync::CancellationToken::new();
    let Some(channel) = mount(&tunnel, client_id.clone(), tx.clone(), gone.clone()).await else {
        if let Ok(frame) = Frame::new(
            0,
            FrameType::Disconnected,
            control::disconnected("server_offline"),
        ) {
            let _ = writer.send(Opcode::Binary, &frame.to_bytes()).await;
        }
        writer.close(close_code::NORMAL, "server_offline").await;
        return;
    };
    tracing::info!(target: "relay", server_id = %tunnel.server_id, channel, %user_id, %peer, "client mounted");
    let relay = core.relay.clone();
    let timers = relay.timers();
    let (ws_tx, ws_rx) = mpsc::channel(8);
    let pacing = super::throttle::TokenBucket::new(throttle_bps);
    let liveness = Arc::new(Liveness::new());
    let writer_task = tokio::spawn(client_writer(
        ClientOutput {
            writer,
            rx,
            ws_rx,
            pacing,
            meter: meter.clone(),
            liveness: liveness.clone(),
        },
        timers.client_ping,
    ));
    let link = ClientLink {
        tunnel: &tunnel,
        channel,
        own: &tx,
        ws_tx: &ws_tx,
        gone: &gone,
        cut: &held.cut,
        meter: &meter,
        liveness: &liveness,
    };
    let reason = client_reader(reader, &link, timers.client_idle).await;
    tracing::info!(target: "relay", server_id = %tunnel.server_id, channel, reason, "client left");
    let _ = tunnel.cmd.send(TunnelCmd::Unmount { channel }).await;
    let _ = ws_tx.send(ClientWs::Close(reason)).await;
    drop(tx);
    let _ = writer_task.await;
}

/// When a mount last showed life, shared by its reader and its writer: anything from the client
/// (a frame, a ping, a pong), or DATA its socket took. A download only receives, and a client
/// whose WebSocket library sends its pongs only when it next writes looks silent, so bytes
/// leaving at the throttle's pace count as life too; a client that stops reading soon blocks
/// the writer and goes quiet.
#[derive(Debug)]
struct Liveness {
    origin: Instant,
    /// Milliseconds from `origin` to the last sign of life.
    last: AtomicU64,
}

impl Liveness {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

enum ClientWs {
    Pong(Bytes),
    Close(&'static str),
}

/// What a client's reader needs besides its socket.
struct ClientLink<'a> {
    tunnel: &'a TunnelHandle,
    channel: u32,
    /// The client's own outbound queue (ERROR frames).
    own: &'a mpsc::Sender<Frame>,
    ws_tx: &'a mpsc::Sender<ClientWs>,
    /// Cancelled when the tunnel drops this client.
    gone: &'a tokio_util::sync::CancellationToken,
    /// Cancelled when the user loses access to the server (share revoked, M.1).
    cut: &'a tokio_util::sync::CancellationToken,
    meter: &'a super::UserMeter,
    liveness: &'a Liveness,
}

/// Reads the client's frames: DATA is re-tagged with its channel and queued to the tunnel; any
/// other valid type gets an ERROR frame; an invalid frame closes only this client. A client
/// without any sign of life (see [`Liveness`]) for `idle` is closed (`idle_timeout`).
async fn client_reader(
    mut reader: WsReader,
    link: &ClientLink<'_>,
    idle: Duration,
) -> &'static str {
    let ClientLink {
        tunnel,
        channel,
        own,
        ws_tx,
        gone,
        cut,
        meter,
        liveness,
    } = *link;
    let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
    loop {
        let event = tokio::select! {
            event = reader.next() => event,
            () = tokio::time::sleep_until(liveness.last() + idle) => {
                // The writer may have moved bytes since this timer was armed.
                if liveness.last() + idle <= Instant::now() {
                    return "idle_timeout";
                }
                continue;
            }
            () = gone.cancelled() => return "disconnected",
            () = cut.cancelled() => return "access_revoked",
        };
        liveness.touch();
        match event {
            Ok(WsEvent::Data(frame)) => {
                decoder.push(&frame.payload);
                loop {
                    match decoder.next_frame() {
                        Ok(Some(frame)) if frame.kind == FrameType::Data => {
                            meter
                                .bytes_in
                                .fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
                            let tagged = Frame {
                                id: channel,
                                kind: FrameType::Data,
                                payload: frame.payload,
                            };
                            if send_data(tunnel, tagged).await.is_err() {
                                return "tunnel_closed";
                            }
                        }
                        Ok(Some(_)) => {
                            let error = control::error_payload(
                                "Unexpected frame type",
                                "relay.unexpected_frame",
                            );
                            if let Ok(frame) = Frame::new(0, FrameType::Error, error) {
                                let _ = own.try_send(frame);
                            }
                        }
                        Ok(None) => break,
                        Err(FrameError::UnknownType(_)) => return "invalid_frame",
                        Err(_) => return "protocol_error",
                    }
                }
                if decoder.check_overflow().is_err() {
                    return "frame_buffer_overflow";
                }
            }
            Ok(WsEvent::Ping(payload)) => {
                let _ = ws_tx.try_send(ClientWs::Pong(payload));
            }
            Ok(WsEvent::Pong) => {}
            Ok(WsEvent::Close { .. }) | Err(ReadError::Eof | ReadError::Io(_)) => {
                return "client_closed";
            }
            Err(ReadError::Protocol(_)) => return "protocol_error",
        }
    }
}

/// What a client's writer owns.
struct ClientOutput {
    writer: WsWriter,
    /// Frames for the client (DATA from the tunnel, ERROR, DISCONNECTED).
    rx: mpsc::Receiver<Frame>,
    /// Pongs and the final close, from the reader.
    ws_rx: mpsc::Receiver<ClientWs>,
    /// The user's throttle.
    pacing: super::throttle::TokenBucket,
    meter: Arc<super::UserMeter>,
    liveness: Arc<Liveness>,
}

/// Writes frames to the client, coalescing what is queued; pings every `ping`, even while a
/// download keeps the queue full.
async fn client_writer(output: ClientOutput, ping: Duration) {
    let ClientOutput {
        mut writer,
        mut rx,
        mut ws_rx,
        mut pacing,
        meter,
        liveness,
    } = output;
    let mut parts: Vec<Frame> = Vec::new();
    let mut ticker = tokio::time::interval_at(Instant::now() + ping, ping);
    // After a long pacing wait, one ping, not a burst of the missed ones.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let frame = tokio::select! {
            biased;
            cmd = ws_rx.recv() => match cmd {
                Some(ClientWs::Pong(payload)) => {
                    if writer.send(Opcode::Pong, &payload).await.is_err() { return; }
                    continue;
                }
                Some(ClientWs::Close(reason)) => {
                    // Deliver what is queued (e.g. DISCONNECTED) in messages of the usual size.
                    let mut queued = Vec::new();
                    while let Ok(frame) = rx.try_recv() {
                        queued.push(frame);
                    }
                    if super::tunnel::send_batched(&mut writer, queued).await.is_ok() {
                        writer.close(close_code::NORMAL, reason).await;
                    }
                    return;
                }
                None => return,
            },
            // Ahead of the frames: a throttled download always has one queued, and a ping
            // polled after them would never go out.
            _ = ticker.tick() => {
                if writer.send(Opcode::Ping, b"").await.is_err() { return; }
                continue;
            }
            frame = rx.recv() => frame,
        };
        let Some(frame) = frame else {
            writer.close(close_code::NORMAL, "closed").await;
            return;
        };
        let disconnect = frame.kind == FrameType::Disconnected;
        parts.clear();
        let mut size = frame.encoded_len();
        parts.push(frame);
        while size < 256 * 1024 {
            let Ok(frame) = rx.try_recv() else { break };
            size += frame.encoded_len();
            parts.push(frame);
        }
        let data: usize = parts
            .iter()
            .filter(|f| f.kind == FrameType::Data)
            .map(|f| f.payload.len())
            .sum();
        let wait = pacing.take(data);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if writer.send_frames(&parts).await.is_err() {
            return;
        }
        meter.bytes_out.fetch_add(data as u64, Ordering::Relaxed);
        if data > 0 {
            liveness.touch();
        }
        if disconnect {
            writer.close(close_code::NORMAL, "disconnected").await;
            return;
        }
    }
}
