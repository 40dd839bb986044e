//! A real webhook receiver on 127.0.0.1: it records every request (path, headers, body, when)
//! and answers each path with planned statuses (200 unless planned) and a body (ten thousand
//! `x` unless one was set for the path), so the hub's excerpt limit is exercised.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

#[derive(Clone, Default)]
pub struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
    /// Per path: the statuses to answer, in order (the last one repeats).
    plan: Arc<Mutex<HashMap<String, Vec<u16>>>>,
    /// Per path: the body to answer with.
    replies: Arc<Mutex<HashMap<String, String>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    receiver.seen.lock().unwrap().push(Received {
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    if path == "hang" {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let reply = receiver
        .replies
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or_else(|| "x".repeat(10_000));
    let status = {
        let mut plan = receiver.plan.lock().unwrap();
        let steps = plan.entry(path).or_insert_with(|| vec![200]);
        if steps.len() > 1 {
            steps.remove(0)
        } else {
            steps[0]
        }
    };
    (StatusCode::from_u16(status).unwrap(), reply)
}

impl Receiver {
    /// Starts a receiver on an ephemeral port; it serves `POST /{path}`.
    pub async fn start() -> (Self, SocketAddr) {
        let receiver = Self::default();
        let app = Router::new()
            .route("/{path}", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, addr)
    }

    /// Answers `path` with `statuses` in order (the last one repeats).
    pub fn plan(&self, path: &str, statuses: &[u16]) {
        self.plan
            .lock()
            .unwrap()
            .insert(path.to_owned(), statuses.to_vec());
    }

    /// Answers `path` with `body`.
    pub fn reply(&self, path: &str, body: &str) {
        self.replies
            .lock()
            .unwrap()
            .insert(path.to_owned(), body.to_owned());
    }

    /// The requests to `path` so far.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` got `count` requests.
    pub async fn wait(&self, path: &str, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.on(path);
            if seen.len() >= count {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {count} requests within {within:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
