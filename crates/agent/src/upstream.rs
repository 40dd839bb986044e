//! The agent's side of the relay's data plane (SPEC A.4, A.5): raw channels piped to TCP
//! connections to the upstream, and HTTP-over-relay requests answered by HTTP requests to it,
//! bodies streamed both ways.

use std::collections::HashMap;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use phlix_proto::frame::{Frame, FrameType, MAX_PAYLOAD};
use phlix_proto::relay_http::{self, MAX_BODY_CHUNK, RequestHead, RequestPayload, ResponseHead};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Frames waiting for one upstream connection or request body.
pub(crate) const CHANNEL_QUEUE: usize = 64;

/// What the tunnel writer sends: one frame, or frames that belong together and go out in one
/// WebSocket message (a small response whole: HEAD, BODY, END and the done marker — one write
/// and one wake-up of the hub instead of four).
#[derive(Debug)]
pub(crate) enum Outgoing {
    One(Frame),
    Many(Vec<Frame>),
}

impl From<Frame> for Outgoing {
    fn from(frame: Frame) -> Self {
        Self::One(frame)
    }
}

impl Outgoing {
    /// Bytes [`Self::encode_into`] appends.
    pub(crate) fn encoded_len(&self) -> usize {
        match self {
            Self::One(frame) => frame.encoded_len(),
            Self::Many(frames) => frames.iter().map(Frame::encoded_len).sum(),
        }
    }

    /// Appends the encoded frames to `buf`.
    pub(crate) fn encode_into(&self, buf: &mut bytes::BytesMut) {
        match self {
            Self::One(frame) => frame.encode_into(buf),
            Self::Many(frames) => frames.iter().for_each(|frame| frame.encode_into(buf)),
        }
    }
}

/// A response at most this long (announced by `Content-Length`) is read whole and sent as
/// one batch.
const SMALL_RESPONSE: u64 = MAX_BODY_CHUNK as u64;

/// An HTTP-over-relay request in flight.
pub(crate) struct Request {
    body: Option<mpsc::Sender<Bytes>>,
    pub(crate) task: tokio::task::AbortHandle,
}

/// A raw channel: one TCP connection to the upstream, bytes piped both ways.
pub(crate) async fn pipe_channel(
    channel: u32,
    upstream: String,
    mut from_hub: mpsc::Receiver<Bytes>,
    to_hub: mpsc::Sender<Outgoing>,
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
                    if to_hub.send(frame.into()).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::join!(inbound, outbound);
}

/// Handles one HTTP_REQUEST chunk: a HEAD starts the upstream request, BODY chunks feed it,
/// END closes its body.
pub(crate) async fn handle_request(
    frame: Frame,
    upstream: &Upstream,
    requests: &mut HashMap<u32, Request>,
    frames_tx: &mpsc::Sender<Outgoing>,
) {
    let id = frame.id;
    match relay_http::decode_request(&frame.payload) {
        Ok(RequestPayload::Head(head)) => {
            let (body_tx, body_rx) = mpsc::channel(CHANNEL_QUEUE);
            let task = spawn_forward(id, head, body_rx, upstream, frames_tx);
            requests.insert(
                id,
                Request {
                    body: Some(body_tx),
                    task,
                },
            );
        }
        Ok(RequestPayload::Legacy(legacy)) => {
            // The whole body came in the one frame.
            let (body_tx, body_rx) = mpsc::channel(1);
            let _ = body_tx.try_send(Bytes::from(legacy.body));
            drop(body_tx);
            let task = spawn_forward(id, legacy.head, body_rx, upstream, frames_tx);
            requests.insert(id, Request { body: None, task });
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

/// Starts answering request `id` in a task of its own.
fn spawn_forward(
    id: u32,
    head: RequestHead,
    body: mpsc::Receiver<Bytes>,
    upstream: &Upstream,
    frames_tx: &mpsc::Sender<Outgoing>,
) -> tokio::task::AbortHandle {
    tokio::spawn(forward(id, head, body, upstream.clone(), frames_tx.clone())).abort_handle()
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
    to_hub: mpsc::Sender<Outgoing>,
) {
    let response_frame = |payload: Bytes| Frame::new(id, FrameType::HttpResponse, payload).ok();
    let send = |payload: Bytes| {
        let to_hub = to_hub.clone();
        async move {
            match response_frame(payload) {
                Some(frame) => to_hub.send(frame.into()).await.is_ok(),
                None => false,
            }
        }
    };
    let response = match upstream_request(&head, body, &upstream).await {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(id, upstream = %upstream.addr, error = %err, "upstream request failed");
            let text = format!("upstream unavailable: {err:#}");
            let head = ResponseHead {
                status: 502,
                headers: [(
                    "content-type".to_owned(),
                    "text/plain; charset=utf-8".to_owned(),
                )]
                .into(),
                body_length: Some(text.len() as u64),
            };
            let frames = [
                relay_http::encode_response_head(&head),
                relay_http::body_chunk(Bytes::from(text)),
                relay_http::end_chunk(),
            ];
            let _ = to_hub
                .send(Outgoing::Many(
                    frames.into_iter().filter_map(response_frame).collect(),
                ))
                .await;
            return;
        }
    };
    let (parts, mut body) = response.into_parts();
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in &parts.headers {
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
    let content_length = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let head = relay_http::encode_response_head(&ResponseHead {
        status: parts.status.as_u16(),
        headers,
        body_length: content_length,
    });
    if content_length.is_some_and(|length| length <= SMALL_RESPONSE) {
        // A small answer goes back whole: HEAD, BODY, END and the done marker in one message.
        let Ok(collected) = body.collect().await else {
            tracing::warn!(id, "upstream body broke off");
            return;
        };
        let body = collected.to_bytes();
        let mut frames: Vec<Frame> = [
            Some(head),
            (!body.is_empty()).then(|| relay_http::body_chunk(body)),
            Some(relay_http::end_chunk()),
        ]
        .into_iter()
        .flatten()
        .filter_map(response_frame)
        .collect();
        frames.push(Frame::empty(id, FrameType::HttpCancel));
        let _ = to_hub.send(Outgoing::Many(frames)).await;
        return;
    }
    if !send(head).await {
        return;
    }
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            tracing::warn!(id, "upstream body broke off");
            return;
        };
        let Ok(mut chunk) = frame.into_data() else {
            continue; // trailers are not relayed
        };
        while !chunk.is_empty() {
            let piece = chunk.split_to(chunk.len().min(MAX_BODY_CHUNK));
            if !send(relay_http::body_chunk(piece)).await {
                return;
            }
        }
    }
    if send(relay_http::end_chunk()).await {
        let _ = to_hub
            .send(Frame::empty(id, FrameType::HttpCancel).into())
            .await;
    }
}

/// The upstream's address and one HTTP/1.1 client for it, its connections kept alive and
/// reused across requests (hyper's client directly: no URL parsing, redirect or decompression
/// layers between a relayed request and the socket).
#[derive(Clone)]
pub struct Upstream {
    pub addr: String,
    client: Client<HttpConnector, RelayBody>,
}

impl Upstream {
    /// A client for `addr` (`host:port`). Redirects are passed through, never followed.
    ///
    /// # Errors
    /// Never today; kept fallible for the callers that report a client that cannot be built.
    pub fn new(addr: &str) -> anyhow::Result<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(10)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .build(connector);
        Ok(Self {
            addr: addr.to_owned(),
            client,
        })
    }
}

/// A relayed request's body: the chunks the hub sends, as they arrive.
pub(crate) struct RelayBody {
    first: Option<Bytes>,
    rest: Option<mpsc::Receiver<Bytes>>,
}

impl RelayBody {
    fn empty() -> Self {
        Self {
            first: None,
            rest: None,
        }
    }
}

impl hyper::body::Body for RelayBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(first))));
        }
        let Some(rest) = self.rest.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        rest.poll_recv(cx).map(|chunk| {
            if chunk.is_none() {
                self.rest = None;
            }
            chunk.map(|data| Ok(hyper::body::Frame::data(data)))
        })
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.is_end_stream() {
            hyper::body::SizeHint::with_exact(0)
        } else {
            hyper::body::SizeHint::default()
        }
    }
}

async fn upstream_request(
    head: &RequestHead,
    body: mpsc::Receiver<Bytes>,
    upstream: &Upstream,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    let target = if head.query.is_empty() {
        format!("http://{}{}", upstream.addr, head.path)
    } else {
        format!("http://{}{}?{}", upstream.addr, head.path, head.query)
    };
    let method = hyper::Method::from_bytes(head.method.as_bytes()).context("invalid method")?;
    let mut request = hyper::Request::builder().method(method).uri(target);
    for (name, value) in &head.headers {
        if !HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str()) {
            request = request.header(name, value);
        }
    }
    // The hub sends END right behind the HEAD of a request without a body: wait for the first
    // chunk, so such a request goes out without a body instead of as an empty chunked one.
    let mut body = body;
    let body = match body.recv().await {
        None => RelayBody::empty(),
        Some(first) => RelayBody {
            first: Some(first),
            rest: Some(body),
        },
    };
    let request = request.body(body).context("invalid request head")?;
    upstream
        .client
        .request(request)
        .await
        .map_err(|err| anyhow::anyhow!(describe(&err)))
}

/// The client error with its causes (`client error (Connect): tcp connect error: Connection
/// refused`), for the 502 text and the log.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
