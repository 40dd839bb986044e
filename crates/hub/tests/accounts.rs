//! Accounts over real HTTP (SPEC E "Auth", F.1), on the backend of `PHLIX_TEST_STORE`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, status_json};
use phlix_proto::auth::{AuthResponse, MeResponse};
use serde_json::{Value, json};

async fn me(hub: &TestHub, access: &str) -> (u16, Value) {
    let resp = hub
        .http_client
        .get(hub.url("/api/v1/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

#[tokio::test]
async fn register_login_refresh_logout_me_round_trip() {
    let hub = TestHub::start().await;
    let registered = hub.register("alice", "correct horse").await;
    assert_eq!(registered.token_type, "Bearer");
    assert_eq!(registered.expires_in, 3600);
    assert_eq!(registered.claims.kind, "access");
    assert_eq!(registered.claims.iss, "phlix-hub");
    assert_eq!(registered.claims.aud, "hub");
    assert_eq!(registered.claims.sub, registered.user.id);
    assert_eq!(registered.user.email, "alice@example.com");

    // Login by user name (any case) and by e-mail in `username`, and by `email`.
    for body in [
        json!({"username": "ALICE", "password": "correct horse"}),
        json!({"username": "alice@example.com", "password": "correct horse"}),
        json!({"email": "Alice@Example.com", "password": "correct horse"}),
    ] {
        let (status, login) = hub.post("/api/v1/auth/login", &body).await;
        assert_eq!(status, 200, "{body}: {login}");
        let login: AuthResponse = serde_json::from_value(login).unwrap();
        assert_eq!(login.user.id, registered.user.id);
    }

    let (status, body) = me(&hub, &registered.access_token).await;
    assert_eq!(status, 200, "{body}");
    let me_body: MeResponse = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(me_body.user.username, "alice");
    assert!(me_body.servers.is_empty());
    assert!(
        body["user"].get("password_hash").is_none(),
        "password hash leaked: {body}"
    );
    // Alias.
    let resp = hub
        .http_client
        .get(hub.url("/api/v1/auth/me"))
        .bearer_auth(&registered.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (status, refreshed) = hub
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": registered.refresh_token}),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let refreshed: AuthResponse = serde_json::from_value(refreshed).unwrap();
    assert_ne!(refreshed.refresh_token, registered.refresh_token);
    assert_eq!(me(&hub, &refreshed.access_token).await.0, 200);

    let resp = hub
        .http_client
        .post(hub.url("/api/v1/auth/logout"))
        .json(&json!({"refresh_token": refreshed.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let cookies: Vec<_> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("phlix_hub_token=;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("phlix_hub_refresh=;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn refresh_tokens_are_refused_after_logout_and_after_rotation() {
    let hub = TestHub::start().await;
    let first = hub.register("bob", "password123").await;

    // Rotation: the first refresh token works once.
    let (status, second) = hub
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": first.refresh_token}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = hub
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": first.refresh_token}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "auth.invalid_refresh_token");

    // Logout revokes the presented token (here from the cookie).
    let second: AuthResponse = serde_json::from_value(second).unwrap();
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/auth/logout"))
        .header(
            "cookie",
            format!("phlix_hub_refresh={}", second.refresh_token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, body) = hub
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": second.refresh_token}),
        )
        .await;
    assert_eq!(status, 401, "{body}");

    // An access token is not a refresh token; nothing at all is a 400.
    let (status, _) = hub
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": second.access_token}),
        )
        .await;
    assert_eq!(status, 401);
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "Bad Request");
    hub.stop().await;
}

#[tokio::test]
async fn ten_concurrent_signups_elect_exactly_one_admin() {
    let hub = TestHub::start().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = hub.http_client.clone();
        let url = hub.url("/api/v1/auth/signup");
        tasks.push(tokio::spawn(async move {
            let body = json!({"username": format!("user{i}"), "email": format!("user{i}@example.com"), "password": "password123"});
            let resp = client.post(url).json(&body).send().await.unwrap();
            let (status, body) = status_json(resp).await;
            assert_eq!(status, 201, "{body}");
            serde_json::from_value::<AuthResponse>(body).unwrap()
        }));
    }
    let mut admins = 0;
    for task in tasks {
        admins += usize::from(task.await.unwrap().user.is_admin);
    }
    assert_eq!(
        admins, 1,
        "exactly one of ten concurrent sign-ups becomes admin"
    );
    // A later user is not admin.
    assert!(!hub.register("late", "password123").await.user.is_admin);
    hub.stop().await;
}

#[tokio::test]
async fn duplicate_username_or_email_is_a_409_json_conflict() {
    let hub = TestHub::start().await;
    hub.register("carol", "password123").await;
    let cases = [
        (
            json!({"username": "CAROL", "email": "other@example.com", "password": "password123"}),
            "auth.username_taken",
        ),
        (
            json!({"username": "carol2", "email": "Carol@Example.com", "password": "password123"}),
            "auth.email_taken",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = hub.post("/api/v1/auth/register", &body).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["error"], "Conflict");
        assert_eq!(answer["code"], code);
    }
    hub.stop().await;
}

#[tokio::test]
async fn six_failed_logins_from_one_ip_are_rate_limited_with_retry_after() {
    let hub = TestHub::start().await;
    hub.register("dave", "password123").await;
    for attempt in 1..=5 {
        let (status, body) = hub
            .post(
                "/api/v1/auth/login",
                &json!({"username": "dave", "password": "wrong-password"}),
            )
            .await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
        assert_eq!(
            body,
            json!({"error": "Unauthorized", "message": "Invalid username or password"})
        );
    }
    // Even the right password is refused now.
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/auth/login"))
        .json(&json!({"username": "dave", "password": "password123"}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "Too Many Requests");
    assert_eq!(body["code"], "rate_limited");
    hub.stop().await;
}

/// A client whose connections come from `127.0.0.<last>` (Linux routes all of 127/8 to
/// loopback), so the hub sees a different address per client.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, last]))
        .build()
        .unwrap()
}

async fn login_from(hub: &TestHub, last: u8, username: &str, password: &str) -> (u16, Value) {
    let resp = client_from(last)
        .post(hub.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

#[tokio::test]
async fn guesses_from_many_addresses_lock_the_account_but_not_its_known_devices() {
    let hub = TestHub::start().await;
    let admin = hub.register("root", "password123").await;
    // The victim signs up from 127.0.0.1: that address is known to the account from now on.
    let victim = hub.register("victim", "victim-password").await;
    let victim_id = victim.user.id.clone();
    let mut events = hub
        .http_client
        .get(hub.url("/api/v1/me/events"))
        .bearer_auth(&victim.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);

    // Ten wrong guesses from three addresses, each under the per-address limit of 5.
    let mut statuses = Vec::new();
    for last in [2u8, 3, 4] {
        for _ in 0..4 {
            statuses.push(login_from(&hub, last, "victim", "guess").await.0);
        }
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(
        &statuses[10..],
        &[429, 429],
        "locked after 10: {statuses:?}"
    );

    // A new address is refused even with the right password, with the lock's own code.
    let resp = client_from(5)
        .post(hub.url("/api/v1/auth/login"))
        .json(&json!({"username": "victim", "password": "victim-password"}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("auth.account_locked")),
        "{body}"
    );

    // The owner hears of it on their event stream, and the audit log has the lock.
    let mut seen = String::new();
    while !seen.contains("event: auth.account_locked") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), events.chunk())
            .await
            .expect("the lock event arrives")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains(&format!("\"userId\":\"{victim_id}\"")),
        "{seen}"
    );
    let store = hub.store().await;
    let locks = store
        .recent_audit(Some("auth.account_locked"), 10)
        .await
        .unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].user_id.as_deref(), Some(victim_id.as_str()));

    // The known address still signs in, and that lifts the lock for everyone.
    assert_eq!(
        login_from(&hub, 1, "victim", "victim-password").await.0,
        200
    );
    assert_eq!(
        login_from(&hub, 6, "victim", "victim-password").await.0,
        200
    );

    // Locked again; only an admin may lift it, and then a new address gets in.
    for last in [7u8, 8, 9] {
        for _ in 0..4 {
            login_from(&hub, last, "victim", "guess").await;
        }
    }
    assert_eq!(
        login_from(&hub, 10, "victim", "victim-password").await.0,
        429
    );
    let unlock = format!("/api/v1/admin/users/{victim_id}/unlock");
    let resp = hub
        .http_client
        .post(hub.url(&unlock))
        .bearer_auth(&victim.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "only admins unlock");
    let resp = hub
        .http_client
        .post(hub.url(&unlock))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["was_locked"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    assert_eq!(
        login_from(&hub, 10, "victim", "victim-password").await.0,
        200
    );
    let unlocks = store
        .recent_audit(Some("auth.account_unlocked"), 10)
        .await
        .unwrap();
    assert_eq!(unlocks.len(), 1);
    hub.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_json_errors_never_500() {
    let hub = TestHub::start().await;
    let client = &hub.http_client;
    let register = hub.url("/api/v1/auth/register");

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            client
                .post(&register)
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "invalid_json",
        ),
        (
            client
                .post(&register)
                .header("content-type", "text/plain")
                .body("{}"),
            400,
            "invalid_json",
        ),
        (
            client.post(&register).body(r#"{"username":"x"}"#),
            400,
            "invalid_json",
        ),
        (
            client.post(&register).json(&json!([1, 2, 3])),
            400,
            "invalid_json",
        ),
        (
            client
                .post(&register)
                .json(&json!({"username": 5, "email": "a@b.co", "password": "password123"})),
            400,
            "invalid_json",
        ),
        (
            client
                .post(&register)
                .json(&json!({"email": "a@b.co", "password": "password123"})),
            400,
            "invalid_request",
        ),
        (
            client
                .post(&register)
                .json(&json!({"username": "eve", "email": "a@b.co", "password": "short"})),
            400,
            "invalid_request",
        ),
        (
            client
                .post(&register)
                .json(&json!({"username": "eve", "email": "nope", "password": "password123"})),
            400,
            "invalid_request",
        ),
        (
            client
                .post(hub.url("/api/v1/auth/login"))
                .json(&json!({"password": "x"})),
            400,
            "invalid_request",
        ),
        (
            client.post(hub.url("/api/v1/auth/refresh")).body("{oops"),
            400,
            "invalid_json",
        ),
        (
            client
                .post(&register)
                .header("content-type", "application/json")
                .body(vec![b' '; 2 * 1024 * 1024]),
            413,
            "body_too_large",
        ),
        (
            client.get(hub.url("/api/v1/nothing-here")),
            404,
            "not_found",
        ),
        (client.get(hub.url("/no-such-page")), 404, "not_found"),
        (
            client.delete(hub.url("/api/v1/auth/login")),
            405,
            "method_not_allowed",
        ),
        (client.get(hub.url("/api/v1/me")), 401, "auth.required"),
        (
            client
                .get(hub.url("/api/v1/me"))
                .bearer_auth("garbage.token.here"),
            401,
            "auth.invalid_token",
        ),
        (
            client
                .get(hub.url("/api/v1/me"))
                .header("authorization", "Basic Zm9vOmJhcg=="),
            401,
            "auth.required",
        ),
    ];
    for (request, expected_status, expected_code) in cases {
        let request = request.build().unwrap();
        let label = format!("{} {}", request.method(), request.url());
        let resp = client.execute(request).await.unwrap();
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "{label}"
        );
        let (status, body) = status_json(resp).await;
        assert_eq!(status, expected_status, "{label}: {body}");
        assert_eq!(body["code"], expected_code, "{label}: {body}");
        assert!(body["error"].is_string(), "{label}: {body}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn the_session_cookie_authenticates_and_deleted_users_are_refused() {
    let hub = TestHub::start().await;
    let auth = hub.register("frank", "password123").await;
    let cookie = format!("phlix_hub_token={}", auth.access_token);
    let resp = hub
        .http_client
        .get(hub.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A token for a user that no longer exists is refused with its own code.
    let store = hub.store().await;
    common::execute(&store, "DELETE FROM users WHERE id = $1", &[&auth.user.id]).await;
    let (status, body) = me(&hub, &auth.access_token).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "auth.user_not_found");
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn auth_events_are_written_to_the_audit_log() {
    let hub = TestHub::start().await;
    let auth = hub.register("grace", "password123").await;
    hub.post(
        "/api/v1/auth/login",
        &json!({"username": "grace", "password": "nope-nope"}),
    )
    .await;
    hub.post(
        "/api/v1/auth/login",
        &json!({"username": "grace", "password": "password123"}),
    )
    .await;
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/auth/logout"))
        .json(&json!({"refresh_token": auth.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let store = hub.store().await;
    let rows = store.recent_audit(None, 50).await.unwrap();
    let events: Vec<(&str, bool)> = rows
        .iter()
        .rev()
        .map(|r| (r.event.as_str(), r.success))
        .collect();
    assert_eq!(
        events,
        vec![
            ("auth.register", true),
            ("auth.login.failure", false),
            ("auth.login.success", true),
            ("auth.logout", true)
        ]
    );
    for row in &rows {
        assert_eq!(
            row.user_id.as_deref(),
            Some(auth.user.id.as_str()),
            "{row:?}"
        );
        assert_eq!(row.ip_address.as_deref(), Some("127.0.0.1"));
    }
    assert_eq!(rows[2].reason.as_deref(), Some("wrong_password"));
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn token_lifetimes_follow_the_hub_settings_at_mint_time() {
    let hub = TestHub::start().await;
    let store = hub.store().await;
    store
        .put_setting("auth.access_ttl", "600", "int", 0)
        .await
        .unwrap();
    let auth = hub.register("heidi", "password123").await;
    assert_eq!(auth.expires_in, 600);
    assert_eq!(auth.claims.exp - auth.claims.iat, 600);
    // Out-of-range stored values fall back to the default.
    store
        .put_setting("auth.access_ttl", "5", "int", 0)
        .await
        .unwrap();
    let (_, body) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "heidi", "password": "password123"}),
        )
        .await;
    assert_eq!(body["expires_in"], 3600);
    store.close().await;
    hub.stop().await;
}

/// SPEC E.1: the session cookie counts only for GET under `/api/`. A cross-site form can send
/// the cookie (per-server subdomains are same-site with the hub), so every mutating API route
/// must refuse a cookie-only request — here with a foreign Origin and a form content type, as
/// a forged form would send it — and nothing may change.
#[tokio::test]
async fn mutating_api_routes_refuse_a_cookie_without_a_bearer_token() {
    let hub = TestHub::start().await;
    let admin = hub.register("csrfadmin", "password123").await;
    let cookie = format!("phlix_hub_token={}", admin.access_token);
    let routes = mutating_api_routes(&admin.user.id);
    for expected in [
        "DELETE /api/v1/me/servers/s1",
        "POST /api/v1/me/servers/s1/relay-token",
        "PUT /api/v1/me/hub-settings",
        "POST /api/v1/admin/users/{user}/unlock",
        "DELETE /api/v1/servers/s1/proxy/x",
    ] {
        let expected = expected.replace("{user}", &admin.user.id);
        assert!(
            routes.iter().any(|(m, p)| format!("{m} {p}") == expected),
            "the router walk missed {expected}: {routes:?}"
        );
    }
    for (method, path) in &routes {
        let send = |with_cookie: bool| {
            let mut request = hub
                .http_client
                .request(method.clone(), hub.url(path))
                .header("origin", "http://evil.example")
                .header("content-type", "text/plain")
                .header("accept-phlix-protocol", "v1")
                .body(r#"{"settings":{"auth.access_ttl":300},"policy":"all","claim_code":"AAAA-BBBB"}"#);
            if with_cookie {
                request = request.header("cookie", &cookie);
            }
            request.send()
        };
        // The cookie must change nothing: the same answer as with no credentials at all.
        let answer = |response: reqwest::Response| async move {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        };
        let (bare, bare_body) = answer(send(false).await.unwrap()).await;
        let (status, body) = answer(send(true).await.unwrap()).await;
        assert_eq!(
            (status, &body["code"]),
            (bare, &bare_body["code"]),
            "{method} {path}: with the cookie {body}, without {bare_body}"
        );
        assert!(
            !(200..300).contains(&status) || path == "/api/v1/auth/logout",
            "{method} {path} succeeded with a cookie: {body}"
        );
    }
    // The refused settings write changed nothing; a bearer token still works.
    let resp = hub
        .http_client
        .get(hub.url("/api/v1/me/hub-settings"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    let (status, body) = common::status_json(resp).await;
    assert_eq!(status, 200);
    assert_ne!(body["data"]["settings"]["auth.access_ttl"], 300, "{body}");
    hub.stop().await;
}

/// Every mutating route under `/api/` (POST, PUT, PATCH, DELETE), read from the OpenAPI
/// document, which is made from the same `routes!` list as the router (and
/// `tests/openapi.rs` checks that no route of the source is missing from it), so a route
/// added later is covered without touching this test.
fn mutating_api_routes(user_id: &str) -> Vec<(reqwest::Method, String)> {
    let document: Value = serde_json::from_str(phlix_hub::openapi::json()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") {
            continue;
        }
        let full = path.replace("{id}/unlock", &format!("{user_id}/unlock"));
        // Every other parameter gets a placeholder (`{claim_id}` → `s1`, `{path}` → `x`).
        let concrete: String = full
            .split('/')
            .map(|segment| match segment {
                "{path}" => "x",
                s if s.starts_with('{') => "s1",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        for (name, method) in [
            ("post", reqwest::Method::POST),
            ("put", reqwest::Method::PUT),
            ("patch", reqwest::Method::PATCH),
            ("delete", reqwest::Method::DELETE),
        ] {
            if item.get(name).is_some() {
                routes.push((method, concrete.clone()));
            }
        }
    }
    routes
}

/// Refresh and logout take an optional JSON object: an array is refused like any other body
/// that is not one (found by schemathesis: serde read `[]` as an empty object and logout
/// answered 204).
#[tokio::test]
async fn refresh_and_logout_refuse_a_body_that_is_not_an_object() {
    let hub = TestHub::start().await;
    let user = hub.register("arrays", "password123").await;
    for path in ["/api/v1/auth/refresh", "/api/v1/auth/logout"] {
        for body in ["[]", "[\"token\"]", "\"token\"", "7"] {
            let resp = hub
                .http_client
                .post(hub.url(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, answer) = status_json(resp).await;
            assert_eq!(status, 400, "{path} {body}: {answer}");
            assert_eq!(answer["code"], "invalid_json", "{path} {body}: {answer}");
        }
    }
    // The object form still works.
    let (status, answer) = hub
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}
