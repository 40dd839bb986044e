//! Side by side in one run (the benchmark issue): raw-channel throughput and HTTP small-response
//! rate through phlix (client → `phlix-agent connect` → hub → `phlix-agent run` → upstream),
//! against direct loopback TCP/HTTP, rathole and bore in the same topology. Run it through
//! `scripts/bench`, which builds the release binaries and installs the comparison tools into
//! `PHLIX_BENCH_TOOLS` (their `bin/` must hold `rathole`, `bore` and `oha`).
//!
//! One more baseline has the same hop count as phlix: three plain TCP forwarders in a chain
//! (this bench binary started again in forwarder mode, `copy_bidirectional_with_sizes` with
//! 256 KiB buffers per connection),
//! the ceiling for any relay whose bytes cross four loopback connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REPS: usize = 5;
const STREAM_BYTES: u64 = 1 << 30;
/// Size of the single large HTTP response.
const LARGE_BYTES: usize = 512 << 20;
/// Repetitions of the large response.
const LARGE_REPS: usize = 3;
/// Seconds of each iperf3 run.
const IPERF_SECONDS: u32 = 3;
/// Environment variable that turns this binary into a forwarder: `LISTEN_PORT,TARGET_ADDR`.
const FORWARD_ENV: &str = "PHLIX_BENCH_FORWARD";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn median(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

/// On-CPU seconds (user + system, all threads) of process `pid` so far, from
/// `/proc/<pid>/stat` (clock ticks of 1/100 s, Linux's `USER_HZ`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Kills the child when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &Path, args: &[&str], envs: &[(&str, String)]) -> Proc {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        command.env(k, v);
    }
    Proc(
        command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", program.display())),
    )
}

async fn wait_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The upstream for raw streams: `U` + u64 n → reads n bytes, answers one byte; `D` + u64 n →
/// writes n bytes.
async fn stream_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket.set_nodelay(true);
                let mut head = [0u8; 9];
                if socket.read_exact(&mut head).await.is_err() {
                    return;
                }
                let n = u64::from_be_bytes(head[1..].try_into().unwrap());
                let mut buf = vec![0u8; 256 * 1024];
                if head[0] == b'U' {
                    let mut left = n;
                    while left > 0 {
                        let Ok(read) = socket.read(&mut buf).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        left -= read as u64;
                    }
                    let _ = socket.write_all(b"k").await;
                } else {
                    let mut left = n;
                    while left > 0 {
                        let chunk = left.min(buf.len() as u64) as usize;
                        if socket.write_all(&buf[..chunk]).await.is_err() {
                            return;
                        }
                        left -= chunk as u64;
                    }
                }
            });
        }
    });
    addr
}

/// MB/s of one upload and one download of [`STREAM_BYTES`] through `entry`.
async fn stream_once(entry: SocketAddr, upload: bool) -> f64 {
    let mut socket = TcpStream::connect(entry).await.unwrap();
    socket.set_nodelay(true).unwrap();
    let mut head = vec![if upload { b'U' } else { b'D' }];
    head.extend_from_slice(&STREAM_BYTES.to_be_bytes());
    let start = Instant::now();
    socket.write_all(&head).await.unwrap();
    let mut buf = vec![0x5Au8; 256 * 1024];
    if upload {
        let mut left = STREAM_BYTES;
        while left > 0 {
            let chunk = left.min(buf.len() as u64) as usize;
            socket.write_all(&buf[..chunk]).await.unwrap();
            left -= chunk as u64;
        }
        let mut ack = [0u8; 1];
        socket.read_exact(&mut ack).await.unwrap();
    } else {
        let mut left = STREAM_BYTES;
        while left > 0 {
            let read = socket.read(&mut buf).await.unwrap();
            assert!(read > 0, "stream ended early");
            left -= read as u64;
        }
    }
    STREAM_BYTES as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// The HTTP upstream: `/1k` answers 1 KiB, `/large` 512 MiB (known length, streamed in
/// 256 KiB chunks).
async fn http_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let chunk = bytes::Bytes::from(vec![b'y'; 256 * 1024]);
    let app = axum::Router::new()
        .route("/1k", axum::routing::get(|| async { vec![b'x'; 1024] }))
        .route(
            "/large",
            axum::routing::get(move || {
                let chunk = chunk.clone();
                async move {
                    let chunks = LARGE_BYTES / chunk.len();
                    let stream = futures_util::stream::iter(
                        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                    );
                    (
                        [(axum::http::header::CONTENT_LENGTH, LARGE_BYTES.to_string())],
                        axum::body::Body::from_stream(stream),
                    )
                }
            }),
        );
    tokio::spawn(async move {
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut TcpStream| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// (requests/s, p50 ms, p99 ms) from oha.
fn oha(tools: &Path, url: &str, concurrency: usize, auth: Option<&str>) -> (f64, f64, f64) {
    let mut command = Command::new(tools.join("bin/oha"));
    command.args([
        "--no-tui",
        "--output-format",
        "json",
        "-z",
        "3s",
        "-c",
        &concurrency.to_string(),
        url,
    ]);
    if let Some(token) = auth {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = command.output().expect("oha runs");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("oha output: {}", String::from_utf8_lossy(&out.stdout)));
    let summary = &report["summary"];
    let ok = summary["successRate"].as_f64().unwrap_or(0.0);
    assert!(ok > 0.99, "oha success rate {ok} for {url}: {report}");
    let p = |k: &str| report["latencyPercentiles"][k].as_f64().unwrap_or(f64::NAN) * 1000.0;
    (
        summary["requestsPerSec"].as_f64().unwrap(),
        p("p50"),
        p("p99"),
    )
}

/// MB/s of one GET of the large response through `url`.
async fn large_once(client: &reqwest::Client, url: &str, token: Option<&str>) -> f64 {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let start = Instant::now();
    let mut response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let mut received = 0usize;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len();
    }
    assert_eq!(received, LARGE_BYTES, "{url}");
    LARGE_BYTES as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Forwarder mode: accept on `listen`, pipe each connection to `target`.
async fn forward(listen: u16, target: SocketAddr) {
    let listener = TcpListener::bind(("127.0.0.1", listen)).await.unwrap();
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            // 256 KiB buffers each way (the default 8 KiB would make it a poor ceiling).
            let _ = tokio::io::copy_bidirectional_with_sizes(
                &mut inbound,
                &mut outbound,
                256 * 1024,
                256 * 1024,
            )
            .await;
        });
    }
}

/// Three forwarder processes in a chain in front of `upstream`; returns them and the entry.
async fn forwarder_chain(upstream: SocketAddr) -> (Vec<Proc>, SocketAddr) {
    let exe = std::env::current_exe().unwrap();
    let mut target = upstream;
    let mut procs = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        procs.push(spawn(
            &exe,
            &[],
            &[(FORWARD_ENV, format!("{port},{target}"))],
        ));
        target = SocketAddr::from(([127, 0, 0, 1], port));
        wait_port(target).await;
    }
    (procs, target)
}

struct Phlix {
    _hub: Proc,
    _agent: Proc,
    _connect: Proc,
    base: String,
    token: String,
    server_id: String,
    connect: SocketAddr,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// The worker threads of a child process from the bench's variable `name`, if set (to
/// compare runtime sizes of hub and agent without touching the bench's own runtime): the
/// hub's Tokio runtime reads `TOKIO_WORKER_THREADS`, the agent has `PHLIX_AGENT_THREADS`.
fn threads(name: &str, child_variable: &'static str) -> Option<(&'static str, String)> {
    std::env::var(name)
        .ok()
        .map(|value| (child_variable, value))
}

impl Phlix {
    /// On-CPU seconds so far of the hub, and of the agent's two processes (`run` + `connect`).
    fn cpu(&self) -> (f64, f64) {
        (
            cpu_seconds(self._hub.0.id()),
            cpu_seconds(self._agent.0.id()) + cpu_seconds(self._connect.0.id()),
        )
    }
}

async fn phlix(release: &Path, agent: &Path, upstream: SocketAddr) -> Phlix {
    let hub_dir = tempfile::tempdir().unwrap();
    let (http, tunnel, client) = (free_port(), free_port(), free_port());
    let hub = spawn(
        &release.join("phlix-hub"),
        &["serve"],
        &[
            ("HUB_DATA_DIR", hub_dir.path().display().to_string()),
            ("HUB_HTTP_ADDR", format!("127.0.0.1:{http}")),
            ("HUB_TUNNEL_ADDR", format!("127.0.0.1:{tunnel}")),
            ("HUB_CLIENT_ADDR", format!("127.0.0.1:{client}")),
            ("HUB_PUBLIC_URL", format!("http://127.0.0.1:{http}")),
            ("HUB_PROXY_REQUESTS_PER_MINUTE", "0".into()),
            ("HUB_LOG", "warn".into()),
        ]
        .into_iter()
        .chain(threads("PHLIX_BENCH_HUB_THREADS", "TOKIO_WORKER_THREADS"))
        .collect::<Vec<_>>(),
    );
    let base = format!("http://127.0.0.1:{http}");
    let http_client = reqwest::Client::new();
    while !http_client
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let auth: Value = http_client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "bench", "email": "bench@example.com", "password": "benchmark-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = auth["access_token"].as_str().unwrap().to_owned();
    let user_id = auth["user"]["id"].as_str().unwrap().to_owned();
    // Enroll the agent directly in the hub's database (pairing is not what is measured).
    let server_id = uuid::Uuid::new_v4().to_string();
    let store = phlix_hub::store::Store::connect(
        &phlix_hub::config::DatabaseUrl::parse(&format!(
            "sqlite://{}",
            hub_dir.path().join("hub.db").display()
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    if let phlix_hub::store::Store::Sqlite(pool) = &store {
        sqlx::query(
            "INSERT INTO servers (id, user_id, server_name, version, public_key_jwk, hostname_candidates_json, status, last_seen_at, enrolled_at, created_at, updated_at) \
             VALUES ($1, $2, 'bench', '0', '{}', '[]', 'online', 1, 1, 1, 1)",
        )
        .bind(&server_id)
        .bind(&user_id)
        .execute(pool)
        .await
        .unwrap();
    }
    store.close().await;
    let keys = phlix_hub::auth::keys::KeyRing::load_or_create(hub_dir.path()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let jwt = phlix_hub::auth::enrollment::mint(&keys, &server_id, &base, 3600, now);
    let agent_dir = tempfile::tempdir().unwrap();
    let enrollment = json!({"enrollment_jwt": jwt, "hub_jwks_url": format!("{base}/.well-known/jwks.json"),
        "server_id": server_id, "hub_base_url": base, "enrolled_at": now});
    std::fs::write(
        agent_dir.path().join("hub-enrollment.json"),
        enrollment.to_string(),
    )
    .unwrap();
    let agent_run = spawn(
        agent,
        &[
            "run",
            "--upstream",
            &upstream.to_string(),
            "--data-dir",
            agent_dir.path().to_str().unwrap(),
        ],
        &[("PHLIX_AGENT_LOG", "warn".into())]
            .into_iter()
            .chain(threads("PHLIX_BENCH_AGENT_THREADS", "PHLIX_AGENT_THREADS"))
            .collect::<Vec<_>>(),
    );
    for (path, body) in [
        (
            format!("/api/v1/admin/users/{user_id}/throttle"),
            json!({"throttle_bps": 0}),
        ),
        (
            format!("/api/v1/me/servers/{server_id}/proxy-policy"),
            json!({"policy": "all"}),
        ),
    ] {
        let resp = http_client
            .put(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let servers: Value = http_client
            .get(format!("{base}/api/v1/me/servers"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if servers["servers"][0]["relayActive"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "the agent's tunnel never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let relay: Value = http_client
        .post(format!("{base}/api/v1/me/servers/{server_id}/relay-token"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let connect_port = free_port();
    let connect = spawn(
        agent,
        &[
            "connect",
            "--hub",
            &base,
            "--server",
            &server_id,
            "--token",
            relay["token"].as_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{connect_port}"),
        ],
        &[("PHLIX_AGENT_LOG", "warn".into())],
    );
    let connect_addr = SocketAddr::from(([127, 0, 0, 1], connect_port));
    wait_port(connect_addr).await;
    Phlix {
        _hub: hub,
        _agent: agent_run,
        _connect: connect,
        base,
        token,
        server_id,
        connect: connect_addr,
        _dirs: (hub_dir, agent_dir),
    }
}

/// rathole server + client forwarding `upstream`; returns the public entry.
async fn rathole(
    tools: &Path,
    dir: &Path,
    upstream: SocketAddr,
    name: &str,
) -> (Proc, Proc, SocketAddr) {
    let (control, entry) = (free_port(), free_port());
    let server = dir.join(format!("{name}-server.toml"));
    std::fs::write(
        &server,
        format!("[server]\nbind_addr = \"127.0.0.1:{control}\"\n[server.transport]\ntype = \"tcp\"\n[server.services.{name}]\ntoken = \"bench\"\nbind_addr = \"127.0.0.1:{entry}\"\n"),
    )
    .unwrap();
    let client = dir.join(format!("{name}-client.toml"));
    std::fs::write(
        &client,
        format!("[client]\nremote_addr = \"127.0.0.1:{control}\"\n[client.transport]\ntype = \"tcp\"\n[client.services.{name}]\ntoken = \"bench\"\nlocal_addr = \"{upstream}\"\n"),
    )
    .unwrap();
    let s = spawn(
        &tools.join("bin/rathole"),
        &["--server", server.to_str().unwrap()],
        &[],
    );
    wait_port(SocketAddr::from(([127, 0, 0, 1], control))).await;
    let c = spawn(
        &tools.join("bin/rathole"),
        &["--client", client.to_str().unwrap()],
        &[],
    );
    let entry = SocketAddr::from(([127, 0, 0, 1], entry));
    wait_port(entry).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // let the client's data channels warm up
    (s, c, entry)
}

/// bore server + `bore local`; returns the public entry.
async fn bore(tools: &Path, upstream: SocketAddr) -> (Proc, Proc, SocketAddr) {
    let port = free_port();
    let s = spawn(
        &tools.join("bin/bore"),
        &[
            "server",
            "--min-port",
            &port.to_string(),
            "--max-port",
            &port.to_string(),
        ],
        &[],
    );
    wait_port(SocketAddr::from(([127, 0, 0, 1], 7835))).await;
    let c = spawn(
        &tools.join("bin/bore"),
        &[
            "local",
            &upstream.port().to_string(),
            "--local-host",
            "127.0.0.1",
            "--to",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ],
        &[],
    );
    let entry = SocketAddr::from(([127, 0, 0, 1], port));
    wait_port(entry).await;
    (s, c, entry)
}

async fn run() {
    let tools = PathBuf::from(
        std::env::var("PHLIX_BENCH_TOOLS").expect("PHLIX_BENCH_TOOLS (scripts/bench sets it)"),
    );
    // `PHLIX_BENCH_BIN_DIR`: where phlix-hub and phlix-agent are taken from (default: this
    // build's), e.g. to set two builds side by side.
    let (release, agent) = match std::env::var_os("PHLIX_BENCH_BIN_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            (dir.clone(), dir.join("phlix-agent"))
        }
        None => {
            let agent = PathBuf::from(env!("CARGO_BIN_EXE_phlix-agent"));
            (agent.parent().unwrap().to_path_buf(), agent)
        }
    };
    let work = tempfile::tempdir().unwrap();
    let streams = stream_upstream().await;
    let http = http_upstream().await;

    // `PHLIX_COMPARE=raw,iperf,http,large` picks parts (default: all), e.g. to profile one.
    let parts = std::env::var("PHLIX_COMPARE").unwrap_or_else(|_| "raw,iperf,http,large".into());
    if parts.split(',').any(|p| p == "raw") {
        raw_streams(&tools, &release, &agent, work.path(), streams).await;
    }
    if parts.split(',').any(|p| p == "serve") {
        serve_for_profiling(&release, &agent, http).await;
        return;
    }
    if parts.split(',').any(|p| p == "iperf") {
        iperf_streams(&tools, &release, &agent, work.path()).await;
    }
    if parts.split(',').any(|p| p == "http" || p == "large") {
        http_scenarios(&tools, &release, &agent, work.path(), http, &parts).await;
    }
}

async fn raw_streams(tools: &Path, release: &Path, agent: &Path, work: &Path, streams: SocketAddr) {
    let phlix_streams = phlix(release, agent, streams).await;
    let (_rs1, _rc1, rathole_streams) = rathole(tools, work, streams, "streams").await;
    let (_bs, _bc, bore_streams) = bore(tools, streams).await;
    let (_chain, chain_streams) = forwarder_chain(streams).await;
    let paths = [
        ("direct loopback TCP", streams),
        ("3 plain TCP forwarders (phlix's hop count)", chain_streams),
        ("phlix (connect → hub → agent)", phlix_streams.connect),
        ("rathole 0.5 (TCP)", rathole_streams),
        ("bore 0.6", bore_streams),
    ];
    println!(
        "### Raw channel throughput, one stream, 1 GiB each way (MB/s, median of {REPS}, min–max)\n"
    );
    println!("| path | client → upstream | upstream → client |");
    println!("|---|---|---|");
    let mut phlix_row = (0.0, 0.0);
    let mut baseline = (0.0, 0.0);
    let mut rathole_row = (0.0, 0.0);
    let mut chain_row = (0.0, 0.0);
    // Hub and agent (run + connect) CPU seconds spent on the phlix streams, each way.
    let mut phlix_cpu = [[0.0f64; 2]; 2];
    for (name, entry) in paths {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let is_phlix = name.starts_with("phlix");
        for _ in 0..REPS {
            for (way, upload) in [(0, true), (1, false)] {
                let before = phlix_streams.cpu();
                let rate = stream_once(entry, upload).await;
                if is_phlix {
                    let after = phlix_streams.cpu();
                    phlix_cpu[way][0] += after.0 - before.0;
                    phlix_cpu[way][1] += after.1 - before.1;
                }
                if upload {
                    up.push(rate)
                } else {
                    down.push(rate)
                }
            }
        }
        let (up, down) = (median(&mut up), median(&mut down));
        println!(
            "| {name} | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) |",
            up.0, up.1, up.2, down.0, down.1, down.2
        );
        match name {
            n if n.starts_with("direct") => baseline = (up.0, down.0),
            n if n.starts_with("phlix") => phlix_row = (up.0, down.0),
            n if n.starts_with("rathole") => rathole_row = (up.0, down.0),
            n if n.starts_with("3 plain") => chain_row = (up.0, down.0),
            _ => {}
        }
    }
    println!(
        "\nphlix ÷ direct TCP: {:.2}× up, {:.2}× down; phlix ÷ rathole: {:.2}× up, {:.2}× down; \
         phlix ÷ 3 plain forwarders: {:.2}× up, {:.2}× down.\n",
        phlix_row.0 / baseline.0,
        phlix_row.1 / baseline.1,
        phlix_row.0 / rathole_row.0,
        phlix_row.1 / rathole_row.1,
        phlix_row.0 / chain_row.0,
        phlix_row.1 / chain_row.1
    );
    let gib = (STREAM_BYTES * REPS as u64) as f64 / f64::from(1u32 << 30);
    println!(
        "CPU seconds per GiB relayed (user + system, all threads): hub {:.2} up / {:.2} down; \
         agent (`run` + `connect`) {:.2} up / {:.2} down.\n",
        phlix_cpu[0][0] / gib,
        phlix_cpu[1][0] / gib,
        phlix_cpu[0][1] / gib,
        phlix_cpu[1][1] / gib,
    );
    drop(phlix_streams);
}

/// iperf3 (Debian package) as a second load generator: one stream each way and 4 parallel
/// streams, through every path, against one `iperf3 -s`.
async fn iperf_streams(tools: &Path, release: &Path, agent: &Path, work: &Path) {
    let port = free_port();
    let _server = spawn(Path::new("iperf3"), &["-s", "-p", &port.to_string()], &[]);
    let upstream = SocketAddr::from(([127, 0, 0, 1], port));
    wait_port(upstream).await;
    let (_rs, _rc, rathole_iperf) = rathole(tools, work, upstream, "iperf").await;
    let (_bs, _bc, bore_iperf) = bore(tools, upstream).await;
    let (_chain, chain_iperf) = forwarder_chain(upstream).await;
    let names = [
        "direct loopback TCP",
        "3 plain TCP forwarders (phlix's hop count)",
        "phlix (connect → hub → agent)",
        "rathole 0.5 (TCP)",
        "bore 0.6",
    ];
    let modes: [(&str, &[&str]); 4] = [
        ("1 stream up", &[]),
        ("1 stream down", &["-R"]),
        ("4 streams up", &["-P", "4"]),
        ("4 streams down", &["-R", "-P", "4"]),
    ];
    // cells[path][mode] = (median, min, max)
    let mut cells = vec![Vec::new(); names.len()];
    for (_, args) in modes {
        // The hub lets one address mount 30 clients a minute (SPEC B.6) and iperf3 opens 2 to
        // 5 connections a run: a fresh phlix set-up per mode stays under that.
        let phlix_iperf = phlix(release, agent, upstream).await;
        let entries = [
            upstream,
            chain_iperf,
            phlix_iperf.connect,
            rathole_iperf,
            bore_iperf,
        ];
        for (path, entry) in entries.into_iter().enumerate() {
            let mut rates: Vec<f64> = (0..REPS).map(|_| iperf(entry, args)).collect();
            cells[path].push(median(&mut rates));
        }
    }
    let mode_names: Vec<&str> = modes.iter().map(|(m, _)| *m).collect();
    println!(
        "### iperf3 through each path, {IPERF_SECONDS} s per run (MB/s received, median of {REPS}, min–max)\n"
    );
    println!("| path | {} |", mode_names.join(" | "));
    println!("|---|---|---|---|---|");
    for (name, row) in names.iter().zip(&cells) {
        let text: Vec<String> = row
            .iter()
            .map(|(m, lo, hi)| format!("{m:.0} ({lo:.0}–{hi:.0})"))
            .collect();
        println!("| {name} | {} |", text.join(" | "));
    }
    // Rows of `names`: 1 the forwarders, 2 phlix, 3 rathole.
    let ratio = |other: usize| {
        cells[2]
            .iter()
            .zip(&cells[other])
            .map(|(p, o)| format!("{:.2}×", p.0 / o.0))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "\nphlix ÷ rathole ({}): {}; phlix ÷ 3 plain forwarders: {}.\n",
        mode_names.join(" / "),
        ratio(3),
        ratio(1)
    );
}

/// `PHLIX_COMPARE=serve`: the phlix path to the HTTP upstream, left running for a profiler or
/// a load generator of one's own; prints the URL, the token and the process ids, then waits
/// for Ctrl-C.
async fn serve_for_profiling(release: &Path, agent: &Path, http: SocketAddr) {
    let phlix_http = phlix(release, agent, http).await;
    println!(
        "url: {}/api/v1/servers/{}/proxy/1k\ntoken: {}\nhub pid: {}\nagent run pid: {}\n\
         direct: http://{http}/1k\nCtrl-C stops.",
        phlix_http.base,
        phlix_http.server_id,
        phlix_http.token,
        phlix_http._hub.0.id(),
        phlix_http._agent.0.id(),
    );
    let _ = tokio::signal::ctrl_c().await;
}

/// MB/s received in one iperf3 run against `entry` with `args` (`-R`, `-P n`). The server takes
/// one test at a time and is left confused for a moment by a connection that closes without a
/// test (the port probes of the set-up), so a refused run is tried again, three times at most.
fn iperf(entry: SocketAddr, args: &[&str]) -> f64 {
    for _ in 0..2 {
        if let Some(rate) = iperf_once(entry, args) {
            return rate;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    iperf_once(entry, args)
        .unwrap_or_else(|| panic!("iperf3 through {entry} {args:?} failed three times"))
}

fn iperf_once(entry: SocketAddr, args: &[&str]) -> Option<f64> {
    let out = Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", &entry.port().to_string()])
        .args(["-t", &IPERF_SECONDS.to_string(), "-J"])
        .args(args)
        .output()
        .expect("iperf3 runs (Debian package iperf3)");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let bits = report["end"]["sum_received"]["bits_per_second"].as_f64();
    if bits.is_none() {
        eprintln!("iperf3 through {entry} {args:?}: {report}");
    }
    bits.map(|bits| bits / 8.0 / 1e6)
}

async fn http_scenarios(
    tools: &Path,
    release: &Path,
    agent: &Path,
    work: &Path,
    http: SocketAddr,
    parts: &str,
) {
    let phlix_http = phlix(release, agent, http).await;
    let (_rs2, _rc2, rathole_http) = rathole(tools, work, http, "http").await;
    let proxy = format!(
        "{}/api/v1/servers/{}/proxy",
        phlix_http.base, phlix_http.server_id
    );
    let targets = [
        ("direct HTTP", format!("http://{http}"), None),
        (
            "phlix HTTP-over-relay",
            proxy,
            Some(phlix_http.token.clone()),
        ),
        ("rathole 0.5 (TCP)", format!("http://{rathole_http}"), None),
    ];
    if parts.split(',').any(|p| p == "http") {
        small_responses(tools, &targets);
    }
    if parts.split(',').any(|p| p == "large") {
        large_response(&targets).await;
    }
}

fn small_responses(tools: &Path, targets: &[(&str, String, Option<String>)]) {
    println!("### HTTP, 1 KiB responses, 3 s per run with oha (median of {REPS})\n");
    println!("| path | concurrency | req/s (min–max) | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for concurrency in [1usize, 16, 64] {
        for (name, url, auth) in targets {
            let url = &format!("{url}/1k");
            let (mut rates, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..REPS {
                let (rate, a, b) = oha(tools, url, concurrency, auth.as_deref());
                rates.push(rate);
                p50.push(a);
                p99.push(b);
            }
            let rate = median(&mut rates);
            println!(
                "| {name} | {concurrency} | {:.0} ({:.0}–{:.0}) | {:.2} ms | {:.2} ms |",
                rate.0,
                rate.1,
                rate.2,
                median(&mut p50).0,
                median(&mut p99).0
            );
        }
    }
}

async fn large_response(targets: &[(&str, String, Option<String>)]) {
    println!(
        "\n### HTTP, one 512 MiB response (MB/s, median of {LARGE_REPS}, min–max; reqwest client)\n"
    );
    println!("| path | MB/s |");
    println!("|---|---|");
    let client = reqwest::Client::new();
    for (name, url, auth) in targets {
        let mut rates = Vec::new();
        for _ in 0..LARGE_REPS {
            rates.push(large_once(&client, &format!("{url}/large"), auth.as_deref()).await);
        }
        let rate = median(&mut rates);
        println!("| {name} | {:.0} ({:.0}–{:.0}) |", rate.0, rate.1, rate.2);
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(spec) = std::env::var(FORWARD_ENV) {
        let (listen, target) = spec.split_once(',').expect("LISTEN_PORT,TARGET_ADDR");
        runtime.block_on(forward(listen.parse().unwrap(), target.parse().unwrap()));
        return;
    }
    runtime.block_on(run());
}
