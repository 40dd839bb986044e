//! The admin log routes (SPEC Q.4) over real sockets: records of the real hub and of the test
//! itself reach the in-memory ring through the process's tracing subscriber
//! (`phlix_hub::telemetry::init_for_tests`), secrets never show in the ring, the list route or
//! the live tail, the filters and their bad input, the admin gate, and the SSE tail.
//!
//! The ring is one per process and the tests of this file run in parallel, so every test
//! looks only at records carrying its own unique marker or target.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestHub, call};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

fn marker() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `GET path` with a bearer token: status and raw body.
async fn get_raw(hub: &TestHub, token: Option<&str>, path: &str) -> (u16, String) {
    let mut request = hub.http_client.get(hub.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn logs_of(body: &str) -> Vec<Value> {
    let value: Value = serde_json::from_str(body).unwrap();
    value["logs"].as_array().expect("a logs array").clone()
}

/// Opens the live tail and returns its byte stream once the answer's head has arrived (the
/// subscription exists from then on).
async fn open_tail(
    hub: &TestHub,
    token: &str,
    query: &str,
) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin + use<> {
    let resp = hub
        .http_client
        .get(hub.url(&format!("/api/v1/me/logs/tail{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    resp.bytes_stream()
}

/// Reads the tail until `needle` has arrived in a complete event; the raw text so far.
async fn read_until(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    needle: &str,
) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(at) = text.find(needle)
            && text[at..].contains("\n\n")
        {
            return text;
        }
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
            Ok(None) => panic!("the tail ended before {needle:?} arrived: {text}"),
            Err(_) => panic!("{needle:?} did not arrive on the tail within 10 s: {text}"),
        }
    }
}

/// The `data:` JSON of the `log` event whose data contains `needle`.
fn event_with(text: &str, needle: &str) -> Value {
    text.split("\n\n")
        .find(|block| block.contains(needle))
        .map(|block| {
            assert!(
                block.lines().any(|l| l == "event: log" || l == "event:log"),
                "{block}"
            );
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .unwrap();
            serde_json::from_str(data).unwrap()
        })
        .unwrap()
}

#[tokio::test]
async fn a_failed_sign_in_of_the_real_hub_is_in_the_ring_with_its_fields_and_no_password() {
    phlix_hub::telemetry::init_for_tests();
    let hub = TestHub::start().await;
    let admin = hub.register("root", "correct horse").await;
    let name = format!("u{}", &marker()[..12]);
    let member = hub.register(&name, "correct horse").await;
    let wrong = format!("wrong-{}", marker());
    let (status, _) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": name, "password": wrong}),
        )
        .await;
    assert_eq!(status, 401);

    let (status, body) = get_raw(
        &hub,
        Some(&admin.access_token),
        "/api/v1/me/logs?target=phlix_hub::domain::accounts&limit=5000",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(&wrong), "the password reached the log");
    let logs = logs_of(&body);
    let record = logs
        .iter()
        .find(|r| r["message"] == "sign-in failed" && r["fields"]["user_id"] == member.user.id)
        .unwrap_or_else(|| panic!("no sign-in failure of {name}: {body}"));
    assert_eq!(record["level"], "info");
    assert_eq!(record["target"], "phlix_hub::domain::accounts");
    assert_eq!(record["fields"]["reason"], "wrong_password");
    assert_eq!(record["fields"]["ip"], "127.0.0.1");
    // RFC 3339, UTC, milliseconds: 2025-01-02T03:04:05.678Z
    let ts = record["ts"].as_str().unwrap();
    assert_eq!(ts.len(), 24, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.');
    assert!(
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok()
    );
    // Newest last: the ring is in order.
    let times: Vec<&str> = logs.iter().map(|r| r["ts"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not oldest first");
    hub.stop().await;
}

#[tokio::test]
async fn secret_fields_and_secrets_in_texts_never_show_in_the_ring_the_route_or_the_tail() {
    phlix_hub::telemetry::init_for_tests();
    let hub = TestHub::start().await;
    let admin = hub.register("root", "correct horse").await;
    let m = marker();
    let mut tail = open_tail(
        &hub,
        &admin.access_token,
        "?target=phlix_hub::tests::secrets",
    )
    .await;

    let password = format!("pw-{m}");
    let access_token = format!("at-{m}");
    let api_key = format!("ak-{m}");
    let query_token = format!("qt-{m}");
    let bearer = format!("br-{m}");
    let cookie = format!("ck-{m}");
    tracing::warn!(
        target: "phlix_hub::tests::secrets",
        password = %password,
        access_token = access_token.as_str(),
        api_key = ?api_key,
        Session_Cookie = %cookie,
        url = %format!("https://nas.example/web/index.html?token={query_token}&page=2"),
        user = "anna",
        attempt = 3,
        "probe {m} sent Authorization: Bearer {bearer}"
    );
    let secrets = [
        &password,
        &access_token,
        &api_key,
        &query_token,
        &bearer,
        &cookie,
    ];

    let text = read_until(&mut tail, &format!("probe {m}")).await;
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{secret} on the tail: {text}"
        );
    }
    let live = event_with(&text, &format!("probe {m}"));
    assert_eq!(live["fields"]["password"], "[redacted]");

    let (status, body) = get_raw(
        &hub,
        Some(&admin.access_token),
        "/api/v1/me/logs?target=phlix_hub::tests::secrets&limit=5000",
    )
    .await;
    assert_eq!(status, 200);
    for secret in secrets {
        assert!(
            !body.contains(secret.as_str()),
            "{secret} in the list: {body}"
        );
    }
    let logs = logs_of(&body);
    let record = logs
        .iter()
        .find(|r| {
            r["message"]
                .as_str()
                .unwrap()
                .contains(&format!("probe {m}"))
        })
        .unwrap();
    assert_eq!(record, &live, "the tail and the list carry the same record");
    assert_eq!(record["level"], "warn");
    let fields = &record["fields"];
    for name in ["password", "access_token", "api_key", "Session_Cookie"] {
        assert_eq!(fields[name], "[redacted]", "{name}");
    }
    assert_eq!(
        fields["url"],
        "https://nas.example/web/index.html?token=<redacted>&page=2"
    );
    assert_eq!(fields["user"], "anna");
    assert_eq!(fields["attempt"], 3);
    assert_eq!(
        record["message"],
        format!("probe {m} sent Authorization: Bearer <redacted>")
    );
    hub.stop().await;
}

#[tokio::test]
async fn level_target_and_limit_filter_and_bad_input_is_a_clear_400() {
    phlix_hub::telemetry::init_for_tests();
    let hub = TestHub::start().await;
    let admin = hub.register("root", "correct horse").await;
    let token = admin.access_token.as_str();
    let m = marker();
    // Only this test logs under `phlix_hub::tests::filters::`; it looks only at its marker.
    let base = "phlix_hub::tests::filters::";
    let a = "phlix_hub::tests::filters::a";
    tracing::info!(target: "phlix_hub::tests::elsewhere", "elsewhere {m}");
    tracing::info!(target: "phlix_hub::tests::filters::a", "a-info {m}");
    tracing::debug!(target: "phlix_hub::tests::filters::a", "a-debug {m}");
    tracing::trace!(target: "phlix_hub::tests::filters::a", "a-trace {m}");
    tracing::warn!(target: "phlix_hub::tests::filters::b", "b-warn {m}");
    tracing::error!(target: "phlix_hub::tests::filters::b", "b-error {m}");

    let messages = |body: &str| -> Vec<String> {
        logs_of(body)
            .iter()
            .map(|r| r["message"].as_str().unwrap().to_owned())
            .filter(|msg| msg.contains(&m))
            .collect()
    };
    let get = |query: String| {
        let hub = &hub;
        async move { get_raw(hub, Some(token), &format!("/api/v1/me/logs{query}")).await }
    };
    let target_of = |record: &Value| record["target"].as_str().unwrap().to_owned();

    // Target prefix: only this test's records under it, oldest first.
    let (status, body) = get(format!("?target={base}&limit=5000")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        messages(&body),
        [
            format!("a-info {m}"),
            format!("a-debug {m}"),
            format!("b-warn {m}"),
            format!("b-error {m}")
        ]
    );
    assert!(
        logs_of(&body)
            .iter()
            .all(|r| target_of(r).starts_with(base))
    );
    // Minimum level.
    let (_, body) = get(format!("?target={base}&level=warn")).await;
    assert_eq!(
        messages(&body),
        [format!("b-warn {m}"), format!("b-error {m}")]
    );
    let (_, body) = get(format!("?target={base}&level=ERROR")).await;
    assert_eq!(messages(&body), [format!("b-error {m}")]);
    let (_, body) = get(format!("?target={base}&level=info")).await;
    assert_eq!(
        messages(&body),
        [
            format!("a-info {m}"),
            format!("b-warn {m}"),
            format!("b-error {m}")
        ]
    );
    let (_, body) = get(format!("?target={a}&level=debug")).await;
    assert_eq!(
        messages(&body),
        [format!("a-info {m}"), format!("a-debug {m}")]
    );
    // Trace is not recorded (the test filter records phlix_hub at debug, as HUB_LOG would).
    let (_, body) = get(format!("?target={base}&level=trace")).await;
    assert!(!messages(&body).contains(&format!("a-trace {m}")));
    // Limit: the newest n.
    let (_, body) = get(format!("?target={base}&limit=2")).await;
    assert_eq!(logs_of(&body).len(), 2);
    assert_eq!(
        messages(&body),
        [format!("b-warn {m}"), format!("b-error {m}")]
    );
    // Clamped above 5000; the default is 200.
    let (status, body) = get("?limit=100000".into()).await;
    assert_eq!(status, 200, "{body}");
    assert!(logs_of(&body).len() <= 5000);
    let (status, body) = get(String::new()).await;
    assert_eq!(status, 200);
    assert!(logs_of(&body).len() <= 200);
    // The admin alias answers the same.
    let (status, body) = get_raw(
        &hub,
        Some(token),
        &format!("/api/v1/admin/logs?target={base}&level=warn"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        messages(&body),
        [format!("b-warn {m}"), format!("b-error {m}")]
    );

    for query in [
        "?limit=-1",
        "?limit=0",
        "?limit=abc",
        "?limit=1.5",
        "?level=loud",
        "?level=warning",
    ] {
        let (status, body) = call(
            &hub,
            token,
            Method::GET,
            &format!("/api/v1/me/logs{query}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "invalid_query", "{query}");
        assert_eq!(body["error"], "Bad Request");
        assert!(body["message"].as_str().unwrap().len() > 5);
    }
    let (status, body) = call(
        &hub,
        token,
        Method::GET,
        "/api/v1/me/logs/tail?level=loud",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_query");
    hub.stop().await;
}

#[tokio::test]
async fn the_tail_delivers_new_records_that_pass_its_filters() {
    phlix_hub::telemetry::init_for_tests();
    let hub = TestHub::start().await;
    let admin = hub.register("root", "correct horse").await;
    let m = marker();
    tracing::info!(target: "phlix_hub::tests::tail", "before {m}");
    let mut tail = open_tail(
        &hub,
        &admin.access_token,
        "?level=info&target=phlix_hub::tests::tail",
    )
    .await;
    tracing::debug!(target: "phlix_hub::tests::tail", "too quiet {m}");
    tracing::info!(target: "phlix_hub::tests::elsewhere_tail", "elsewhere {m}");
    tracing::info!(target: "phlix_hub::tests::tail", server_id = "s-1", "after {m}");
    let text = read_until(&mut tail, &format!("after {m}")).await;
    assert!(!text.contains(&format!("before {m}")), "only new records");
    assert!(!text.contains(&format!("too quiet {m}")), "level filter");
    assert!(!text.contains(&format!("elsewhere {m}")), "target filter");
    let record = event_with(&text, &format!("after {m}"));
    assert_eq!(record["level"], "info");
    assert_eq!(record["target"], "phlix_hub::tests::tail");
    assert_eq!(record["fields"], json!({"server_id": "s-1"}));
    // The admin alias streams too; the stream ends when the hub shuts down.
    let mut alias = {
        let resp = hub
            .http_client
            .get(hub.url("/api/v1/admin/logs/tail?target=phlix_hub::tests::tail"))
            .bearer_auth(&admin.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes_stream()
    };
    tracing::warn!(target: "phlix_hub::tests::tail", "alias {m}");
    read_until(&mut alias, &format!("alias {m}")).await;
    hub.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = alias.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the tail ends at shutdown");
}

#[tokio::test]
async fn the_log_routes_are_for_admins_only() {
    phlix_hub::telemetry::init_for_tests();
    let hub = TestHub::start().await;
    hub.register("root", "correct horse").await;
    let member = hub.register("anna", "correct horse").await;
    for path in [
        "/api/v1/me/logs",
        "/api/v1/me/logs/tail",
        "/api/v1/admin/logs",
        "/api/v1/admin/logs/tail",
    ] {
        let (status, body) = call(&hub, &member.access_token, Method::GET, path, None).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(
            body,
            json!({"error": "Forbidden", "code": "auth.not_admin"}),
            "{path}"
        );
        let (status, body) = get_raw(&hub, None, path).await;
        assert_eq!(status, 401, "{path}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "auth.required", "{path}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn the_logs_page_shows_the_last_records_without_script_to_admins_only() {
    use common::web_client::WebClient;
    phlix_hub::telemetry::init_for_tests();
    let hub = TestHub::start().await;
    hub.register("root", "correct horse").await;
    hub.register("anna", "correct horse").await;
    let m = marker();
    tracing::warn!(target: "phlix_hub::tests::page", server_id = "s-9", "page <b>{m}</b>");
    tracing::debug!(target: "phlix_hub::tests::page", "page-debug {m}");

    let mut anonymous = WebClient::new(&hub.url(""));
    let page = anonymous.get("/app/admin/logs").await;
    assert_eq!(page.status, 302);
    assert!(page.location.unwrap().starts_with("/app/login?next="));

    let mut member = WebClient::new(&hub.url(""));
    let page = member
        .submit(
            "/app/login",
            &[("login", "anna"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(member.get("/app/admin/logs").await.status, 403);

    let mut admin = WebClient::new(&hub.url(""));
    admin
        .submit(
            "/app/login",
            &[("login", "root"), ("password", "correct horse")],
        )
        .await;
    let page = admin
        .get("/app/admin/logs?target=phlix_hub::tests::page")
        .await;
    assert_eq!(page.status, 200);
    // Escaped, with its level and fields; debug is below the page's default level (info).
    assert!(
        page.body
            .contains(&format!("page &#60;b&#62;{m}&#60;/b&#62;")),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>"));
    assert!(
        page.body.contains("server_id=&#34;s-9&#34;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&format!("page-debug {m}")));
    assert!(page.body.contains("data-log-tail=\"/api/v1/me/logs/tail?level=info&#38;target=phlix_hub%3A%3Atests%3A%3Apage\""), "{}", page.body);
    let page = admin
        .get("/app/admin/logs?level=debug&target=phlix_hub::tests::page")
        .await;
    assert!(page.body.contains(&format!("page-debug {m}")));
    assert_eq!(admin.get("/app/admin/logs?level=loud").await.status, 400);
    hub.stop().await;
}
