//! `phlix-agent run` (SPEC K): heartbeats every minute, one reverse tunnel kept open with the
//! Phlix back-off; what arrives through it is answered by [`crate::upstream`].

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use bytes::BytesMut;
use phlix_proto::frame::{DEFAULT_DECODE_CAP, Frame, FrameDecoder, FrameType};
use phlix_proto::ws::{Opcode, close_code};
use phlix_proto::ws_io::{ReadError, WsEvent, WsReader, WsStream, WsWriter};
use rand::RngExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::tls::TlsClient;
use tokio_util::sync::CancellationToken;

use crate::metrics::Sampler;
use crate::state::{DataDir, Enrollment, RunState};
use crate::upstream::{CHANNEL_QUEUE, Outgoing, Request, Upstream, handle_request, pipe_channel};

/// Shared view of the running agent, written to `agent-state.json` for `status`.
#[derive(Clone)]
struct Reporter {
    data: DataDir,
    state: std::sync::Arc<std::sync::Mutex<RunState>>,
}

impl Reporter {
    fn update(&self, change: impl FnOnce(&mut RunState)) {
        let snapshot = {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            change(&mut state);
            state.clone()
        };
        if let Err(err) = self.data.save_run_state(&snapshot) {
            tracing::debug!(error = format!("{err:#}"), "cannot write agent-state.json");
        }
    }

    fn tunnel(&self, state: &str) {
        self.update(|s| {
            s.tunnel = state.to_owned();
            s.tunnel_since = now();
        });
    }
}

/// What `run` needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `HOST:PORT` of the local service.
    pub upstream: String,
    /// Heartbeat interval (60 s).
    pub heartbeat_interval: Duration,
    /// Base of the reconnect back-off (5 s): `min(base·2ⁿ, 300 s) × (1 ± 0.3)`.
    pub reconnect_base: Duration,
    /// Tunnel URL override (`PHLIX_RELAY_HUB_WS_URL`); otherwise asked from the hub.
    pub tunnel_url: Option<String>,
    /// A private CA to trust besides the platform's and Mozilla's roots (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// Renew the enrollment once it is this old (6 days, SPEC C.5).
const RENEW_AFTER_SECS: i64 = 518_400;
/// Frames waiting for the tunnel writer.
const WRITER_QUEUE: usize = 256;
/// Heartbeat ticks (30 s) without a frame from the hub before the tunnel counts as stale.
const STALE_TICKS: u32 = 3;
/// Largest answer to HELLO accepted.
const HELLO_ACK_LIMIT: usize = 64 * 1024;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn http_client(tls: &TlsClient) -> anyhow::Result<reqwest::Client> {
    tls.http(Duration::from_secs(30))
}

/// Runs until `shutdown` is cancelled.
///
/// # Errors
/// Not paired, or an unusable data dir; network trouble is retried, never fatal.
pub async fn run(
    data: DataDir,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(enrollment) = data.enrollment()? else {
        bail!("not paired: run `phlix-agent pair --hub URL` first");
    };
    let tls = TlsClient::new(options.ca_file.as_deref())?;
    // Fails here, not silently in the heartbeat task, when reqwest cannot use it.
    http_client(&tls)?;
    tracing::info!(hub = %enrollment.hub_base_url, server_id = %enrollment.server_id, upstream = %options.upstream, "phlix-agent running");
    let (enrollment_tx, enrollment_rx) = watch::channel(enrollment);
    let reporter = Reporter {
        data: data.clone(),
        state: std::sync::Arc::new(std::sync::Mutex::new(RunState {
            upstream: options.upstream.clone(),
            pid: std::process::id(),
            ..RunState::default()
        })),
    };
    reporter.tunnel("connecting");
    let heartbeats = tokio::spawn(heartbeat_loop(
        data.clone(),
        options.clone(),
        enrollment_tx,
        reporter.clone(),
        tls.clone(),
        shutdown.clone(),
    ));
    tunnel_loop(&options, enrollment_rx, &reporter, &tls, &shutdown).await;
    let _ = heartbeats.await;
    reporter.tunnel("stopped");
    tracing::info!("phlix-agent stopped");
    Ok(())
}

fn heartbeat_body(enrollment: &Enrollment, started: i64, sampler: &mut Sampler) -> Value {
    json!({
        "serverId": enrollment.server_id,
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": now(),
        "uptimeSeconds": now() - started,
        "activeSessions": 0,
        "activeTranscodes": 0,
        "hostnameCandidates": [],
        "hostMetrics": sampler.sample(),
    })
}

async fn heartbeat_loop(
    data: DataDir,
    options: RunOptions,
    enrollment: watch::Sender<Enrollment>,
    reporter: Reporter,
    tls: TlsClient,
    shutdown: CancellationToken,
) {
    let Ok(http) = http_client(&tls) else { return };
    let mut sampler = Sampler::default();
    let started = now();
    loop {
        let current = enrollment.borrow().clone();
        if now() - current.enrolled_at >= RENEW_AFTER_SECS {
            renew(&http, &data, &current, &enrollment).await;
        }
        let body = heartbeat_body(&current, started, &mut sampler);
        let url = format!(
            "{}/api/v1/servers/{}/heartbeat",
            current.hub_base_url, current.server_id
        );
        let result = http
            .post(&url)
            .header("Accept-Phlix-Protocol", "v1")
            .bearer_auth(&current.enrollment_jwt)
            .json(&body)
            .send()
            .await;
        let outcome = match &result {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "unreachable".to_owned(),
        };
        reporter.update(|s| {
            s.last_heartbeat_at = Some(now());
            s.last_heartbeat_result = Some(outcome);
        });
        match result {
            Ok(response) if response.status().is_success() => tracing::debug!("heartbeat sent"),
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                tracing::warn!(%status, body = %text, "heartbeat refused");
            }
            Err(err) => {
                let error = crate::tls::certificate_problem(&err).map_or_else(
                    || err.to_string(),
                    |problem| format!("TLS: cannot trust {}: {problem}", current.hub_base_url),
                );
                tracing::warn!(%error, "heartbeat failed; the hub is unreachable");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(options.heartbeat_interval) => {}
        }
    }
}

async fn renew(
    http: &reqwest::Client,
    data: &DataDir,
    current: &Enrollment,
    enrollment: &watch::Sender<Enrollment>,
) {
    let url = format!(
        "{}/api/v1/servers/{}/renew",
        current.hub_base_url, current.server_id
    );
    let answer = http
        .post(&url)
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(&current.enrollment_jwt)
        .json(&json!({}))
        .send()
        .await;
    let token = match answer {
        Ok(response) if response.status().is_success() => {
            response.json::<Value>().await.ok().and_then(|v| {
                v.get("enrollment_jwt")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        }
        Ok(response) => {
            tracing::warn!(status = %response.status(), "enrollment renewal refused");
            None
        }
        Err(err) => {
            tracing::warn!(error = %err, "enrollment renewal failed");
            None
        }
    };
    if let Some(token) = token {
        let renewed = Enrollment {
            enrollment_jwt: token,
            enrolled_at: now(),
            ..current.clone()
        };
        match data.save_enrollment(&renewed) {
            Ok(()) => tracing::info!("enrollment renewed"),
            Err(err) => tracing::error!(
                error = format!("{err:#}"),
                "cannot store the renewed enrollment"
            ),
        }
        enrollment.send_replace(renewed);
    }
}

/// The tunnel URL: the override, else the hub's signpost (`X-WS-Endpoint`), else
/// `ws://<hub host>:8802`.
async fn tunnel_url(options: &RunOptions, enrollment: &Enrollment, tls: &TlsClient) -> String {
    if let Some(url) = &options.tunnel_url {
        return url.clone();
    }
    if let Ok(http) = http_client(tls) {
        let url = format!(
            "{}/api/v1/servers/{}/relay",
            enrollment.hub_base_url, enrollment.server_id
        );
        if let Ok(response) = http
            .post(&url)
            .bearer_auth(&enrollment.enrollment_jwt)
            .send()
            .await
            && let Some(endpoint) = response
                .headers()
                .get("x-ws-endpoint")
                .and_then(|v| v.to_str().ok())
        {
            return endpoint.to_owned();
        }
    }
    let rest = enrollment
        .hub_base_url
        .split_once("://")
        .map_or(enrollment.hub_base_url.as_str(), |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("localhost");
    let scheme = if enrollment.hub_base_url.starts_with("https://") {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{host}:8802")
}

/// `min(base·2ⁿ, 300 s) × (1 ± 0.3)` (SPEC B.3).
#[must_use]
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempts.min(16)));
    let capped = exp.min(Duration::from_secs(300));
    let jitter = rand::rng().random_range(0.7..=1.3);
    capped.mul_f64(jitter)
}

async fn tunnel_loop(
    options: &RunOptions,
    enrollment: watch::Receiver<Enrollment>,
    reporter: &Reporter,
    tls: &TlsClient,
    shutdown: &CancellationToken,
) {
    let mut attempts: u32 = 0;
    let upstream = match Upstream::new(&options.upstream) {
        Ok(upstream) => upstream,
        Err(err) => {
            tracing::error!(
                error = format!("{err:#}"),
                "cannot build the upstream HTTP client"
            );
            return;
        }
    };
    loop {
        let current = enrollment.borrow().clone();
        let url = tunnel_url(options, &current, tls).await;
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = session(&url, &current, &upstream, reporter, tls, shutdown) => outcome,
        };
        reporter.tunnel("disconnected");
        let hub_left = matches!(outcome, Ok(Ended::HubLeft));
        match outcome {
            Ok(Ended::Closed | Ended::HubLeft) => {
                attempts = 0;
                tracing::info!("tunnel closed");
            }
            Ok(Ended::Refused) => tracing::warn!("tunnel refused or closed before HELLO_ACK"),
            Err(err) => tracing::warn!(error = format!("{err:#}"), "tunnel failed"),
        }
        if shutdown.is_cancelled() {
            return;
        }
        let delay = if hub_left {
            // Spread the reconnects of many agents over a moment, not a back-off.
            Duration::from_millis(rand::rng().random_range(0..=500))
        } else {
            attempts += 1;
            backoff(options.reconnect_base, attempts)
        };
        tracing::info!(retry_in_ms = delay.as_millis(), "reconnecting");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// How a tunnel connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Refused or closed before HELLO_ACK.
    Refused,
    /// Closed after HELLO_ACK (the back-off starts again from its base).
    Closed,
    /// The hub node went away (close 1001, `hub_shutdown`): a restart, or a node leaving its
    /// cluster. Reconnect at once — through the load balancer, another node takes the tunnel.
    HubLeft,
}

/// One tunnel connection.
async fn session(
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

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_caps_at_300_s_and_jitters_30_percent() {
        let base = Duration::from_secs(5);
        for _ in 0..100 {
            let first = backoff(base, 1).as_secs_f64();
            assert!((7.0..=13.0).contains(&first), "{first}");
            let late = backoff(base, 20).as_secs_f64();
            assert!((210.0..=390.0).contains(&late), "{late}");
        }
    }
}
