//! A real hub on 127.0.0.1 for the agent's process tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use phlix_hub::config::{Config, ServeArgs};
use phlix_hub::server::{Bind, Listeners, launch};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const AGENT: &str = env!("CARGO_BIN_EXE_phlix-agent");

/// A child process that is killed when dropped, so a failing test leaves nothing running.
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Hub {
    pub base: String,
    pub port: u16,
    pub data: std::path::PathBuf,
    /// Keeps a temporary data dir alive as long as the hub.
    pub owned_dir: Option<tempfile::TempDir>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Hub {
    /// Starts a hub on `data` (SQLite inside it), on `port` or an ephemeral one, with fast
    /// reaper timers.
    pub async fn start(data: &std::path::Path, port: Option<u16>) -> Self {
        Self::start_configured(data, port, |_| {}).await
    }

    /// [`Self::start`] with an adjusted configuration (settings without a flag, such as the
    /// client-mount timers).
    pub async fn start_configured(
        data: &std::path::Path,
        port: Option<u16>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let url = format!("sqlite://{}", data.join("hub.db").display());
        let args = ServeArgs {
            data_dir: data.to_path_buf(),
            database_url: Some(url),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            tunnel_addr: "127.0.0.1:0".parse().unwrap(),
            client_addr: "127.0.0.1:0".parse().unwrap(),
            public_url: "http://127.0.0.1".into(),
            public_domain: None,
            edge: Default::default(),
            log_format: None,
            health_interval: Duration::from_secs(15),
            arr_sync_interval: Duration::from_secs(300),
            reaper_interval: Duration::from_millis(200),
            offline_after: Duration::from_secs(2),
            relay_heartbeat: Duration::from_secs(30),
            relay_stale_after: Duration::from_secs(90),
            relay_drain_grace: Duration::from_secs(10),
            proxy_requests_per_minute: 0,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections_per_ip: 256,
            webhook_allow_private: true,
            node_name: Some("agent-test".into()),
            cluster: Default::default(),
        };
        let mut config = Config::load(&args).unwrap();
        configure(&mut config);
        let http = TcpListener::bind(("127.0.0.1", port.unwrap_or(0)))
            .await
            .unwrap();
        let port = http.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let shutdown = CancellationToken::new();
        let listeners = Listeners {
            http,
            tunnel: Bind::Addr(args.tunnel_addr),
            client: Bind::Addr(args.client_addr),
        };
        let task = tokio::spawn(launch(config, listeners, shutdown.clone()));
        let client = reqwest::Client::new();
        while !client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            base,
            port,
            data: data.to_path_buf(),
            owned_dir: None,
            shutdown,
            task,
        }
    }

    /// A hub on a fresh temporary data dir.
    pub async fn start_temp() -> Self {
        Self::start_temp_configured(|_| {}).await
    }

    /// [`Self::start_temp`] with an adjusted configuration.
    pub async fn start_temp_configured(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut hub = Self::start_configured(dir.path(), None, configure).await;
        hub.owned_dir = Some(dir);
        hub
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    pub async fn register(&self, name: &str) -> String {
        let body: Value = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/register", self.base))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "password123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn redeem(&self, token: &str, code: &str) {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/server-claims/claim", self.base))
            .header("Accept-Phlix-Protocol", "v1")
            .bearer_auth(token)
            .json(&json!({"claim_code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}
