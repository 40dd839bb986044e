//! The hub as a process: start-up steps and `/health`, SIGTERM, restarts, the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{TestHub, status_json};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

const HUB: &str = env!("CARGO_BIN_EXE_phlix-hub");

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn health(client: &reqwest::Client, base: &str) -> Option<(u16, Value)> {
    let resp = client.get(format!("{base}/health")).send().await.ok()?;
    Some(status_json(resp).await)
}

/// Polls `/health` until `pred` holds (20 s at most) and returns that answer.
async fn wait_health(
    client: &reqwest::Client,
    base: &str,
    what: &str,
    pred: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((status, body)) = health(client, base).await
            && pred(status, &body)
        {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "health never became {what}; last: {:?}",
            health(client, base).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP forwarder in front of PostgreSQL that the test can cut and restore, to make the
/// database "go away" from the hub's point of view.
struct Switch {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Switch {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(false));
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let (open2, pipes2) = (open.clone(), pipes.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !open2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                pipes2.lock().await.push(pipe);
            }
        });
        Self { addr, open, pipes }
    }

    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for pipe in self.pipes.lock().await.drain(..) {
            pipe.abort();
        }
    }
}

#[tokio::test]
async fn health_reports_starting_then_ok_then_degraded_then_ok() {
    let Some(server) = common::postgres_server_url() else {
        eprintln!("skipped: needs PHLIX_TEST_POSTGRES_URL (scripts/test sets it)");
        return;
    };
    let direct = common::fresh_postgres_database().await;
    let db_name = direct.rsplit('/').next().unwrap().to_owned();
    let host_port = server
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let switch = Switch::start(host_port).await;
    let via_switch =
        common::with_database(&format!("postgres://postgres@{}/x", switch.addr), &db_name);

    let hub = TestHub::spawn(tempfile::tempdir().unwrap(), via_switch).await;
    let base = hub.url("");
    let client = reqwest::Client::new();

    // The database cannot be reached: the hub answers, and says where it is stuck.
    let body = wait_health(&client, &base, "starting/open-store", |s, b| {
        s == 503 && b["status"] == "starting"
    })
    .await;
    assert_eq!(body, json!({"status": "starting", "step": "open-store"}));
    // Other routes say the hub is starting, as JSON.
    let (status, body) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "x", "password": "y"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("hub.starting")),
        "{body}"
    );

    switch.open();
    let body = wait_health(&client, &base, "ok", |s, _| s == 200).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"], "postgres");
    hub.register("ivan", "password123").await;

    switch.cut().await;
    let body = wait_health(&client, &base, "degraded", |s, b| {
        s == 503 && b["status"] == "degraded"
    })
    .await;
    let issues = body["issues"].as_array().unwrap();
    assert!(
        !issues.is_empty() && issues[0].as_str().unwrap().contains("database"),
        "{body}"
    );
    // Requests that need the database get 503 JSON, not a 500 or a hang.
    let started = Instant::now();
    let (status, body) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "ivan", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "store.unavailable");
    assert!(started.elapsed() < Duration::from_secs(15));

    switch.open();
    wait_health(&client, &base, "ok again", |s, _| s == 200).await;
    let (status, _) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "ivan", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 200);
    hub.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_accounts_and_the_jwt_secret() {
    let hub = TestHub::start().await;
    let auth = hub.register("judy", "password123").await;
    let secret_path = hub.data_dir.path().join("jwt-secret");
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    assert_eq!(secret.trim().len(), 64, "32 random bytes, hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret_path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let (dir, url) = hub.stop().await;

    let hub = TestHub::start_on(dir, url).await;
    assert_eq!(
        std::fs::read_to_string(&secret_path).unwrap(),
        secret,
        "secret generated once"
    );
    // The old access token still verifies, so the secret was reused.
    let resp = hub
        .http_client
        .get(hub.url("/api/v1/me"))
        .bearer_auth(&auth.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "judy", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 200);
    hub.stop().await;
}

fn spawn_hub(data_dir: &std::path::Path, database_url: &str, http: u16) -> std::process::Child {
    spawn_hub_logging(data_dir, database_url, http, "info")
}

/// As [`spawn_hub`], with the log filter `HUB_LOG=<filter>`; the log is `<data dir>.log`.
fn spawn_hub_logging(
    data_dir: &std::path::Path,
    database_url: &str,
    http: u16,
    filter: &str,
) -> std::process::Child {
    // The log sits beside the data dir, whose creation is the hub's job.
    std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
    let log = std::fs::File::create(data_dir.with_extension("log")).unwrap();
    Command::new(HUB)
        .arg("serve")
        .env("HUB_LOG", filter)
        .env("HUB_DATA_DIR", data_dir)
        .env("HUB_DATABASE_URL", database_url)
        .env("HUB_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("HUB_TUNNEL_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("HUB_CLIENT_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("HUB_LOG_FORMAT", "json")
        .env("HUB_NODE_NAME", "lifecycle-node")
        .env("HUB_WEBHOOK_ALLOW_PRIVATE", "true")
        .env_remove("HUB_JWT_SECRET")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigterm_exits_zero_and_the_database_is_intact_after_restart() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("nested").join("data");
    let database_url = match common::store_kind() {
        "postgres" => common::fresh_postgres_database().await,
        _ => format!("sqlite://{}", data_dir.join("hub.db").display()),
    };
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_hub(&data_dir, &database_url, port);
    wait_health(&client, &base, "ok", |s, _| s == 200).await;
    assert!(data_dir.is_dir(), "data dir created on first start");

    let resp = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "kim", "email": "kim@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");

    let mut child = spawn_hub(&data_dir, &database_url, port);
    wait_health(&client, &base, "ok after restart", |s, _| s == 200).await;
    let resp = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "kim", "password": "password123"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["is_admin"], true, "first user stays admin");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0),
        "SIGINT also exits 0"
    );
}

#[tokio::test]
async fn claim_ids_query_tokens_and_passwords_never_reach_the_debug_log() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let database_url = match common::store_kind() {
        "postgres" => common::fresh_postgres_database().await,
        _ => format!("sqlite://{}", data_dir.join("hub.db").display()),
    };
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_hub_logging(&data_dir, &database_url, port, "debug");
    wait_health(&client, &base, "ok", |s, _| s == 200).await;

    let password = "unforgettable-horse-913";
    let resp = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "logan", "email": "logan@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    let (status, auth) = status_json(resp).await;
    assert_eq!(status, 201, "{auth}");
    let access = auth["access_token"].as_str().unwrap().to_owned();

    let mut server = common::fake_server::FakePhlixServer::new(&base, "Log Box");
    let (status, claim) = server.request_claim().await;
    assert_eq!(status, 200, "{claim}");
    let claim_id = claim["claimId"].as_str().unwrap().to_owned();
    assert_eq!(server.poll().await["status"], "pending");

    let query_token = "QueryTokenThatMustNotBeLogged0123456789abc";
    let _ = client
        .get(format!(
            "{base}/api/v1/servers/no-such-server/proxy/web/index.html?token={query_token}&lang=en"
        ))
        .send()
        .await
        .unwrap();
    let _ = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
    let log = std::fs::read_to_string(data_dir.with_extension("log")).unwrap();
    assert!(
        log.contains("/proxy/web/index.html?token=<redacted>&lang=en"),
        "the request span is logged, redacted:\n{log}"
    );
    assert!(log.contains("/api/v1/server-claims/<redacted>"), "{log}");
    for (what, secret) in [
        ("claim id", claim_id.as_str()),
        ("claim code", claim["claimCode"].as_str().unwrap()),
        ("query token", query_token),
        ("password", password),
        ("access token", access.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} reached the log:\n{log}");
    }
}

#[tokio::test]
async fn webhook_deliveries_pending_at_a_kill_9_all_arrive_once_after_restart() {
    use axum::http::{HeaderMap, StatusCode};
    // The receiver holds every request without answering until the hub has been killed (the
    // attempts in flight die with it), then answers 200; it records every request's webhook-id
    // and its answer.
    let answered: Arc<std::sync::Mutex<Vec<(String, u16)>>> = Arc::default();
    let accept = Arc::new(AtomicBool::new(false));
    let app = {
        let (answered, accept) = (answered.clone(), accept.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap| {
                let (answered, accept) = (answered.clone(), accept.clone());
                async move {
                    let id = headers["webhook-id"].to_str().unwrap().to_owned();
                    if !accept.load(Ordering::SeqCst) {
                        answered.lock().unwrap().push((id, 0));
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    answered.lock().unwrap().push((id, 200));
                    StatusCode::OK
                }
            }),
        )
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let database_url = match common::store_kind() {
        "postgres" => common::fresh_postgres_database().await,
        _ => format!("sqlite://{}", data_dir.join("hub.db").display()),
    };
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_hub(&data_dir, &database_url, port);
    wait_health(&client, &base, "ok", |s, _| s == 200).await;
    let register = |name: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let resp = client
                .post(format!("{base}/api/v1/auth/register"))
                .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "password123"}))
                .send()
                .await
                .unwrap();
            status_json(resp).await.1["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let owner = register("crashowner").await;
    register("crashfriend").await;
    let mut server = common::fake_server::FakePhlixServer::new(&base, "Crash NAS");
    server.request_claim().await;
    let resp = client
        .post(format!("{base}/api/v1/server-claims/claim"))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(&owner)
        .json(&json!({"claim_code": server.claim_code.clone().unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    server.poll().await;
    let resp = client
        .post(format!("{base}/api/v1/me/webhooks"))
        .bearer_auth(&owner)
        .json(
            &json!({"name": "crash", "url": format!("http://{receiver}/hook"),
                      "events": ["share.created", "share.revoked"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // 200 events: 100 shares made and revoked.
    for _ in 0..100 {
        let (status, share) = status_json(
            client
                .post(format!("{base}/api/v1/me/shares"))
                .bearer_auth(&owner)
                .json(&json!({"collaborator_email": "crashfriend@example.com", "server_id": server.server_id(),
                              "library_id": "lib", "library_name": "Films"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{share}");
        let resp = client
            .delete(format!(
                "{base}/api/v1/me/shares/{}",
                share["id"].as_str().unwrap()
            ))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
    // All 200 delivery rows are in the outbox (the fan-out writes them just after each event
    // is published: an event still in that hand-off when the process dies is lost, a limit
    // documented in README) and attempts are under way when the hub dies.
    let (_, hooks) = status_json(
        client
            .get(format!("{base}/api/v1/me/webhooks"))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let hook_id = hooks["webhooks"][0]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, log) = status_json(
            client
                .get(format!(
                    "{base}/api/v1/me/webhooks/{hook_id}/deliveries?limit=200"
                ))
                .bearer_auth(&owner)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if log["deliveries"].as_array().map_or(0, Vec::len) == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox never held 200 deliveries"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no delivery attempt before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    wait_exit(&mut child, Duration::from_secs(10));
    let before_restart = answered.lock().unwrap().len();
    accept.store(true, Ordering::SeqCst);

    let mut child = spawn_hub(&data_dir, &database_url, port);
    wait_health(&client, &base, "ok after the kill", |s, _| s == 200).await;
    // The restarted node releases its leases: everything is due at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: std::collections::HashSet<String> = answered
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, status)| *status == 200)
            .map(|(id, _)| id.clone())
            .collect();
        if delivered.len() >= 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 200 events delivered within 30 s of the restart",
            delivered.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = answered.lock().unwrap().clone();
    let accepted: Vec<&String> = all
        .iter()
        .filter(|(_, s)| *s == 200)
        .map(|(id, _)| id)
        .collect();
    let unique: std::collections::HashSet<&String> = accepted.iter().copied().collect();
    // At-least-once across the crash: the attempts the kill interrupted are sent again.
    let resent = all[..before_restart]
        .iter()
        .filter(|(id, _)| unique.contains(id))
        .count();
    eprintln!(
        "{before_restart} attempts held when the hub was killed (all sent again after it), {} after; \
         {} events delivered, {} delivered twice after the restart",
        all.len() - before_restart,
        unique.len(),
        accepted.len() - unique.len()
    );
    assert_eq!(
        resent, before_restart,
        "an interrupted attempt was not resumed"
    );
    assert_eq!(unique.len(), 200);
    assert_eq!(accepted.len(), 200, "an event was delivered twice");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    wait_exit(&mut child, Duration::from_secs(10));
}

fn hub_cli(
    data_dir: &std::path::Path,
    database_url: &str,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(HUB)
        .args(args)
        .env("HUB_DATA_DIR", data_dir)
        .env("HUB_DATABASE_URL", database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn cli_migrate_and_user_create_from_stdin_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;

    let out = hub_cli(dir.path(), &url, &["migrate"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));

    let out = hub_cli(
        dir.path(),
        &url,
        &[
            "user",
            "create",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ],
        "s3cret-pass\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("as admin"),
        "first user is admin"
    );

    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, "another-pass\n").unwrap();
    let out = hub_cli(
        dir.path(),
        &url,
        &[
            "user",
            "create",
            "--username",
            "sam",
            "--email",
            "sam@example.com",
            "--password-file",
            pw_file.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("admin"));

    // Clear one-line errors, non-zero exit.
    let out = hub_cli(
        dir.path(),
        &url,
        &[
            "user",
            "create",
            "--username",
            "sam",
            "--email",
            "x@example.com",
        ],
        "pass-word-1\n",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hub_cli(
        dir.path(),
        &url,
        &[
            "user",
            "create",
            "--username",
            "tiny",
            "--email",
            "t@example.com",
        ],
        "short\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    let out = hub_cli(dir.path(), "mysql://nope", &["migrate"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL scheme"));

    // The CLI-created users log in through the API.
    let hub = TestHub::start_on(dir, url).await;
    let (status, body) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "root", "password": "s3cret-pass"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["is_admin"], true);
    let (status, _) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "sam", "password": "another-pass"}),
        )
        .await;
    assert_eq!(status, 200);
    hub.stop().await;
}

#[test]
fn help_explains_every_subcommand_and_env_fallback() {
    let out = Command::new(HUB)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "HUB_DATA_DIR",
        "HUB_DATABASE_URL",
        "HUB_HTTP_ADDR",
        "HUB_TUNNEL_ADDR",
        "HUB_CLIENT_ADDR",
        "HUB_PUBLIC_URL",
        "HUB_PUBLIC_DOMAIN",
        "HUB_LOG_FORMAT",
    ] {
        assert!(
            text.contains(needle),
            "serve --help lacks {needle}:\n{text}"
        );
    }
    let out = Command::new(HUB).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["serve", "migrate", "user", "version"] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
}
