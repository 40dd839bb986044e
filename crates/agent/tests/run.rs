//! hub ⇄ `phlix-agent run` ⇄ upstream, all real processes and sockets on 127.0.0.1: pairing,
//! heartbeats with host metrics, large bodies both ways through HTTP-over-relay, concurrency,
//! an upstream that is down, the agent killed and restarted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::routing::{get, post};
use common::{AGENT, Hub};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn pattern(n: usize) -> impl Iterator<Item = u8> {
    (0..n).map(|i| (i % 251) as u8)
}

/// The upstream: `GET /bytes/{n}` streams n bytes, `POST /echo` answers the body's length and
/// SHA-256.
async fn upstream() -> (u16, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route(
            "/bytes/{n}",
            get(|Path(n): Path<usize>| async move {
                let chunks =
                    futures_util::stream::iter((0..n).step_by(1 << 20).map(move |start| {
                        let end = (start + (1 << 20)).min(n);
                        Ok::<Bytes, std::io::Error>(Bytes::from(
                            (start..end).map(|i| (i % 251) as u8).collect::<Vec<u8>>(),
                        ))
                    }));
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move {
                axum::Json(json!({"len": body.len(), "sha256": hex::encode(Sha256::digest(&body))}))
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (
        port,
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }),
    )
}

fn pair_process(hub: &str, data_dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(AGENT)
        .args([
            "pair",
            "--hub",
            hub,
            "--name",
            "E2E",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let code = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(code) = line.trim().strip_prefix("Claim code:") {
            break code.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, code)
}

fn run_agent(data_dir: &std::path::Path, upstream_port: u16) -> Child {
    Command::new(AGENT)
        .args([
            "run",
            "--upstream",
            &format!("127.0.0.1:{upstream_port}"),
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--heartbeat-interval",
            "1s",
            "--reconnect-base",
            "200ms",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn server_status(hub: &Hub, token: &str) -> Value {
    let body: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/me/servers", hub.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["servers"][0].clone()
}

async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_serves_its_upstream_through_the_hub() {
    let hub = Hub::start_temp().await;
    let token = hub.register("owner").await;
    let (upstream_port, upstream_task) = upstream().await;
    let agent_dir = tempfile::tempdir().unwrap();
    let (base, dir) = (hub.base.clone(), agent_dir.path().to_path_buf());
    let (mut pairing, code) = tokio::task::spawn_blocking(move || pair_process(&base, &dir))
        .await
        .unwrap();
    hub.redeem(&token, &code).await;
    assert!(
        tokio::task::spawn_blocking(move || pairing.wait().unwrap())
            .await
            .unwrap()
            .success()
    );

    let mut agent = run_agent(agent_dir.path(), upstream_port);
    wait_until("the tunnel", Duration::from_secs(20), async || {
        server_status(&hub, &token).await["relayActive"] == true
    })
    .await;
    let server = server_status(&hub, &token).await;
    let server_id = server["serverId"].as_str().unwrap().to_owned();
    assert_eq!(server["status"], "online");

    // Heartbeats carry host metrics.
    wait_until(
        "a heartbeat with host metrics",
        Duration::from_secs(10),
        async || {
            let detail: Value = reqwest::Client::new()
                .get(format!("{}/api/v1/me/servers/{server_id}", hub.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            detail["recentHeartbeats"][0]["hostMetrics"]["memTotalBytes"]
                .as_u64()
                .unwrap_or(0)
                > 0
        },
    )
    .await;

    let client = reqwest::Client::new();
    let resp = client
        .put(format!(
            "{}/api/v1/me/servers/{server_id}/proxy-policy",
            hub.base
        ))
        .bearer_auth(&token)
        .json(&json!({"policy": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let hub_base = hub.base.clone();
    let proxy = |path: &str| format!("{hub_base}/api/v1/servers/{server_id}/proxy{path}");

    // 100 MB down, checksummed.
    let size = 100 * 1024 * 1024;
    let mut resp = client
        .get(proxy(&format!("/bytes/{size}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut hasher = Sha256::new();
    let mut received = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        received += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(received, size);
    assert_eq!(
        hex::encode(hasher.finalize()),
        hex::encode(Sha256::digest(pattern(size).collect::<Vec<u8>>()))
    );

    // 20 MB up.
    let upload: Vec<u8> = pattern(20 * 1024 * 1024).collect();
    let resp = client
        .post(proxy("/echo"))
        .bearer_auth(&token)
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["len"], upload.len());
    assert_eq!(echo["sha256"], hex::encode(Sha256::digest(&upload)));

    // 50 concurrent requests.
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let (client, url, token) = (
            client.clone(),
            proxy(&format!("/bytes/{}", 1000 + i)),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let resp = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap().len()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), 1000 + i);
    }

    // The upstream goes down: a clean 502, and the tunnel stays up.
    upstream_task.abort();
    let _ = upstream_task.await;
    let resp = client
        .get(proxy("/bytes/10"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert!(resp.text().await.unwrap().contains("upstream unavailable"));
    assert_eq!(server_status(&hub, &token).await["relayActive"], true);

    // The agent is killed: the tunnel closes and the server goes offline after the reaper
    // window; restarted, it reconnects and is online again.
    agent.kill().unwrap();
    agent.wait().unwrap();
    wait_until("offline", Duration::from_secs(20), async || {
        server_status(&hub, &token).await["status"] == "offline"
    })
    .await;
    let (upstream_port, _upstream) = upstream().await;
    let mut agent = run_agent(agent_dir.path(), upstream_port);
    wait_until("the tunnel again", Duration::from_secs(20), async || {
        let status = server_status(&hub, &token).await;
        status["relayActive"] == true && status["status"] == "online"
    })
    .await;
    let resp = client
        .get(proxy("/bytes/123"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 123);

    // The hub restarts on the same port: the agent reconnects by itself.
    let (port, data) = (hub.port, hub.data.clone());
    let owned = {
        let mut hub = hub;
        let owned = hub.owned_dir.take();
        hub.stop().await;
        owned
    };
    let hub = Hub::start(&data, Some(port)).await;
    wait_until(
        "reconnection after a hub restart",
        Duration::from_secs(20),
        async || server_status(&hub, &token).await["relayActive"] == true,
    )
    .await;
    let resp = client
        .get(proxy("/bytes/77"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 77);

    // SIGTERM: a clean exit.
    Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    hub.stop().await;
    drop(owned);
}
