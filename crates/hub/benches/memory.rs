//! Memory of a real `phlix-hub` process after an abuse burst, per global allocator: its RSS
//! idle after start, at the peak of the burst, right after it, and 10 s, 30 s and 60 s later.
//!
//! `cargo bench -p phlix-hub --bench memory` — builds the hub once per allocator (`cargo build
//! --release` without allocator feature for glibc, with `mimalloc`, and with the default
//! features, i.e. jemalloc; each copied to `target/memory-bench/`), then runs the same burst
//! against each variant in turn, round after round, and prints Markdown tables for
//! BENCHMARKS.md: every run, then the medians. `BENCH_MEMORY_ROUNDS` (default 3) sets the
//! rounds, `BENCH_MEMORY_VARIANTS` (comma-separated names from [`VARIANTS`]) a subset.
//!
//! A run starts a fresh `phlix-hub serve` process (SQLite in a temp dir, loopback ports),
//! reads its `VmRSS` after 1 s idle, registers one account and enrolls one server (so the
//! server routes' tokens are valid and bodies get as far as the body extractor), fires the
//! burst, then reads `VmHWM` (the peak) and `VmRSS` right after the last answer and 10 s, 30 s
//! and 60 s later.
//!
//! The burst, all at once from 50 loopback source addresses (under the per-address connection
//! cap and the login lock-out of 5 failures per address):
//! - 200 requests declaring 20 MB bodies (`Content-Length`), 50 each to login, register,
//!   heartbeat and subdomain: refused from the header before a byte is buffered;
//! - 100 chunked 20 MB bodies without `Content-Length`, 25 per route: read up to the 1 MiB
//!   limit, then refused;
//! - 50 JSON bodies just under 1 MiB (heartbeat and register) that are buffered and parsed;
//! - 200 wrong logins, half against a real account and half against unknown names (the dummy
//!   hash): one Argon2 verification (19 MiB) each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

/// How a variant's binary is built: the `cargo build` feature arguments.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Build {
    /// glibc's malloc: no allocator feature.
    Glibc,
    Mimalloc,
    /// The hub's default features (jemalloc).
    Default,
}

impl Build {
    fn args(self) -> &'static [&'static str] {
        match self {
            Self::Glibc => &["--no-default-features"],
            Self::Mimalloc => &["--no-default-features", "--features", "mimalloc"],
            Self::Default => &[],
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Self::Glibc => "phlix-hub-glibc",
            Self::Mimalloc => "phlix-hub-mimalloc",
            Self::Default => "phlix-hub-default",
        }
    }
}

/// One measured configuration: a binary and the environment it runs with.
struct Variant {
    name: &'static str,
    label: &'static str,
    build: Build,
    env: &'static [(&'static str, &'static str)],
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "glibc",
        label: "glibc malloc",
        build: Build::Glibc,
        env: &[],
    },
    Variant {
        name: "glibc-arena2",
        label: "glibc malloc, `MALLOC_ARENA_MAX=2`",
        build: Build::Glibc,
        env: &[("MALLOC_ARENA_MAX", "2")],
    },
    Variant {
        name: "glibc-mmap",
        label: "glibc malloc, fixed 128 KiB mmap threshold",
        build: Build::Glibc,
        env: &[("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072")],
    },
    Variant {
        name: "mimalloc",
        label: "mimalloc",
        build: Build::Mimalloc,
        env: &[],
    },
    Variant {
        name: "mimalloc-purge0",
        label: "mimalloc, `MIMALLOC_PURGE_DELAY=0`",
        build: Build::Mimalloc,
        env: &[("MIMALLOC_PURGE_DELAY", "0")],
    },
    Variant {
        name: "jemalloc-decay10s",
        label: "jemalloc, background threads, 10 s decay (jemalloc's default)",
        build: Build::Default,
        env: &[("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000")],
    },
    Variant {
        name: "jemalloc",
        label: "jemalloc, background threads, 1 s decay (the default build)",
        build: Build::Default,
        env: &[],
    },
];

/// 20 MB, the bodies of the sweep.
const BIG: usize = 20_000_000;
/// Chunk of the chunked uploads.
const CHUNK: usize = 64 * 1024;
/// Loopback source addresses the burst is spread over.
const SOURCES: u8 = 50;
/// Password of the real account.
const PASSWORD: &str = "benchmark-password";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Builds every variant's binary with the release profile into the workspace's target dir and
/// copies it to `target/memory-bench/`. The default build goes last, so `target/release/
/// phlix-hub` is the default binary again afterwards.
fn build_binaries(builds: &[Build]) -> BTreeMap<Build, PathBuf> {
    // `target/release/phlix-hub`, wherever the target dir is.
    let target = Path::new(env!("CARGO_BIN_EXE_phlix-hub"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let out = target.join("memory-bench");
    std::fs::create_dir_all(&out).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut binaries = BTreeMap::new();
    for &build in builds {
        eprintln!(
            "memory bench: cargo build --release {}",
            build.args().join(" ")
        );
        let status = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "phlix-hub",
                "--bin",
                "phlix-hub",
            ])
            .args(build.args())
            .arg("--target-dir")
            .arg(&target)
            .status()
            .unwrap();
        assert!(status.success(), "cargo build failed");
        let copy = out.join(build.file_name());
        std::fs::copy(target.join("release").join("phlix-hub"), &copy).unwrap();
        binaries.insert(build, copy);
    }
    binaries
}

struct HubProcess {
    child: Child,
    base: String,
    data: tempfile::TempDir,
}

impl HubProcess {
    async fn start(binary: &Path, env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let (http, tunnel, client) = (free_port(), free_port(), free_port());
        let child = Command::new(binary)
            .arg("serve")
            .env("HUB_DATA_DIR", data.path())
            .env("HUB_HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("HUB_TUNNEL_ADDR", format!("127.0.0.1:{tunnel}"))
            .env("HUB_CLIENT_ADDR", format!("127.0.0.1:{client}"))
            .env("HUB_LOG", "warn")
            .envs(env.iter().copied())
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
        Self { child, base, data }
    }

    fn rss(&self) -> u64 {
        status_kib(self.child.id(), "VmRSS")
    }

    fn peak(&self) -> u64 {
        status_kib(self.child.id(), "VmHWM")
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// RSS figures of one run, in KiB.
#[derive(Clone, Copy, Default)]
struct Figures {
    idle: u64,
    peak: u64,
    after: u64,
    after_10s: u64,
    after_30s: u64,
    after_60s: u64,
}

impl Figures {
    fn row(self) -> [u64; 6] {
        [
            self.idle,
            self.peak,
            self.after,
            self.after_10s,
            self.after_30s,
            self.after_60s,
        ]
    }
}

/// What one request of the burst is.
#[derive(Clone, Copy)]
enum Shot {
    /// A 20 MB body with `Content-Length` to route `n`.
    Declared(usize),
    /// A 20 MB chunked body to route `n`.
    Chunked(usize),
    /// A JSON body just under the limit to heartbeat (`true`) or register.
    UnderLimit(bool),
    /// A wrong login: a real account (`true`) or an unknown name.
    WrongLogin(bool),
}

impl Shot {
    fn kind(self) -> &'static str {
        match self {
            Self::Declared(_) => "20 MB with Content-Length",
            Self::Chunked(_) => "20 MB chunked",
            Self::UnderLimit(_) => "JSON just under 1 MiB",
            Self::WrongLogin(_) => "wrong login (Argon2)",
        }
    }
}

/// The burst's targets on one hub.
struct Target {
    base: String,
    server_id: String,
    token: String,
    big: Bytes,
    chunk: Bytes,
    under_limit: Bytes,
}

impl Target {
    fn route(&self, n: usize) -> String {
        match n % 4 {
            0 => format!("{}/api/v1/auth/login", self.base),
            1 => format!("{}/api/v1/auth/register", self.base),
            2 => format!("{}/api/v1/servers/{}/heartbeat", self.base, self.server_id),
            _ => format!("{}/api/v1/servers/{}/subdomain", self.base, self.server_id),
        }
    }

    /// The request of `shot`, with the headers its route wants so that a body under the limit
    /// would reach the handler (a server's bearer token, the protocol header).
    fn request(&self, client: &reqwest::Client, shot: Shot, i: usize) -> reqwest::RequestBuilder {
        let server = |url: String| {
            client
                .post(url)
                .bearer_auth(&self.token)
                .header("accept-phlix-protocol", "v1")
        };
        let to = |n: usize| {
            let url = self.route(n);
            if n % 4 >= 2 {
                server(url)
            } else {
                client.post(url)
            }
        };
        let builder = match shot {
            Shot::Declared(n) => to(n).body(self.big.clone()),
            Shot::Chunked(n) => {
                let chunk = self.chunk.clone();
                let chunks = (0..BIG / CHUNK).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
                to(n).body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    chunks,
                )))
            }
            Shot::UnderLimit(heartbeat) => {
                to(if heartbeat { 2 } else { 1 }).body(self.under_limit.clone())
            }
            Shot::WrongLogin(real) => {
                let username = if real {
                    "memory".to_owned()
                } else {
                    format!("nobody-{i}")
                };
                client
                    .post(self.route(0))
                    .body(json!({"username": username, "password": "not-the-password"}).to_string())
            }
        };
        builder.header("content-type", "application/json")
    }
}

/// Fires the whole burst at once; returns the outcome counts per kind (status or "error").
async fn burst(target: &std::sync::Arc<Target>) -> BTreeMap<(&'static str, String), usize> {
    let clients: Vec<reqwest::Client> = (1..=SOURCES)
        .map(|n| {
            reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 3, n)))
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap()
        })
        .collect();
    let mut shots = Vec::new();
    shots.extend((0..200).map(Shot::Declared));
    shots.extend((0..100).map(Shot::Chunked));
    shots.extend((0..50).map(|i| Shot::UnderLimit(i % 2 == 0)));
    shots.extend((0..200).map(|i| Shot::WrongLogin(i % 2 == 0)));
    let tasks: Vec<_> = shots
        .into_iter()
        .enumerate()
        .map(|(i, shot)| {
            let request = target.request(&clients[i % clients.len()], shot, i);
            tokio::spawn(async move {
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16().to_string();
                        let _ = response.bytes().await;
                        status
                    }
                    Err(_) => "error".to_owned(),
                };
                (shot.kind(), outcome)
            })
        })
        .collect();
    let mut outcomes = BTreeMap::new();
    for task in tasks {
        *outcomes.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    outcomes
}

async fn rss_at(hub: &HubProcess, when: Instant) -> u64 {
    tokio::time::sleep_until(when.into()).await;
    hub.rss()
}

async fn run(
    variant: &Variant,
    binary: &Path,
) -> (Figures, BTreeMap<(&'static str, String), usize>) {
    let hub = HubProcess::start(binary, variant.env).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = hub.rss();
    let bench = support::BenchHub::attach(&hub.base, hub.data.path());
    let (user_id, _) = bench.user("memory").await;
    let (server_id, token) = bench.servers(&user_id, 1).await.remove(0);
    let padding = "a".repeat(phlix_hub::http::BODY_LIMIT - 1024);
    let target = std::sync::Arc::new(Target {
        base: hub.base.clone(),
        server_id,
        token,
        big: Bytes::from(vec![b'a'; BIG]),
        chunk: Bytes::from(vec![b'a'; CHUNK]),
        under_limit: Bytes::from(
            json!({"username": padding, "email": "x@example.com", "password": PASSWORD})
                .to_string(),
        ),
    });
    let outcomes = burst(&target).await;
    let done = Instant::now();
    let after = hub.rss();
    let peak = hub.peak();
    let after_10s = rss_at(&hub, done + Duration::from_secs(10)).await;
    let after_30s = rss_at(&hub, done + Duration::from_secs(30)).await;
    let after_60s = rss_at(&hub, done + Duration::from_secs(60)).await;
    hub.stop();
    (
        Figures {
            idle,
            peak,
            after,
            after_10s,
            after_30s,
            after_60s,
        },
        outcomes,
    )
}

fn main() {
    let rounds: usize = std::env::var("BENCH_MEMORY_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let chosen: Option<Vec<String>> = std::env::var("BENCH_MEMORY_VARIANTS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let variants: Vec<&Variant> = VARIANTS
        .iter()
        .filter(|v| {
            chosen
                .as_ref()
                .is_none_or(|c| c.iter().any(|n| n == v.name))
        })
        .collect();
    assert!(
        !variants.is_empty(),
        "no variant named in BENCH_MEMORY_VARIANTS"
    );
    let mut builds: Vec<Build> = variants.iter().map(|v| v.build).collect();
    builds.sort();
    builds.dedup();
    let binaries = build_binaries(&builds);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut results: Vec<Vec<Figures>> = vec![Vec::new(); variants.len()];
    let mut first_outcomes = None;
    println!("| round | variant | idle | peak | after burst | +10 s | +30 s | +60 s |");
    println!("|---|---|---|---|---|---|---|---|");
    for round in 1..=rounds {
        for (i, variant) in variants.iter().enumerate() {
            let (figures, outcomes) = runtime.block_on(run(variant, &binaries[&variant.build]));
            let cells: Vec<String> = figures
                .row()
                .iter()
                .map(|&k| format!("{:.1}", mib(k)))
                .collect();
            println!("| {round} | {} | {} |", variant.label, cells.join(" | "));
            results[i].push(figures);
            first_outcomes.get_or_insert(outcomes);
        }
    }

    println!();
    println!("Medians of {rounds} round(s), RSS in MiB:");
    println!();
    println!("| variant | idle | peak | after burst | +10 s | +30 s | +60 s |");
    println!("|---|---|---|---|---|---|---|");
    for (variant, runs) in variants.iter().zip(&results) {
        let cells: Vec<String> = (0..6)
            .map(|column| {
                let mut samples: Vec<f64> = runs.iter().map(|f| mib(f.row()[column])).collect();
                format!("{:.1}", support::median(&mut samples).0)
            })
            .collect();
        println!("| {} | {} |", variant.label, cells.join(" | "));
    }

    println!();
    println!("Outcomes of the first run's burst:");
    println!();
    println!("| request | answer | count |");
    println!("|---|---|---|");
    for ((kind, outcome), count) in first_outcomes.unwrap_or_default() {
        println!("| {kind} | {outcome} | {count} |");
    }
}
