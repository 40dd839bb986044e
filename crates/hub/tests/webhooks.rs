//! Webhooks (SPEC P) against a real receiver on 127.0.0.1: signatures checked by an
//! independent implementation (Python's `hmac`, and the `standardwebhooks` reference verifier
//! from PyPI when it is installed), the retry schedule (shortened through the configuration),
//! 410, a hanging receiver beside a fast one, scopes, rotation, test and redeliver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::TestHub;
use common::fake_server::FakePhlixServer;
use common::receiver::{Received, Receiver};
use reqwest::Method;
use serde_json::{Value, json};

async fn call(
    hub: &TestHub,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = hub
        .http_client
        .request(method, hub.url(path))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The delivery log of endpoint `id` once its newest delivery is no longer pending (an attempt
/// is recorded when the receiver's answer is in, a moment after the receiver saw it).
async fn settled_log(hub: &TestHub, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, log) = call(
            hub,
            token,
            Method::GET,
            &format!("/api/v1/me/webhooks/{id}/deliveries"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{log}");
        if log["deliveries"][0]["status"] != "pending" || Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A hub whose retries come after 200 ms and 400 ms (the SPEC's are minutes and hours).
async fn hub() -> TestHub {
    TestHub::start_configured(
        |_| {},
        |config| {
            config.webhook_retry_schedule =
                vec![Duration::from_millis(200), Duration::from_millis(400)];
        },
    )
    .await
}

async fn endpoint(hub: &TestHub, token: &str, url: &str, events: Value) -> (String, String) {
    let (status, body) = call(
        hub,
        token,
        Method::POST,
        "/api/v1/me/webhooks",
        Some(json!({"name": "home", "url": url, "events": events})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["webhook"]["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Pairs a server for `token` and shares its library with `email`: a `share.created` event.
async fn pair_and_share(hub: &TestHub, token: &str, email: &str) -> String {
    let mut server = FakePhlixServer::new(&hub.url(""), "Hooked NAS");
    server.request_claim().await;
    let code = server.claim_code.clone().unwrap();
    let (status, _) = call(
        hub,
        token,
        Method::POST,
        "/api/v1/server-claims/claim",
        Some(json!({"claim_code": code})),
    )
    .await;
    assert_eq!(status, 200);
    server.poll().await;
    let (status, share) = call(
        hub,
        token,
        Method::POST,
        "/api/v1/me/shares",
        Some(json!({
        "collaborator_email": email, "server_id": server.server_id(),
        "library_id": "lib", "library_name": "Films"})),
    )
    .await;
    assert_eq!(status, 201, "{share}");
    share["id"].as_str().unwrap().to_owned()
}

/// Verifies a delivery with Python's own `hmac` (an implementation independent of ours), and
/// with the `standardwebhooks` reference verifier when it is installed. Returns whether the
/// reference verifier ran.
fn verify_independently(received: &Received, secrets: &[&str]) -> bool {
    let script = r#"
import base64, hashlib, hmac, json, sys
d = json.load(sys.stdin)
body, h, secrets = d["body"].encode(), d["headers"], d["secrets"]
wid, ts = h["webhook-id"], h["webhook-timestamp"]
std_sigs = [s.split(",", 1)[1] for s in h["webhook-signature"].split(" ")]
phlix = [s.split("=", 1)[1] for s in h["x-phlix-signature"].split(" ")]
t_part, *v1s = h["x-phlix-signature-v2"].split(",")
assert t_part == "t=" + ts, t_part
v2 = [v.split("=", 1)[1] for v in v1s]
for secret in secrets:
    key = base64.b64decode(secret[len("whsec_"):])
    want = base64.b64encode(hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    assert want in std_sigs, ("webhook-signature", want, std_sigs)
    want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert want in phlix, ("x-phlix-signature", want, phlix)
    want = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert want in v2, ("x-phlix-signature-v2", want, v2)
reference = False
try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    pass
else:
    for secret in secrets:
        Webhook(secret).verify(body, {"webhook-id": wid, "webhook-timestamp": ts, "webhook-signature": h["webhook-signature"]})
    reference = True
print("reference" if reference else "hmac-only")
"#;
    let input = json!({"body": received.body, "headers": received.headers, "secrets": secrets});
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the independent verifier");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "independent verification failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "reference"
}

#[tokio::test]
async fn deliveries_carry_both_signature_kinds_and_verify_independently() {
    let hub = hub().await;
    let (receiver, addr) = Receiver::start().await;
    let owner = hub.register("hooked", "password123").await;
    hub.register("pal", "password123").await;
    let (id, secret) = endpoint(
        &hub,
        &owner.access_token,
        &format!("http://{addr}/ok"),
        json!(["share.created"]),
    )
    .await;
    assert!(secret.starts_with("whsec_"));
    let share_id = pair_and_share(&hub, &owner.access_token, "pal@example.com").await;
    let got = receiver.wait("ok", 1, Duration::from_secs(5)).await;
    let delivery = &got[0];
    assert_eq!(delivery.headers["content-type"], "application/json");
    assert!(delivery.headers["user-agent"].starts_with("phlix-hub/"));
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(body["type"], "share.created");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
    assert_eq!(
        body["data"]["id"],
        share_id.as_str(),
        "data is the Share as the API shows it"
    );
    assert_eq!(body["data"]["library_name"], "Films");
    let reference = verify_independently(delivery, &[&secret]);
    eprintln!("standardwebhooks reference verifier ran: {reference}");
    if std::env::var_os("CI").is_some() {
        assert!(
            reference,
            "scripts/test installs standardwebhooks; CI must run it"
        );
    }

    // The delivery log shows it delivered, with its attempt (recorded once the receiver's
    // answer is in, a moment after the receiver saw the request).
    let log = settled_log(&hub, &owner.access_token, &id).await;
    let d = &log["deliveries"][0];
    assert_eq!(
        (d["status"].as_str(), d["event_type"].as_str()),
        (Some("delivered"), Some("share.created"))
    );
    assert_eq!(d["event_id"], delivery.headers["webhook-id"].as_str());
    assert_eq!(d["attempts"][0]["status_code"], 200);
    assert_eq!(
        d["attempts"][0]["response_excerpt"].as_str().unwrap().len(),
        4096,
        "only 4 KiB kept"
    );
    let (_, listed) = call(
        &hub,
        &owner.access_token,
        Method::GET,
        "/api/v1/me/webhooks",
        None,
    )
    .await;
    assert_eq!(listed["webhooks"][0]["last_delivery_status"], 200);
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "the secret is shown only once"
    );
    hub.stop().await;
}

#[tokio::test]
async fn retries_follow_the_schedule_and_410_disables_at_once() {
    let hub = hub().await;
    let (receiver, addr) = Receiver::start().await;
    let owner = hub.register("retrier", "password123").await;
    hub.register("pal", "password123").await;
    receiver.plan("flaky", &[500, 503, 200]);
    receiver.plan("gone", &[410]);
    receiver.plan("down", &[500]);
    let token = &owner.access_token;
    let (flaky, _) = endpoint(
        &hub,
        token,
        &format!("http://{addr}/flaky"),
        json!(["share.created"]),
    )
    .await;
    let (gone, _) = endpoint(
        &hub,
        token,
        &format!("http://{addr}/gone"),
        json!(["share.created"]),
    )
    .await;
    let (down, _) = endpoint(&hub, token, &format!("http://{addr}/down"), json!(["*"])).await;
    pair_and_share(&hub, token, "pal@example.com").await;

    let tries = receiver.wait("flaky", 3, Duration::from_secs(10)).await;
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].at - w[0].at).collect();
    // 200 ms and 400 ms, each ± 20 %, plus scheduling: measured between the receiver's own
    // arrival times.
    assert!(gaps[0] >= Duration::from_millis(150), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(300), "{gaps:?}");
    assert_eq!(
        tries[0].headers["webhook-id"], tries[2].headers["webhook-id"],
        "the id is stable across retries"
    );
    // The endpoint that keeps failing gives up after the schedule: 3 attempts, failed.
    receiver.wait("down", 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        receiver
            .on("down")
            .iter()
            .filter(|r| r.body.contains("share.created"))
            .count(),
        3
    );
    let (_, log) = call(
        &hub,
        token,
        Method::GET,
        &format!("/api/v1/me/webhooks/{down}/deliveries"),
        None,
    )
    .await;
    let share_delivery = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_type"] == "share.created")
        .unwrap()
        .clone();
    assert_eq!(share_delivery["status"], "failed");
    assert_eq!(share_delivery["attempts"].as_array().unwrap().len(), 3);
    assert!(share_delivery["next_attempt_at"].is_null());
    let log = settled_log(&hub, token, &flaky).await;
    assert_eq!(log["deliveries"][0]["status"], "delivered");

    // 410: disabled at once, with the reason, after one attempt.
    receiver.wait("gone", 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.on("gone").len(), 1);
    let (_, w) = call(
        &hub,
        token,
        Method::GET,
        &format!("/api/v1/me/webhooks/{gone}"),
        None,
    )
    .await;
    assert_eq!(w["enabled"], false);
    assert!(
        w["disabled_reason"].as_str().unwrap().contains("410"),
        "{w}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn an_idle_worker_is_woken_by_the_event_and_sends_the_retry_at_its_time() {
    // One retry after 3 s (± 20 %). The worker of an idle hub reads the outbox only every
    // 10 s; it must still send the first attempt as soon as the event is committed and the
    // retry at its own time, not at its next read.
    let hub = TestHub::start_configured(
        |_| {},
        |config| config.webhook_retry_schedule = vec![Duration::from_secs(3)],
    )
    .await;
    let (receiver, addr) = Receiver::start().await;
    let owner = hub.register("sleeper", "password123").await;
    hub.register("waker", "password123").await;
    receiver.plan("later", &[503, 200]);
    let token = &owner.access_token;
    let (id, _) = endpoint(
        &hub,
        token,
        &format!("http://{addr}/later"),
        json!(["share.created"]),
    )
    .await;
    pair_and_share(&hub, token, "waker@example.com").await;
    let shared = Instant::now();
    let tries = receiver.wait("later", 2, Duration::from_secs(15)).await;
    let first = tries[0].at.saturating_duration_since(shared);
    assert!(
        first < Duration::from_secs(5),
        "first attempt after {first:?}"
    );
    let gap = tries[1].at - tries[0].at;
    assert!(
        gap >= Duration::from_millis(2300) && gap < Duration::from_secs(7),
        "retry after {gap:?}, due after 2.4-3.6 s"
    );
    let log = settled_log(&hub, token, &id).await;
    assert_eq!(log["deliveries"][0]["status"], "delivered");
    hub.stop().await;
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_another_endpoint() {
    let hub = hub().await;
    let (receiver, addr) = Receiver::start().await;
    let owner = hub.register("patient", "password123").await;
    hub.register("pal", "password123").await;
    let token = &owner.access_token;
    endpoint(
        &hub,
        token,
        &format!("http://{addr}/hang"),
        json!(["share.created"]),
    )
    .await;
    endpoint(
        &hub,
        token,
        &format!("http://{addr}/fast"),
        json!(["share.created"]),
    )
    .await;
    let started = Instant::now();
    pair_and_share(&hub, token, "pal@example.com").await;
    receiver.wait("fast", 1, Duration::from_secs(3)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    receiver.wait("hang", 1, Duration::from_secs(3)).await;
    hub.stop().await;
}

#[tokio::test]
async fn endpoints_see_only_their_owners_events_and_hub_scope_sees_all() {
    let hub = hub().await;
    let (receiver, addr) = Receiver::start().await;
    let admin = hub.register("admin", "password123").await;
    let alice = hub.register("alice", "password123").await;
    let bob = hub.register("bob", "password123").await;
    hub.register("carol", "password123").await;
    endpoint(
        &hub,
        &alice.access_token,
        &format!("http://{addr}/alice"),
        json!(["*"]),
    )
    .await;
    let (status, body) = call(&hub, &bob.access_token, Method::POST, "/api/v1/me/webhooks",
        Some(json!({"name": "all", "url": format!("http://{addr}/bobhub"), "events": ["*"], "scope": "hub"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("webhook.hub_scope_admin_only"))
    );
    let (status, _) = call(&hub, &admin.access_token, Method::POST, "/api/v1/me/webhooks",
        Some(json!({"name": "all", "url": format!("http://{addr}/hub"), "events": ["*"], "scope": "hub"}))).await;
    assert_eq!(status, 201);
    // Bob shares with Carol: Alice is no party to it.
    pair_and_share(&hub, &bob.access_token, "carol@example.com").await;
    hub.register("dave", "password123").await;
    let hub_seen = receiver.wait("hub", 4, Duration::from_secs(5)).await;
    let types: Vec<String> = hub_seen
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for expected in ["server.claimed", "share.created", "user.created"] {
        assert!(
            types.iter().any(|t| t == expected),
            "hub scope missed {expected}: {types:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver.on("alice").is_empty(),
        "Alice's endpoint got someone else's event"
    );
    hub.stop().await;
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_test_and_redeliver_work() {
    let hub = hub().await;
    let (receiver, addr) = Receiver::start().await;
    let owner = hub.register("rotor", "password123").await;
    let token = &owner.access_token;
    let (id, old) = endpoint(
        &hub,
        token,
        &format!("http://{addr}/rot"),
        json!(["webhook.test"]),
    )
    .await;
    let (status, test) = call(
        &hub,
        token,
        Method::POST,
        &format!("/api/v1/me/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(
        (test["status"].as_str(), &test["attempts"][0]["status_code"]),
        (Some("delivered"), &json!(200))
    );
    assert!(test["attempts"][0]["duration_ms"].is_i64());
    let first = receiver.wait("rot", 1, Duration::from_secs(2)).await;
    verify_independently(&first[0], &[&old]);

    let (status, rotated) = call(
        &hub,
        token,
        Method::POST,
        &format!("/api/v1/me/webhooks/{id}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    call(
        &hub,
        token,
        Method::POST,
        &format!("/api/v1/me/webhooks/{id}/test"),
        None,
    )
    .await;
    let second = receiver.wait("rot", 2, Duration::from_secs(2)).await;
    assert_eq!(
        second[1].headers["webhook-signature"].split(' ').count(),
        2,
        "both signatures during the overlap"
    );
    verify_independently(&second[1], &[&new, &old]);

    // Redeliver sends the same event id again.
    let delivery = test["id"].as_str().unwrap();
    let (status, _) = call(
        &hub,
        token,
        Method::POST,
        &format!("/api/v1/me/webhooks/{id}/deliveries/{delivery}/redeliver"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let third = receiver.wait("rot", 3, Duration::from_secs(3)).await;
    assert_eq!(
        third[2].headers["webhook-id"],
        first[0].headers["webhook-id"]
    );
    let (_, log) = call(
        &hub,
        token,
        Method::GET,
        &format!("/api/v1/me/webhooks/{id}/deliveries?limit=1"),
        None,
    )
    .await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1);

    // Someone else's endpoint is 404 everywhere.
    let other = hub.register("nosy", "password123").await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/me/webhooks/{id}")),
        (Method::PATCH, format!("/api/v1/me/webhooks/{id}")),
        (Method::DELETE, format!("/api/v1/me/webhooks/{id}")),
        (Method::POST, format!("/api/v1/me/webhooks/{id}/test")),
        (
            Method::POST,
            format!("/api/v1/me/webhooks/{id}/rotate-secret"),
        ),
        (Method::GET, format!("/api/v1/me/webhooks/{id}/deliveries")),
        (
            Method::POST,
            format!("/api/v1/me/webhooks/{id}/deliveries/{delivery}/redeliver"),
        ),
    ] {
        let (status, body) = call(
            &hub,
            &other.access_token,
            method.clone(),
            &path,
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("webhook.not_found")),
            "{method} {path}"
        );
    }
    assert_eq!(
        call(
            &hub,
            token,
            Method::DELETE,
            &format!("/api/v1/me/webhooks/{id}"),
            None
        )
        .await
        .0,
        204
    );
    hub.stop().await;
}

#[tokio::test]
async fn bad_endpoints_are_refused_with_clear_codes() {
    // The default: private targets refused (the other tests run with the flag).
    let hub = TestHub::start_with(|args| args.webhook_allow_private = false).await;
    let owner = hub.register("strict", "password123").await;
    let token = &owner.access_token;
    let long = format!("https://example.com/{}", "a".repeat(10_240));
    for (body, status, code) in [
        (
            json!({"name": "x", "url": "ftp://example.com/hook", "events": ["*"]}),
            400,
            "webhook.invalid_url",
        ),
        (
            json!({"name": "x", "url": "http://user:pass@example.com/", "events": ["*"]}),
            400,
            "webhook.invalid_url",
        ),
        (
            json!({"name": "x", "url": long, "events": ["*"]}),
            400,
            "webhook.invalid_url",
        ),
        (
            json!({"name": "x", "url": "not a url", "events": ["*"]}),
            400,
            "webhook.invalid_url",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "events": []}),
            400,
            "webhook.invalid_events",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "events": ["server.exploded"]}),
            400,
            "webhook.unknown_event",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "events": "server.online"}),
            400,
            "webhook.invalid_events",
        ),
        (
            json!({"name": "", "url": "https://example.com/", "events": ["*"]}),
            400,
            "webhook.invalid_name",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "events": ["*"], "secret": "hunter2"}),
            400,
            "webhook.invalid_secret",
        ),
        (
            json!({"name": "x", "url": "http://127.0.0.1:9/", "events": ["*"]}),
            422,
            "webhook.private_target",
        ),
        (
            json!({"name": "x", "url": "http://[fe80::1]/", "events": ["*"]}),
            422,
            "webhook.private_target",
        ),
        (
            json!({"name": "x", "url": "http://10.1.2.3/", "events": ["*"]}),
            422,
            "webhook.private_target",
        ),
        (
            json!({"name": "x", "url": "http://100.64.0.1/", "events": ["*"]}),
            422,
            "webhook.private_target",
        ),
    ] {
        let (got, answer) = call(
            &hub,
            token,
            Method::POST,
            "/api/v1/me/webhooks",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    let (status, answer) = call(&hub, token, Method::POST, "/api/v1/me/webhooks", None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalid_body"))
    );
    let (_, listed) = call(&hub, token, Method::GET, "/api/v1/me/webhooks", None).await;
    assert_eq!(listed, json!({"webhooks": []}), "nothing half-written");
    hub.stop().await;
}

#[tokio::test]
async fn a_patch_that_would_break_the_endpoint_changes_nothing() {
    let hub = hub().await;
    let (_receiver, addr) = Receiver::start().await;
    let owner = hub.register("patcher", "password123").await;
    let token = &owner.access_token;
    let url = format!("http://{addr}/p");
    let (id, _) = endpoint(&hub, token, &url, json!(["server.online"])).await;
    let path = format!("/api/v1/me/webhooks/{id}");
    for body in [
        json!({"url": "ftp://x"}),
        json!({"events": []}),
        json!({"name": "ok", "events": ["nope"]}),
        json!({"enabled": "yes"}),
    ] {
        let (status, _) = call(&hub, token, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
    }
    let (_, w) = call(&hub, token, Method::GET, &path, None).await;
    assert_eq!(
        (w["url"].as_str(), w["name"].as_str(), &w["events"]),
        (Some(url.as_str()), Some("home"), &json!(["server.online"]))
    );
    let (status, w) = call(
        &hub,
        token,
        Method::PATCH,
        &path,
        Some(json!({"name": "renamed", "events": ["*"], "enabled": false})),
    )
    .await;
    assert_eq!(
        (status, w["name"].as_str(), w["enabled"].as_bool()),
        (200, Some("renamed"), Some(false))
    );
    hub.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_with_its_reason() {
    let hub = hub().await;
    let (receiver, addr) = Receiver::start().await;
    let owner = hub.register("failing", "password123").await;
    hub.register("pal", "password123").await;
    receiver.plan("broken", &[500]);
    let token = &owner.access_token;
    let (id, _) = endpoint(
        &hub,
        token,
        &format!("http://{addr}/broken"),
        json!(["share.created"]),
    )
    .await;
    // Its deliveries have failed since six days ago (as the hub would have recorded it).
    let store = hub.store().await;
    let six_days_ago = (phlix_hub::auth::now_unix() - 6 * 86_400).to_string();
    common::execute(
        &store,
        "UPDATE webhooks SET failing_since = CAST($1 AS BIGINT) WHERE id = $2",
        &[&six_days_ago, &id],
    )
    .await;
    pair_and_share(&hub, token, "pal@example.com").await;
    receiver.wait("broken", 1, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let w = loop {
        let (_, w) = call(
            &hub,
            token,
            Method::GET,
            &format!("/api/v1/me/webhooks/{id}"),
            None,
        )
        .await;
        if w["enabled"] == false || Instant::now() > deadline {
            break w;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(w["enabled"], false, "{w}");
    assert!(
        w["disabled_reason"].as_str().unwrap().contains("5 days"),
        "{w}"
    );
    // No more attempts once disabled.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.on("broken").len(), 1);
    hub.stop().await;
}
