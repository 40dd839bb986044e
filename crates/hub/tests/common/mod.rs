//! Test harness: a real hub on 127.0.0.1 ephemeral ports, with a fresh data dir and a fresh
//! database on the backend chosen by `PHLIX_TEST_STORE` (`sqlite`, the default, or `postgres`
//! with `PHLIX_TEST_POSTGRES_URL` naming a server where databases may be created).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod arr;
pub mod browser;
pub mod cluster;
pub mod fake_server;
pub mod fake_tunnel;
pub mod pairing;
pub mod receiver;
pub mod shared_server;
pub mod web_client;
pub mod ws_client;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use phlix_hub::config::{Config, ServeArgs};
use phlix_hub::server::{Bind, Listeners, launch};
use phlix_proto::auth::AuthResponse;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Which backend this test run uses.
pub fn store_kind() -> &'static str {
    match std::env::var("PHLIX_TEST_STORE").as_deref() {
        Ok("postgres") => "postgres",
        _ => "sqlite",
    }
}

/// The PostgreSQL server URL, when one is available.
pub fn postgres_server_url() -> Option<String> {
    std::env::var("PHLIX_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Replaces the database name at the end of a PostgreSQL URL.
pub fn with_database(server_url: &str, name: &str) -> String {
    let base = server_url
        .rsplit_once('/')
        .map_or(server_url, |(base, _)| base);
    format!("{base}/{name}")
}

/// Creates a new empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let server =
        postgres_server_url().expect("PHLIX_TEST_STORE=postgres needs PHLIX_TEST_POSTGRES_URL");
    let name = format!("phlix_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    with_database(&server, &name)
}

/// A database URL for a new test: a fresh PostgreSQL database, or a SQLite file in `dir`.
pub async fn fresh_database_url(dir: &Path) -> String {
    match store_kind() {
        "postgres" => fresh_postgres_database().await,
        _ => format!("sqlite://{}", dir.join("hub.db").display()),
    }
}

/// Serve flags for a test hub (ports are replaced by pre-bound listeners).
pub fn serve_args(data_dir: &Path, database_url: &str) -> ServeArgs {
    ServeArgs {
        data_dir: data_dir.to_path_buf(),
        database_url: Some(database_url.to_owned()),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        tunnel_addr: "127.0.0.1:0".parse().unwrap(),
        client_addr: "127.0.0.1:0".parse().unwrap(),
        public_url: "http://127.0.0.1".into(),
        public_domain: None,
        edge: Default::default(),
        log_format: None,
        health_interval: Duration::from_millis(200),
        arr_sync_interval: Duration::from_secs(300),
        reaper_interval: Duration::from_secs(60),
        offline_after: Duration::from_secs(180),
        relay_heartbeat: Duration::from_secs(30),
        relay_stale_after: Duration::from_secs(90),
        relay_drain_grace: Duration::from_secs(10),
        node_name: Some("test-node".into()),
        cluster: Default::default(),
        proxy_requests_per_minute: 600,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(75),
        max_connections_per_ip: 256,
        webhook_allow_private: true,
    }
}

/// A hub running in this process.
pub struct TestHub {
    pub http: SocketAddr,
    pub tunnel: SocketAddr,
    pub client_addr: SocketAddr,
    pub database_url: String,
    pub data_dir: tempfile::TempDir,
    pub http_client: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestHub {
    /// Starts a hub on a fresh data dir and database and waits until `/health` says ok.
    pub async fn start() -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(data_dir.path()).await;
        Self::start_on(data_dir, database_url).await
    }

    /// Starts a hub on an existing data dir and database (a restart).
    pub async fn start_on(data_dir: tempfile::TempDir, database_url: String) -> Self {
        let hub = Self::spawn(data_dir, database_url).await;
        hub.wait_ready().await;
        hub
    }

    /// Starts a hub without waiting for it to become ready.
    pub async fn spawn(data_dir: tempfile::TempDir, database_url: String) -> Self {
        Self::spawn_with(data_dir, database_url, |_| {}).await
    }

    /// Starts a hub with adjusted flags (short reaper timers, …) and waits until ready.
    pub async fn start_with(adjust: impl FnOnce(&mut ServeArgs)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(data_dir.path()).await;
        let hub = Self::spawn_with(data_dir, database_url, adjust).await;
        hub.wait_ready().await;
        hub
    }

    /// Starts a hub with adjusted flags without waiting.
    pub async fn spawn_with(
        data_dir: tempfile::TempDir,
        database_url: String,
        adjust: impl FnOnce(&mut ServeArgs),
    ) -> Self {
        Self::spawn_configured(data_dir, database_url, adjust, |_| {}).await
    }

    /// Starts a hub with adjusted flags and an adjusted configuration (settings without a
    /// flag, such as the client-mount timers) and waits until ready.
    pub async fn start_configured(
        adjust: impl FnOnce(&mut ServeArgs),
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(data_dir.path()).await;
        let hub = Self::spawn_configured(data_dir, database_url, adjust, configure).await;
        hub.wait_ready().await;
        hub
    }

    /// Starts a hub with adjusted flags and configuration without waiting.
    pub async fn spawn_configured(
        data_dir: tempfile::TempDir,
        database_url: String,
        adjust: impl FnOnce(&mut ServeArgs),
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut args = serve_args(data_dir.path(), &database_url);
        adjust(&mut args);
        let mut config = Config::load(&args).unwrap();
        configure(&mut config);
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tunnel = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http_addr, tunnel_addr, client_addr) = (
            http.local_addr().unwrap(),
            tunnel.local_addr().unwrap(),
            client.local_addr().unwrap(),
        );
        let shutdown = CancellationToken::new();
        let listeners = Listeners {
            http,
            tunnel: Bind::Bound(tunnel),
            client: Bind::Bound(client),
        };
        let task = tokio::spawn(launch(config, listeners, shutdown.clone()));
        Self {
            http: http_addr,
            tunnel: tunnel_addr,
            client_addr,
            database_url,
            data_dir,
            http_client: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    /// Polls `/health` until 200 (30 s at most).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = self.http_client.get(self.url("/health")).send().await
                && resp.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hub did not become ready within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// Stops the hub gracefully and hands back its data dir and database for a restart.
    pub async fn stop(self) -> (tempfile::TempDir, String) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("hub stops within 10 s")
            .expect("hub task did not panic");
        result.expect("hub exited cleanly");
        (self.data_dir, self.database_url)
    }

    /// POSTs JSON and returns status and body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http_client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    }

    /// Registers a user with a unique e-mail address.
    pub async fn register(&self, username: &str, password: &str) -> AuthResponse {
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                &json!({"username": username, "email": format!("{username}@example.com"), "password": password}),
            )
            .await;
        assert_eq!(status, 201, "register {username}: {body}");
        serde_json::from_value(body).unwrap()
    }

    /// A store connected to this hub's database, for assertions on committed rows.
    pub async fn store(&self) -> phlix_hub::store::Store {
        let url = phlix_hub::config::DatabaseUrl::parse(&self.database_url).unwrap();
        phlix_hub::store::Store::connect(&url).await.unwrap()
    }
}

/// Status and JSON body of a response; panics if the body is not JSON.
pub async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, body)
}

/// Runs one statement on whichever backend the store uses, binding `binds` as text in order.
pub async fn execute(store: &phlix_hub::store::Store, sql: &'static str, binds: &[&str]) {
    match store {
        phlix_hub::store::Store::Sqlite(pool) => {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(*bind);
            }
            query.execute(pool).await.unwrap();
        }
        phlix_hub::store::Store::Postgres(pool) => {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(*bind);
            }
            query.execute(pool).await.unwrap();
        }
    }
}

/// Sends `method path` with a bearer token and an optional JSON body; the status and the JSON
/// answer (`Null` when the body is not JSON).
pub async fn call(
    hub: &TestHub,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = hub
        .http_client
        .request(method, hub.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
