//! Several real `phlix-hub serve` processes on one PostgreSQL database behind a real HAProxy
//! (issue #19): the stage of `tests/cluster.rs`. Each node has its own data dir (with node 1's
//! signing key copied in), its own loopback ports and its stdout/stderr in a file whose tail is
//! printed when a test fails. HAProxy balances the API port (`mode http`, health-checked on
//! `/health`, retried and redispatched) and the tunnel and client ports (`mode tcp`, checked
//! on each node's API port). Also the home service an in-process agent relays to, the agent
//! itself and raw client mounts of one chosen node.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use phlix_agent::state::DataDir;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The HS256 secret every node shares (so a token issued by one is valid on all).
pub const JWT_SECRET: &str = "cluster-test-jwt-secret-0123456789abcdef";
/// The node-to-node secret every node shares.
pub const CLUSTER_SECRET: &str = "cluster-test-node-secret-0123456789abcdef";
/// `--relay-drain-grace` of every node.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Files of the data dir every node must share: the hub's Ed25519 signing key (and the
/// previous key's sidecar after a rotation), see `src/auth/keys.rs`.
pub const SHARED_KEY_FILES: [&str; 2] = ["hub-ed25519.key", "hub-ed25519.key.previous.json"];
/// The owner's and collaborator's password.
pub const PASSWORD: &str = "password123";

/// A free port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last `lines` lines of a file (or why it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("({}: {err})", path.display()),
    }
}

/// Serializes the tests of one binary: two clusters at once on two cores would make the
/// wall-clock assertions meaningless.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What every node is started with, besides its own ports.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: usize,
    /// Extra `serve` flags for every node.
    pub extra_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 3,
            extra_args: Vec::new(),
        }
    }
}

/// One `phlix-hub serve` process and what it needs to be started again.
pub struct Node {
    pub name: String,
    pub api: SocketAddr,
    pub tunnel: SocketAddr,
    pub client: SocketAddr,
    pub cluster: SocketAddr,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
    /// How often this node was started.
    pub starts: u32,
}

impl Node {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn stdout_log(&self) -> PathBuf {
        self.dir.path().join("hub.stdout.log")
    }

    pub fn stderr_log(&self) -> PathBuf {
        self.dir.path().join("hub.stderr.log")
    }

    /// `http://127.0.0.1:<api port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process (again) with the same flags; its output is appended to the logs.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let open = |path: PathBuf| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap()
        };
        let (mut stdout, mut stderr) = (open(self.stdout_log()), open(self.stderr_log()));
        self.starts += 1;
        for log in [&mut stdout, &mut stderr] {
            use std::io::Write;
            writeln!(log, "===== start #{} of {} =====", self.starts, self.name).unwrap();
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_phlix-hub"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HUB_") {
                command.env_remove(name);
            }
        }
        command
            .args(&self.args)
            .env("HUB_JWT_SECRET", JWT_SECRET)
            .env("HUB_CLUSTER_SECRET", CLUSTER_SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        self.child = Some(command.spawn().unwrap());
    }

    /// Polls `/health` on the node's own API port until 200 (`within` at most).
    pub async fn wait_ready(&mut self, http: &reqwest::Client, within: Duration) {
        if let Err(err) = self.ready_within(http, within).await {
            panic!("{err}\n{}", self.logs(40));
        }
    }

    /// Polls `/health` until 200; `Err` when the process exits or `within` passes.
    pub async fn ready_within(
        &mut self,
        http: &reqwest::Client,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(resp) = http.get(self.url("/health")).send().await
                && resp.status() == 200
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("{} exited during start-up ({status})", self.name));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not become ready within {within:?}",
                    self.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the node, again every second while it exits during start-up (a name still
    /// taken by a killed process), until it is ready or `within` has passed.
    pub async fn start_until_ready(
        &mut self,
        http: &reqwest::Client,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            self.spawn();
            match self
                .ready_within(http, deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Ok(()) => return Ok(()),
                Err(err) if self.child.is_some() || Instant::now() >= deadline => return Err(err),
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    /// Sends SIGTERM (a graceful leave).
    pub async fn sigterm(&self) {
        let pid = self.pid().expect("the node runs");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// Sends SIGKILL and reaps the process.
    pub async fn sigkill(&mut self) {
        let mut child = self.child.take().expect("the node runs");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    /// Waits for the process to exit (`None`: still running after `within`).
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("the node runs");
        match tokio::time::timeout(within, child.wait()).await {
            Ok(status) => {
                self.child = None;
                Some(status.unwrap())
            }
            Err(_) => None,
        }
    }

    /// The tails of the node's stdout and stderr.
    pub fn logs(&self, lines: usize) -> String {
        format!(
            "----- {} stdout ({}) -----\n{}\n----- {} stderr -----\n{}",
            self.name,
            self.stdout_log().display(),
            tail(&self.stdout_log(), lines),
            self.name,
            tail(&self.stderr_log(), lines),
        )
    }

    /// Log lines (stdout and stderr) that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        [self.stdout_log(), self.stderr_log()]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .flat_map(|text| {
                text.lines()
                    .filter(|l| l.contains(needle))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// N nodes on one PostgreSQL database behind HAProxy.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// HAProxy's fronts.
    pub front_api: SocketAddr,
    pub front_tunnel: SocketAddr,
    pub front_client: SocketAddr,
    pub database_url: String,
    /// A client for the fronts and the nodes (60 s per request).
    pub http: reqwest::Client,
    dir: tempfile::TempDir,
    haproxy: Option<Child>,
}

impl Cluster {
    /// Starts node 1, copies its signing key to the others' data dirs, starts them, then
    /// HAProxy; returns once every node is ready and HAProxy routes to each.
    pub async fn start(options: Options) -> Self {
        assert!(
            have_haproxy().await,
            "haproxy is not installed (scripts/test installs the Debian package haproxy)"
        );
        let database_url = super::fresh_postgres_database().await;
        let dir = tempfile::tempdir().unwrap();
        let (front_api, front_tunnel, front_client) = (
            loopback(free_port()),
            loopback(free_port()),
            loopback(free_port()),
        );
        let mut nodes: Vec<Node> = (1..=options.nodes)
            .map(|i| {
                let node_dir = tempfile::tempdir().unwrap();
                let (api, tunnel, client, cluster) = (
                    loopback(free_port()),
                    loopback(free_port()),
                    loopback(free_port()),
                    loopback(free_port()),
                );
                let name = format!("node-{i}");
                let mut args: Vec<String> = vec![
                    "serve".into(),
                    "--data-dir".into(),
                    node_dir.path().join("data").display().to_string(),
                    "--database-url".into(),
                    database_url.clone(),
                    "--http-addr".into(),
                    api.to_string(),
                    "--tunnel-addr".into(),
                    tunnel.to_string(),
                    "--client-addr".into(),
                    client.to_string(),
                    "--public-url".into(),
                    format!("http://{front_api}"),
                    "--public-tunnel-url".into(),
                    format!("ws://{front_tunnel}"),
                    "--public-client-url".into(),
                    format!("ws://{front_client}"),
                    "--node-name".into(),
                    name.clone(),
                    "--cluster-addr".into(),
                    cluster.to_string(),
                    "--cluster-url".into(),
                    format!("http://{cluster}"),
                    "--reaper-interval".into(),
                    "1s".into(),
                    "--relay-drain-grace".into(),
                    format!("{}s", DRAIN_GRACE.as_secs()),
                    "--health-interval".into(),
                    "500ms".into(),
                    // The load of the rolling restart (20 req/s of one user) is no abuse.
                    "--proxy-requests-per-minute".into(),
                    "0".into(),
                    "--log-format".into(),
                    "json".into(),
                ];
                args.extend(options.extra_args.iter().cloned());
                Node {
                    name,
                    api,
                    tunnel,
                    client,
                    cluster,
                    dir: node_dir,
                    args,
                    child: None,
                    starts: 0,
                }
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // Node 1 first: it runs the migrations and generates the signing key.
        nodes[0].spawn();
        nodes[0].wait_ready(&http, Duration::from_secs(60)).await;
        for node in &nodes[1..] {
            std::fs::create_dir_all(node.data_dir()).unwrap();
            for file in SHARED_KEY_FILES {
                let from = nodes[0].data_dir().join(file);
                if from.exists() {
                    std::fs::copy(&from, node.data_dir().join(file)).unwrap();
                }
            }
        }
        assert!(
            nodes[0].data_dir().join(SHARED_KEY_FILES[0]).exists(),
            "node 1 wrote no {}",
            SHARED_KEY_FILES[0]
        );
        for node in &mut nodes[1..] {
            node.spawn();
        }
        for node in &mut nodes[1..] {
            node.wait_ready(&http, Duration::from_secs(60)).await;
        }
        let mut cluster = Self {
            nodes,
            front_api,
            front_tunnel,
            front_client,
            database_url,
            http,
            dir,
            haproxy: None,
        };
        cluster.start_haproxy().await;
        cluster
    }

    /// HAProxy's log: one line per request or connection (`option httplog` / `tcplog`).
    pub fn haproxy_log(&self) -> PathBuf {
        self.dir.path().join("haproxy.log")
    }

    /// The HAProxy configuration: one API backend in `mode http`, tunnel and client backends
    /// in `mode tcp` checked on the API port; `X-Phlix-Node` names the node that answered.
    pub fn haproxy_config(&self) -> String {
        let checks = "check inter 200ms fall 1 rise 2";
        let mut api = String::new();
        let mut tunnel = String::new();
        let mut client = String::new();
        for node in &self.nodes {
            api.push_str(&format!("    server {} {} {checks}\n", node.name, node.api));
            tunnel.push_str(&format!(
                "    server {} {} {checks} port {}\n",
                node.name,
                node.tunnel,
                node.api.port()
            ));
            client.push_str(&format!(
                "    server {} {} {checks} port {}\n",
                node.name,
                node.client,
                node.api.port()
            ));
        }
        format!(
            "global
    log stderr format raw local0 info
    maxconn 4096

defaults
    log global
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout check 1s
    retries 3
    option redispatch

frontend api
    mode http
    option httplog
    bind {front_api}
    default_backend api

backend api
    mode http
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    retry-on all-retryable-errors
    http-response set-header X-Phlix-Node %[srv_name]
{api}
frontend tunnel
    mode tcp
    option tcplog
    bind {front_tunnel}
    default_backend tunnel

backend tunnel
    mode tcp
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
{tunnel}
frontend client
    mode tcp
    option tcplog
    bind {front_client}
    default_backend client

backend client
    mode tcp
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
{client}",
            front_api = self.front_api,
            front_tunnel = self.front_tunnel,
            front_client = self.front_client,
        )
    }

    async fn start_haproxy(&mut self) {
        let config = self.dir.path().join("haproxy.cfg");
        std::fs::write(&config, self.haproxy_config()).unwrap();
        let log = std::fs::File::create(self.haproxy_log()).unwrap();
        let child = Command::new(haproxy_program())
            .arg("-f")
            .arg(&config)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.haproxy = Some(child);
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        self.wait_front_routes_to(&names, Duration::from_secs(20))
            .await;
    }

    /// Waits until `/health` through the API front has been answered 200 by each of `names`.
    pub async fn wait_front_routes_to(&self, names: &[String], within: Duration) {
        let mut seen = std::collections::HashSet::new();
        let deadline = Instant::now() + within;
        while !names.iter().all(|n| seen.contains(n)) {
            if let Ok(resp) = self.http.get(self.front_url("/health")).send().await
                && resp.status() == 200
                && let Some(node) = resp.headers().get("x-phlix-node")
            {
                seen.insert(node.to_str().unwrap().to_owned());
            }
            if let Some(state) = self.haproxy_status() {
                panic!(
                    "haproxy exited ({state})\n{}",
                    tail(&self.haproxy_log(), 40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy did not route /health to all of {names:?} within {within:?} (seen \
                 {seen:?})\n{}",
                tail(&self.haproxy_log(), 40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn haproxy_status(&self) -> Option<String> {
        // `try_wait` needs `&mut`; the pid probe needs none.
        let pid = self.haproxy.as_ref()?.id()?;
        if Path::new(&format!("/proc/{pid}")).exists() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // A zombie has exited.
            if stat.split_whitespace().nth(2) == Some("Z") {
                return Some("zombie".into());
            }
            None
        } else {
            Some("gone".into())
        }
    }

    /// `http://<HAProxy's API front><path>`.
    pub fn front_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.front_api)
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node called {name:?}"))
    }

    /// Every node's log tails and HAProxy's.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push_str(&node.logs(lines));
            out.push('\n');
        }
        out.push_str(&format!(
            "----- haproxy ({}) -----\n{}",
            self.haproxy_log().display(),
            tail(&self.haproxy_log(), lines)
        ));
        out
    }

    /// Registers a user through the front: (access token, user id).
    pub async fn register(&self, name: &str) -> (String, String) {
        let resp = self
            .http
            .post(self.front_url("/api/v1/auth/register"))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "register {name}: {body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// `method base+path` with a bearer token and an optional JSON body: status and JSON (Null
    /// when the answer is not JSON).
    pub async fn call(
        &self,
        base: &str,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .header("Accept-Phlix-Protocol", "v1")
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The admin `admin_token` lifts the bandwidth throttle of `user_id` (mounts run at full
    /// speed).
    pub async fn unthrottle(&self, admin_token: &str, user_id: &str) {
        let (status, body) = self
            .call(
                &self.front_url(""),
                admin_token,
                reqwest::Method::PUT,
                &format!("/api/v1/admin/users/{user_id}/throttle"),
                Some(json!({"throttle_bps": 0})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The node holding the tunnel of `server_id`, as the owner's server detail names it
    /// (`relay_session.worker_node`), asked through the front.
    pub async fn worker_node_from_api(&self, token: &str, server_id: &str) -> Option<String> {
        let (status, body) = self
            .call(
                &self.front_url(""),
                token,
                reqwest::Method::GET,
                &format!("/api/v1/me/servers/{server_id}"),
                None,
            )
            .await;
        if status != 200 {
            return None;
        }
        worker_node_of(&body)
    }

    /// The node of the newest open relay session of `server_id`, read from the database.
    pub async fn worker_node_from_db(&self, server_id: &str) -> Option<String> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.database_url)
            .await
            .unwrap();
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT worker_node FROM relay_sessions WHERE server_id = $1 AND closed_at IS NULL \
             ORDER BY opened_at DESC LIMIT 1",
        )
        .bind(server_id)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
        conn.close().await.ok();
        row.map(|(node,)| node)
    }

    /// The node holding the tunnel, as the API names it.
    pub async fn tunnel_node(&self, token: &str, server_id: &str) -> Option<String> {
        self.worker_node_from_api(token, server_id).await
    }

    /// Waits until the tunnel of `server_id` is held by a running node other than `not`;
    /// returns that node's name.
    pub async fn wait_tunnel_on_other_node(
        &self,
        token: &str,
        server_id: &str,
        not: Option<&str>,
        within: Duration,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let holder = self.worker_node_from_api(token, server_id).await;
            if let Some(node) = holder.into_iter().find(|node| {
                Some(node.as_str()) != not
                    && self.nodes.iter().any(|n| &n.name == node && n.running())
            }) {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "the tunnel of {server_id} was not held by a running node other than {not:?} \
                 within {within:?}\n{}",
                self.logs(30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the tunnel of `server_id` is up (asked through the front, 30 s at most),
    /// then lets every path of its upstream be relayed (proxy policy `all`).
    pub async fn wait_relayed(&self, token: &str, server_id: &str) {
        let base = self.front_url("");
        wait_until("the tunnel", Duration::from_secs(30), async || {
            let (_, list) = self
                .call(
                    &base,
                    token,
                    reqwest::Method::GET,
                    "/api/v1/me/servers",
                    None,
                )
                .await;
            list["servers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["serverId"] == server_id && s["relayActive"] == true)
        })
        .await;
        let (status, body) = self
            .call(
                &base,
                token,
                reqwest::Method::PUT,
                &format!("/api/v1/me/servers/{server_id}/proxy-policy"),
                Some(json!({"policy": "all"})),
            )
            .await;
        assert_eq!(status, 200, "proxy policy: {body}");
    }

    /// Mints a relay token for `server_id` at `base` (201 expected).
    pub async fn relay_token(&self, base: &str, token: &str, server_id: &str) -> String {
        let (status, body) = self
            .call(
                base,
                token,
                reqwest::Method::POST,
                &format!("/api/v1/me/servers/{server_id}/relay-token"),
                None,
            )
            .await;
        assert_eq!(status, 201, "relay token at {base}: {body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== cluster logs (last 60 lines each) =====\n{}",
                self.logs(60)
            );
        }
    }
}

/// `relay_session.worker_node` of a server detail (SPEC L); `None` while no session is open.
pub fn worker_node_of(detail: &Value) -> Option<String> {
    detail["relay_session"]["worker_node"]
        .as_str()
        .map(str::to_owned)
}

/// The HAProxy binary: on the PATH, else Debian's (in /usr/sbin, off a user's PATH).
fn haproxy_program() -> &'static str {
    if Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    }
}

/// Whether HAProxy runs here (`haproxy -v`).
pub async fn have_haproxy() -> bool {
    Command::new(haproxy_program())
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Byte `i` of every body the home service serves.
pub fn pattern_byte(i: usize) -> u8 {
    ((i * 7 + i / 4099) % 251) as u8
}

/// Hex SHA-256 of the first `n` pattern bytes.
pub fn pattern_sha256(n: usize) -> String {
    let mut hasher = Sha256::new();
    let mut chunk = Vec::with_capacity(65_536);
    for start in (0..n).step_by(65_536) {
        chunk.clear();
        chunk.extend((start..(start + 65_536).min(n)).map(pattern_byte));
        hasher.update(&chunk);
    }
    hex::encode(hasher.finalize())
}

/// Bytes of each `/drip` piece.
pub const DRIP_PIECE: usize = 64;

/// The home service: `GET /ping` → `pong`; `GET /bytes/{n}` → n pattern bytes;
/// `POST /sha256` → the hex SHA-256 of the body; `GET /drip/{ms}` → a 64-byte piece every
/// 100 ms for `ms` (with its length announced); `GET /slow` → a piece every 50 ms for two
/// minutes (chunked, never done within a test).
pub async fn upstream() -> SocketAddr {
    let app = Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route(
            "/bytes/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    let length = [(axum::http::header::CONTENT_LENGTH, n.to_string())];
                    let chunks = (0..n).step_by(65_536).map(move |start| {
                        Ok::<_, std::io::Error>(Bytes::from(
                            (start..(start + 65_536).min(n))
                                .map(pattern_byte)
                                .collect::<Vec<u8>>(),
                        ))
                    });
                    (
                        length,
                        Body::from_stream(futures_util::stream::iter(chunks)),
                    )
                },
            ),
        )
        .route(
            "/sha256",
            post(|body: Bytes| async move { hex::encode(Sha256::digest(&body)) }),
        )
        .route(
            "/drip/{ms}",
            get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    let pieces = (ms / 100).max(1);
                    let length = [(
                        axum::http::header::CONTENT_LENGTH,
                        (pieces as usize * DRIP_PIECE).to_string(),
                    )];
                    let stream = futures_util::stream::unfold(0u64, move |i| async move {
                        if i == pieces {
                            return None;
                        }
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Some((
                            Ok::<_, std::io::Error>(Bytes::from(vec![b'd'; DRIP_PIECE])),
                            i + 1,
                        ))
                    });
                    (length, Body::from_stream(stream))
                },
            ),
        )
        .route(
            "/slow",
            get(|| async {
                let stream = futures_util::stream::unfold(0u32, |i| async move {
                    if i == 2400 {
                        return None;
                    }
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(vec![b's'; DRIP_PIECE])),
                        i + 1,
                    ))
                });
                Body::from_stream(stream)
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Pairs a new agent data dir through the API front, the owner `token` redeeming the code:
/// (the data dir, the temporary directory holding it, the server id). Run it with the library
/// ([`Agent::pair`]) or with a `phlix-agent run --data-dir` process.
pub async fn enroll(cluster: &Cluster, token: &str) -> (DataDir, tempfile::TempDir, String) {
    let base = cluster.front_url("");
    let (data, dir, enrollment) =
        super::pairing::pair_through_claim(&base, "cluster-e2e", None, async |code| {
            let (status, body) = cluster
                .call(
                    &base,
                    token,
                    reqwest::Method::POST,
                    "/api/v1/server-claims/claim",
                    Some(json!({"claim_code": code})),
                )
                .await;
            assert_eq!(status, 200, "claim: {body}");
        })
        .await;
    assert_eq!(
        enrollment.hub_base_url.trim_end_matches('/'),
        base,
        "the enrollment names the front"
    );
    (data, dir, enrollment.server_id)
}

/// A paired, running agent (the library, in this process).
pub struct Agent {
    pub server_id: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub data: DataDir,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Pairs through the API front (the owner `token` redeeming the code), runs the tunnel
    /// (found through the hub's signpost, so through the tunnel front) against `upstream`,
    /// waits until it is up and lets every path of the upstream be relayed.
    pub async fn pair(cluster: &Cluster, token: &str, upstream: SocketAddr) -> Self {
        let (data, dir, server_id) = enroll(cluster, token).await;
        let shutdown = CancellationToken::new();
        let options = phlix_agent::run::RunOptions {
            upstream: upstream.to_string(),
            heartbeat_interval: Duration::from_millis(500),
            reconnect_base: Duration::from_millis(200),
            tunnel_url: None,
            ca_file: None,
        };
        let task = tokio::spawn(phlix_agent::run::run(
            data.clone(),
            options,
            shutdown.clone(),
        ));
        cluster.wait_relayed(token, &server_id).await;
        Self {
            server_id,
            shutdown,
            task,
            data,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A `phlix-agent connect` whose every local connection mounts the client port of one chosen
/// node: `connect` asks the hub's signpost for the mount URL, and the hub's names HAProxy's
/// front, so a signpost of the test's own names the node instead.
pub struct Mount {
    pub listen: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    signpost: tokio::task::JoinHandle<()>,
}

impl Mount {
    /// `connect` with `relay_token` against the client port `client` (a node's or a front's).
    pub async fn start(client: SocketAddr, server_id: &str, relay_token: &str) -> Self {
        let app = Router::new().route(
            "/client/{id}",
            get(
                move |axum::extract::Path(id): axum::extract::Path<String>| async move {
                    (
                        [("x-ws-endpoint", format!("ws://{client}/client/{id}"))],
                        "",
                    )
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let signpost_addr = listener.local_addr().unwrap();
        let signpost = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let listen = loopback(free_port());
        let stop = CancellationToken::new();
        let task = tokio::spawn(phlix_agent::connect::connect(
            phlix_agent::connect::ConnectOptions {
                hub: format!("http://{signpost_addr}"),
                server_id: server_id.to_owned(),
                credentials: phlix_agent::connect::Credentials::Token(relay_token.to_owned()),
                listen: listen.to_string(),
                ca_file: None,
            },
            stop.clone(),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(listen).await.is_err() {
            assert!(!task.is_finished(), "connect ended early");
            assert!(Instant::now() < deadline, "connect's listener within 10 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Self {
            listen,
            stop,
            task,
            signpost,
        }
    }

    /// A new local connection: one raw channel to the home service.
    pub async fn channel(&self) -> TcpStream {
        TcpStream::connect(self.listen).await.unwrap()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        self.signpost.abort();
    }
}

/// Reads one HTTP/1.1 answer with a `Content-Length` from a raw channel: (status line, body).
pub async fn read_http_answer(stream: &mut TcpStream, within: Duration) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(within, async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
                if got.len() >= end + 4 + length {
                    let status = head.lines().next().unwrap_or_default().to_owned();
                    let body = got[end + 4..end + 4 + length].to_vec();
                    return (status, body);
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the channel closed after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the answer in time")
}

/// Through one raw channel: uploads `size` pattern bytes (`POST /sha256`, the home service
/// answers their hash) and downloads `size` pattern bytes (`GET /bytes/{size}`); checks both.
pub async fn both_ways(stream: &mut TcpStream, size: usize, what: &str) {
    let upload: Vec<u8> = (0..size).map(pattern_byte).collect();
    let head = format!(
        "POST /sha256 HTTP/1.1\r\nHost: up\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&upload).await.unwrap();
    let (status, body) = read_http_answer(stream, Duration::from_secs(60)).await;
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "{what}: upload {status}"
    );
    assert_eq!(
        String::from_utf8_lossy(&body),
        pattern_sha256(size),
        "{what}: the upload arrived intact"
    );
    stream
        .write_all(format!("GET /bytes/{size} HTTP/1.1\r\nHost: up\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (status, body) = read_http_answer(stream, Duration::from_secs(60)).await;
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "{what}: download {status}"
    );
    assert_eq!(body.len(), size, "{what}: download length");
    assert_eq!(
        hex::encode(Sha256::digest(&body)),
        pattern_sha256(size),
        "{what}: the download arrived intact"
    );
}

/// Fetches `url` with `token` and returns (status, byte count, hex SHA-256 of the body).
pub async fn fetch_sha256(http: &reqwest::Client, url: &str, token: &str) -> (u16, usize, String) {
    let mut resp = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    let mut hasher = Sha256::new();
    let mut count = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        count += chunk.len();
        hasher.update(&chunk);
    }
    (status, count, hex::encode(hasher.finalize()))
}

/// The sum of the samples of `name` (any labels) in a Prometheus text page, `None` when the
/// page has none.
pub fn metric_value(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if let Some(labelled) = rest.strip_prefix('{') {
            labelled.split_once('}').map(|(_, v)| v)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None
        };
        if let Some(v) = value.and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}
