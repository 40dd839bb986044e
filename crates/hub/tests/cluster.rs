//! Scale-out (issue #19): several real `phlix-hub serve` processes on one PostgreSQL database
//! behind a real HAProxy, an agent (the library, in this process) tunnelling through it, and
//! clients reaching the server through any node. A client or proxied request that lands on a
//! node without the server's tunnel is forwarded to the node holding it; a revoke on one node
//! cuts what a collaborator has open on another; SIGKILL of the tunnel's node fails over;
//! SIGTERM drains (503 `draining`, in-flight requests finish, exit 0) so a rolling restart
//! loses no request; one leader runs the reaper once per interval. PostgreSQL only (cluster
//! mode refuses SQLite, which the first test checks on any backend): `scripts/test` runs it in
//! its PostgreSQL pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{
    Agent, CLUSTER_SECRET, Cluster, DRAIN_GRACE, DRIP_PIECE, JWT_SECRET, Mount, ONE_AT_A_TIME,
    Options, both_ways, fetch_sha256, free_port, metric_value, pattern_sha256, upstream,
    wait_until, worker_node_of,
};
use common::fake_server::FakePhlixServer;
use common::fake_tunnel;
use common::ws_client::Ended;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The body proxied through every node.
const BIG: usize = 10 * 1024 * 1024;
/// Moved each way through every node's client port.
const MOUNT_BYTES: usize = 1024 * 1024;
/// A revoke on one node cuts the collaborator on another within this long (issue #19).
const CUT_WITHIN: Duration = Duration::from_secs(1);

/// False (with the skip line) unless this run is on PostgreSQL.
fn on_postgres() -> bool {
    if common::store_kind() == "postgres" {
        return true;
    }
    eprintln!("skipped: needs PostgreSQL (PHLIX_TEST_STORE=postgres)");
    false
}

#[tokio::test]
async fn sqlite_refuses_cluster_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sqlite = format!("sqlite://{}", dir.path().join("hub.db").display());
    let port = free_port();
    // The flags, then the same through the environment.
    for by_env in [false, true] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_phlix-hub"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .args(["--database-url", &sqlite])
            .args(["--http-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--tunnel-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--client-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--node-name", "lonely"])
            .env("HUB_JWT_SECRET", JWT_SECRET)
            .env("HUB_CLUSTER_SECRET", CLUSTER_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if by_env {
            command
                .env("HUB_CLUSTER_ADDR", format!("127.0.0.1:{port}"))
                .env("HUB_CLUSTER_URL", format!("http://127.0.0.1:{port}"));
        } else {
            command
                .args(["--cluster-addr", &format!("127.0.0.1:{port}")])
                .args(["--cluster-url", &format!("http://127.0.0.1:{port}")]);
        }
        // A hub that does not refuse keeps serving: killed (kill_on_drop) after 30 s.
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .unwrap_or_else(|_| {
                panic!("by_env={by_env}: the hub started on SQLite in cluster mode")
            })
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "by_env={by_env}: exit {}\n{stderr}",
            output.status
        );
        assert!(
            stderr.contains("PostgreSQL"),
            "by_env={by_env}: stderr does not name PostgreSQL:\n{stderr}\nstdout:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_serves_any_client() {
    if !on_postgres() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(Options::default()).await;
    let (owner, owner_id) = cluster.register("owner").await;
    cluster.unthrottle(&owner, &owner_id).await;
    let agent = Agent::pair(&cluster, &owner, upstream().await).await;
    let sid = agent.server_id.clone();

    // The hub advertises HAProxy's fronts, not a node's own ports.
    let resp = cluster
        .http
        .get(cluster.front_url(&format!("/client/{sid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()
            .get("x-ws-endpoint")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some(format!("ws://{}/client/{sid}", cluster.front_client))
    );

    // The owner's server detail names the node holding the tunnel; so does the database.
    let (status, detail) = cluster
        .call(
            &cluster.front_url(""),
            &owner,
            Method::GET,
            &format!("/api/v1/me/servers/{sid}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    let holder = worker_node_of(&detail).expect("relay_session.worker_node in the detail");
    assert_eq!(
        cluster.worker_node_from_db(&sid).await.as_deref(),
        Some(holder.as_str()),
        "{detail}"
    );
    cluster.index_of(&holder);

    // 10 MiB through each node's own API port: the holder relays it, the others forward.
    let expected = pattern_sha256(BIG);
    for node in &cluster.nodes {
        let started = Instant::now();
        let (status, count, sha) = fetch_sha256(
            &cluster.http,
            &node.url(&format!("/api/v1/servers/{sid}/proxy/bytes/{BIG}")),
            &owner,
        )
        .await;
        assert_eq!(
            (status, count, sha.as_str()),
            (200, BIG, expected.as_str()),
            "10 MiB through {} (tunnel on {holder})",
            node.name
        );
        eprintln!(
            "10 MiB through {} (tunnel on {holder}) in {:?}",
            node.name,
            started.elapsed()
        );
    }

    // A raw mount of each node's client port, with a relay token minted on another node:
    // 1 MiB up and 1 MiB down.
    let n = cluster.nodes.len();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let minter = &cluster.nodes[(i + 1) % n];
        let token = cluster.relay_token(&minter.url(""), &owner, &sid).await;
        let mount = Mount::start(node.client, &sid, &token).await;
        let mut channel = mount.channel().await;
        let started = Instant::now();
        both_ways(
            &mut channel,
            MOUNT_BYTES,
            &format!(
                "mount of {}'s client port (token from {}, tunnel on {holder})",
                node.name, minter.name
            ),
        )
        .await;
        eprintln!(
            "1 MiB each way through {}'s client port in {:?}",
            node.name,
            started.elapsed()
        );
        drop(channel);
        mount.stop().await;
    }

    // The tunnel stayed where it was all along, and the API says where.
    assert_eq!(
        cluster.worker_node_from_api(&owner, &sid).await.as_deref(),
        Some(holder.as_str())
    );
    agent.stop().await;
}

/// How a stream that should run for minutes ended: when, how, after how many bytes.
#[derive(Debug)]
struct StreamEnd {
    at: Instant,
    how: String,
    bytes: usize,
}

/// Reads a proxied response until it ends; `got` counts its bytes as they arrive.
fn read_response(
    mut resp: reqwest::Response,
    got: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<StreamEnd> {
    tokio::spawn(async move {
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    got.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
                }
                Ok(None) => {
                    return StreamEnd {
                        at: Instant::now(),
                        how: "ended cleanly".into(),
                        bytes: got.load(std::sync::atomic::Ordering::Relaxed),
                    };
                }
                Err(err) => {
                    return StreamEnd {
                        at: Instant::now(),
                        how: format!("cut ({err})"),
                        bytes: got.load(std::sync::atomic::Ordering::Relaxed),
                    };
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_revoked_on_one_node_cuts_the_collaborator_on_another_within_1s() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    if !on_postgres() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(Options::default()).await;
    let (owner, owner_id) = cluster.register("owner").await;
    let (friend, friend_id) = cluster.register("friend").await;
    cluster.unthrottle(&owner, &owner_id).await;
    cluster.unthrottle(&owner, &friend_id).await;
    let agent = Agent::pair(&cluster, &owner, upstream().await).await;
    let sid = agent.server_id.clone();
    // Three different nodes: O holds the tunnel, C serves the friend, A takes the revoke.
    let holder = cluster.tunnel_node(&owner, &sid).await.unwrap();
    let o = cluster.index_of(&holder);
    let n = cluster.nodes.len();
    let (c, a) = ((o + 1) % n, (o + 2) % n);
    let (node_a, node_c) = (&cluster.nodes[a], &cluster.nodes[c]);
    eprintln!(
        "tunnel on {holder}, collaborator on {}, revoke on {}",
        node_c.name, node_a.name
    );

    let (status, share) = cluster
        .call(
            &node_a.url(""),
            &owner,
            Method::POST,
            "/api/v1/me/shares",
            Some(
                json!({"collaborator_email": "friend@example.com", "server_id": sid,
                "library_id": "lib-movies", "library_name": "Movies"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{share}");
    let share_id = share["id"].as_str().unwrap().to_owned();

    // The friend, through C: a proxied download that runs for minutes ...
    let slow = format!("/api/v1/servers/{sid}/proxy/slow");
    let resp = cluster
        .http
        .get(node_c.url(&slow))
        .bearer_auth(&friend)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let download_bytes = Arc::new(AtomicUsize::new(0));
    let download = read_response(resp, download_bytes.clone());
    // ... and a raw mount of C's client port on which the same endless answer streams.
    let token = cluster.relay_token(&node_c.url(""), &friend, &sid).await;
    let mount = Mount::start(node_c.client, &sid, &token).await;
    let mut channel = mount.channel().await;
    channel
        .write_all(b"GET /slow HTTP/1.1\r\nHost: up\r\n\r\n")
        .await
        .unwrap();
    let mount_bytes = Arc::new(AtomicUsize::new(0));
    let mounted = tokio::spawn({
        let got = mount_bytes.clone();
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match channel.read(&mut buf).await {
                    Ok(0) => {
                        return StreamEnd {
                            at: Instant::now(),
                            how: "closed".into(),
                            bytes: got.load(Ordering::Relaxed),
                        };
                    }
                    Ok(k) => {
                        got.fetch_add(k, Ordering::Relaxed);
                    }
                    Err(err) => {
                        return StreamEnd {
                            at: Instant::now(),
                            how: format!("error ({err})"),
                            bytes: got.load(Ordering::Relaxed),
                        };
                    }
                }
            }
        }
    });
    // The owner's own download through C, which the revoke must leave alone.
    let resp = cluster
        .http
        .get(node_c.url(&slow))
        .bearer_auth(&owner)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let owner_bytes = Arc::new(AtomicUsize::new(0));
    let owners = read_response(resp, owner_bytes.clone());
    wait_until(
        "the friend's streams flowing",
        Duration::from_secs(10),
        async || {
            download_bytes.load(Ordering::Relaxed) >= 4 * DRIP_PIECE
                && mount_bytes.load(Ordering::Relaxed) >= 4 * DRIP_PIECE
        },
    )
    .await;

    // The revoke, on A; the clock starts when its answer is here.
    let (status, body) = cluster
        .call(
            &node_a.url(""),
            &owner,
            Method::DELETE,
            &format!("/api/v1/me/shares/{share_id}"),
            None,
        )
        .await;
    let revoked = Instant::now();
    assert_eq!(status, 204, "{body}");
    let download = tokio::time::timeout(CUT_WITHIN + Duration::from_secs(9), download)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the friend's proxied download through {} still runs 10 s after the revoke on \
                 {} ({} bytes so far)",
                node_c.name,
                node_a.name,
                download_bytes.load(Ordering::Relaxed)
            )
        })
        .unwrap();
    let mounted = tokio::time::timeout(CUT_WITHIN + Duration::from_secs(9), mounted)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the friend's mount of {}'s client port still runs 10 s after the revoke on {} \
                 ({} bytes so far)",
                node_c.name,
                node_a.name,
                mount_bytes.load(Ordering::Relaxed)
            )
        })
        .unwrap();
    let download_after = download.at.saturating_duration_since(revoked);
    let mount_after = mounted.at.saturating_duration_since(revoked);
    eprintln!(
        "after the revoke: download {} in {download_after:?} (after {} bytes), mount {} in \
         {mount_after:?} (after {} bytes)",
        download.how, download.bytes, mounted.how, mounted.bytes
    );
    assert!(
        download_after <= CUT_WITHIN,
        "the friend's proxied download through {} ended {download_after:?} after the revoke's \
         answer from {} ({download:?})",
        node_c.name,
        node_a.name
    );
    assert!(
        mount_after <= CUT_WITHIN,
        "the friend's mount of {}'s client port ended {mount_after:?} after the revoke's answer \
         from {} ({mounted:?})",
        node_c.name,
        node_a.name
    );
    // A cut download must not look complete.
    assert!(
        download.how.starts_with("cut"),
        "the friend's cut download {}: {download:?}",
        download.how
    );

    // The owner's download keeps going.
    let before = owner_bytes.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !owners.is_finished() && owner_bytes.load(Ordering::Relaxed) > before,
        "the owner's download through {} stopped with the friend's",
        node_c.name
    );
    owners.abort();
    // Nothing new for the friend, on any node.
    for node in &cluster.nodes {
        let resp = cluster
            .http
            .get(node.url(&format!("/api/v1/servers/{sid}/proxy/ping")))
            .bearer_auth(&friend)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "the friend's proxy via {}", node.name);
    }
    mount.stop().await;
    agent.stop().await;
}

/// `GET /ping` through the relay at `base`: Ok or what went wrong.
async fn ping(http: &reqwest::Client, base: &str, token: &str, sid: &str) -> Result<(), String> {
    let resp = http
        .get(format!("{base}/api/v1/servers/{sid}/proxy/ping"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| format!("error: {e}"))?;
    let status = resp.status().as_u16();
    let node = resp
        .headers()
        .get("x-phlix-node")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    let body = resp
        .text()
        .await
        .map_err(|e| format!("{status} from {node}, body error: {e}"))?;
    if status == 200 && body == "pong" {
        Ok(())
    } else {
        Err(format!(
            "{status} from {node}: {}",
            body.chars().take(300).collect::<String>()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_tunnel_node_fails_over() {
    if !on_postgres() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start(Options::default()).await;
    let (owner, _) = cluster.register("owner").await;
    let agent = Agent::pair(&cluster, &owner, upstream().await).await;
    let sid = agent.server_id.clone();
    let front = cluster.front_url("");
    for _ in 0..6 {
        ping(&cluster.http, &front, &owner, &sid).await.unwrap();
    }
    let holder = cluster.tunnel_node(&owner, &sid).await.unwrap();
    let i = cluster.index_of(&holder);

    cluster.nodes[i].sigkill().await;
    let killed = Instant::now();
    let mut last = Err("no request yet".to_owned());
    while last.is_err() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "no proxied request through HAProxy succeeded within 10 s of the SIGKILL of \
             {holder}, the tunnel's node; the last: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = ping(&cluster.http, &front, &owner, &sid).await;
    }
    eprintln!(
        "proxied requests through HAProxy work again {:?} after the SIGKILL of {holder}",
        killed.elapsed()
    );
    let new_holder = cluster
        .wait_tunnel_on_other_node(&owner, &sid, Some(&holder), Duration::from_secs(5))
        .await;
    // Every node left serves, repeatedly, small and large.
    let mut failures = Vec::new();
    for k in 0..20 {
        if let Err(err) = ping(&cluster.http, &front, &owner, &sid).await {
            failures.push(format!("request {k}: {err}"));
        }
    }
    assert!(
        failures.is_empty(),
        "after the failover to {new_holder}: {failures:#?}"
    );
    for node in cluster.nodes.iter().filter(|n| n.running()) {
        let (status, count, sha) = fetch_sha256(
            &cluster.http,
            &node.url(&format!("/api/v1/servers/{sid}/proxy/bytes/{MOUNT_BYTES}")),
            &owner,
        )
        .await;
        assert_eq!(
            (status, count, sha),
            (200, MOUNT_BYTES, pattern_sha256(MOUNT_BYTES)),
            "1 MiB through {} (tunnel now on {new_holder})",
            node.name
        );
    }
    agent.stop().await;
}

/// One request of the steady load: when it was sent and how it went.
struct Sample {
    sent: Instant,
    outcome: Result<(), String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_loses_no_request() {
    if !on_postgres() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start(Options::default()).await;
    let (owner, _) = cluster.register("owner").await;
    let agent = Agent::pair(&cluster, &owner, upstream().await).await;
    let sid = agent.server_id.clone();
    // A second server whose tunnel each leaving node holds directly (not through HAProxy):
    // it sees how the node closes its tunnels, then reconnects through the tunnel front as an
    // agent does (a leaving node waits for its tunnels to reopen elsewhere).
    let mut witness = FakePhlixServer::new(&cluster.front_url(""), "witness");
    witness.request_claim().await;
    let code = witness.claim_code.clone().unwrap();
    let (status, body) = cluster
        .call(
            &cluster.front_url(""),
            &owner,
            Method::POST,
            "/api/v1/server-claims/claim",
            Some(json!({"claim_code": code})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    witness.poll().await;
    let witness_jwt = witness.enrollment.clone().unwrap().enrollment_jwt;

    // 20 small proxied GETs a second through the API front, each on its own task.
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let load_stop = tokio_util::sync::CancellationToken::new();
    let load = tokio::spawn({
        let (http, front, owner, sid) = (
            cluster.http.clone(),
            cluster.front_url(""),
            owner.clone(),
            sid.clone(),
        );
        let (samples, stop) = (samples.clone(), load_stop.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut requests = tokio::task::JoinSet::new();
            while !stop.is_cancelled() {
                tick.tick().await;
                let (http, front, owner, sid, samples) = (
                    http.clone(),
                    front.clone(),
                    owner.clone(),
                    sid.clone(),
                    samples.clone(),
                );
                requests.spawn(async move {
                    let sent = Instant::now();
                    let outcome = ping(&http, &front, &owner, &sid).await;
                    samples.lock().unwrap().push(Sample { sent, outcome });
                });
            }
            while requests.join_next().await.is_some() {}
        }
    });
    let load_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut problems = Vec::new();
    let mut witness_tunnels = Vec::new();
    let mut sigterms: Vec<(String, Instant)> = Vec::new();
    for i in 0..cluster.nodes.len() {
        let name = cluster.nodes[i].name.clone();
        let holder = cluster.tunnel_node(&owner, &sid).await;
        // A request in flight on the node about to leave: 2.5 s of drip, sent to it directly.
        let resp = cluster
            .http
            .get(cluster.nodes[i].url(&format!("/api/v1/servers/{sid}/proxy/drip/2500")))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "the drip through {name}");
        let in_flight = tokio::spawn(async move { resp.bytes().await.map(|b| b.len()) });
        let (mut tunnel, _) =
            fake_tunnel::open(cluster.nodes[i].tunnel, &witness.server_id(), &witness_jwt).await;
        let tunnel_end = tokio::spawn({
            let (front, witness_id, jwt) = (
                cluster.front_tunnel,
                witness.server_id(),
                witness_jwt.clone(),
            );
            async move {
                let ended = tunnel.ended().await;
                let (reopened, _) = fake_tunnel::open(front, &witness_id, &jwt).await;
                (ended, reopened)
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;

        cluster.nodes[i].sigterm().await;
        let term = Instant::now();
        sigterms.push((name.clone(), term));
        // What /health says while the node leaves, until it stops answering.
        let health = tokio::spawn({
            let (http, url) = (cluster.http.clone(), cluster.nodes[i].url("/health"));
            async move {
                let mut seen: Vec<(Duration, u16, String)> = Vec::new();
                while term.elapsed() < DRAIN_GRACE + Duration::from_secs(10) {
                    let Ok(resp) = http.get(&url).timeout(Duration::from_secs(2)).send().await
                    else {
                        break;
                    };
                    let status = resp.status().as_u16();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let said = body["status"].as_str().unwrap_or("?").to_owned();
                    if seen
                        .last()
                        .is_none_or(|(_, s, b)| (*s, b) != (status, &said))
                    {
                        seen.push((term.elapsed(), status, said));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen
            }
        });
        // Drain grace plus a few seconds; past that, how much longer it takes is measured (30 s
        // more at most, then SIGKILL).
        let allowed = DRAIN_GRACE + Duration::from_secs(7);
        let mut exit = cluster.nodes[i].wait_exit(allowed).await;
        if exit.is_none() {
            exit = cluster.nodes[i].wait_exit(Duration::from_secs(30)).await;
        }
        let took = term.elapsed();
        let mut killed = false;
        match exit {
            Some(status) if status.success() && took <= allowed => {
                eprintln!("{name} (tunnel on {holder:?}) left in {took:?}");
            }
            Some(status) => problems.push(format!(
                "{name} exited with {status} {took:?} after SIGTERM (allowed: {allowed:?})"
            )),
            None => {
                problems.push(format!(
                    "{name} still ran {took:?} after SIGTERM (allowed: {allowed:?}); killed"
                ));
                cluster.nodes[i].sigkill().await;
                killed = true;
            }
        }
        let health = health.await.unwrap();
        eprintln!("{name}'s /health after SIGTERM (since, status, \"status\"): {health:?}");
        if !health
            .iter()
            .any(|(_, status, said)| *status == 503 && said == "draining")
        {
            problems.push(format!(
                "{name}'s /health never answered 503 \"draining\" after SIGTERM; it said \
                 (since SIGTERM, status, \"status\"): {health:?}"
            ));
        }
        match tokio::time::timeout(Duration::from_secs(5), tunnel_end).await {
            Ok(Ok((Ended::Close(1001, _), reopened))) => witness_tunnels.push(reopened),
            other => problems.push(format!(
                "{name} did not close a tunnel it held with WebSocket close 1001 (or the \
                 witness could not reopen it through the front): {:?}",
                other.map(|r| r.map(|(ended, _)| ended))
            )),
        }
        match in_flight.await.unwrap() {
            Ok(len) if len == 25 * DRIP_PIECE => {}
            other => problems.push(format!(
                "the request in flight on {name} at SIGTERM did not finish: {other:?} (expected \
                 {} bytes)",
                25 * DRIP_PIECE
            )),
        }

        // A killed node's name stays taken until it is seen dead: start until it sticks.
        let restart_within = if killed {
            Duration::from_secs(40)
        } else {
            Duration::from_secs(30)
        };
        cluster.nodes[i]
            .start_until_ready(&cluster.http, restart_within)
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "{err}\nproblems so far:\n{}\n{}",
                    problems.join("\n"),
                    cluster.nodes[i].logs(60)
                )
            });
        cluster
            .wait_front_routes_to(std::slice::from_ref(&name), Duration::from_secs(10))
            .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    drop(witness_tunnels);
    load_stop.cancel();
    let load_ran = load_started.elapsed();
    load.await.unwrap();

    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let since_sigterms = |at: Instant| -> String {
        sigterms
            .iter()
            .map(|(name, t)| {
                let secs = if at >= *t {
                    at.duration_since(*t).as_secs_f64()
                } else {
                    -t.duration_since(at).as_secs_f64()
                };
                format!("{secs:+.2}s vs SIGTERM {name}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let failures: Vec<String> = samples
        .iter()
        .filter_map(|s| {
            s.outcome
                .as_ref()
                .err()
                .map(|e| format!("sent {}: {e}", since_sigterms(s.sent)))
        })
        .collect();
    // What HAProxy hid: requests it retried or sent elsewhere (its log's retries field).
    let retried: Vec<String> = std::fs::read_to_string(cluster.haproxy_log())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/proxy/ping"))
        .filter(|l| {
            l.split_whitespace()
                .nth(10)
                .and_then(|conns| conns.rsplit('/').next())
                .is_some_and(|retries| retries != "0")
        })
        .map(str::to_owned)
        .collect();
    eprintln!(
        "{} requests in {load_ran:?}, {} failed; HAProxy retried {}:\n{}",
        samples.len(),
        failures.len(),
        retried.len(),
        retried.join("\n")
    );
    // The load kept its pace (half of 20 a second at the least, on a loaded machine).
    assert!(
        samples.len() as f64 >= load_ran.as_secs_f64() * 10.0,
        "only {} requests were sent in {load_ran:?}",
        samples.len()
    );
    assert!(
        failures.is_empty() && problems.is_empty(),
        "{} of {} requests failed during the rolling restart:\n{}\nother problems:\n{}",
        failures.len(),
        samples.len(),
        failures.join("\n"),
        problems.join("\n")
    );
    agent.stop().await;
}

/// `phlix_reaper_runs_total` and `phlix_cluster_leader` of every running node (`None` where
/// the node has not answered or lacks the metric), with the instant each page arrived.
async fn reaper_metrics(cluster: &Cluster) -> Vec<(String, Instant, Option<f64>, Option<f64>)> {
    let mut out = Vec::new();
    for node in cluster.nodes.iter().filter(|n| n.running()) {
        let page = match cluster.http.get(node.url("/metrics")).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        out.push((
            node.name.clone(),
            Instant::now(),
            metric_value(&page, "phlix_reaper_runs_total"),
            metric_value(&page, "phlix_cluster_leader"),
        ));
    }
    out
}

/// The one leader among the running nodes, once every node reports the gauge and exactly one
/// says 1.
async fn wait_one_leader(cluster: &Cluster, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let metrics = reaper_metrics(cluster).await;
        let leaders: Vec<&String> = metrics
            .iter()
            .filter(|(_, _, _, leader)| *leader == Some(1.0))
            .map(|(name, ..)| name)
            .collect();
        let all_report = metrics.iter().all(|(_, _, runs, leader)| {
            runs.is_some() && matches!(leader, Some(v) if *v == 0.0 || *v == 1.0)
        });
        if all_report && leaders.len() == 1 {
            return leaders[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "not exactly one leader within {within:?}: (node, runs, leader) {:?}",
            metrics
                .iter()
                .map(|(n, _, r, l)| (n, r, l))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Samples the reaper counters over about `window`: (measured window on the leader, the sum
/// of every node's runs in it, the per-node deltas).
async fn reaper_runs_over(
    cluster: &Cluster,
    leader: &str,
    window: Duration,
) -> (Duration, f64, Vec<(String, f64)>) {
    let before = reaper_metrics(cluster).await;
    tokio::time::sleep(window).await;
    let after = reaper_metrics(cluster).await;
    let mut measured = None;
    let mut deltas = Vec::new();
    for ((name, t0, r0, _), (_, t1, r1, _)) in before.iter().zip(&after) {
        let delta = r1.unwrap() - r0.unwrap();
        deltas.push((name.clone(), delta));
        if name == leader {
            measured = Some(t1.duration_since(*t0));
        }
    }
    let total = deltas.iter().map(|(_, d)| d).sum();
    (measured.unwrap(), total, deltas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_runs_once_per_interval_across_the_cluster() {
    if !on_postgres() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    // Every node runs with --reaper-interval 1s.
    let interval = Duration::from_secs(1);
    let mut cluster = Cluster::start(Options::default()).await;
    let leader = wait_one_leader(&cluster, Duration::from_secs(15)).await;

    let check = |(window, total, deltas): (Duration, f64, Vec<(String, f64)>), when: &str| {
        // window/interval ± 1, rounded down: the reaper sleeps an interval after each pass,
        // so on a loaded machine its period is a little longer than the interval.
        let expected = window.as_secs_f64() / interval.as_secs_f64();
        let (low, high) = ((expected - 1.0).floor(), (expected + 1.0).floor());
        eprintln!("{when}: {total} reaper runs in {window:?} ({deltas:?})");
        assert!(
            total >= low && total <= high,
            "{when}: {total} reaper runs across the cluster in {window:?} with a {interval:?} \
             interval (expected {low}..={high}); per node: {deltas:?}"
        );
    };
    check(
        reaper_runs_over(&cluster, &leader, Duration::from_secs(5)).await,
        &format!("{leader} leading"),
    );

    let i = cluster.index_of(&leader);
    cluster.nodes[i].sigkill().await;
    let killed = Instant::now();
    let successor = wait_one_leader(&cluster, Duration::from_secs(20)).await;
    eprintln!(
        "{successor} leads {:?} after the SIGKILL of {leader}",
        killed.elapsed()
    );
    assert_ne!(successor, leader);
    check(
        reaper_runs_over(&cluster, &successor, Duration::from_secs(4)).await,
        &format!("{successor} leading after {leader} was killed"),
    );
}
