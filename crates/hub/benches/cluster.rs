//! Several nodes on one PostgreSQL (issue #19): what forwarding costs, and how long a failover
//! takes. Two hub nodes in-process (`a` holds the tunnel of a fake Phlix server, `b` forwards
//! to it over its cluster listener), measured side by side in one run:
//!
//! - one raw client mount each way through the owner vs through the forwarding node (MB/s);
//! - HTTP over the relay with 1 KiB responses, 1 and 64 concurrent clients (req/s, p50, p99);
//! - failover: a third node holding the tunnel crashes (its runtime dropped: sockets close, no
//!   goodbye), the fake server reconnects at once to `b` as a load balancer would send it, and
//!   a client polling through `a` every 5 ms sees the first answer again (median of 5).
//!
//! Then with processes (the stage of `tests/cluster.rs`, `tests/common/cluster.rs`): three
//! release `phlix-hub serve` nodes behind HAProxy, a `phlix-agent run` process relaying to a
//! small HTTP upstream, and a client polling `/proxy/ping` through HAProxy every 20 ms. The
//! node holding the tunnel gets SIGKILL; measured: kill → first answer again, split at the
//! agent's "tunnel open" (HELLO_ACK on another node) into the agent's reconnect (its back-off
//! by SPEC B.3, drawn as `retry_in_ms` in its log) and the hub's part. Five kills with the
//! agent's default `--reconnect-base 5s` (what users get), five with `100ms`; the killed node
//! is restarted before the next kill, so each has three nodes. Needs haproxy (Debian's
//! /usr/sbin/haproxy) and the release agent (`cargo build --release -p phlix-agent`) beside
//! the bench's phlix-hub; skipped with a line saying so without them.
//!
//! Needs PostgreSQL: `PHLIX_TEST_POSTGRES_URL=postgres://… cargo bench -p phlix-hub --bench
//! cluster` (scripts/bench runs it when that variable is set). `PHLIX_CLUSTER=in-process` or `PHLIX_CLUSTER=sigkill`
//! runs one part only (default: both). Prints Markdown tables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The process stage of the integration tests (nodes, HAProxy, pairing an agent).
#[path = "../tests/common/cluster.rs"]
mod cluster_support;
#[path = "../tests/common/pairing.rs"]
mod pairing;
mod support;

use support::read_frames;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use phlix_hub::relay::ws_io::{Connected, WsEvent, WsReader, WsWriter, connect_client_from};
use phlix_proto::frame::{Frame, FrameDecoder, FrameType};
use phlix_proto::relay_http::{self, RequestPayload, ResponseHead};
use phlix_proto::ws::Opcode;
use serde_json::json;

const REPS: usize = 5;
const STREAM_BYTES: usize = 128 * 1024 * 1024;
const CHUNK: usize = 65_535;
/// Bytes the download sender keeps in flight (well under the client queue's 256 frames).
const WINDOW: usize = 4 * 1024 * 1024;
const HTTP_REQUESTS: usize = 2048;

async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (WsReader, WsWriter) {
    match connect_client_from(None, addr, path, headers)
        .await
        .unwrap()
    {
        Connected::Open { stream, .. } => (stream.reader, stream.writer),
        Connected::Refused { status, body, .. } => panic!("refused {status}: {body}"),
    }
}

/// A fake Phlix server's tunnel on `addr`, after HELLO_ACK.
async fn tunnel(addr: SocketAddr, server_id: &str, jwt: &str) -> (WsReader, WsWriter) {
    let (mut reader, mut writer) = open(addr, "/", &[]).await;
    let hello = json!({"type": "hello", "enrollment_jwt": jwt, "server_id": server_id}).to_string();
    writer.send(Opcode::Text, hello.as_bytes()).await.unwrap();
    assert!(
        matches!(reader.next().await.unwrap(), WsEvent::Data(_)),
        "HELLO_ACK"
    );
    (reader, writer)
}

/// Answers every HTTP-over-relay request on the tunnel with 1 KiB, until the tunnel ends.
async fn respond(mut reader: WsReader, mut writer: WsWriter) {
    let body = Bytes::from(vec![b'x'; 1024]);
    let head = relay_http::encode_response_head(&ResponseHead {
        status: 200,
        headers: [("content-type".to_owned(), "text/plain".to_owned())].into(),
        body_length: Some(1024),
    });
    let mut decoder = FrameDecoder::new(1 << 20);
    loop {
        let message = match reader.next().await {
            Ok(WsEvent::Data(message)) => message,
            Ok(WsEvent::Close { .. }) | Err(_) => return,
            Ok(_) => continue,
        };
        decoder.push(&message.payload);
        let mut out = Vec::new();
        while let Ok(Some(frame)) = decoder.next_frame() {
            if frame.kind == FrameType::HttpRequest
                && matches!(
                    relay_http::decode_request(&frame.payload),
                    Ok(RequestPayload::End)
                )
            {
                let id = frame.id;
                out.push(Frame::new(id, FrameType::HttpResponse, head.clone()).unwrap());
                out.push(
                    Frame::new(
                        id,
                        FrameType::HttpResponse,
                        relay_http::body_chunk(body.clone()),
                    )
                    .unwrap(),
                );
                out.push(Frame::new(id, FrameType::HttpResponse, relay_http::end_chunk()).unwrap());
            }
        }
        if !out.is_empty() && writer.send_frames(&out).await.is_err() {
            return;
        }
    }
}

/// One mount's raw streams: `(mount reader, mount writer, channel id)` plus the tunnel side.
struct Mount {
    reader: WsReader,
    writer: WsWriter,
    channel: u32,
    decoder: FrameDecoder,
}

/// MB/s of one stream server → client (`down`) or client → server through `mount`.
async fn stream(mount: &mut Mount, t: &mut (WsReader, WsWriter, FrameDecoder), down: bool) -> f64 {
    let payload = Bytes::from(vec![0xA5u8; CHUNK]);
    let batches = STREAM_BYTES / CHUNK / 4;
    let total = batches * 4 * CHUNK;
    let start = Instant::now();
    let delivered = Arc::new(AtomicUsize::new(0));
    if down {
        let channel = mount.channel;
        let sender = {
            let (delivered, writer) = (delivered.clone(), &mut t.1);
            async move {
                let batch: Vec<Frame> = (0..4)
                    .map(|_| Frame::new(channel, FrameType::Data, payload.clone()).unwrap())
                    .collect();
                let mut sent = 0;
                for _ in 0..batches {
                    while sent - delivered.load(Ordering::Relaxed) > WINDOW {
                        tokio::task::yield_now().await;
                    }
                    writer.send_frames(&batch).await.unwrap();
                    sent += 4 * CHUNK;
                }
            }
        };
        let mut received = 0;
        let receiver = read_frames(&mut mount.reader, &mut mount.decoder, |f| {
            if f.kind == FrameType::Data {
                received += f.payload.len();
                delivered.store(received, Ordering::Relaxed);
            }
            received >= total
        });
        tokio::join!(sender, receiver);
    } else {
        let writer = &mut mount.writer;
        let sender = async move {
            let batch: Vec<Frame> = (0..4)
                .map(|_| Frame::new(1, FrameType::Data, payload.clone()).unwrap())
                .collect();
            for _ in 0..batches {
                writer.send_frames(&batch).await.unwrap();
            }
        };
        let mut received = 0;
        let receiver = read_frames(&mut t.0, &mut t.2, |f| {
            if f.kind == FrameType::Data {
                received += f.payload.len();
            }
            received >= total
        });
        tokio::join!(sender, receiver);
    }
    total as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Sets the server's proxy policy to `all` through node `node` (the bench's paths are not
/// Phlix client paths).
async fn policy_all(node: &support::BenchHub, token: &str, server_id: &str) {
    let resp = node
        .http
        .put(format!(
            "{}/api/v1/me/servers/{server_id}/proxy-policy",
            node.base
        ))
        .bearer_auth(token)
        .json(&json!({"policy": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[allow(clippy::too_many_lines)]
async fn run(server: &str) {
    let database = support::fresh_postgres(server).await;
    let a = support::BenchHub::start_node(None, database.clone(), "a", None).await;
    let b = support::BenchHub::start_node(None, database.clone(), "b", Some(&a)).await;
    let (user_id, token) = a.user("bench").await;
    let resp = a
        .http
        .put(format!("{}/api/v1/admin/users/{user_id}/throttle", a.base))
        .bearer_auth(&token)
        .json(&json!({"throttle_bps": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut servers = a.servers(&user_id, 1 + REPS).await;
    let (server_id, jwt) = servers.remove(0);
    let (t_reader, t_writer) = tunnel(a.tunnel, &server_id, &jwt).await;
    let mut t = (t_reader, t_writer, FrameDecoder::new(1 << 20));
    policy_all(&a, &token, &server_id).await;
    let relay_token: serde_json::Value = a
        .http
        .post(format!(
            "{}/api/v1/me/servers/{server_id}/relay-token",
            a.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", relay_token["token"].as_str().unwrap());

    // Raw streams: one mount through each node, measured alternately.
    let mut mounts = Vec::new();
    for node in [&a, &b] {
        let (reader, writer) = open(
            node.client,
            &format!("/client/{server_id}"),
            &[("Authorization", &bearer)],
        )
        .await;
        let mut channel = 0;
        read_frames(&mut t.0, &mut t.2, |f| {
            channel = f.id;
            f.kind == FrameType::ClientConnect
        })
        .await;
        mounts.push(Mount {
            reader,
            writer,
            channel,
            decoder: FrameDecoder::new(1 << 20),
        });
    }
    let mut raw: [[Vec<f64>; 2]; 2] = Default::default();
    for rep in 0..REPS {
        eprintln!("raw streams, repetition {}/{REPS}", rep + 1);
        for (which, mount) in mounts.iter_mut().enumerate() {
            raw[which][0].push(stream(mount, &mut t, false).await);
            raw[which][1].push(stream(mount, &mut t, true).await);
        }
    }
    drop(mounts);

    // HTTP over the relay through each node, alternately.
    let responder = tokio::spawn(respond(t.0, t.1));
    let urls = [&a, &b].map(|node| {
        format!(
            "{}/api/v1/servers/{server_id}/proxy/api/v1/media/1",
            node.base
        )
    });
    let http = reqwest::Client::new();
    for url in &urls {
        support::http_1k_round(&http, url, &token, HTTP_REQUESTS, 16).await;
    }
    let mut http_rows = Vec::new();
    for concurrency in [1usize, 64] {
        let mut samples: [[Vec<f64>; 3]; 2] = Default::default();
        for rep in 0..REPS {
            eprintln!("HTTP, {concurrency} clients, repetition {}/{REPS}", rep + 1);
            for (which, url) in urls.iter().enumerate() {
                let (rate, p50, p99) =
                    support::http_1k_round(&http, url, &token, HTTP_REQUESTS, concurrency).await;
                samples[which][0].push(rate);
                samples[which][1].push(p50);
                samples[which][2].push(p99);
            }
        }
        http_rows.push((concurrency, samples));
    }
    responder.abort();

    // Failover: the tunnel's node crashes; the server reconnects to `b`.
    let mut failovers = Vec::new();
    for (i, (server_id, jwt)) in servers.iter().enumerate() {
        eprintln!("failover {}/{REPS}", i + 1);
        let runtime = support::HubRuntime::new(1);
        let doomed = support::BenchHub::start_node(
            Some(runtime.handle()),
            database.clone(),
            &format!("doomed-{i}"),
            Some(&a),
        )
        .await;
        policy_all(&a, &token, server_id).await;
        let (reader, writer) = tunnel(doomed.tunnel, server_id, jwt).await;
        let (b_tunnel, server, token_) = (b.tunnel, server_id.clone(), jwt.clone());
        let agent = tokio::spawn(async move {
            respond(reader, writer).await;
            // The balancer sends the reconnect to a live node.
            let (reader, writer) = tunnel(b_tunnel, &server, &token_).await;
            respond(reader, writer).await;
        });
        let url = format!("{}/api/v1/servers/{server_id}/proxy/ping", a.base);
        let ok = |http: reqwest::Client, url: String, token: String| async move {
            http.get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        };
        while !ok(http.clone(), url.clone(), token.clone()).await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let crashed = Instant::now();
        drop(runtime);
        std::mem::forget(doomed);
        tokio::time::sleep(Duration::from_millis(1)).await;
        while !ok(http.clone(), url.clone(), token.clone()).await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        failovers.push(crashed.elapsed().as_secs_f64() * 1000.0);
        agent.abort();
    }

    println!("\n#### Raw channel, one stream (MB/s; median of {REPS}, min–max)\n");
    println!("| path | client → server | server → client |\n|---|---|---|");
    for (which, label) in ["through the owner node", "through a forwarding node"]
        .iter()
        .enumerate()
    {
        let [up, down] = &mut raw[which];
        let (up, down) = (support::median(up), support::median(down));
        println!(
            "| {label} | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) |",
            up.0, up.1, up.2, down.0, down.1, down.2
        );
    }
    let ratio = |which: usize| {
        support::median(&mut raw[1][which].clone()).0
            / support::median(&mut raw[0][which].clone()).0
    };
    println!(
        "\nforwarding ÷ owner: {:.2} up, {:.2} down",
        ratio(0),
        ratio(1)
    );
    println!("\n#### HTTP over the relay, 1 KiB responses ({HTTP_REQUESTS} requests per run)\n");
    println!("| clients | path | req/s (min–max) | p50 ms | p99 ms |\n|---|---|---|---|---|");
    for (concurrency, samples) in &mut http_rows {
        for (which, label) in ["owner", "forwarding"].iter().enumerate() {
            let (rate, min, max) = support::median(&mut samples[which][0]);
            let p50 = support::median(&mut samples[which][1]).0;
            let p99 = support::median(&mut samples[which][2]).0;
            println!(
                "| {concurrency} | {label} | {rate:.0} ({min:.0}–{max:.0}) | {p50:.2} | {p99:.2} |"
            );
        }
        let owner = support::median(&mut samples[0][0].clone()).0;
        let forwarding = support::median(&mut samples[1][0].clone()).0;
        let p99 = support::median(&mut samples[1][2].clone()).0
            - support::median(&mut samples[0][2].clone()).0;
        println!(
            "| {concurrency} | forwarding ÷ owner | {:.2} | | +{p99:.2} p99 |",
            forwarding / owner
        );
    }
    let (median, min, max) = support::median(&mut failovers);
    println!(
        "\n#### Failover after a crash of the tunnel's node\n\nfirst answer again after {median:.0} ms (median of {REPS}; {min:.0}–{max:.0})"
    );
    b.stop().await;
    a.stop().await;
}

/// What `tests/common/cluster.rs` asks of its parent module: a fresh database on the server
/// of `PHLIX_TEST_POSTGRES_URL`.
async fn fresh_postgres_database() -> String {
    support::fresh_postgres(&std::env::var("PHLIX_TEST_POSTGRES_URL").unwrap()).await
}

/// The agent's reconnect back-off bases of the SIGKILL part: its default (what users get) and
/// a small one, under which the hub's own part shows.
const BASES: [&str; 2] = ["5s", "100ms"];
/// How often the client asks through HAProxy while the tunnel is away.
const POLL: Duration = Duration::from_millis(20);

/// A `phlix-agent run` process; its log lines (JSON, on stderr) arrive stamped with when this
/// process read them.
struct AgentProcess {
    /// Killed when dropped.
    _child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<(Instant, serde_json::Value)>,
}

impl AgentProcess {
    fn spawn(
        program: &std::path::Path,
        data: &std::path::Path,
        upstream: SocketAddr,
        base: &str,
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PHLIX_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .arg("run")
            .arg("--data-dir")
            .arg(data)
            .args(["--upstream", &upstream.to_string()])
            .args(["--reconnect-base", base, "--log-format", "json"])
            .env("PHLIX_AGENT_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let at = Instant::now();
                let value =
                    serde_json::from_str(&line).unwrap_or_else(|_| json!({"message": line}));
                if tx.send((at, value)).is_err() {
                    return;
                }
            }
        });
        Self {
            _child: child,
            lines,
        }
    }

    /// Waits for the log line whose message is `message` (`within` at most): when it was read,
    /// and the lines before it.
    async fn wait_for(
        &mut self,
        message: &str,
        within: Duration,
    ) -> (Instant, Vec<serde_json::Value>) {
        let mut before = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some((at, line))) if line["message"] == message => return (at, before),
                Ok(Some((_, line))) => before.push(line),
                Ok(None) => panic!("the agent exited; its last lines: {before:#?}"),
                Err(_) => panic!("no {message:?} from the agent within {within:?}: {before:#?}"),
            }
        }
    }

    /// Forgets the lines logged so far.
    fn skip_logged(&mut self) {
        while self.lines.try_recv().is_ok() {}
    }
}

/// One proxied `GET /ping` through `base` (HAProxy's API front): answered `pong`?
async fn ping(http: &reqwest::Client, base: &str, token: &str, sid: &str) -> bool {
    let resp = http
        .get(format!("{base}/api/v1/servers/{sid}/proxy/ping"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    match resp {
        Ok(resp) if resp.status() == 200 => resp.text().await.is_ok_and(|body| body == "pong"),
        _ => false,
    }
}

/// One SIGKILL of the tunnel's node, in milliseconds.
struct Kill {
    /// Kill → first proxied answer again.
    total: f64,
    /// Kill → the agent's "tunnel open" (HELLO_ACK from another node).
    reopened: f64,
    /// The back-off the agent drew (`retry_in_ms` of its "reconnecting" lines, summed).
    drawn: f64,
    /// Reconnect attempts until the tunnel opened.
    attempts: usize,
}

/// Why the SIGKILL part cannot run here, if it cannot: the release agent beside the bench's
/// phlix-hub, and haproxy.
async fn sigkill_missing() -> Option<String> {
    let agent = std::path::Path::new(env!("CARGO_BIN_EXE_phlix-hub")).with_file_name("phlix-agent");
    if !std::path::Path::new(env!("CARGO_BIN_EXE_phlix-hub")).exists() || !agent.exists() {
        return Some(format!(
            "no release binaries ({} and {}; `cargo build --release -p phlix-hub -p phlix-agent`)",
            env!("CARGO_BIN_EXE_phlix-hub"),
            agent.display()
        ));
    }
    if !cluster_support::have_haproxy().await {
        return Some("no haproxy (the Debian package haproxy)".to_owned());
    }
    None
}

/// Three node processes behind HAProxy, a `phlix-agent run` process; the node holding the
/// tunnel is killed `REPS` times per back-off base.
async fn sigkill() {
    if let Some(missing) = sigkill_missing().await {
        println!("\nskipped the SIGKILL failover with processes: {missing}");
        return;
    }
    let agent_program =
        std::path::Path::new(env!("CARGO_BIN_EXE_phlix-hub")).with_file_name("phlix-agent");
    let mut cluster = cluster_support::Cluster::start(cluster_support::Options::default()).await;
    let (owner, _) = cluster.register("owner").await;
    let upstream = cluster_support::upstream().await;
    let (_data, data_dir, sid) = cluster_support::enroll(&cluster, &owner).await;
    let front = cluster.front_url("");
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();
    let mut rows = Vec::new();
    for base in BASES {
        let mut agent = AgentProcess::spawn(&agent_program, data_dir.path(), upstream, base);
        agent.wait_for("tunnel open", Duration::from_secs(30)).await;
        cluster.wait_relayed(&owner, &sid).await;
        let mut kills = Vec::new();
        for rep in 0..REPS {
            // Three nodes, each routed to, and the tunnel answering.
            cluster
                .wait_front_routes_to(&names, Duration::from_secs(30))
                .await;
            let mut answered = 0;
            while answered < 6 {
                if ping(&cluster.http, &front, &owner, &sid).await {
                    answered += 1;
                } else {
                    tokio::time::sleep(POLL).await;
                }
            }
            let holder = cluster.tunnel_node(&owner, &sid).await.unwrap();
            let i = cluster.index_of(&holder);
            agent.skip_logged();
            let killed = Instant::now();
            cluster.nodes[i].sigkill().await;
            let answer = loop {
                if ping(&cluster.http, &front, &owner, &sid).await {
                    break killed.elapsed();
                }
                assert!(
                    killed.elapsed() < Duration::from_secs(60),
                    "no answer within 60 s of the SIGKILL of {holder}\n{}",
                    cluster.logs(30)
                );
                tokio::time::sleep(POLL).await;
            };
            let (opened, before) = agent.wait_for("tunnel open", Duration::from_secs(10)).await;
            let retries: Vec<f64> = before
                .iter()
                .filter(|line| line["message"] == "reconnecting")
                .filter_map(|line| match &line["retry_in_ms"] {
                    // A u128 field may be logged as a string.
                    serde_json::Value::String(ms) => ms.parse().ok(),
                    ms => ms.as_f64(),
                })
                .collect();
            let new_holder = cluster
                .wait_tunnel_on_other_node(&owner, &sid, Some(&holder), Duration::from_secs(10))
                .await;
            let kill = Kill {
                total: answer.as_secs_f64() * 1000.0,
                reopened: opened.saturating_duration_since(killed).as_secs_f64() * 1000.0,
                drawn: retries.iter().sum(),
                attempts: retries.len(),
            };
            eprintln!(
                "base {base}, SIGKILL {}/{REPS} of {holder}: answered after {:.0} ms, tunnel open \
                 on {new_holder} after {:.0} ms (back-off drawn {:.0} ms, {} attempt(s))",
                rep + 1,
                kill.total,
                kill.reopened,
                kill.drawn,
                kill.attempts
            );
            kills.push(kill);
            let http = cluster.http.clone();
            if let Err(err) = cluster.nodes[i]
                .start_until_ready(&http, Duration::from_secs(60))
                .await
            {
                panic!("restarting {holder}: {err}\n{}", cluster.nodes[i].logs(40));
            }
        }
        rows.push((base, kills));
        drop(agent);
    }

    println!(
        "\n#### Failover after SIGKILL of the tunnel's node (3 `phlix-hub` processes behind \
         HAProxy, a `phlix-agent run` process; ms, median of {REPS}, min–max)\n"
    );
    println!(
        "| agent `--reconnect-base` | kill → first answer | kill → tunnel open | of which back-off drawn | tunnel open → first answer |\n|---|---|---|---|---|"
    );
    for (base, kills) in &rows {
        let column = |f: &dyn Fn(&Kill) -> f64| {
            let mut samples: Vec<f64> = kills.iter().map(f).collect();
            let (median, min, max) = support::median(&mut samples);
            format!("{median:.0} ({min:.0}–{max:.0})")
        };
        let attempts = kills.iter().map(|k| k.attempts).max().unwrap_or(0);
        println!(
            "| {base} | {} | {} | {}{} | {} |",
            column(&|k| k.total),
            column(&|k| k.reopened),
            column(&|k| k.drawn),
            if attempts > 1 {
                format!(", up to {attempts} attempts")
            } else {
                String::new()
            },
            column(&|k| k.total - k.reopened),
        );
    }
}

fn main() {
    let Ok(server) = std::env::var("PHLIX_TEST_POSTGRES_URL") else {
        eprintln!("the cluster bench needs PostgreSQL: set PHLIX_TEST_POSTGRES_URL");
        return;
    };
    let parts = std::env::var("PHLIX_CLUSTER").unwrap_or_else(|_| "in-process,sigkill".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for part in parts.split(',') {
        match part.trim() {
            "in-process" => runtime.block_on(run(&server)),
            "sigkill" => runtime.block_on(sigkill()),
            other => eprintln!("PHLIX_CLUSTER: unknown part {other:?} (in-process, sigkill)"),
        }
    }
}
