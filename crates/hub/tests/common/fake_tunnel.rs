//! The tunnel side of a fake Phlix server (SPEC A, B): HELLO, then frames — sent the way the
//! PHP server sends them (TEXT opcode, several frames per message, frames split across
//! messages, an HTTP_CANCEL after every response).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use phlix_proto::frame::{Frame, FrameType};
use phlix_proto::relay_http::{self, MAX_BODY_CHUNK, RequestHead, RequestPayload, ResponseHead};
use phlix_proto::ws::Opcode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::ws_client::{Ended, WsClient, connect};

/// Sends the HELLO and reads the HELLO_ACK.
pub async fn open(tunnel: SocketAddr, server_id: &str, jwt: &str) -> (WsClient, Value) {
    let mut ws = connect(tunnel, "/", &[]).await.expect("tunnel upgrade");
    let hello = json!({"type": "hello", "enrollment_jwt": jwt, "server_id": server_id});
    ws.send_raw(Opcode::Text, hello.to_string().as_bytes())
        .await;
    let ack = ws.next_message().await.expect("HELLO_ACK");
    let ack: Value = serde_json::from_slice(&ack).unwrap();
    assert_eq!(ack["type"], "hello_ack", "{ack}");
    (ws, ack)
}

/// What the fake server saw, for assertions.
#[derive(Debug, Clone)]
pub enum Seen {
    Frame(Frame),
    Request {
        id: u32,
        head: RequestHead,
        body_sha256: String,
        body_len: usize,
    },
    Closed(Ended),
}

/// Sends frames as the PHP server does: TEXT opcode; each frame split in two messages when
/// `split`, otherwise several frames packed into one message.
pub async fn send_php_style(ws: &mut WsClient, frames: &[Frame], split: bool) {
    let mut wire = BytesMut::new();
    for frame in frames {
        frame.encode_into(&mut wire);
    }
    if split && wire.len() > 8 {
        let cut = wire.len() / 2 + 3;
        let tail = wire.split_off(cut);
        ws.send_raw(Opcode::Text, &wire).await;
        ws.send_raw(Opcode::Text, &tail).await;
    } else {
        ws.send_raw(Opcode::Text, &wire).await;
    }
}

/// Response frames for `request id`: HEAD, BODY chunks, END, then the server's HTTP_CANCEL.
pub fn response_frames(
    id: u32,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    known_length: bool,
) -> Vec<Frame> {
    let head = ResponseHead {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body_length: known_length.then_some(body.len() as u64),
    };
    let mut frames = vec![
        Frame::new(
            id,
            FrameType::HttpResponse,
            relay_http::encode_response_head(&head),
        )
        .unwrap(),
    ];
    for chunk in body.chunks(MAX_BODY_CHUNK) {
        frames.push(
            Frame::new(
                id,
                FrameType::HttpResponse,
                relay_http::body_chunk(Bytes::copy_from_slice(chunk)),
            )
            .unwrap(),
        );
    }
    frames.push(Frame::new(id, FrameType::HttpResponse, relay_http::end_chunk()).unwrap());
    frames.push(Frame::empty(id, FrameType::HttpCancel));
    frames
}

/// Behaviour of [`serve`] for HTTP requests: `/echo` answers method, path, query, headers
/// and the body's SHA-256 as JSON; `/bytes/<n>` answers n bytes; `/hang` never answers;
/// `/slow` answers HEAD and one BODY chunk, then nothing.
fn answer(id: u32, head: &RequestHead, body: &[u8]) -> Option<Vec<Frame>> {
    let path = head.path.as_str();
    if path.ends_with("/hang") {
        return None;
    }
    if path.ends_with("/slow") {
        let mut frames = response_frames(
            id,
            200,
            &[("content-type", "application/octet-stream")],
            &vec![7u8; 1000],
            false,
        );
        frames.truncate(2);
        return Some(frames);
    }
    if let Some(n) = path
        .rsplit('/')
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|_| path.contains("/bytes/"))
    {
        let data: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
        return Some(response_frames(
            id,
            200,
            &[("content-type", "application/octet-stream")],
            &data,
            false,
        ));
    }
    let echo = json!({
        "method": head.method, "path": head.path, "query": head.query, "headers": head.headers,
        "body_sha256": hex::encode(Sha256::digest(body)), "body_len": body.len(),
    });
    let echo = echo.to_string();
    Some(response_frames(
        id,
        201,
        &[("content-type", "application/json"), ("x-fake", "yes")],
        echo.as_bytes(),
        true,
    ))
}

/// Runs the fake server on an open tunnel: echoes raw channels, answers HTTP requests, answers
/// heartbeats; reports everything it sees.
pub fn serve(mut ws: WsClient) -> (mpsc::UnboundedReceiver<Seen>, tokio::task::JoinHandle<()>) {
    let (seen, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut assembling: HashMap<u32, (RequestHead, Vec<u8>)> = HashMap::new();
        let mut toggle = false;
        loop {
            let frame = match ws.next_frame().await {
                Ok(frame) => frame,
                Err(ended) => {
                    let _ = seen.send(Seen::Closed(ended));
                    return;
                }
            };
            let _ = seen.send(Seen::Frame(frame.clone()));
            match frame.kind {
                FrameType::Data => {
                    toggle = !toggle;
                    let echo =
                        Frame::new(frame.id, FrameType::Data, frame.payload.clone()).unwrap();
                    send_php_style(&mut ws, &[echo], toggle).await;
                }
                FrameType::Heartbeat => {
                    send_php_style(&mut ws, &[Frame::empty(0, FrameType::Heartbeat)], false).await
                }
                FrameType::HttpRequest => match relay_http::decode_request(&frame.payload).unwrap()
                {
                    RequestPayload::Head(head) => {
                        assembling.insert(frame.id, (head, Vec::new()));
                    }
                    RequestPayload::Body(data) => {
                        if let Some((_, body)) = assembling.get_mut(&frame.id) {
                            body.extend_from_slice(&data);
                        }
                    }
                    RequestPayload::End => {
                        if let Some((head, body)) = assembling.remove(&frame.id) {
                            let _ = seen.send(Seen::Request {
                                id: frame.id,
                                head: head.clone(),
                                body_sha256: hex::encode(Sha256::digest(&body)),
                                body_len: body.len(),
                            });
                            if let Some(frames) = answer(frame.id, &head, &body) {
                                // Several frames per message, as the PHP server batches them.
                                for batch in frames.chunks(8) {
                                    toggle = !toggle;
                                    send_php_style(&mut ws, batch, toggle).await;
                                }
                            }
                        }
                    }
                    RequestPayload::Legacy(_) => {}
                },
                _ => {}
            }
        }
    });
    (rx, task)
}

/// Waits for the first report matching `pred` (10 s at most).
pub async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    what: &str,
    pred: impl Fn(&Seen) -> bool,
) -> Seen {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("fake server never saw {what}"))
            .unwrap_or_else(|| panic!("fake server stopped before {what}"));
        if pred(&seen) {
            return seen;
        }
    }
}
