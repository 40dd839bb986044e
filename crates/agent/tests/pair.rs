//! `phlix-agent pair` and `status` as processes against a real hub on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

mod common;

use common::{AGENT, Hub};

async fn hub() -> Hub {
    Hub::start_temp().await
}

async fn owner_token(base: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(
            &json!({"username": "owner", "email": "owner@example.com", "password": "password123"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Starts `phlix-agent pair` and returns the child and the claim code it printed.
fn start_pair(hub: &str, data_dir: &std::path::Path) -> (common::Running, String) {
    let mut child = Command::new(AGENT)
        .args([
            "pair",
            "--hub",
            hub,
            "--name",
            "Test NAS",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let code = loop {
        let line = lines
            .next()
            .expect("the agent printed a claim code")
            .unwrap();
        if let Some(code) = line.trim().strip_prefix("Claim code:") {
            break code.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (common::Running(child), code)
}

fn wait(child: &mut std::process::Child) -> (i32, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code().unwrap_or(-1), stderr);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_stores_an_enrollment_that_verifies_against_the_jwks() {
    let hub = hub().await;
    let token = owner_token(&hub.base).await;
    let agent_dir = tempfile::tempdir().unwrap();
    let data_dir = agent_dir.path().join("agent");
    let (base, dir) = (hub.base.clone(), data_dir.clone());
    let (mut child, code) = tokio::task::spawn_blocking(move || start_pair(&base, &dir))
        .await
        .unwrap();
    assert_eq!(code.len(), 9, "{code}");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/server-claims/claim", hub.base))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(&token)
        .json(&json!({"claim_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, stderr) = tokio::task::spawn_blocking(move || wait(&mut child))
        .await
        .unwrap();
    assert_eq!(status, 0, "{stderr}");

    let enrollment: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir.join("hub-enrollment.json")).unwrap(),
    )
    .unwrap();
    for key in [
        "enrollment_jwt",
        "hub_jwks_url",
        "server_id",
        "hub_base_url",
        "enrolled_at",
    ] {
        assert!(enrollment.get(key).is_some(), "{key} missing: {enrollment}");
    }
    assert_eq!(enrollment["hub_base_url"], hub.base.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["hub-enrollment.json", "agent-ed25519.key"] {
            assert_eq!(
                std::fs::metadata(data_dir.join(file))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600,
                "{file}"
            );
        }
    }
    // The token verifies against the hub's JWKS and names the paired server.
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", hub.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = enrollment["enrollment_jwt"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap()
        .try_into()
        .unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&x)
        .unwrap()
        .verify_strict(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(payload["server_id"], enrollment["server_id"]);

    // The server is in the owner's directory under the name given.
    let servers: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/me/servers", hub.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(servers["servers"][0]["serverName"], "Test NAS");

    // status --json, and pairing again without --force is a no-op.
    let out = Command::new(AGENT)
        .args(["status", "--json", "--data-dir", data_dir.to_str().unwrap()])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["paired"], true);
    assert_eq!(status["server_id"], enrollment["server_id"]);
    assert_eq!(status["token_expires_at"], payload["exp"]);
    let out = Command::new(AGENT)
        .args([
            "pair",
            "--hub",
            &hub.base,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already paired"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_claim_ends_pairing_with_a_clear_reason() {
    let hub = hub().await;
    let agent_dir = tempfile::tempdir().unwrap();
    let (base, dir) = (hub.base.clone(), agent_dir.path().to_path_buf());
    let (mut child, _code) = tokio::task::spawn_blocking(move || start_pair(&base, &dir))
        .await
        .unwrap();
    // Expire the claim in the hub's database, as 10 minutes would.
    let store = phlix_hub::store::Store::connect(
        &phlix_hub::config::DatabaseUrl::parse(&format!(
            "sqlite://{}",
            hub.data.join("hub.db").display()
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    if let phlix_hub::store::Store::Sqlite(pool) = &store {
        sqlx::query("UPDATE server_claims SET expires_at = 1")
            .execute(pool)
            .await
            .unwrap();
    }
    let (status, stderr) = tokio::task::spawn_blocking(move || wait(&mut child))
        .await
        .unwrap();
    assert_eq!(status, 1);
    assert!(
        stderr.contains("expired before it was redeemed"),
        "{stderr}"
    );
    assert!(!agent_dir.path().join("hub-enrollment.json").exists());
    store.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_is_down_or_not_a_hub_gives_a_one_line_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(AGENT)
        .args([
            "pair",
            "--hub",
            &format!("http://127.0.0.1:{port}"),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("phlix-agent: cannot reach the hub at http://127.0.0.1:"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    // A web server that is not a hub.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: close\r\n\r\n<html/>\r\n")
                .await;
        }
    });
    let out = tokio::task::spawn_blocking(move || {
        Command::new(AGENT)
            .args([
                "pair",
                "--hub",
                &format!("http://{addr}"),
                "--data-dir",
                dir.path().to_str().unwrap(),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not look like a phlix hub"),
        "{stderr}"
    );

    let out = Command::new(AGENT)
        .args([
            "pair",
            "--hub",
            "ftp://x",
            "--data-dir",
            "/tmp/phlix-agent-test-unused",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be an http:// or https:// URL"));
}
