//! Relay micro-benchmark: one hub in-process, a fake Phlix server on a real tunnel, a raw
//! client mount — MB/s through one channel each way, and HTTP-over-relay requests per second
//! with small responses. Loopback TCP between two sockets is measured in the same run as the
//! physical ceiling. Everything is measured twice in one run: on a plain hub and on a hub
//! serving TLS (HTTPS/WSS, rustls), plus the cost of 1 000 tunnel reconnects (TCP [+ TLS] +
//! upgrade + HELLO/HELLO_ACK) each way. `cargo bench -p phlix-hub --bench relay` prints
//! Markdown tables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::read_frames;

use std::time::Instant;

use bytes::Bytes;
use phlix_hub::relay::ws_io::{
    Connected, WsEvent, WsReader, WsWriter, connect_client_from, connect_client_over,
};
use phlix_proto::frame::{Frame, FrameDecoder, FrameType};
use phlix_proto::relay_http::{self, RequestPayload, ResponseHead};
use phlix_proto::ws::Opcode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REPS: usize = 5;
const STREAM_BYTES: usize = 256 * 1024 * 1024;
const CHUNK: usize = 65_535;
/// Bytes the download sender keeps in flight (well under the client queue's 256 frames).
const WINDOW: usize = 4 * 1024 * 1024;

/// TLS of the second hub: its certificate files and the client side.
struct Tls {
    connector: tokio_rustls::TlsConnector,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    ca_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn make_tls() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Tls {
        connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
        cert,
        key,
        ca_pem: ca.pem().into_bytes(),
        _dir: dir,
    }
}

async fn connect(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    tls: Option<&Tls>,
    local: Option<std::net::IpAddr>,
) -> Connected {
    let Some(tls) = tls else {
        return connect_client_from(local, addr, path, headers)
            .await
            .unwrap();
    };
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(ip) = local {
        socket.bind(std::net::SocketAddr::new(ip, 0)).unwrap();
    }
    let tcp = socket.connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    // As the hub does (http::conn): rustls reads 4 KiB at a time.
    let tcp = tokio::io::BufReader::with_capacity(64 * 1024, tcp);
    let stream = tls.connector.connect(name, tcp).await.unwrap();
    connect_client_over(stream, &addr.to_string(), path, headers)
        .await
        .unwrap()
}

async fn open(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    tls: Option<&Tls>,
) -> (WsReader, WsWriter) {
    match connect(addr, path, headers, tls, None).await {
        Connected::Open { stream, .. } => (stream.reader, stream.writer),
        Connected::Refused { status, body, .. } => panic!("refused {status}: {body}"),
    }
}

async fn loopback_tcp_mbps() -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        while total < STREAM_BYTES {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0);
            total += n;
        }
    });
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let chunk = vec![7u8; CHUNK];
    let start = Instant::now();
    let mut sent = 0;
    while sent < STREAM_BYTES {
        socket.write_all(&chunk).await.unwrap();
        sent += CHUNK;
    }
    sink.await.unwrap();
    STREAM_BYTES as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Concurrency, (median req/s, min, max), p50 ms, p99 ms.
type HttpRow = (usize, (f64, f64, f64), f64, f64);

/// One hub's figures: raw channel up and down (MB/s samples), HTTP rows, reconnect times (ms).
struct Measured {
    up: Vec<f64>,
    down: Vec<f64>,
    /// The hub's own CPU seconds per GiB relayed, per repetition.
    up_cpu: Vec<f64>,
    down_cpu: Vec<f64>,
    http_rows: Vec<HttpRow>,
    reconnects: Vec<f64>,
}

/// CPU seconds per GiB of `ns` nanoseconds spent relaying `bytes`.
fn cpu_s_per_gib(ns: u64, bytes: usize) -> f64 {
    ns as f64 / 1e9 / (bytes as f64 / f64::from(1u32 << 30))
}

/// `RECONNECTS` tunnel connections, each opened (TCP, TLS when on, upgrade, HELLO → HELLO_ACK)
/// and closed; spread over loopback addresses because of the 10/min per-IP connect throttle.
const RECONNECTS: usize = 1000;

async fn reconnects(hub: &support::BenchHub, user_id: &str, tls: Option<&Tls>) -> Vec<f64> {
    let servers = hub.servers(user_id, RECONNECTS).await;
    let mut times = Vec::with_capacity(RECONNECTS);
    for (i, (server_id, jwt)) in servers.iter().enumerate() {
        let n = u32::try_from(i / 10 + 1).unwrap();
        let local = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x7f01_0000 + n));
        let start = Instant::now();
        let Connected::Open { stream, .. } = connect(hub.tunnel, "/", &[], tls, Some(local)).await
        else {
            panic!("tunnel refused");
        };
        let (mut reader, mut writer) = (stream.reader, stream.writer);
        let hello =
            json!({"type": "hello", "enrollment_jwt": jwt, "server_id": server_id}).to_string();
        writer.send(Opcode::Text, hello.as_bytes()).await.unwrap();
        assert!(
            matches!(reader.next().await.unwrap(), WsEvent::Data(_)),
            "HELLO_ACK"
        );
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        writer.close(1000, "bye").await;
    }
    times
}

#[allow(clippy::too_many_lines)]
async fn measure(tls: Option<&Tls>) -> Measured {
    // The hub on two threads of its own (the machine's cores), so its CPU time per GiB is
    // measured apart from the client's and the fake server's in this process.
    let hub_runtime = support::HubRuntime::new(2);
    let hub = support::BenchHub::start_on(
        Some(hub_runtime.handle()),
        None,
        tls.map(|t| (t.cert.clone(), t.key.clone(), t.ca_pem.clone())),
    )
    .await;
    let (user_id, token) = hub.user("bench").await;
    let http = hub.http.clone();
    let resp = http
        .put(format!(
            "{}/api/v1/admin/users/{user_id}/throttle",
            hub.base
        ))
        .bearer_auth(&token)
        .json(&json!({"throttle_bps": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (server_id, jwt) = hub.servers(&user_id, 1).await.remove(0);
    let (mut t_reader, mut t_writer) = open(hub.tunnel, "/", &[], tls).await;
    let hello = json!({"type": "hello", "enrollment_jwt": jwt, "server_id": server_id}).to_string();
    t_writer.send(Opcode::Text, hello.as_bytes()).await.unwrap();
    assert!(
        matches!(t_reader.next().await.unwrap(), WsEvent::Data(_)),
        "HELLO_ACK"
    );
    let relay_token: serde_json::Value = http
        .post(format!(
            "{}/api/v1/me/servers/{server_id}/relay-token",
            hub.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let relay_token = relay_token["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {relay_token}");
    let (mut c_reader, mut c_writer) = open(
        hub.client,
        &format!("/client/{server_id}"),
        &[("Authorization", &bearer)],
        tls,
    )
    .await;
    let mut t_decoder = FrameDecoder::new(1 << 20);
    let mut channel = 0;
    read_frames(&mut t_reader, &mut t_decoder, |f| {
        channel = f.id;
        f.kind == FrameType::ClientConnect
    })
    .await;

    let payload = Bytes::from(vec![0xA5u8; CHUNK]);
    let frames_per_run = STREAM_BYTES / CHUNK;
    let (mut up, mut down) = (Vec::new(), Vec::new());
    let (mut up_cpu, mut down_cpu) = (Vec::new(), Vec::new());
    let mut c_decoder = FrameDecoder::new(1 << 20);
    let raw_reps = std::env::var("BENCH_RAW_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REPS);
    for rep in 0..raw_reps {
        eprintln!(
            "{} raw channel repetition {}/{REPS}",
            if tls.is_some() { "TLS" } else { "plain" },
            rep + 1
        );

        // Upload: client → hub → server.
        let cpu = hub_runtime.cpu_ns();
        let start = Instant::now();
        let sender = {
            let payload = payload.clone();
            async move {
                let batch: Vec<Frame> = (0..4)
                    .map(|_| Frame::new(1, FrameType::Data, payload.clone()).unwrap())
                    .collect();
                for _ in 0..frames_per_run / 4 {
                    c_writer.send_frames(&batch).await.unwrap();
                }
                c_writer
            }
        };
        let mut received = 0;
        let receiver = read_frames(&mut t_reader, &mut t_decoder, |f| {
            if f.kind == FrameType::Data {
                received += f.payload.len();
            }
            received >= (frames_per_run / 4) * 4 * CHUNK
        });
        let (writer, ()) = tokio::join!(sender, receiver);
        c_writer = writer;
        up.push(received as f64 / 1e6 / start.elapsed().as_secs_f64());
        up_cpu.push(cpu_s_per_gib(hub_runtime.cpu_ns() - cpu, received));

        // Download: server → hub → client. The raw-channel protocol has no flow control and the
        // hub drops a client whose queue overflows (SPEC A.4), so the sender keeps at most
        // WINDOW bytes in flight, as the TCP window of a real upstream would.
        let cpu = hub_runtime.cpu_ns();
        let start = Instant::now();
        let delivered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sender = {
            let (payload, delivered) = (payload.clone(), delivered.clone());
            async move {
                let batch: Vec<Frame> = (0..4)
                    .map(|_| Frame::new(channel, FrameType::Data, payload.clone()).unwrap())
                    .collect();
                let mut sent = 0;
                for _ in 0..frames_per_run / 4 {
                    while sent - delivered.load(std::sync::atomic::Ordering::Relaxed) > WINDOW {
                        tokio::task::yield_now().await;
                    }
                    t_writer.send_frames(&batch).await.unwrap();
                    sent += 4 * CHUNK;
                }
                t_writer
            }
        };
        let mut received = 0;
        let receiver = read_frames(&mut c_reader, &mut c_decoder, |f| {
            if f.kind == FrameType::Data {
                received += f.payload.len();
                delivered.store(received, std::sync::atomic::Ordering::Relaxed);
            }
            received >= (frames_per_run / 4) * 4 * CHUNK
        });
        let (writer, ()) = tokio::join!(sender, receiver);
        t_writer = writer;
        down.push(received as f64 / 1e6 / start.elapsed().as_secs_f64());
        down_cpu.push(cpu_s_per_gib(hub_runtime.cpu_ns() - cpu, received));
    }

    // HTTP-over-relay: the fake server answers every request with 1 KiB.
    let responder = tokio::spawn(async move {
        let body = Bytes::from(vec![b'x'; 1024]);
        let head = relay_http::encode_response_head(&ResponseHead {
            status: 200,
            headers: [(
                "content-type".to_owned(),
                "application/octet-stream".to_owned(),
            )]
            .into(),
            body_length: Some(1024),
        });
        loop {
            let mut ends = Vec::new();
            let Ok(event) = t_reader.next().await else {
                return;
            };
            if let WsEvent::Data(message) = event {
                t_decoder.push(&message.payload);
                while let Some(frame) = t_decoder.next_frame().unwrap() {
                    if std::env::var_os("BENCH_DEBUG").is_some() {
                        eprintln!(
                            "server got {:?} id {:#x} {} bytes",
                            frame.kind,
                            frame.id,
                            frame.payload.len()
                        );
                    }
                    if frame.kind == FrameType::HttpRequest
                        && matches!(
                            relay_http::decode_request(&frame.payload),
                            Ok(RequestPayload::End)
                        )
                    {
                        ends.push(frame.id);
                    }
                }
            }
            let mut out = Vec::new();
            for id in ends {
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
                out.push(Frame::empty(id, FrameType::HttpCancel));
            }
            if !out.is_empty() && t_writer.send_frames(&out).await.is_err() {
                return;
            }
        }
    });
    let url = format!(
        "{}/api/v1/servers/{server_id}/proxy/api/v1/media/1",
        hub.base
    );
    let mut http_rows = Vec::new();
    for concurrency in [1usize, 16] {
        eprintln!("HTTP-over-relay with {concurrency} concurrent clients");
        let (mut rates, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..REPS {
            // The bench hub runs with the per-user proxy limit off (HUB_PROXY_REQUESTS_PER_MINUTE=0).
            let (rate, p50, p99) =
                support::http_1k_round(&http, &url, &token, 2000, concurrency).await;
            rates.push(rate);
            p50s.push(p50);
            p99s.push(p99);
        }
        http_rows.push((
            concurrency,
            support::median(&mut rates),
            support::median(&mut p50s).0,
            support::median(&mut p99s).0,
        ));
    }
    responder.abort();
    eprintln!("{RECONNECTS} tunnel reconnects");
    let reconnects = reconnects(&hub, &user_id, tls).await;
    hub.stop().await;
    drop(hub_runtime);
    Measured {
        up,
        down,
        up_cpu,
        down_cpu,
        http_rows,
        reconnects,
    }
}

async fn run() {
    let tls = make_tls();
    let (mut tcp, mut plain_runs, mut tls_runs) = (Vec::new(), Vec::new(), Vec::new());
    // Alternate plain and TLS hubs so both see the same machine load.
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for _ in 0..rounds {
        tcp.push(loopback_tcp_mbps().await);
        plain_runs.push(measure(None).await);
        tls_runs.push(measure(Some(&tls)).await);
    }
    let merge = |runs: &mut Vec<Measured>| {
        let mut all = runs.remove(0);
        for run in runs.drain(..) {
            all.up.extend(run.up);
            all.down.extend(run.down);
            all.up_cpu.extend(run.up_cpu);
            all.down_cpu.extend(run.down_cpu);
            all.reconnects.extend(run.reconnects);
        }
        all
    };
    let (mut plain, mut tls) = (merge(&mut plain_runs), merge(&mut tls_runs));
    let (tcp_m, _, _) = support::median(&mut tcp);
    println!("| scenario (median, min–max) | plain | TLS (rustls, aws-lc-rs) | TLS / plain |");
    println!("|---|---|---|---|");
    println!("| loopback TCP, one stream, 256 MiB | {tcp_m:.0} MB/s | | |");
    for (what, p, t) in [
        (
            "raw channel client → server, one stream, 256 MiB",
            &mut plain.up,
            &mut tls.up,
        ),
        (
            "raw channel server → client, one stream, 256 MiB",
            &mut plain.down,
            &mut tls.down,
        ),
    ] {
        let (pm, plo, phi) = support::median(p);
        let (tm, tlo, thi) = support::median(t);
        println!(
            "| {what} | {pm:.0} MB/s ({plo:.0}–{phi:.0}) | {tm:.0} MB/s ({tlo:.0}–{thi:.0}) | {:.2} |",
            tm / pm
        );
    }
    for (what, p, t) in [
        (
            "hub CPU per GiB relayed, client → server (the hub's threads only)",
            &mut plain.up_cpu,
            &mut tls.up_cpu,
        ),
        (
            "hub CPU per GiB relayed, server → client (the hub's threads only)",
            &mut plain.down_cpu,
            &mut tls.down_cpu,
        ),
    ] {
        let (pm, plo, phi) = support::median(p);
        let (tm, tlo, thi) = support::median(t);
        println!(
            "| {what} | {pm:.2} s ({plo:.2}–{phi:.2}) | {tm:.2} s ({tlo:.2}–{thi:.2}) | {:.2} (hub-bound throughput) |",
            pm / tm
        );
    }
    for (p, t) in plain.http_rows.iter().zip(&tls.http_rows) {
        let ((pr, plo, phi), (tr, tlo, thi)) = (p.1, t.1);
        println!(
            "| HTTP-over-relay GET, 1 KiB, {} concurrent (keep-alive) | {pr:.0} req/s ({plo:.0}–{phi:.0}); p50 {:.2} ms, p99 {:.2} ms | {tr:.0} req/s ({tlo:.0}–{thi:.0}); p50 {:.2} ms, p99 {:.2} ms | {:.2} |",
            p.0,
            p.2,
            p.3,
            t.2,
            t.3,
            tr / pr
        );
    }
    let (pt, tt): (f64, f64) = (plain.reconnects.iter().sum(), tls.reconnects.iter().sum());
    plain.reconnects.sort_by(f64::total_cmp);
    tls.reconnects.sort_by(f64::total_cmp);
    let (p50, t50) = (
        support::percentile(&plain.reconnects, 0.5),
        support::percentile(&tls.reconnects, 0.5),
    );
    let (p99, t99) = (
        support::percentile(&plain.reconnects, 0.99),
        support::percentile(&tls.reconnects, 0.99),
    );
    println!(
        "| {RECONNECTS} tunnel reconnects (connect [+ TLS] + upgrade + HELLO/ACK), one after another | {:.2} s total; p50 {p50:.2} ms, p99 {p99:.2} ms | {:.2} s total; p50 {t50:.2} ms, p99 {t99:.2} ms | TLS adds {:.2} ms per reconnect (p50) |",
        pt / 1000.0 / rounds as f64,
        tt / 1000.0 / rounds as f64,
        t50 - p50
    );
}

fn main() {
    if std::env::var_os("HUB_LOG").is_some() {
        phlix_hub::telemetry::init(Some(phlix_hub::config::LogFormat::Pretty), "HUB_LOG");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}
