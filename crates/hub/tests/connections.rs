//! Slow and half-open connections (issue #20 item 2): the header-read timeout on every port,
//! the idle timeout of the API port, the per-address connection cap, and the pressure figures
//! in `/health` and `/metrics`. Timeouts are configured short so the suite runs in seconds;
//! every bound is measured from the moment the client stopped sending, with wide margins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TestHub;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes (`Some(elapsed, bytes)`), or `None` if it is still open after
/// `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some((started.elapsed(), received)),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

async fn health(hub: &TestHub) -> Value {
    let response = hub
        .http_client
        .get(hub.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn metrics(hub: &TestHub) -> String {
    hub.http_client
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_start} in\n{text}"))
}

/// Opens `n` connections to `addr` that send the start of a request header and then one byte
/// every `drip`, never finishing it.
async fn dripping(addr: SocketAddr, n: usize, head: &'static [u8]) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(head).await.unwrap();
        streams.push(stream);
    }
    streams
}

#[tokio::test]
async fn request_headers_dripped_slower_than_the_header_timeout_are_cut_on_every_port() {
    let hub = TestHub::start_with(|args| {
        args.header_read_timeout = Duration::from_millis(800);
    })
    .await;
    let ports = [
        (
            hub.http,
            &b"GET /health HTTP/1.1\r\nhost: hub\r\nx-slow: "[..],
        ),
        (
            hub.tunnel,
            &b"GET /relay HTTP/1.1\r\nhost: hub\r\nupgrade: websocket\r\nconnection: upgrade\r\nx-slow: "[..],
        ),
        (
            hub.client_addr,
            &b"GET /client/x HTTP/1.1\r\nhost: hub\r\nupgrade: websocket\r\nx-slow: "[..],
        ),
    ];
    for (addr, head) in ports {
        let mut streams = dripping(addr, 20, head).await;
        let sent_head = Instant::now();
        // Keep dripping a byte every 200 ms: each byte is progress, but the header never ends.
        let drip = async {
            loop {
                for stream in &mut streams {
                    if stream.write_all(b"a").await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), drip).await;
        let waited = sent_head.elapsed();
        assert!(
            waited < Duration::from_secs(8),
            "{addr}: dripping connections were still open after {waited:?} (header timeout 800 ms)"
        );
        for stream in &mut streams {
            let closed = closed_within(stream, Duration::from_secs(5)).await;
            assert!(
                closed.is_some(),
                "{addr}: a dripping connection stayed open"
            );
        }
        // The hub kept serving everyone else meanwhile.
        assert_eq!(health(&hub).await["status"], "ok");
    }
    let text = metrics(&hub).await;
    for listener in ["http", "tunnel", "client"] {
        let timed_out = metric(
            &text,
            &format!("phlix_connections_timed_out_total{{listener=\"{listener}\"}}"),
        );
        assert!(
            timed_out >= 20,
            "{listener}: {timed_out} timeouts counted\n{text}"
        );
    }
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_cut_by_the_idle_timeout() {
    let hub = TestHub::start_with(|args| {
        args.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(hub.http).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"login\":",
        )
        .await
        .unwrap();
    let stopped_sending = Instant::now();
    let closed = closed_within(&mut stream, Duration::from_secs(8)).await;
    let (_, _) = closed.expect("a stalled body must not hold the connection open");
    let after = stopped_sending.elapsed();
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}, before the 1 s idle timeout"
    );

    // A silent keep-alive connection goes the same way once idle.
    let mut idle = TcpStream::connect(hub.http).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: hub\r\n\r\n")
        .await
        .unwrap();
    let answered = Instant::now();
    let (_, bytes) = closed_within(&mut idle, Duration::from_secs(8))
        .await
        .expect("an idle keep-alive connection must be closed");
    assert!(String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 200"));
    assert!(answered.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_quiet_event_stream_outlives_a_short_idle_timeout() {
    let hub = TestHub::start_with(|args| {
        args.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let auth = hub.register("quiet", "correct horse battery").await;
    let mut response = hub
        .http_client
        .get(hub.url("/api/v1/me/events"))
        .bearer_auth(&auth.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let opened = Instant::now();
    let mut comments = 0;
    while opened.elapsed() < Duration::from_secs(3) {
        let chunk = tokio::time::timeout(Duration::from_secs(2), response.chunk())
            .await
            .expect("the stream sends a keep-alive well within the idle timeout")
            .expect("the stream is not cut")
            .expect("the stream did not end");
        comments += usize::from(String::from_utf8_lossy(&chunk).contains("keep-alive"));
    }
    assert!(comments >= 3, "{comments} keep-alive comments in 3 s");
}

#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_refused_with_a_json_429() {
    let hub = TestHub::start_with(|args| {
        args.max_connections_per_ip = 5;
    })
    .await;
    // reqwest keeps its own pooled connection(s) open; count from what the hub reports.
    let before = health(&hub).await["connections"]["open"].as_u64().unwrap();
    let mut held = Vec::new();
    for _ in before..5 {
        held.push(TcpStream::connect(hub.http).await.unwrap());
    }
    // Let the hub accept them all before the one too many.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(hub.http).await.unwrap();
    let (_, bytes) = closed_within(&mut extra, Duration::from_secs(5))
        .await
        .expect("the connection over the cap is closed at once");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "too_many_connections");

    // Freeing one slot lets the next one in.
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = TcpStream::connect(hub.http).await.unwrap();
    next.write_all(b"GET /health HTTP/1.1\r\nhost: hub\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (_, bytes) = closed_within(&mut next, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 200"));
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = metrics(&hub).await;
    assert!(
        metric(
            &text,
            "phlix_connections_refused_per_ip_total{listener=\"http\"}"
        ) >= 1
    );
}

#[tokio::test]
async fn health_and_metrics_show_connection_pressure_and_the_raised_fd_limit() {
    let hub = TestHub::start().await;
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let held: Vec<TcpStream> =
        futures_util::future::join_all((0..10).map(|_| TcpStream::connect(hub.http)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = health(&hub).await;
    let open = body["connections"]["open"].as_u64().unwrap();
    assert!(open >= 10, "{body}");
    let limit = body["connections"]["fd_limit"].as_u64().unwrap();
    let (soft_now, _) = rlimit::Resource::NOFILE.get().unwrap();
    assert_eq!(
        limit, soft_now,
        "the hub reports the soft limit it runs with: {body}"
    );
    assert_eq!(
        soft_now, hard,
        "the hub raised the soft limit to the hard limit"
    );
    let text = metrics(&hub).await;
    assert!(metric(&text, "phlix_connections_open{listener=\"http\"}") >= 10);
    assert_eq!(metric(&text, "phlix_fd_limit"), limit);
    drop(held);
}

#[tokio::test]
async fn paths_with_invalid_utf8_get_a_json_400_on_every_surface() {
    let hub = TestHub::start().await;
    for path in [
        "/invite/%ff%fe",
        "/servers/%ff%fe",
        "/app/assets/%ff%fe",
        "/api/v1/server-claims/%ff%fe",
    ] {
        let response = hub.http_client.get(hub.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let response = hub
        .http_client
        .get(format!("http://{}/client/%ff%fe", hub.client_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn an_over_limit_content_length_is_refused_before_the_body_is_sent() {
    let hub = TestHub::start().await;
    let mut stream = TcpStream::connect(hub.http).await.unwrap();
    // Only the head: the hub must answer without waiting for (or buffering) 20 MB.
    stream
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\ncontent-length: 20000000\r\n\r\n")
        .await
        .unwrap();
    let (_, bytes) = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed without the body");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"], "Payload Too Large");
}

/// Reads one response (head and `Content-Length` body) from `stream`.
async fn read_response(stream: &mut (impl AsyncReadExt + Unpin)) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap_or(0);
        assert!(
            n > 0,
            "closed before a response: {}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&buf[..n]);
    }
    (head, body)
}

#[tokio::test]
async fn a_refusal_that_leaves_the_body_unread_tells_the_client_not_to_reuse_the_connection() {
    let hub = TestHub::start().await;
    for size in [1_000usize, 256 * 1024, 1024 * 1024] {
        let stream = TcpStream::connect(hub.http).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let mut request = format!(
            "POST /api/v1/me/servers/nope/relay-token HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
        )
        .into_bytes();
        request.resize(request.len() + size, b'x');
        // The hub may answer before the body is through: write it from the side.
        let sending = tokio::spawn(async move {
            let sent = writer.write_all(&request).await.is_ok();
            (writer, sent)
        });
        let (head, body) = read_response(&mut reader).await;
        assert!(head.starts_with("http/1.1 401"), "{size}: {head}");
        assert!(serde_json::from_slice::<Value>(&body).is_ok());
        if head.contains("connection: close") {
            // The client opens a new connection for its next request; this one ends.
            let mut rest = Vec::new();
            let ended =
                tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut rest)).await;
            assert!(ended.is_ok(), "{size}: said close but stayed open");
        } else {
            // Kept alive: then the next request on it must be answered.
            let (mut writer, sent) = sending.await.unwrap();
            assert!(
                sent,
                "{size}: the body could not be sent on a kept-alive connection"
            );
            writer
                .write_all(b"GET /health HTTP/1.1\r\nhost: hub\r\n\r\n")
                .await
                .unwrap();
            let (head, _) = read_response(&mut reader).await;
            assert!(head.starts_with("http/1.1 200"), "{size}: {head}");
        }
    }
}
