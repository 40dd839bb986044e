//! Account benchmarks: Argon2id hash/verify time and login throughput of a real hub over HTTP.
//!
//! `cargo bench -p phlix-hub --bench auth` — prints a Markdown table for BENCHMARKS.md. The
//! login figure runs on SQLite, and on PostgreSQL too when `PHLIX_TEST_POSTGRES_URL` names a
//! server where a database may be created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use phlix_hub::auth::password::{hash_blocking, verify_blocking};
use phlix_hub::config::{Config, ServeArgs};
use phlix_hub::server::{Bind, Listeners, launch};
use serde_json::json;
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

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

async fn login_throughput(database_url: String, concurrency: usize, total: usize) -> LoginFigures {
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        tunnel_addr: "127.0.0.1:0".parse().unwrap(),
        client_addr: "127.0.0.1:0".parse().unwrap(),
        public_url: "http://127.0.0.1".into(),
        public_domain: None,
        log_format: None,
        health_interval: Duration::from_secs(15),
        reaper_interval: Duration::from_secs(60),
        offline_after: Duration::from_secs(180),
        relay_heartbeat: Duration::from_secs(30),
        relay_stale_after: Duration::from_secs(90),
        relay_drain_grace: Duration::from_secs(10),
        node_name: Some("test-node".into()),
    };
    let config = Config::load(&args).unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", http.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let listeners = Listeners {
        http,
        tunnel: Bind::Addr(args.tunnel_addr),
        client: Bind::Addr(args.client_addr),
    };
    let hub = tokio::spawn(launch(config, listeners, shutdown.clone()));
    let client = reqwest::Client::new();
    loop {
        if client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "bench", "email": "bench@example.com", "password": "benchmark-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

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
    shutdown.cancel();
    hub.await.unwrap().unwrap();
    latencies.sort_by(f64::total_cmp);
    LoginFigures {
        rps: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    }
}

async fn fresh_postgres(server: &str) -> String {
    let name = format!("phlix_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{name}")
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
    let (hash_min, hash_max) = (
        hashes.iter().copied().fold(f64::MAX, f64::min),
        hashes.iter().copied().fold(0.0, f64::max),
    );
    let hash_median = median(&mut hashes);
    let verify_median = median(&mut verifies);

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
            let dir = tempfile::tempdir().unwrap();
            let url = match &server {
                Some(server) => fresh_postgres(server).await,
                None => format!("sqlite://{}", dir.path().join("bench.db").display()),
            };
            login_throughput(url, 8, 400).await
        });
        println!(
            "| Login over HTTP on {name}, 8 concurrent clients, 400 logins | {:.0} req/s (p50 {:.1} ms, p99 {:.1} ms) |",
            figures.rps, figures.p50_ms, figures.p99_ms
        );
    }
}
