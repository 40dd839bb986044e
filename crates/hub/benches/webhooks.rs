//! Webhook delivery (SPEC P, issue #15): deliveries per second to a local receiver at 1, 16 and
//! 64 endpoints, and the latency from an event's commit to its delivery.
//!
//! Throughput: a real hub in-process; N endpoints point at a receiver on 127.0.0.1 that answers
//! 204; 4 000 delivery rows (4 000 / N events) are written to the outbox as the fan-out writes
//! them, and the delivery worker is woken as the fan-out wakes it; then the clock runs until
//! the receiver has all 4 000 (each one claimed, signed with both signature kinds, POSTed and
//! recorded with its attempt).
//! Latency: one endpoint; 300 shares made through the API one after the other; for each, from
//! the moment its `POST /api/v1/me/shares` answered 201 (the event is committed and
//! published) to the delivery's arrival at the receiver.
//! Runs on SQLite, and on PostgreSQL too when `PHLIX_TEST_POSTGRES_URL` names a server.
//! `cargo bench -p phlix-hub --bench webhooks`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use phlix_hub::store::DeliveryRow;
use serde_json::{Value, json};

const DELIVERIES: usize = 4000;
const LATENCY_EVENTS: usize = 300;

#[derive(Clone, Default)]
struct Receiver {
    count: Arc<AtomicU64>,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
}

async fn start_receiver() -> (Receiver, std::net::SocketAddr) {
    let receiver = Receiver::default();
    let state = receiver.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                state.count.fetch_add(1, Ordering::Relaxed);
                if let Ok(event) = serde_json::from_slice::<Value>(&body)
                    && let Some(id) = event["data"]["id"].as_str()
                {
                    state
                        .arrivals
                        .lock()
                        .unwrap()
                        .insert(id.to_owned(), Instant::now());
                }
                let _ = headers;
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, addr)
}

async fn post(client: &reqwest::Client, url: &str, token: &str, body: Value) -> (u16, Value) {
    let resp = client
        .post(url)
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Deliveries per second with `endpoints` endpoints.
async fn throughput(database: Option<String>, endpoints: usize) -> f64 {
    let hub = support::BenchHub::start(database).await;
    let (receiver, addr) = start_receiver().await;
    let (_, token) = hub.user(&format!("hooks{endpoints}")).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..endpoints {
        let (status, body) = post(
            &client,
            &format!("{}/api/v1/me/webhooks", hub.base),
            &token,
            json!({"name": format!("e{i}"), "url": format!("http://{addr}/hook"), "events": ["*"]}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["webhook"]["id"].as_str().unwrap().to_owned());
    }
    let store = phlix_hub::store::Store::connect(
        &phlix_hub::config::DatabaseUrl::parse(&hub.database_url).unwrap(),
    )
    .await
    .unwrap();
    let events = DELIVERIES / endpoints;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let payload = json!({"type": "share.created", "timestamp": "2026-12-02T12:00:00Z", "data": {
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e", "owner_user_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "collaborator_user_id": "16fd2706-8baf-433b-82eb-8c7fada847da", "server_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "library_id": "lib-movies", "library_name": "Movies", "permission_level": "read",
        "created_at": 1_796_214_400, "expires_at": null, "revoked_at": null, "collaborator_name": "friend"}})
    .to_string();
    let mut rows = Vec::with_capacity(DELIVERIES);
    for e in 0..events {
        let event_id = format!("evt_bench{e:06}");
        for id in &ids {
            rows.push(DeliveryRow {
                id: uuid::Uuid::new_v4().to_string(),
                webhook_id: id.clone(),
                event_id: event_id.clone(),
                event_type: "share.created".into(),
                payload: payload.clone(),
                status: "pending".into(),
                attempt_count: 0,
                next_attempt_ms: Some(now_ms),
                created_ms: now_ms,
            });
        }
    }
    for chunk in rows.chunks(500) {
        store.enqueue_deliveries(chunk).await.unwrap();
    }
    // Written behind the fan-out's back: tell the worker, as the fan-out does.
    phlix_hub::domain::webhooks::wake(&hub.core());
    let total = rows.len() as u64;
    let started = Instant::now();
    while receiver.count.load(Ordering::Relaxed) < total {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{} of {total} delivered",
            receiver.count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    store.close().await;
    hub.stop().await;
    rate
}

/// Event commit → delivery arrival, in milliseconds: (p50, p99).
async fn latency(database: Option<String>) -> (f64, f64) {
    let hub = support::BenchHub::start(database).await;
    let (receiver, addr) = start_receiver().await;
    let (owner_id, token) = hub.user("latency").await;
    hub.user("latencyfriend").await;
    let servers = hub.servers(&owner_id, 1).await;
    let client = reqwest::Client::new();
    let (status, body) = post(
        &client,
        &format!("{}/api/v1/me/webhooks", hub.base),
        &token,
        json!({"name": "lat", "url": format!("http://{addr}/hook"), "events": ["share.created"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut committed = HashMap::new();
    for i in 0..LATENCY_EVENTS {
        let (status, share) = post(
            &client,
            &format!("{}/api/v1/me/shares", hub.base),
            &token,
            json!({"collaborator_email": "latencyfriend@example.com", "server_id": servers[0].0,
                   "library_id": format!("lib{i}"), "library_name": format!("Library {i}")}),
        )
        .await;
        assert_eq!(status, 201, "{share}");
        committed.insert(share["id"].as_str().unwrap().to_owned(), Instant::now());
        // Paced: one event every 10 ms, as events come in real life, not a burst.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.arrivals.lock().unwrap().len() < LATENCY_EVENTS {
        assert!(Instant::now() < deadline, "latency deliveries missing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let arrivals = receiver.arrivals.lock().unwrap().clone();
    let mut samples: Vec<f64> = committed
        .iter()
        .map(|(id, at)| arrivals[id].saturating_duration_since(*at).as_secs_f64() * 1000.0)
        .collect();
    samples.sort_by(f64::total_cmp);
    hub.stop().await;
    (
        support::percentile(&samples, 0.5),
        support::percentile(&samples, 0.99),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut stores = vec![("SQLite", None)];
    if let Ok(server) = std::env::var("PHLIX_TEST_POSTGRES_URL") {
        stores.push(("PostgreSQL", Some(server)));
    }
    println!(
        "| store | deliveries/s, 1 endpoint | 16 endpoints | 64 endpoints | commit → delivery p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, server) in stores {
        let fresh = |server: &Option<String>| {
            let server = server.clone();
            async move {
                match server {
                    Some(server) => Some(support::fresh_postgres(&server).await),
                    None => None,
                }
            }
        };
        let rates: Vec<f64> = [1, 16, 64]
            .into_iter()
            .map(|n| {
                runtime.block_on(async {
                    let url = fresh(&server).await;
                    throughput(url, n).await
                })
            })
            .collect();
        let (p50, p99) = runtime.block_on(async {
            let url = fresh(&server).await;
            latency(url).await
        });
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {p50:.1} ms | {p99:.1} ms |",
            rates[0], rates[1], rates[2]
        );
    }
}
