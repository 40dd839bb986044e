//! Tunnel capacity and idle cost of a real `phlix-hub` process: its RSS right after start,
//! then N idle tunnels opened by this load generator (real WebSocket connections, real HELLOs
//! with enrollment tokens, spread over many loopback addresses so the per-IP connect throttle
//! applies as it would to real agents): hub RSS per tunnel, time to accept them all, and the
//! hub's CPU while they idle. `cargo bench -p phlix-hub --bench capacity` (`BENCH_TUNNELS`
//! = comma-separated counts, default 1000,5000,10000).
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

async fn start_hub() -> HubProcess {
    let data = tempfile::tempdir().unwrap();
    let (http, tunnel, client) = (free_port(), free_port(), free_port());
    let hub = std::env::var_os("PHLIX_BENCH_HUB").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_BIN_EXE_phlix-hub")),
        std::path::PathBuf::from,
    );
    let child = Command::new(hub)
        .arg("serve")
        .env("HUB_DATA_DIR", data.path())
        .env("HUB_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("HUB_TUNNEL_ADDR", format!("0.0.0.0:{tunnel}"))
        .env("HUB_CLIENT_ADDR", format!("127.0.0.1:{client}"))
        .env("HUB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{http}");
    let probe = reqwest::Client::new();
    while !probe
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    HubProcess {
        child,
        base,
        tunnel: SocketAddr::from(([127, 0, 0, 1], tunnel)),
        data,
    }
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
    let mut tasks = Vec::new();
    let tunnel = hub.tunnel;
    for (chunk_index, chunk) in servers.chunks(count.div_ceil(64)).enumerate() {
        let chunk = chunk.to_vec();
        let offset = chunk_index * count.div_ceil(64);
        tasks.push(tokio::spawn(async move {
            let mut open = Vec::with_capacity(chunk.len());
            for (i, (id, token)) in chunk.into_iter().enumerate() {
                let Connected::Open { stream, .. } =
                    connect_client_from(Some(source(offset + i)), tunnel, "/", &[])
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
    let mut child = hub.child;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    (idle_rss, per_tunnel_kib, accept_secs, cpu_percent)
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
}
