//! Heartbeat ingest of a real hub: sustained heartbeats per second through
//! `POST /api/v1/servers/{id}/heartbeat` (with p50/p99 latency), and — side by side on the same
//! database — the storage layer alone, `Store::write_heartbeats` with one heartbeat per
//! transaction versus batches of 256 (the hub's group commit writes up to 512).
//!
//! `cargo bench -p phlix-hub --bench heartbeats` — prints a Markdown table for BENCHMARKS.md.
//! Runs on SQLite, and on PostgreSQL too when `PHLIX_TEST_POSTGRES_URL` names a server where a
//! database may be created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use phlix_hub::auth::now_unix;
use phlix_hub::config::DatabaseUrl;
use phlix_hub::store::{HeartbeatRecord, LibraryRow, Store};

mod support;

/// Servers heartbeating over HTTP; each sends `ROUNDS` heartbeats, well under the limit of
/// 30 per 60 s per server.
const SERVERS: usize = 4000;
const ROUNDS: usize = 5;
/// Client tasks sharing one `reqwest::Client`.
const CONCURRENCY: usize = 64;
/// Servers per storage-layer measurement (fresh each time), each written `ROUNDS` heartbeats
/// round after round like the HTTP run: the first stores the library list, the rest find it
/// unchanged.
const STORE_SERVERS: usize = 1024;
const STORE_BATCH: usize = 256;
const STORE_REPS: usize = 5;

const HOSTNAME_CANDIDATES: &str = r#"["http://10.0.0.1:8096"]"#;
const HOST_METRICS: &str = r#"{"cpuPercent":3.5,"memUsedBytes":1000,"memTotalBytes":2000,"diskUsedBytes":1,"diskTotalBytes":2,"load1":0.2,"netRxBytes":5,"netTxBytes":6}"#;

/// The heartbeat body a Phlix server sends.
fn heartbeat_body(server_id: &str, timestamp: i64) -> String {
    format!(
        r#"{{"serverId":"{server_id}","version":"0.45.0","timestamp":{timestamp},"uptimeSeconds":10,"activeSessions":0,"activeTranscodes":0,"hostnameCandidates":{HOSTNAME_CANDIDATES},"libraries":[{{"library_id":"lib-1","library_name":"Movies"}}],"hostMetrics":{HOST_METRICS}}}"#
    )
}

/// What the handler hands to the store for that body.
fn record(server_id: &str, now: i64) -> HeartbeatRecord {
    HeartbeatRecord {
        server_id: server_id.to_owned(),
        version: "0.45.0".into(),
        sent_at: now,
        uptime_seconds: 10,
        active_sessions: 0,
        active_transcodes: 0,
        hostname_candidates_json: Some(HOSTNAME_CANDIDATES.into()),
        host_metrics_json: Some(HOST_METRICS.into()),
        libraries: Some(vec![LibraryRow {
            library_id: "lib-1".into(),
            library_name: "Movies".into(),
        }]),
        received_at: now,
    }
}

/// One client task's results: latencies of 200 answers, and every other outcome by kind.
#[derive(Default)]
struct WorkerResult {
    latencies_ms: Vec<f64>,
    /// "status: body" (or "transport: error") → how many times.
    failures: BTreeMap<String, usize>,
}

struct HttpFigures {
    ok: usize,
    elapsed_s: f64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: BTreeMap<String, usize>,
}

/// `SERVERS × ROUNDS` heartbeats, round after round, pulled from one shared queue by
/// `CONCURRENCY` tasks.
async fn http_ingest(base: &str, servers: Vec<(String, String)>) -> HttpFigures {
    let client = reqwest::Client::new();
    let servers = Arc::new(servers);
    let next = Arc::new(AtomicUsize::new(0));
    let total = servers.len() * ROUNDS;
    let start = Instant::now();
    let mut workers = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        let (client, servers, next) = (client.clone(), servers.clone(), next.clone());
        let base = base.to_owned();
        workers.push(tokio::spawn(async move {
            let mut result = WorkerResult {
                latencies_ms: Vec::with_capacity(total / CONCURRENCY + 1),
                failures: BTreeMap::new(),
            };
            loop {
                let job = next.fetch_add(1, Ordering::Relaxed);
                if job >= total {
                    break;
                }
                let (id, token) = &servers[job % servers.len()];
                let body = heartbeat_body(id, now_unix());
                let t = Instant::now();
                let sent = client
                    .post(format!("{base}/api/v1/servers/{id}/heartbeat"))
                    .header("Accept-Phlix-Protocol", "v1")
                    .header("Content-Type", "application/json")
                    .bearer_auth(token)
                    .body(body)
                    .send()
                    .await;
                let failure = match sent {
                    Ok(resp) => {
                        let status = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        if status == 200 && text.contains(r#""status":"ok""#) {
                            result.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                            continue;
                        }
                        format!("{status}: {text}")
                    }
                    Err(err) => format!("transport: {err}"),
                };
                *result.failures.entry(failure).or_default() += 1;
            }
            result
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failures = BTreeMap::new();
    for worker in workers {
        let result = worker.await.unwrap();
        latencies.extend(result.latencies_ms);
        for (kind, count) in result.failures {
            *failures.entry(kind).or_default() += count;
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let (p50_ms, p99_ms) = if latencies.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (
            support::percentile(&latencies, 0.5),
            support::percentile(&latencies, 0.99),
        )
    };
    HttpFigures {
        ok: latencies.len(),
        elapsed_s,
        rate: latencies.len() as f64 / elapsed_s,
        p50_ms,
        p99_ms,
        failures,
    }
}

/// Writes `ROUNDS` heartbeats to each of `ids`, round after round, in batches of `batch`;
/// heartbeats per second.
async fn store_rate(store: &Store, ids: &[(String, String)], batch: usize) -> f64 {
    let now = now_unix();
    let records: Vec<HeartbeatRecord> = (0..ROUNDS)
        .flat_map(|_| ids.iter().map(|(id, _)| record(id, now)))
        .collect();
    let start = Instant::now();
    for chunk in records.chunks(batch) {
        let found = store.write_heartbeats(chunk).await.unwrap();
        assert!(
            found.iter().all(Option::is_some),
            "a bench server was not found"
        );
    }
    records.len() as f64 / start.elapsed().as_secs_f64()
}

struct Figures {
    http: HttpFigures,
    single: f64,
    batched: f64,
}

async fn scenario(database_url: Option<String>) -> Figures {
    let hub = support::BenchHub::start(database_url).await;
    let (user_id, _) = hub.user("bench").await;
    let servers = hub.servers(&user_id, SERVERS).await;
    let http = http_ingest(&hub.base, servers).await;

    // The storage layer alone on the same database, the hub idle; fresh servers for every
    // measurement so every one does the same work as the HTTP run.
    let fresh = hub.servers(&user_id, 2 * STORE_REPS * STORE_SERVERS).await;
    let store = Store::connect(&DatabaseUrl::parse(&hub.database_url).unwrap())
        .await
        .unwrap();
    let (mut singles, mut batches) = (Vec::new(), Vec::new());
    for (rep, ids) in fresh.chunks(2 * STORE_SERVERS).enumerate() {
        let (a, b) = ids.split_at(STORE_SERVERS);
        // Alternate the order so neither mode always runs on the fuller database.
        if rep % 2 == 0 {
            singles.push(store_rate(&store, a, 1).await);
            batches.push(store_rate(&store, b, STORE_BATCH).await);
        } else {
            batches.push(store_rate(&store, a, STORE_BATCH).await);
            singles.push(store_rate(&store, b, 1).await);
        }
    }
    store.close().await;
    hub.stop().await;
    Figures {
        http,
        single: support::median(&mut singles).0,
        batched: support::median(&mut batches).0,
    }
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
    let mut results = Vec::new();
    for (name, server) in stores {
        let figures = runtime.block_on(async {
            let url = match &server {
                Some(server) => Some(support::fresh_postgres(server).await),
                None => None,
            };
            scenario(url).await
        });
        results.push((name, figures));
    }

    println!(
        "| store | HTTP heartbeats/s ({SERVERS} servers × {ROUNDS}, {CONCURRENCY} clients) | HTTP p50 | HTTP p99 | store alone, 1 per transaction | store alone, {STORE_BATCH} per transaction | batch ÷ single |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, f) in &results {
        println!(
            "| {name} | {:.0} ({} in {:.1} s) | {:.1} ms | {:.1} ms | {:.0}/s | {:.0}/s | {:.1}× |",
            f.http.rate,
            f.http.ok,
            f.http.elapsed_s,
            f.http.p50_ms,
            f.http.p99_ms,
            f.single,
            f.batched,
            f.batched / f.single
        );
    }
    println!();
    println!(
        "Store alone: `Store::write_heartbeats` on the same database, median of {STORE_REPS} runs of {} heartbeats ({STORE_SERVERS} fresh servers × {ROUNDS}, like the HTTP run).",
        STORE_SERVERS * ROUNDS
    );
    for (name, f) in &results {
        for (kind, count) in &f.http.failures {
            println!("{name}: {count} heartbeats answered {kind}");
        }
    }
}
