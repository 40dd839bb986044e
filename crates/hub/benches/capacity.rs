//! Tunnel capacity and idle cost of a real `phlix-hub` process: its RSS right after start,
//! then N idle tunnels opened by this load generator (real WebSocket connections, real HELLOs
//! with enrollment tokens, spread over many loopback addresses so the per-IP connect throttle
//! applies as it would to real agents): hub RSS per tunnel, time to accept them all, and the
//! hub's CPU while they idle. `cargo bench -p phlix-hub --bench capacity` (`BENCH_TUNNELS`
//! = comma-separated counts, default 1000,5000,10000).
//!
//! With `PHLIX_TEST_POSTGRES_URL` set it then spreads tunnels over three `phlix-hub` processes
//! in cluster mode on one fresh PostgreSQL database (issue #19: tunnels per node with three
//! nodes), round-robin over the nodes' tunnel ports as a balancer would, and reports each
//! node's RSS per tunnel and idle CPU, and the ownership rows the cluster recorded
//! (`BENCH_CLUSTER_TUNNELS`, totals, default 9000,18000; the load generator holds one socket
//! per tunnel, so mind `ulimit -n`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use phlix_hub::relay::ws_io::{Connected, WsEvent, WsStream, connect_client_from};
use phlix_proto::ws::Opcode;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `(VmRSS, RssAnon)` of a process in KiB: everything resident, and the anonymous part (heap,
/// stacks) without the pages of the binary that happen to be mapped in — the binary is ~40 MB
/// and the kernel faults its code in by the 64 KiB, so VmRSS grows with code size alone.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("RssAnon:"))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

struct HubProcess {
    child: Child,
    base: String,
    tunnel: SocketAddr,
    data: tempfile::TempDir,
}

/// The secrets every node of the cluster scenario shares.
const JWT_SECRET: &str = "capacity-bench-jwt-secret-0123456789abcdef";
const CLUSTER_SECRET: &str = "capacity-bench-cluster-secret-0123456789abcdef";
/// The signing keys node 1 writes and the other nodes must share.
const SHARED_KEY_FILES: [&str; 2] = ["hub-ed25519.key", "hub-ed25519.key.previous.json"];

/// Starts `phlix-hub serve` on free ports with `data` as its data dir and `extra` arguments.
fn spawn_hub(data: tempfile::TempDir, extra: &[String]) -> HubProcess {
    let (http, tunnel, client) = (free_port(), free_port(), free_port());
    let hub = std::env::var_os("PHLIX_BENCH_HUB").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_BIN_EXE_phlix-hub")),
        std::path::PathBuf::from,
    );
    let child = Command::new(hub)
        .arg("serve")
        .args(extra)
        .env("HUB_DATA_DIR", data.path())
        .env("HUB_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("HUB_TUNNEL_ADDR", format!("0.0.0.0:{tunnel}"))
        .env("HUB_CLIENT_ADDR", format!("127.0.0.1:{client}"))
        .env("HUB_JWT_SECRET", JWT_SECRET)
        .env("HUB_CLUSTER_SECRET", CLUSTER_SECRET)
        .env("HUB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    HubProcess {
        child,
        base: format!("http://127.0.0.1:{http}"),
        tunnel: SocketAddr::from(([127, 0, 0, 1], tunnel)),
        data,
    }
}

/// Waits until the hub answers `/health` with 200.
async fn wait_ready(hub: &HubProcess) {
    let probe = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !probe
        .get(format!("{}/health", hub.base))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "{} never became ready", hub.base);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start_hub() -> HubProcess {
    let hub = spawn_hub(tempfile::tempdir().unwrap(), &[]);
    wait_ready(&hub).await;
    hub
}

/// Stops a hub the way an operator would (SIGTERM) and waits for it.
fn stop_hub(hub: HubProcess) {
    let mut child = hub.child;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Loopback source address number `i`, 8 connections each (the hub allows 10 per minute per IP).
fn source(i: usize) -> IpAddr {
    let n = (i / 8) as u32 + 2;
    IpAddr::V4(Ipv4Addr::from(0x7F00_0000 | n))
}

async fn scenario(count: usize) -> ((u64, u64), (f64, f64), f64, f64) {
    let hub = start_hub().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(hub.child.id());
    let bench = support::BenchHub::attach(&hub.base, hub.data.path());
    let (user_id, _) = bench.user("capacity").await;
    let servers = bench.servers(&user_id, count).await;
    let before = rss_kib(hub.child.id());
    let start = Instant::now();
    let open = open_tunnels(servers, &[hub.tunnel]).await;
    let accept_secs = start.elapsed().as_secs_f64();
    assert_eq!(open.len(), count);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(hub.child.id());
    let per_tunnel_kib = (
        after.0.saturating_sub(before.0) as f64 / count as f64,
        after.1.saturating_sub(before.1) as f64 / count as f64,
    );
    // CPU of the hub over 10 s of idling (the hub's 30 s heartbeats may or may not fall in).
    let ticks = cpu_ticks(hub.child.id());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let ticks_per_sec = 100.0; // CLK_TCK on Linux
    let cpu_percent = (cpu_ticks(hub.child.id()) - ticks) as f64 / ticks_per_sec / 10.0 * 100.0;
    drop(open);
    stop_hub(hub);
    (idle_rss, per_tunnel_kib, accept_secs, cpu_percent)
}

type Tunnel = (
    phlix_hub::relay::ws_io::WsReader,
    phlix_hub::relay::ws_io::WsWriter,
);

/// Opens one idle tunnel (after HELLO_ACK) per server, server `i` to `targets[i % len]`, from
/// 64 tasks at once.
async fn open_tunnels(servers: Vec<(String, String)>, targets: &[SocketAddr]) -> Vec<Tunnel> {
    let count = servers.len();
    let per_task = count.div_ceil(64);
    let mut tasks = Vec::new();
    for (chunk_index, chunk) in servers.chunks(per_task).enumerate() {
        let chunk = chunk.to_vec();
        let offset = chunk_index * per_task;
        let targets = targets.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut open = Vec::with_capacity(chunk.len());
            for (i, (id, token)) in chunk.into_iter().enumerate() {
                let target = targets[(offset + i) % targets.len()];
                let Connected::Open { stream, .. } =
                    connect_client_from(Some(source(offset + i)), target, "/", &[])
                        .await
                        .unwrap()
                else {
                    panic!("tunnel upgrade refused");
                };
                let WsStream {
                    mut reader,
                    mut writer,
                } = stream;
                let hello =
                    json!({"type": "hello", "enrollment_jwt": token, "server_id": id}).to_string();
                writer.send(Opcode::Text, hello.as_bytes()).await.unwrap();
                match reader.next().await.unwrap() {
                    WsEvent::Data(ack) => {
                        assert!(ack.payload.starts_with(br#"{"type":"hello_ack""#))
                    }
                    other => panic!("no HELLO_ACK: {other:?}"),
                }
                open.push((reader, writer));
            }
            open
        }));
    }
    let mut open = Vec::new();
    for task in tasks {
        open.extend(task.await.unwrap());
    }
    open
}

/// What one node of the cluster scenario measured.
struct NodeFigures {
    per_tunnel_kib: (f64, f64),
    cpu_percent: f64,
}

/// `total` tunnels over `nodes` cluster nodes on a fresh database of `server`; per node
/// figures, the time to accept all, and the rows of `relay_owners` afterwards.
async fn cluster_scenario(
    server: &str,
    nodes: usize,
    total: usize,
) -> (Vec<NodeFigures>, f64, i64) {
    let database_url = support::fresh_postgres(server).await;
    let node_args = |i: usize| {
        let cluster = free_port();
        vec![
            "--database-url".to_owned(),
            database_url.clone(),
            "--node-name".to_owned(),
            format!("node-{i}"),
            "--cluster-addr".to_owned(),
            format!("127.0.0.1:{cluster}"),
            "--cluster-url".to_owned(),
            format!("http://127.0.0.1:{cluster}"),
        ]
    };
    // Node 1 first: it runs the migrations and writes the signing keys the others share.
    let first = spawn_hub(tempfile::tempdir().unwrap(), &node_args(1));
    wait_ready(&first).await;
    let mut hubs = vec![first];
    for i in 2..=nodes {
        let data = tempfile::tempdir().unwrap();
        for file in SHARED_KEY_FILES {
            let from = hubs[0].data.path().join(file);
            if from.exists() {
                std::fs::copy(&from, data.path().join(file)).unwrap();
            }
        }
        hubs.push(spawn_hub(data, &node_args(i)));
    }
    for hub in &hubs {
        wait_ready(hub).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bench = support::BenchHubRef {
        base: hubs[0].base.clone(),
        data_dir: hubs[0].data.path().to_path_buf(),
        database_url: database_url.clone(),
    };
    let (user_id, _) = bench.user("capacity").await;
    let servers = bench.servers(&user_id, total).await;
    let before: Vec<_> = hubs.iter().map(|h| rss_kib(h.child.id())).collect();
    let start = Instant::now();
    let targets: Vec<SocketAddr> = hubs.iter().map(|h| h.tunnel).collect();
    let open = open_tunnels(servers, &targets).await;
    let accept_secs = start.elapsed().as_secs_f64();
    assert_eq!(open.len(), total);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_node = total as f64 / nodes as f64;
    let ticks: Vec<u64> = hubs.iter().map(|h| cpu_ticks(h.child.id())).collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let figures = hubs
        .iter()
        .zip(before)
        .zip(ticks)
        .map(|((hub, before), ticks)| {
            let after = rss_kib(hub.child.id());
            NodeFigures {
                per_tunnel_kib: (
                    after.0.saturating_sub(before.0) as f64 / per_node,
                    after.1.saturating_sub(before.1) as f64 / per_node,
                ),
                cpu_percent: (cpu_ticks(hub.child.id()) - ticks) as f64 / 100.0 / 10.0 * 100.0,
            }
        })
        .collect();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url)
        .await
        .unwrap();
    let owners: i64 = sqlx::query_scalar("SELECT count(*) FROM relay_owners")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    drop(open);
    for hub in hubs {
        stop_hub(hub);
    }
    (figures, accept_secs, owners)
}

fn main() {
    let counts: Vec<usize> = std::env::var("BENCH_TUNNELS")
        .unwrap_or_else(|_| "1000,5000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| idle tunnels | hub RSS after start (anonymous) | hub RSS per tunnel (anonymous) | time to accept all | hub CPU while idle |"
    );
    println!("|---|---|---|---|---|");
    for count in counts {
        let (idle, per_tunnel, secs, cpu) = runtime.block_on(scenario(count));
        println!(
            "| {count} | {:.1} MiB ({:.1} MiB) | {:.1} KiB ({:.1} KiB) | {secs:.2} s | {cpu:.1} % |",
            idle.0 as f64 / 1024.0,
            idle.1 as f64 / 1024.0,
            per_tunnel.0,
            per_tunnel.1,
        );
    }
    let Ok(server) = std::env::var("PHLIX_TEST_POSTGRES_URL") else {
        println!("\n(PHLIX_TEST_POSTGRES_URL unset: the three-node scenario needs PostgreSQL)");
        return;
    };
    let totals: Vec<usize> = std::env::var("BENCH_CLUSTER_TUNNELS")
        .unwrap_or_else(|_| "9000,18000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    const NODES: usize = 3;
    println!(
        "\n| tunnels over {NODES} nodes | per node | hub RSS per tunnel, each node (anonymous) | time to accept all | hub CPU while idle, each node | ownership rows |"
    );
    println!("|---|---|---|---|---|---|");
    for total in totals {
        let (nodes, secs, owners) = runtime.block_on(cluster_scenario(&server, NODES, total));
        let rss: Vec<String> = nodes
            .iter()
            .map(|n| format!("{:.1} ({:.1})", n.per_tunnel_kib.0, n.per_tunnel_kib.1))
            .collect();
        let cpu: Vec<String> = nodes
            .iter()
            .map(|n| format!("{:.1} %", n.cpu_percent))
            .collect();
        println!(
            "| {total} | {} | {} KiB | {secs:.2} s | {} | {owners} |",
            total / NODES,
            rss.join(" / "),
            cpu.join(" / "),
        );
    }
}
