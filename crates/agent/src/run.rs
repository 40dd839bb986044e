//! `phlix-agent run` (SPEC K): heartbeats every minute, one reverse tunnel kept open with the
//! Phlix back-off, raw channels piped to TCP connections to the upstream, HTTP-over-relay
//! answered by HTTP requests to the upstream with bodies streamed both ways.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use phlix_proto::frame::{DEFAULT_DECODE_CAP, Frame, FrameDecoder, FrameType, MAX_PAYLOAD};
use phlix_proto::relay_http::{self, MAX_BODY_CHUNK, RequestHead, RequestPayload, ResponseHead};
use rand::RngExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::tls::TlsClient;
use tokio_util::sync::CancellationToken;

use crate::metrics::Sampler;
use crate::state::{DataDir, Enrollment, RunState};

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
/// Frames waiting for one upstream connection.
const CHANNEL_QUEUE: usize = 64;

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

struct Request {
    body: Option<mpsc::Sender<Bytes>>,
    task: tokio::task::AbortHandle,
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
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, None, true, Some(tls.connector()))
            .await
            .map_err(|err| {
                crate::tls::explain(
                    anyhow::Error::new(err).context(format!("connecting to {url}")),
                    url,
                )
            })?;
    let (mut sink, mut stream) = ws.split();
    let hello = json!({"type": "hello", "enrollment_jwt": enrollment.enrollment_jwt, "server_id": enrollment.server_id});
    sink.send(Message::Text(hello.to_string().into())).await?;
    let ack = tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await
        .context("no HELLO_ACK within 15 s")?;
    let ack: Value = match ack {
        Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap_or(Value::Null),
        Some(Ok(Message::Close(frame))) => {
            let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
            tracing::error!(%reason, "the hub refused the HELLO");
            return Ok(Ended::Refused);
        }
        other => bail!("unexpected answer to HELLO: {other:?}"),
    };
    if ack.get("type").and_then(Value::as_str) != Some("hello_ack") {
        bail!("unexpected answer to HELLO: {ack}");
    }
    tracing::info!(relay_session_id = %ack["relay_session_id"], "tunnel open");
    reporter.tunnel("connected");

    let (frames_tx, mut frames_rx) = mpsc::channel::<Frame>(WRITER_QUEUE);
    let writer = tokio::spawn(async move {
        let mut buf = bytes::BytesMut::with_capacity(256 * 1024);
        while let Some(frame) = frames_rx.recv().await {
            buf.clear();
            frame.encode_into(&mut buf);
            while buf.len() < 256 * 1024 {
                let Ok(frame) = frames_rx.try_recv() else {
                    break;
                };
                frame.encode_into(&mut buf);
            }
            if sink
                .send(Message::Binary(buf.split().freeze()))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut heartbeat = tokio::time::interval(Duration::from_secs(30));
    let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
    let mut channels: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut requests: HashMap<u32, Request> = HashMap::new();
    let mut going_away = false;
    let result = loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break Ok(true),
            _ = heartbeat.tick() => {
                let _ = frames_tx.try_send(Frame::empty(0, FrameType::Heartbeat));
                continue;
            }
            message = stream.next() => message,
        };
        let payload = match message {
            Some(Ok(Message::Binary(data))) => data,
            Some(Ok(Message::Text(text))) => Bytes::copy_from_slice(text.as_bytes()),
            Some(Ok(Message::Close(frame))) => {
                // 1001: the hub node is going away (restart, or leaving its cluster).
                going_away = frame.is_some_and(|f| u16::from(f.code) == 1001);
                break Ok(true);
            }
            None => break Ok(true),
            Some(Ok(_)) => continue,
            Some(Err(err)) => break Err(anyhow::Error::new(err).context("reading the tunnel")),
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
                    let _ = frames_tx.try_send(Frame::empty(0, FrameType::Heartbeat));
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

/// A raw channel: one TCP connection to the upstream, bytes piped both ways.
async fn pipe_channel(
    channel: u32,
    upstream: String,
    mut from_hub: mpsc::Receiver<Bytes>,
    to_hub: mpsc::Sender<Frame>,
) {
    let socket = match tokio::net::TcpStream::connect(&upstream).await {
        Ok(socket) => socket,
        Err(err) => {
            tracing::warn!(channel, %upstream, error = %err, "cannot reach the upstream for a raw channel");
            return;
        }
    };
    let _ = socket.set_nodelay(true);
    let (mut read, mut write) = socket.into_split();
    let inbound = async move {
        while let Some(data) = from_hub.recv().await {
            if write.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    };
    let outbound = async move {
        let mut buf = bytes::BytesMut::with_capacity(MAX_PAYLOAD);
        loop {
            buf.reserve(MAX_PAYLOAD);
            let mut limited = (&mut read).take(MAX_PAYLOAD as u64);
            match limited.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let Ok(frame) = Frame::new(channel, FrameType::Data, buf.split().freeze())
                    else {
                        return;
                    };
                    if to_hub.send(frame).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::join!(inbound, outbound);
}

async fn handle_request(
    frame: Frame,
    upstream: &Upstream,
    requests: &mut HashMap<u32, Request>,
    frames_tx: &mpsc::Sender<Frame>,
) {
    let id = frame.id;
    match relay_http::decode_request(&frame.payload) {
        Ok(RequestPayload::Head(head)) => {
            let (body_tx, body_rx) = mpsc::channel(CHANNEL_QUEUE);
            let task = tokio::spawn(forward(
                id,
                head,
                body_rx,
                upstream.clone(),
                frames_tx.clone(),
            ));
            requests.insert(
                id,
                Request {
                    body: Some(body_tx),
                    task: task.abort_handle(),
                },
            );
        }
        Ok(RequestPayload::Legacy(legacy)) => {
            let (body_tx, body_rx) = mpsc::channel(1);
            let _ = body_tx.try_send(Bytes::from(legacy.body));
            drop(body_tx);
            let task = tokio::spawn(forward(
                id,
                legacy.head,
                body_rx,
                upstream.clone(),
                frames_tx.clone(),
            ));
            requests.insert(
                id,
                Request {
                    body: None,
                    task: task.abort_handle(),
                },
            );
        }
        Ok(RequestPayload::Body(data)) => {
            if let Some(tx) = requests.get(&id).and_then(|r| r.body.as_ref()) {
                let _ = tx.send(data).await;
            }
        }
        Ok(RequestPayload::End) => {
            if let Some(request) = requests.get_mut(&id) {
                request.body = None;
            }
        }
        Err(err) => tracing::warn!(id, error = %err, "undecodable HTTP_REQUEST chunk dropped"),
    }
}

/// Headers never passed to the upstream or back.
const HOP_BY_HOP: [&str; 8] = [
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

/// Answers one relayed request with an HTTP request to the upstream; the response is streamed
/// back as HEAD, BODY chunks, END (and the done-marker HTTP_CANCEL real servers send).
async fn forward(
    id: u32,
    head: RequestHead,
    body: mpsc::Receiver<Bytes>,
    upstream: Upstream,
    to_hub: mpsc::Sender<Frame>,
) {
    let send = |payload: Bytes| {
        let to_hub = to_hub.clone();
        async move {
            match Frame::new(id, FrameType::HttpResponse, payload) {
                Ok(frame) => to_hub.send(frame).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    let result = upstream_request(&head, body, &upstream).await;
    let response = match result {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(id, upstream = %upstream.addr, error = %err, "upstream request failed");
            let text = format!("upstream unavailable: {err}");
            let head = ResponseHead {
                status: 502,
                headers: [(
                    "content-type".to_owned(),
                    "text/plain; charset=utf-8".to_owned(),
                )]
                .into(),
                body_length: Some(text.len() as u64),
            };
            let _ = send(relay_http::encode_response_head(&head)).await
                && send(relay_http::body_chunk(Bytes::from(text))).await
                && send(relay_http::end_chunk()).await;
            return;
        }
    };
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in response.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v: &mut String| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
    }
    let head = ResponseHead {
        status: response.status().as_u16(),
        headers,
        body_length: response.content_length(),
    };
    if !send(relay_http::encode_response_head(&head)).await {
        return;
    }
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(mut chunk) = chunk else {
            tracing::warn!(id, "upstream body broke off");
            return;
        };
        while !chunk.is_empty() {
            let piece = chunk.split_to(chunk.len().min(MAX_BODY_CHUNK));
            if !send(relay_http::body_chunk(piece)).await {
                return;
            }
        }
    }
    if send(relay_http::end_chunk()).await {
        let _ = to_hub.send(Frame::empty(id, FrameType::HttpCancel)).await;
    }
}

/// The upstream's address and one HTTP client for it (its connection pool is reused across
/// requests: building a client per request cost ~3 ms each).
#[derive(Clone)]
pub struct Upstream {
    pub addr: String,
    pub http: reqwest::Client,
}

impl Upstream {
    /// A client that passes redirects through instead of following them.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(addr: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            addr: addr.to_owned(),
            http,
        })
    }
}

async fn upstream_request(
    head: &RequestHead,
    body: mpsc::Receiver<Bytes>,
    upstream: &Upstream,
) -> anyhow::Result<reqwest::Response> {
    let client = &upstream.http;
    let upstream = upstream.addr.as_str();
    let query = if head.query.is_empty() {
        String::new()
    } else {
        format!("?{}", head.query)
    };
    let url = format!("http://{upstream}{}{query}", head.path);
    let method = reqwest::Method::from_bytes(head.method.as_bytes()).context("invalid method")?;
    let mut request = client.request(method, &url);
    for (name, value) in &head.headers {
        if !HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str()) {
            request = request.header(name, value);
        }
    }
    // The hub sends END right behind the HEAD of a request without a body: wait for the first
    // chunk, so such a request goes out without a body instead of as an empty chunked one.
    let mut body = body;
    let Some(first) = body.recv().await else {
        return Ok(request.send().await?);
    };
    let stream = futures_util::stream::unfold((Some(first), body), |(first, mut rx)| async move {
        let next = match first {
            Some(first) => Some(first),
            None => rx.recv().await,
        };
        next.map(|b| (Ok::<Bytes, std::io::Error>(b), (None, rx)))
    });
    Ok(request
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await?)
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
