//! Shared set-up of the benchmarks: a real hub in-process on 127.0.0.1 ephemeral ports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use phlix_hub::config::{Config, ServeArgs};
use phlix_hub::domain::health::Health;
use phlix_hub::http::state::AppState;
use phlix_hub::server::{Bind, Listeners, launch_with};
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running hub.
pub struct BenchHub {
    pub base: String,
    /// A client of `base` (trusting the hub's CA when it serves TLS).
    pub http: reqwest::Client,
    pub tunnel: SocketAddr,
    pub client: SocketAddr,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    /// The hub's state: its `Core` once ready.
    pub state: AppState,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Median and (min, max) of samples.
pub fn median(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

/// The value at quantile `p` of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

/// `(req/s, p50 ms, p99 ms)` of `requests` GETs of `url` (each answered with 1 KiB, 200) from
/// `concurrency` clients, each sending its share one after another.
pub async fn http_1k_round(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    requests: usize,
    concurrency: usize,
) -> (f64, f64, f64) {
    let per_worker = requests / concurrency;
    let start = std::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, token) = (http.clone(), url.to_owned(), token.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = std::time::Instant::now();
                let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                assert_eq!(resp.bytes().await.unwrap().len(), 1024);
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let rate = latencies.len() as f64 / start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (
        rate,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

/// A fresh PostgreSQL database on `server` (a URL ending in a database name).
pub async fn fresh_postgres(server: &str) -> String {
    let name = format!("phlix_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{name}")
}

impl BenchHub {
    /// Starts a hub on `database_url` (or a SQLite file in its data dir) and waits for ready.
    pub async fn start(database_url: Option<String>) -> Self {
        Self::start_with(database_url, None).await
    }

    /// [`Self::start`], serving TLS from `(cert, key, CA PEM)` when given.
    pub async fn start_with(
        database_url: Option<String>,
        tls: Option<(std::path::PathBuf, std::path::PathBuf, Vec<u8>)>,
    ) -> Self {
        Self::start_on(None, database_url, tls).await
    }

    /// [`Self::start_with`], with the hub (its listeners and every task it spawns) on
    /// `runtime` instead of the caller's, so its CPU time can be told apart.
    pub async fn start_on(
        runtime: Option<&tokio::runtime::Handle>,
        database_url: Option<String>,
        tls: Option<(std::path::PathBuf, std::path::PathBuf, Vec<u8>)>,
    ) -> Self {
        Self::start_inner(runtime, database_url, tls, None).await
    }

    /// A node named `node` of a cluster on the PostgreSQL `database_url`; `first` is a node
    /// already started, whose JWT secret and signing key this one shares (tokens work on
    /// every node).
    pub async fn start_node(
        runtime: Option<&tokio::runtime::Handle>,
        database_url: String,
        node: &str,
        first: Option<&Self>,
    ) -> Self {
        Self::start_inner(runtime, Some(database_url), None, Some((node, first))).await
    }

    async fn start_inner(
        runtime: Option<&tokio::runtime::Handle>,
        database_url: Option<String>,
        tls: Option<(std::path::PathBuf, std::path::PathBuf, Vec<u8>)>,
        cluster: Option<(&str, Option<&Self>)>,
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        if let Some((_, Some(first))) = cluster {
            for file in [
                phlix_hub::config::JWT_SECRET_FILE,
                phlix_hub::auth::keys::KEY_FILE,
            ] {
                std::fs::copy(first.data_dir.path().join(file), data_dir.path().join(file))
                    .unwrap();
            }
        }
        let database_url = database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.path().join("bench.db").display()));
        let args = ServeArgs {
            data_dir: data_dir.path().to_path_buf(),
            database_url: Some(database_url.clone()),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            tunnel_addr: "127.0.0.1:0".parse().unwrap(),
            client_addr: "127.0.0.1:0".parse().unwrap(),
            public_url: "http://127.0.0.1".into(),
            public_domain: None,
            edge: Default::default(),
            log_format: None,
            health_interval: Duration::from_secs(15),
            arr_sync_interval: Duration::from_secs(300),
            reaper_interval: Duration::from_secs(60),
            offline_after: Duration::from_secs(180),
            relay_heartbeat: Duration::from_secs(30),
            relay_stale_after: Duration::from_secs(90),
            relay_drain_grace: Duration::from_secs(10),
            node_name: Some("bench".into()),
            cluster: Default::default(),
            proxy_requests_per_minute: 0,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections_per_ip: 0,
            webhook_allow_private: true,
        };
        let mut args = args;
        let mut http_client = reqwest::Client::new();
        let mut scheme = "http";
        if let Some((cert, key, ca)) = tls {
            args.edge.tls_cert = Some(cert);
            args.edge.tls_key = Some(key);
            // HTTP/1.1 like the plain hub, so TLS is the only difference.
            http_client = reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
                .http1_only()
                .build()
                .unwrap();
            scheme = "https";
        }
        let mut config = Config::load(&args).unwrap();
        if let Some((node, _)) = cluster {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            config.node_name = node.to_owned();
            config.cluster = Some(phlix_hub::config::ClusterConfig {
                addr: port,
                url: format!("http://{port}"),
                secret: phlix_hub::config::Secret::from_bytes(vec![0x5a; 32]),
            });
        }
        // Bound here as std sockets, registered with the hub's runtime when it starts.
        let bind = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            listener
        };
        let (http, tunnel, client) = (bind(), bind(), bind());
        let base = format!("{scheme}://{}", http.local_addr().unwrap());
        let (tunnel_addr, client_addr) =
            (tunnel.local_addr().unwrap(), client.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let state = AppState::new(config, Health::default());
        let hub = {
            let (shutdown, state) = (shutdown.clone(), state.clone());
            async move {
                let listeners = Listeners {
                    http: TcpListener::from_std(http)?,
                    tunnel: Bind::Bound(TcpListener::from_std(tunnel)?),
                    client: Bind::Bound(TcpListener::from_std(client)?),
                };
                launch_with(state, listeners, shutdown).await
            }
        };
        let task = match runtime {
            Some(runtime) => runtime.spawn(hub),
            None => tokio::spawn(hub),
        };
        loop {
            if http_client
                .get(format!("{base}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            base,
            http: http_client,
            tunnel: tunnel_addr,
            client: client_addr,
            data_dir,
            database_url,
            state,
            shutdown,
            task,
        }
    }

    /// The hub's `Core` (it is ready once `start` returned).
    pub fn core(&self) -> phlix_hub::domain::Core {
        self.state.core().expect("the hub is ready")
    }

    /// Handle on a hub started elsewhere (another process) on SQLite in `data_dir`, for
    /// `user` and `servers`; `stop` must not be called on it.
    pub fn attach(base: &str, data_dir: &std::path::Path) -> BenchHubRef {
        BenchHubRef {
            base: base.to_owned(),
            data_dir: data_dir.to_path_buf(),
            database_url: format!("sqlite://{}", data_dir.join("hub.db").display()),
        }
    }

    /// Stops the hub.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Registers a user; returns (user id, access token).
    pub async fn user(&self, name: &str) -> (String, String) {
        self.as_ref().user_with(&self.http, name).await
    }

    /// Inserts `count` servers owned by `user_id` and returns (id, enrollment token) pairs.
    pub async fn servers(&self, user_id: &str, count: usize) -> Vec<(String, String)> {
        self.as_ref().servers(user_id, count).await
    }

    fn as_ref(&self) -> BenchHubRef {
        BenchHubRef {
            base: self.base.clone(),
            data_dir: self.data_dir.path().to_path_buf(),
            database_url: self.database_url.clone(),
        }
    }
}

/// What `user` and `servers` need of a hub.
pub struct BenchHubRef {
    pub base: String,
    pub data_dir: std::path::PathBuf,
    pub database_url: String,
}

impl BenchHubRef {
    /// Registers a user; returns (user id, access token).
    pub async fn user(&self, name: &str) -> (String, String) {
        self.user_with(&reqwest::Client::new(), name).await
    }

    /// [`Self::user`] through `client`.
    pub async fn user_with(&self, client: &reqwest::Client, name: &str) -> (String, String) {
        let resp: serde_json::Value = client
            .post(format!("{}/api/v1/auth/register", self.base))
            .json(&serde_json::json!({"username": name, "email": format!("{name}@example.com"), "password": "benchmark-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            resp["user"]["id"].as_str().unwrap().to_owned(),
            resp["access_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Inserts `count` servers owned by `user_id` and returns (id, enrollment token) pairs.
    pub async fn servers(&self, user_id: &str, count: usize) -> Vec<(String, String)> {
        let store = phlix_hub::store::Store::connect(
            &phlix_hub::config::DatabaseUrl::parse(&self.database_url).unwrap(),
        )
        .await
        .unwrap();
        let keys = phlix_hub::auth::keys::KeyRing::load_or_create(&self.data_dir).unwrap();
        let now = phlix_hub::auth::now_unix();
        let ids: Vec<String> = (0..count)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let sql = "INSERT INTO servers (id, user_id, server_name, version, public_key_jwk, hostname_candidates_json, status, \
                   last_seen_at, enrolled_at, created_at, updated_at) VALUES ($1, $2, 'bench', '0.45.0', '{}', '[]', 'online', $3, $3, $3, $3)";
        match &store {
            phlix_hub::store::Store::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                for id in &ids {
                    sqlx::query(sql)
                        .bind(id)
                        .bind(user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
            phlix_hub::store::Store::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                for id in &ids {
                    sqlx::query(sql)
                        .bind(id)
                        .bind(user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
        }
        store.close().await;
        ids.into_iter()
            .map(|id| {
                let token =
                    phlix_hub::auth::enrollment::mint(&keys, &id, "http://127.0.0.1", 3600, now);
                (id, token)
            })
            .collect()
    }
}

/// A runtime of its own for the hub under measurement: its threads are recorded as they
/// start, so the CPU time they spend (on-CPU nanoseconds from `/proc/self/task/<tid>/schedstat`,
/// user and kernel) is the hub's alone, whatever the peers in the same process and the rest of
/// the machine do.
pub struct HubRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    threads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HubRuntime {
    /// `workers` worker threads; blocking threads are kept alive so their time is not lost.
    pub fn new(workers: usize) -> Self {
        let threads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = threads.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("hub-under-test")
            .thread_keep_alive(Duration::from_secs(3600))
            .on_thread_start(move || {
                if let Ok(path) = std::fs::read_link("/proc/thread-self")
                    && let Some(tid) = path.to_string_lossy().rsplit('/').next()
                {
                    seen.lock().unwrap().push(tid.to_owned());
                }
            })
            .enable_all()
            .build()
            .unwrap();
        Self {
            runtime: Some(runtime),
            threads,
        }
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.as_ref().unwrap().handle()
    }

    /// CPU nanoseconds the hub's threads have used so far.
    pub fn cpu_ns(&self) -> u64 {
        self.threads
            .lock()
            .unwrap()
            .iter()
            .filter_map(|tid| {
                std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()
            })
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for HubRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Reads relay frames until `f` returns true.
pub async fn read_frames(
    reader: &mut phlix_hub::relay::ws_io::WsReader,
    decoder: &mut phlix_proto::frame::FrameDecoder,
    mut f: impl FnMut(phlix_proto::frame::Frame) -> bool,
) {
    loop {
        if let phlix_hub::relay::ws_io::WsEvent::Data(message) = reader.next().await.unwrap() {
            decoder.push(&message.payload);
            while let Some(frame) = decoder.next_frame().unwrap() {
                if f(frame) {
                    return;
                }
            }
        }
    }
}
