//! Account benchmarks: Argon2id hash/verify time and login throughput of a real hub over HTTP.
//!
//! `cargo bench -p phlix-hub --bench auth` — prints a Markdown table for BENCHMARKS.md. The
//! login figure runs on SQLite, and on PostgreSQL too when `PHLIX_TEST_POSTGRES_URL` names a
//! server where a database may be created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use phlix_hub::auth::password::{hash_blocking, verify_blocking};
use serde_json::json;

mod support;

fn time_ms(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1000.0
}

struct LoginFigures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn login_throughput(
    database_url: Option<String>,
    concurrency: usize,
    total: usize,
) -> LoginFigures {
    let hub = support::BenchHub::start(database_url).await;
    let base = hub.base.clone();
    let client = reqwest::Client::new();
    hub.user("bench").await;

    let per_worker = total / concurrency;
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), format!("{base}/api/v1/auth/login"));
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .json(&json!({"username": "bench", "password": "benchmark-password"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    hub.stop().await;
    latencies.sort_by(f64::total_cmp);
    LoginFigures {
        rps: latencies.len() as f64 / elapsed,
        p50_ms: support::percentile(&latencies, 0.5),
        p99_ms: support::percentile(&latencies, 0.99),
    }
}

fn main() {
    const RUNS: usize = 15;
    let mut hashes: Vec<f64> = Vec::new();
    let mut verifies: Vec<f64> = Vec::new();
    let hash = hash_blocking(b"benchmark-password").unwrap();
    for _ in 0..RUNS {
        hashes.push(time_ms(|| {
            hash_blocking(b"benchmark-password").unwrap();
        }));
        verifies.push(time_ms(|| {
            assert!(verify_blocking(b"benchmark-password", &hash))
        }));
    }
    let (hash_median, hash_min, hash_max) = support::median(&mut hashes);
    let (verify_median, _, _) = support::median(&mut verifies);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| Argon2id hash (m=19456 KiB, t=2, p=1), median of {RUNS} | {hash_median:.1} ms (min {hash_min:.1}, max {hash_max:.1}) |"
    );
    println!("| Argon2id verify, median of {RUNS} | {verify_median:.1} ms |");
    println!(
        "| Argon2 bound on login rate ({cpus} CPUs / verify time) | {:.0} req/s |",
        cpus as f64 * 1000.0 / verify_median
    );
    let mut stores = vec![("SQLite", None)];
    if let Ok(server) = std::env::var("PHLIX_TEST_POSTGRES_URL") {
        stores.push(("PostgreSQL", Some(server)));
    }
    for (name, server) in stores {
        let figures = runtime.block_on(async {
            let url = match &server {
                Some(server) => Some(support::fresh_postgres(server).await),
                None => None,
            };
            login_throughput(url, 8, 400).await
        });
        println!(
            "| Login over HTTP on {name}, 8 concurrent clients, 400 logins | {:.0} req/s (p50 {:.1} ms, p99 {:.1} ms) |",
            figures.rps, figures.p50_ms, figures.p99_ms
        );
    }
}
