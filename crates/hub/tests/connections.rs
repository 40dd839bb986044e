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
