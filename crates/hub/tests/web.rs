//! The web UI over real HTTP, as a browser without JavaScript uses it: redirects, cookie
//! sessions, CSRF, every form and its error pages, sharing and invite links, webhook endpoints
//! against a real receiver, the live-event stream and the metrics history. The real-browser journeys are in `browser.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::TestHub;
use common::fake_server::FakePhlixServer;
use common::receiver::Receiver;
use common::web_client::WebClient;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// A fake server that asked for a claim code (not yet redeemed).
async fn waiting_server(hub: &TestHub, name: &str) -> FakePhlixServer {
    let mut server = FakePhlixServer::new(&hub.url(""), name);
    let (status, body) = server.request_claim().await;
    assert_eq!(status, 200, "{body}");
    server
}

/// Claims `server` through the form and lets it collect its enrollment.
async fn claim_via_form(web: &mut WebClient, server: &mut FakePhlixServer) -> String {
    let code = server.claim_code.clone().unwrap();
    let page = web.submit("/app/claim-server", &[("code", &code)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&server.name), "{}", page.body);
    assert_eq!(server.poll().await["status"], "claimed");
    server.server_id()
}

#[tokio::test]
async fn redirects_follow_the_php_hub() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    for (path, target) in [
        ("/", "/app/servers"),
        ("/app", "/app/servers"),
        ("/login", "/app/login"),
        (
            "/login?next=%2Fapp%2Fsettings",
            "/app/login?next=%2Fapp%2Fsettings",
        ),
        ("/signup", "/app/signup"),
        ("/invite/abc.def", "/app/invite/abc.def"),
        ("/my-servers", "/app/servers"),
        ("/claim-server", "/app/claim-server"),
        ("/hub-settings", "/app/settings"),
        ("/requests", "/app/requests"),
        ("/admin/requests", "/app/admin/requests"),
        ("/servers/s-1", "/app/servers/s-1"),
        ("/app/servers", "/app/login?next=%2Fapp%2Fservers"),
        (
            "/app/servers/x?tab=1",
            "/app/login?next=%2Fapp%2Fservers%2Fx%3Ftab%3D1",
        ),
        ("/app/claim-server", "/app/login?next=%2Fapp%2Fclaim-server"),
        ("/app/settings", "/app/login?next=%2Fapp%2Fsettings"),
    ] {
        let page = web.get(path).await;
        assert_eq!(page.status, 302, "{path}");
        assert_eq!(page.location.as_deref(), Some(target), "{path}");
    }
    // No HEAD routes (SPEC E.1): HEAD is 404 everywhere but on the relay's proxy route.
    for path in [
        "/health",
        "/app/login",
        "/.well-known/jwks.json",
        "/api/v1/me",
    ] {
        let response = reqwest::Client::new()
            .head(hub.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "HEAD {path}");
    }
    // A JSON client of a page gets the API's 401 (SPEC E.1), and the API keeps answering JSON.
    let response = reqwest::Client::new()
        .get(hub.url("/app/servers"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let (status, body) = common::status_json(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("auth.required"))
    );
    let page = web.get("/api/v1/me/servers").await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("auth.required"), "{}", page.body);
    hub.stop().await;
}

#[tokio::test]
async fn sign_up_sign_out_and_sign_in_with_session_cookies() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    let page = web.get("/app/signup?next=%2Fapp%2Fclaim-server").await;
    assert_eq!(page.status, 200);
    let csrf = page.cookie_line("phlix_hub_csrf").expect("a CSRF cookie");
    assert!(
        csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"),
        "{csrf}"
    );
    let token = web.cookies["phlix_hub_csrf"].clone();
    assert!(
        page.body
            .contains(&format!(r#"name="_csrf" value="{token}""#)),
        "the form repeats the cookie's token"
    );
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );

    let page = web
        .submit(
            "/app/signup",
            &[
                ("username", "alice"),
                ("email", "alice@example.com"),
                ("password", "correct horse"),
                ("next", "/app/claim-server"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/app/claim-server"));
    for name in ["phlix_hub_token", "phlix_hub_refresh"] {
        let line = page
            .cookie_line(name)
            .unwrap_or_else(|| panic!("{name} set"));
        assert!(line.contains("HttpOnly"), "{line}");
        assert!(line.contains("SameSite=Lax"), "{line}");
        assert!(line.contains("Path=/"), "{line}");
        assert!(!line.contains("Secure"), "plain-http hub: {line}");
    }
    assert!(
        page.cookie_line("phlix_hub_token")
            .unwrap()
            .contains("Max-Age=3600")
    );
    let page = web.get("/app/servers").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("alice"), "the header names the user");
    assert!(page.body.contains("No servers yet"), "{}", page.body);
    // The first account is the admin: it sees the settings link.
    assert!(page.body.contains(r#"href="/app/settings""#));
    // The login page sends a signed-in visitor on.
    assert_eq!(web.get("/app/login").await.status, 302);

    let refresh = web.cookies["phlix_hub_refresh"].clone();
    let page = web.submit("/app/logout", &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/app/login?signed_out=1"));
    assert!(!web.cookies.contains_key("phlix_hub_token"));
    assert!(!web.cookies.contains_key("phlix_hub_refresh"));
    assert!(
        web.get("/app/login?signed_out=1")
            .await
            .body
            .contains("You are signed out.")
    );
    assert_eq!(web.get("/app/servers").await.status, 302);
    // Logging out revoked the refresh token and left the same audit row as the API's logout.
    let (status, _) = hub
        .post("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(status, 401);
    let store = hub.store().await;
    let logouts = store.recent_audit(Some("auth.logout"), 5).await.unwrap();
    assert_eq!(logouts.len(), 1);
    assert!(logouts[0].user_id.is_some(), "the signed-out user is named");
    store.close().await;

    // Signing in again, by e-mail, lands on `next`.
    let page = web
        .submit(
            "/app/login",
            &[
                ("login", "alice@example.com"),
                ("password", "correct horse"),
                ("next", "/app/settings"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/app/settings"));
    assert_eq!(web.get("/app/settings").await.status, 200);
    // `next` never leaves the hub.
    let mut other = WebClient::new(&hub.url(""));
    let page = other
        .submit(
            "/app/login",
            &[
                ("login", "alice"),
                ("password", "correct horse"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/app/servers"));
    hub.stop().await;
}

#[tokio::test]
async fn sign_up_and_login_errors_re_render_the_form() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    web.sign_up("alice", "correct horse").await;
    let mut guest = WebClient::new(&hub.url(""));
    let page = guest
        .submit(
            "/app/signup",
            &[
                ("username", "alice"),
                ("email", "a2@example.com"),
                ("password", "long enough"),
            ],
        )
        .await;
    assert_eq!(page.status, 409);
    assert!(
        page.body.contains("This username is taken"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"value="a2@example.com""#),
        "the form keeps what was typed"
    );
    let page = guest
        .submit(
            "/app/signup",
            &[
                ("username", "bob"),
                ("email", "bob@example.com"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains(r#"role="alert""#), "{}", page.body);
    assert!(!guest.cookies.contains_key("phlix_hub_token"));

    let page = guest
        .submit(
            "/app/login",
            &[("login", "alice"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(page.status, 401);
    assert!(
        page.body.contains("Wrong username or password."),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"value="alice""#));
    for _ in 0..4 {
        guest
            .submit(
                "/app/login",
                &[("login", "alice"), ("password", "wrong password")],
            )
            .await;
    }
    let page = guest
        .submit(
            "/app/login",
            &[("login", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(page.status, 429, "five failures lock the address out");
    assert!(page.headers.contains_key("retry-after"));
    assert!(
        page.body.contains("Too many failed sign-ins"),
        "{}",
        page.body
    );
    hub.stop().await;
}

#[tokio::test]
async fn forms_without_a_matching_csrf_token_or_from_another_origin_are_refused() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    web.sign_up("alice", "correct horse").await;
    let mut server = waiting_server(&hub, "NAS").await;
    let code = server.claim_code.clone().unwrap();

    // No token at all, a token that is not the cookie's, a token without a cookie.
    let page = web.post_form("/app/claim-server", &[("code", &code)]).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Form refused"), "{}", page.body);
    let page = web
        .post_form(
            "/app/claim-server",
            &[("_csrf", "x".repeat(43).as_str()), ("code", &code)],
        )
        .await;
    assert_eq!(page.status, 403);
    let csrf = web.cookies.remove("phlix_hub_csrf").unwrap();
    let page = web
        .post_form("/app/claim-server", &[("_csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(page.status, 403);
    web.cookies.insert("phlix_hub_csrf".into(), csrf);
    // The right token sent from a foreign page.
    web.origin = Some("http://evil.example".into());
    let page = web.submit("/app/claim-server", &[("code", &code)]).await;
    assert_eq!(page.status, 403);
    // Nothing was claimed by the refused posts.
    assert_eq!(server.poll().await["status"], "pending");
    // The hub's own origin passes.
    web.origin = Some(hub.url(""));
    claim_via_form(&mut web, &mut server).await;
    // Logout needs the token too: without it the session survives.
    web.origin = None;
    assert_eq!(web.post_form("/app/logout", &[]).await.status, 403);
    assert_eq!(web.get("/app/servers").await.status, 200);
    hub.stop().await;
}

#[tokio::test]
async fn cookies_are_secure_behind_an_https_public_url() {
    let hub = TestHub::start_with(|args| args.public_url = "https://hub.example.com".into()).await;
    let mut web = WebClient::new(&hub.url(""));
    let page = web.sign_up("alice", "correct horse").await;
    for name in ["phlix_hub_token", "phlix_hub_refresh"] {
        assert!(
            page.cookie_line(name).unwrap().contains("; Secure"),
            "{name}"
        );
    }
    // The public origin is the hub's own.
    web.origin = Some("https://hub.example.com".into());
    assert_eq!(web.submit("/app/logout", &[]).await.status, 303);
    hub.stop().await;
}

#[tokio::test]
async fn an_expired_access_cookie_is_renewed_from_the_refresh_cookie() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    web.sign_up("alice", "correct horse").await;
    let old_refresh = web.cookies["phlix_hub_refresh"].clone();
    // The browser dropped the access cookie when it expired.
    web.cookies.remove("phlix_hub_token");
    let page = web.get("/app/servers").await;
    assert_eq!(page.status, 200, "renewed silently");
    assert!(page.cookie_line("phlix_hub_token").is_some());
    assert_ne!(web.cookies["phlix_hub_refresh"], old_refresh, "rotated");
    // The spent refresh token works no more.
    let mut thief = WebClient::new(&hub.url(""));
    thief
        .cookies
        .insert("phlix_hub_refresh".into(), old_refresh);
    assert_eq!(thief.get("/app/servers").await.status, 302);
    hub.stop().await;
}

#[tokio::test]
async fn the_claim_form_normalises_codes_and_explains_failures() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    web.sign_up("alice", "correct horse").await;
    let mut server = waiting_server(&hub, "Alice's NAS").await;
    let typed = server
        .claim_code
        .clone()
        .unwrap()
        .to_lowercase()
        .replace('-', "");
    let page = web.submit("/app/claim-server", &[("code", &typed)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Server paired"), "{}", page.body);
    assert!(
        page.body.contains("Alice&#39;s NAS") || page.body.contains("Alice&#x27;s NAS"),
        "escaped name: {}",
        page.body
    );
    // Until the server collects its enrollment, the code reads as used; then it is gone.
    let page = web.submit("/app/claim-server", &[("code", &typed)]).await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("already been used"), "{}", page.body);
    assert_eq!(server.poll().await["status"], "claimed");
    assert_eq!(
        web.submit("/app/claim-server", &[("code", &typed)])
            .await
            .status,
        404
    );
    let page = web
        .submit("/app/claim-server", &[("code", "ZZZZ-ZZZZ")])
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("No server is waiting"), "{}", page.body);
    assert!(
        page.body.contains(r#"value="ZZZZ-ZZZZ""#),
        "the field keeps the code"
    );
    let page = web.submit("/app/claim-server", &[("code", "  ")]).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Enter the code"), "{}", page.body);

    let late = waiting_server(&hub, "Late NAS").await;
    let store = hub.store().await;
    common::execute(
        &store,
        "UPDATE server_claims SET expires_at = 1 WHERE claim_code = $1",
        &[late.claim_code.as_deref().unwrap()],
    )
    .await;
    store.close().await;
    let page = web
        .submit(
            "/app/claim-server",
            &[("code", late.claim_code.as_deref().unwrap())],
        )
        .await;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("has expired"), "{}", page.body);
    hub.stop().await;
}

fn metrics_heartbeat(server: &FakePhlixServer, cpu: f64, used: i64) -> Value {
    let mut body = server.heartbeat_body(&[("1", "Movies"), ("2", "Shows")]);
    body["hostMetrics"] = json!({
        "cpuPercent": cpu, "memUsedBytes": used, "memTotalBytes": 8_i64 << 30,
        "diskUsedBytes": 1, "diskTotalBytes": 2, "load1": 0.5, "netRxBytes": 1, "netTxBytes": 1,
    });
    body
}

#[tokio::test]
async fn server_detail_shows_history_and_charts_and_its_buttons_work() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    web.sign_up("alice", "correct horse").await;
    let mut server = waiting_server(&hub, "NAS").await;
    let id = claim_via_form(&mut web, &mut server).await;
    let detail = format!("/app/servers/{id}");
    let page = web.get(&detail).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("No heartbeat received yet"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<svg"), "no metrics, no chart");

    for (cpu, used) in [(12.5, 2_i64 << 30), (40.0, 3 << 30), (25.0, 4 << 30)] {
        let (status, body) = server
            .send_heartbeat(&metrics_heartbeat(&server, cpu, used))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let page = web.get(&detail).await;
    assert_eq!(
        page.body.matches(r#"<svg class="sparkline""#).count(),
        2,
        "CPU and memory"
    );
    assert!(page.body.contains("CPU: latest 25.0 %"), "{}", page.body);
    assert!(page.body.contains("4.0 GiB of 8.0 GiB"), "{}", page.body);
    assert!(page.body.contains("Movies, Shows"));
    assert!(page.body.contains("12.5 %"), "history lists each heartbeat");

    // A relay token, shown once.
    let page = web.submit(&format!("{detail}/relay-token"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = page
        .body
        .split(r#"id="relay-token" type="text" readonly value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the token is on the page")
        .to_owned();
    assert_eq!(token.len(), 64, "64 lowercase hex (SPEC L)");
    assert!(
        !web.get(&detail).await.body.contains(&token),
        "shown only once"
    );
    let store = hub.store().await;
    let grant = store
        .relay_token_grant(&phlix_hub_token_hash(&token), phlix_hub::auth::now_unix())
        .await
        .unwrap()
        .expect("the shown token is a valid relay token");
    assert_eq!(grant.server_id, id);

    // Proxy policy.
    let page = web
        .submit(&format!("{detail}/proxy-policy"), &[("policy", "all")])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{detail}?saved=policy").as_str())
    );
    let page = web.get(&format!("{detail}?saved=policy")).await;
    assert!(
        page.body.contains(r#"value="all" checked"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("The proxy policy was saved."));
    let page = web
        .submit(
            &format!("{detail}/proxy-policy"),
            &[("policy", "everything")],
        )
        .await;
    assert_eq!(page.status, 422);

    // Another user cannot see or touch it.
    let mut bob = WebClient::new(&hub.url(""));
    bob.sign_up("bob", "correct horse").await;
    assert_eq!(bob.get(&detail).await.status, 403);
    assert_eq!(
        bob.submit(&format!("{detail}/remove"), &[("confirm", "1")])
            .await
            .status,
        403
    );
    assert_eq!(bob.get("/app/servers/no-such-server").await.status, 404);
    assert!(!bob.get("/app/servers").await.body.contains("NAS"));
    assert_eq!(bob.get("/app/settings").await.status, 403, "not an admin");
    assert_eq!(
        bob.get("/app/admin/requests").await.status,
        403,
        "not an admin"
    );
    assert_eq!(
        bob.submit("/app/admin/requests/1/approve", &[])
            .await
            .status,
        403,
        "not an admin"
    );
    // A member's request page works without Radarr configured and says so on a search.
    let page = bob.get("/app/requests?type=movie&q=dune").await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(
        page.body.contains("Radarr is not configured"),
        "{}",
        page.body
    );
    // A request form without its CSRF token is refused and creates nothing.
    let page = bob
        .post_form(
            "/app/requests",
            &[("type", "movie"), ("tmdb_id", "1"), ("title", "x")],
        )
        .await;
    assert_eq!(page.status, 403);
    let page = bob
        .submit(
            "/app/requests",
            &[("type", "movie"), ("tmdb_id", "1"), ("title", "x")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(
        bob.get("/app/requests")
            .await
            .body
            .contains("data-request-id")
    );

    // The proxy route knows the server (no tunnel: 503) — and forgets it the moment it is
    // removed, although it caches what it checks.
    let token = login_token(&hub, "alice").await;
    let proxy = |hub: &TestHub| {
        hub.http_client
            .get(hub.url(&format!("/api/v1/servers/{id}/proxy/api/v1/health")))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(proxy(&hub).await.unwrap().status(), 503);

    // Removal needs the confirmation box.
    let page = web.submit(&format!("{detail}/remove"), &[]).await;
    assert_eq!(page.status, 422);
    assert!(store.server_by_id(&id).await.unwrap().is_some());
    let page = web
        .submit(&format!("{detail}/remove"), &[("confirm", "1")])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/app/servers?removed=NAS"));
    assert!(store.server_by_id(&id).await.unwrap().is_none());
    assert_eq!(proxy(&hub).await.unwrap().status(), 404);
    store.close().await;
    hub.stop().await;
}

fn phlix_hub_token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

#[tokio::test]
async fn settings_are_saved_all_or_nothing() {
    let hub = TestHub::start().await;
    let mut admin = WebClient::new(&hub.url(""));
    admin.sign_up("root", "correct horse").await;
    let page = admin.get("/app/settings").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"name="auth.access_ttl""#),
        "{}",
        page.body
    );
    let page = admin
        .submit(
            "/app/settings",
            &[
                ("server.enrollment_ttl", "86400"),
                ("auth.access_ttl", "12"),
                ("auth.refresh_ttl", "7200"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Nothing was saved"), "{}", page.body);
    assert!(page.body.contains("from 300 to 86400"), "{}", page.body);
    let (_, settings) = common::status_json(
        hub.http_client
            .get(hub.url("/api/v1/me/hub-settings"))
            .bearer_auth(login_token(&hub, "root").await)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        settings["data"]["settings"]["server.enrollment_ttl"], 604_800,
        "unchanged"
    );

    let page = admin
        .submit(
            "/app/settings",
            &[
                ("server.enrollment_ttl", "86400"),
                ("auth.access_ttl", "900"),
                ("auth.refresh_ttl", "7200"),
                ("invite.default_expiry_seconds", "0"),
                ("server.max_users_per_server", "5"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = admin.get("/app/settings?saved=1").await;
    assert!(page.body.contains("Settings saved."));
    assert!(page.body.contains(r#"value="900""#));
    // The *arr fields: a bad URL is refused with its field's message; a good one is saved, and
    // the check box of a boolean setting turns it on.
    let page = admin
        .submit(
            "/app/settings",
            &[
                ("server.arr.radarr.enabled", "on"),
                ("server.arr.radarr.url", "ftp://radarr.lan"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains("Must be an http:// or https:// URL"),
        "{}",
        page.body
    );
    let page = admin
        .submit(
            "/app/settings",
            &[
                ("server.arr.radarr.enabled", "on"),
                ("server.arr.radarr.url", "http://radarr.lan:7878/"),
                ("server.arr.radarr.root_folder", "/data/films"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (_, settings) = common::status_json(
        hub.http_client
            .get(hub.url("/api/v1/me/hub-settings"))
            .bearer_auth(login_token(&hub, "root").await)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let values = &settings["data"]["settings"];
    assert_eq!(values["server.arr.radarr.enabled"], true, "{settings}");
    assert_eq!(values["server.arr.radarr.url"], "http://radarr.lan:7878");
    assert_eq!(values["server.arr.radarr.root_folder"], "/data/films");
    assert_eq!(values["auth.access_ttl"], 900, "fields not sent are kept");
    let page = admin.get("/app/settings").await;
    for group in [
        "Accounts",
        "Sharing",
        "Media requests",
        "Radarr (films)",
        "Sonarr (series)",
    ] {
        assert!(
            page.body.contains(&format!("<legend>{group}</legend>")),
            "{group}"
        );
    }
    hub.stop().await;
}

async fn login_token(hub: &TestHub, username: &str) -> String {
    let (status, body) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": username, "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unknown_pages_invites_and_assets() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    web.sign_up("alice", "correct horse").await;
    let page = web.get("/app/nothing-here").await;
    assert_eq!(page.status, 404);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = web.get("/app/invite/some-token").await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("Invite link not valid"), "{}", page.body);

    let page = web.get("/app/assets/app.css").await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(page.body.contains("prefers-color-scheme: dark"));
    let etag = page.headers["etag"].to_str().unwrap().to_owned();
    let cached = reqwest::Client::new()
        .get(hub.url("/app/assets/app.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(web.get("/app/assets/other.js").await.status, 404);
    hub.stop().await;
}

/// Reads SSE events (`event:` + `data:`) from a response until `want` of them arrived.
async fn read_events(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    want: usize,
    within: Duration,
) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while events.len() < want {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| {
                l.strip_prefix("event: ")
                    .or_else(|| l.strip_prefix("event:"))
            });
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")));
            if let (Some(name), Some(data)) = (name, data) {
                events.push((name.to_owned(), serde_json::from_str(data).unwrap()));
            }
        }
        if events.len() >= want {
            break;
        }
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
            Ok(None) => panic!("event stream ended"),
            Err(_) => break,
        }
    }
    events
}

#[tokio::test]
async fn the_event_stream_carries_only_the_owners_server_events() {
    let hub = TestHub::start_with(|args| {
        args.reaper_interval = Duration::from_millis(300);
        args.offline_after = Duration::from_secs(1);
    })
    .await;
    let mut alice = WebClient::new(&hub.url(""));
    alice.sign_up("alice", "correct horse").await;
    let mut bob = WebClient::new(&hub.url(""));
    bob.sign_up("bob", "correct horse").await;
    let mut nas = waiting_server(&hub, "Alice NAS").await;
    let nas_id = claim_via_form(&mut alice, &mut nas).await;
    let mut pi = waiting_server(&hub, "Bob Pi").await;
    let pi_id = claim_via_form(&mut bob, &mut pi).await;

    // Alice listens with her cookie (as EventSource does), Bob with a bearer token.
    let response = reqwest::Client::new()
        .get(hub.url("/api/v1/me/events"))
        .header(
            "Cookie",
            format!("phlix_hub_token={}", alice.cookies["phlix_hub_token"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut alice_events = response.bytes_stream();
    let response = reqwest::Client::new()
        .get(hub.url("/api/v1/me/events"))
        .bearer_auth(login_token(&hub, "bob").await)
        .send()
        .await
        .unwrap();
    let mut bob_events = response.bytes_stream();
    let (mut alice_buf, mut bob_buf) = (String::new(), String::new());

    // Both servers go silent: the reaper marks them offline.
    let events = read_events(
        &mut alice_events,
        &mut alice_buf,
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(events.len(), 1, "alice sees her server go offline");
    assert_eq!(events[0].0, "server.offline");
    assert_eq!(events[0].1["serverId"], nas_id.as_str());
    assert_eq!(events[0].1["status"], "offline");
    let events = read_events(&mut bob_events, &mut bob_buf, 1, Duration::from_secs(10)).await;
    assert_eq!(
        (events[0].0.as_str(), events[0].1["serverId"].as_str()),
        ("server.offline", Some(pi_id.as_str()))
    );

    // A heartbeat brings Alice's server online; Bob hears nothing of it.
    let (status, _) = nas
        .send_heartbeat(&metrics_heartbeat(&nas, 33.0, 1 << 30))
        .await;
    assert_eq!(status, 200);
    let events = read_events(&mut alice_events, &mut alice_buf, 2, Duration::from_secs(5)).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["server.online", "server.heartbeat"]);
    assert_eq!(events[1].1["serverId"], nas_id.as_str());
    assert_eq!(events[1].1["hostMetrics"]["cpuPercent"], 33.0);
    assert!(events[1].1["lastSeenAt"].as_i64().unwrap() > 0);

    // A tunnel opens and closes.
    let enrollment = nas.enrollment.clone().unwrap();
    let (ws, _ack) =
        common::fake_tunnel::open(hub.tunnel, &nas_id, &enrollment.enrollment_jwt).await;
    let events = read_events(&mut alice_events, &mut alice_buf, 1, Duration::from_secs(5)).await;
    assert_eq!(events[0].0, "relay.opened");
    assert_eq!(
        events[0].1,
        json!({"serverId": nas_id, "relayActive": true})
    );
    drop(ws);
    let events = read_events(&mut alice_events, &mut alice_buf, 1, Duration::from_secs(5)).await;
    assert_eq!(events[0].0, "relay.closed");

    // Bob's stream got nothing of Alice's: his next event is his own server's heartbeat.
    let (status, _) = pi.heartbeat(&[]).await;
    assert_eq!(status, 200);
    let events = read_events(&mut bob_events, &mut bob_buf, 2, Duration::from_secs(5)).await;
    for (name, data) in &events {
        assert_eq!(data["serverId"], pi_id.as_str(), "{name}: {data}");
    }

    // Without a session there is no stream.
    let response = reqwest::get(hub.url("/api/v1/me/events")).await.unwrap();
    assert_eq!(response.status(), 401);
    drop((alice_events, bob_events));
    hub.stop().await;
}

#[tokio::test]
async fn metrics_history_lists_host_metrics_oldest_first() {
    let hub = TestHub::start().await;
    let mut web = WebClient::new(&hub.url(""));
    web.sign_up("alice", "correct horse").await;
    let mut server = waiting_server(&hub, "NAS").await;
    let id = claim_via_form(&mut web, &mut server).await;
    for cpu in [10.0, 20.0] {
        server
            .send_heartbeat(&metrics_heartbeat(&server, cpu, 1 << 30))
            .await;
    }
    server.heartbeat(&[]).await;
    let token = login_token(&hub, "alice").await;
    let get = |path: String| {
        hub.http_client
            .get(hub.url(&path))
            .bearer_auth(&token)
            .send()
    };
    let (status, body) = common::status_json(
        get(format!("/api/v1/me/servers/{id}/metrics?since=0"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    assert_eq!(points[0]["hostMetrics"]["cpuPercent"], 10.0);
    assert_eq!(points[1]["hostMetrics"]["cpuPercent"], 20.0);
    assert!(
        points[2].get("hostMetrics").is_none(),
        "a heartbeat without metrics"
    );
    let (status, body) = common::status_json(
        get(format!("/api/v1/me/servers/{id}/metrics?since=yesterday"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_query");
    let (status, _) =
        common::status_json(get("/api/v1/me/servers/nope/metrics".into()).await.unwrap()).await;
    assert_eq!(status, 404);
    hub.stop().await;
}

#[tokio::test]
async fn the_json_api_sets_and_clears_the_same_session_cookies() {
    let hub = TestHub::start().await;
    hub.register("alice", "correct horse").await;
    let client = reqwest::Client::new();
    let response = client
        .post(hub.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let lines: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let access_line = lines
        .iter()
        .find(|l| l.starts_with("phlix_hub_token="))
        .expect("the access cookie");
    assert!(
        access_line.starts_with(&format!("phlix_hub_token={access};")),
        "{access_line}"
    );
    assert!(access_line.contains("HttpOnly") && access_line.contains("SameSite=Lax"));
    assert!(
        lines.iter().any(|l| l.starts_with("phlix_hub_refresh=")),
        "{lines:?}"
    );

    // A browser holding that cookie sees the pages; a cookie-only refresh rotates it.
    let mut web = WebClient::new(&hub.url(""));
    web.cookies
        .insert("phlix_hub_token".into(), access.to_owned());
    assert_eq!(web.get("/app/servers").await.status, 200);
    let refresh = body["refresh_token"].as_str().unwrap();
    let response = client
        .post(hub.url("/api/v1/auth/refresh"))
        .header("Cookie", format!("phlix_hub_refresh={refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("phlix_hub_token="))
    );

    // Logout clears both.
    let response = client
        .post(hub.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .filter(|l| l.contains("Max-Age=0"))
        .collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Sharing (SPEC M, N, Q.5)

/// A server claimed by `web`'s user through the form, reporting Movies and Shows.
async fn server_with_libraries(hub: &TestHub, web: &mut WebClient, name: &str) -> FakePhlixServer {
    let mut server = waiting_server(hub, name).await;
    claim_via_form(web, &mut server).await;
    let (status, body) = server
        .heartbeat(&[("lib-movies", "Movies"), ("lib-shows", "Shows")])
        .await;
    assert_eq!(status, 200, "{body}");
    server
}

/// The `value` of the input `id` on a page.
fn input_value(body: &str, id: &str) -> String {
    body.split(&format!(r#"id="{id}""#))
        .nth(1)
        .and_then(|rest| rest.split(r#"value=""#).nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no input {id} on the page: {body}"))
        .to_owned()
}

/// The `data-share-id` of the first row of a page (or of the part after `after`).
fn first_share_id(body: &str, after: &str) -> String {
    body.split(after)
        .nth(1)
        .and_then(|rest| rest.split(r#"data-share-id=""#).nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no share row after {after}: {body}"))
        .to_owned()
}

/// The value of the first `attr="…"` on a page.
fn attr_value(body: &str, attr: &str) -> String {
    body.split(&format!(r#"{attr}=""#))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {attr} on the page: {body}"))
        .to_owned()
}

/// The test delivery a *Send test* redirect names (`…?tested=<id>#test-result`).
fn tested_of(page: &common::web_client::Page) -> String {
    let location = page.location.as_deref().expect("a redirect");
    location
        .split("tested=")
        .nth(1)
        .and_then(|rest| rest.split('#').next())
        .unwrap_or_else(|| panic!("no tested= in {location}"))
        .to_owned()
}

/// The token of an invite link URL (`…/invite/<token>`).
fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn every_page_form_refuses_a_post_without_its_csrf_token() {
    let hub = TestHub::start().await;
    let mut alice = WebClient::new(&hub.url(""));
    alice.sign_up("alice", "correct horse").await;
    let mut bob = WebClient::new(&hub.url(""));
    bob.sign_up("bob", "correct horse").await;
    let server_id = server_with_libraries(&hub, &mut alice, "NAS")
        .await
        .server_id();
    let detail = format!("/app/servers/{server_id}");

    // A share and an invite link made properly, for the forms that act on them.
    let page = alice
        .submit(
            &format!("{detail}/shares"),
            &[
                ("library_id", "lib-movies"),
                ("collaborator_email", "bob@example.com"),
                ("permission", "read"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let share_id = first_share_id(&alice.get(&detail).await.body, r#"id="server-shares""#);
    let page = alice
        .submit(
            &format!("{detail}/invites"),
            &[
                ("library_id", ""),
                ("permission", "read"),
                ("max_uses", "1"),
                ("expires_days", "7"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = token_of(&input_value(&page.body, "invite-link"));
    let store = hub.store().await;
    let invite = store
        .invite_by_hash(&phlix_hub_token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    // A webhook endpoint with one delivery, for the webhook forms.
    let (receiver, addr) = Receiver::start().await;
    let page = alice
        .submit(
            "/app/webhooks",
            &[
                ("name", "Home"),
                ("url", &format!("http://{addr}/csrf")),
                ("events", "*"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let webhook_id = attr_value(&page.body, "data-webhook-id");
    let secret = input_value(&page.body, "webhook-secret");
    let page = alice
        .submit(&format!("/app/webhooks/{webhook_id}/test"), &[])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let delivery_id = tested_of(&page);

    // Every POST route of the pages, read from the route table in the source, so a form added
    // later is covered without touching this test.
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/mod.rs")).unwrap();
    let mut posts = Vec::new();
    for route in source.split(".route(").skip(1) {
        let route = route.trim_start();
        let Some((path, rest)) = route.strip_prefix('"').and_then(|r| r.split_once('"')) else {
            continue;
        };
        if rest.contains("post(") {
            posts.push(
                path.replace("/servers/{id}", &format!("/servers/{server_id}"))
                    .replace("/shares/{id}", &format!("/shares/{share_id}"))
                    .replace("/invites/{id}", &format!("/invites/{}", invite.id))
                    .replace("/webhooks/{id}", &format!("/webhooks/{webhook_id}"))
                    .replace("{delivery_id}", &delivery_id)
                    .replace("{token}", &token),
            );
        }
    }
    for must in [
        "/app/servers/{s}/shares",
        "/app/servers/{s}/invites",
        "/app/servers/{s}/sharing-policy",
        "/app/shares/{share}/permission",
        "/app/shares/{share}/revoke",
        "/app/shares/{share}/leave",
        "/app/invites/{invite}/revoke",
        "/app/invite/{token}",
        "/app/webhooks",
        "/app/webhooks/{w}/enabled",
        "/app/webhooks/{w}/rotate",
        "/app/webhooks/{w}/test",
        "/app/webhooks/{w}/delete",
        "/app/webhooks/{w}/deliveries/{d}/redeliver",
    ] {
        let path = must
            .replace("{s}", &server_id)
            .replace("{share}", &share_id)
            .replace("{invite}", &invite.id)
            .replace("{token}", &token)
            .replace("{w}", &webhook_id)
            .replace("{d}", &delivery_id);
        assert!(posts.contains(&path), "{path} is a POST route: {posts:?}");
    }
    let fields: &[(&str, &str)] = &[
        ("library_id", "lib-shows"),
        ("collaborator_email", "bob@example.com"),
        ("permission", "readwrite"),
        ("max_uses", "3"),
        ("name", "Forged"),
        ("url", "http://127.0.0.1:1/forged"),
        ("events", "*"),
        ("enabled", "0"),
        ("confirm", "1"),
    ];
    for path in &posts {
        for client in [&mut alice, &mut bob] {
            let page = client.post_form(path, fields).await;
            assert_eq!(page.status, 403, "POST {path} without _csrf: {}", page.body);
            assert!(page.body.contains("Form refused"), "{path}: {}", page.body);
        }
        // A token that is not the cookie's is refused as well.
        let page = alice
            .post_form(
                path,
                &[
                    ("_csrf", "x".repeat(43).as_str()),
                    ("permission", "readwrite"),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "POST {path} with a wrong _csrf");
    }

    // Nothing changed: one share, still read only and active; the link unused; the switch on.
    let shares = store
        .outgoing_shares(&invite.owner_user_id, phlix_hub::auth::now_unix())
        .await
        .unwrap();
    assert_eq!(shares.len(), 1, "{shares:?}");
    assert_eq!(shares[0].permission_level, "read");
    let after = store.invite_by_id(&invite.id).await.unwrap().unwrap();
    assert_eq!((after.use_count, after.max_uses), (0, 1));
    assert!(
        store
            .server_by_id(&server_id)
            .await
            .unwrap()
            .unwrap()
            .collaborator_relay
    );
    assert_eq!(
        store.invites_of(&invite.owner_user_id).await.unwrap().len(),
        1
    );
    // The one endpoint, still enabled, with its first secret and its one delivered test.
    let hooks = store.webhooks_of(&invite.owner_user_id).await.unwrap();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert!(hooks[0].enabled);
    assert_eq!(hooks[0].secret, secret);
    let deliveries = store
        .deliveries_of(&webhook_id, i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (deliveries[0].status.as_str(), deliveries[0].attempt_count),
        ("delivered", 1)
    );
    assert_eq!(receiver.on("csrf").len(), 1);
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn the_share_form_explains_each_field_and_the_lists_follow() {
    let hub = TestHub::start().await;
    let mut alice = WebClient::new(&hub.url(""));
    alice.sign_up("alice", "correct horse").await;
    let mut bob = WebClient::new(&hub.url(""));
    bob.sign_up("bob", "correct horse").await;
    let server = server_with_libraries(&hub, &mut alice, "Family NAS").await;
    let server_id = server.server_id();
    let detail = format!("/app/servers/{server_id}");
    let shares_path = format!("{detail}/shares");

    // The Sharing section: the library picker lists the server's libraries by name.
    let page = alice.get(&detail).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"id="sharing""#), "{}", page.body);
    assert!(
        page.body
            .contains(r#"<option value="lib-movies">Movies</option>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("This server is not shared with anyone."));
    assert!(page.body.contains("No invite link yet."));
    assert!(page.body.contains(r#"id="collaborator-relay" checked"#));

    let share = |email: &'static str, permission: &'static str, library: &'static str| {
        vec![
            ("library_id", library),
            ("collaborator_email", email),
            ("permission", permission),
        ]
    };
    // An e-mail no account uses: 404, said on the field, the typed values kept.
    let page = alice
        .submit(
            &shares_path,
            &share("nobody@example.com", "read", "lib-shows"),
        )
        .await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(
        page.body.contains(r#"id="share-email-error""#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("No account on this hub uses this e-mail address")
    );
    assert!(page.body.contains(r#"aria-invalid="true""#));
    assert_eq!(input_value(&page.body, "share-email"), "nobody@example.com");
    assert!(
        page.body
            .contains(r#"<option value="lib-shows" selected>Shows</option>"#)
    );
    // Oneself: 400 on the e-mail field.
    let page = alice
        .submit(
            &shares_path,
            &share("ALICE@example.com", "read", "lib-movies"),
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body
            .contains("You cannot share a library with yourself."),
        "{}",
        page.body
    );
    // A permission that is not offered, a library the server does not have, a bad expiry:
    // each said on its own field, all at once.
    let mut fields = share("bob@example.com", "admin", "lib-music");
    fields.push(("expires_days", "0"));
    let page = alice.submit(&shares_path, &fields).await;
    assert_eq!(page.status, 422, "{}", page.body);
    for id in [
        "share-permission-error",
        "share-library-error",
        "share-expires-error",
    ] {
        assert!(
            page.body.contains(&format!(r#"id="{id}""#)),
            "{id}: {}",
            page.body
        );
    }
    assert!(page.body.contains("Choose read only or read and write."));
    // An empty e-mail.
    let page = alice
        .submit(&shares_path, &share("", "read", "lib-movies"))
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.body
            .contains("Enter the e-mail address of the account to share with.")
    );
    let store = hub.store().await;
    let alice_id = store.user_by_login("alice").await.unwrap().unwrap().id;
    assert!(
        store
            .outgoing_shares(&alice_id, phlix_hub::auth::now_unix())
            .await
            .unwrap()
            .is_empty(),
        "no refused form shared anything"
    );

    // Shared: PRG back to the section with a notice naming the share.
    let mut fields = share("bob@example.com", "read", "lib-movies");
    fields.push(("expires_days", "30"));
    let page = alice.submit(&shares_path, &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.location.unwrap();
    assert!(
        location.starts_with(&format!("{detail}?saved=shared&share="))
            && location.ends_with("#sharing"),
        "{location}"
    );
    let page = alice.get(location.trim_end_matches("#sharing")).await;
    assert!(
        page.body.contains("Movies is now shared with bob."),
        "{}",
        page.body
    );
    let share_id = first_share_id(&page.body, r#"id="server-shares""#);
    // Again: 409, said above the form.
    let page = alice
        .submit(
            &shares_path,
            &share("bob@example.com", "readwrite", "lib-movies"),
        )
        .await;
    assert_eq!(page.status, 409);
    assert!(
        page.body
            .contains("Movies is already shared with this account.")
    );

    // Bob sees it on /app/shares (and on the server list) with a Leave button.
    let page = bob.get("/app/shares").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"aria-current="page">Shares</a>"#),
        "the navigation"
    );
    assert!(page.body.contains("data-live=\"1\""), "a live page");
    let incoming = page.body.split(r#"id="outgoing-shares""#).next().unwrap();
    for text in [
        "alice",
        "Family NAS",
        "Movies",
        "Read only",
        &share_id,
        "/leave",
    ] {
        assert!(incoming.contains(text), "{text}: {incoming}");
    }
    assert!(
        !incoming.contains("/api/v1/servers/"),
        "no relay link while the server has no tunnel"
    );
    let page = bob.get("/app/servers").await;
    assert!(page.body.contains("Shared with you"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!(r#"data-share-id="{share_id}""#))
    );

    // While the server's tunnel is open (and its owner lets collaborators through), bob's
    // lists offer to open it through the hub.
    let enrollment = server.enrollment.clone().unwrap();
    let (tunnel, _) =
        common::fake_tunnel::open(hub.tunnel, &server_id, &enrollment.enrollment_jwt).await;
    let link = format!(r#"href="http://127.0.0.1/api/v1/servers/{server_id}/proxy/""#);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !bob.get("/app/shares").await.body.contains(&link) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no relay link while the tunnel is open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(bob.get("/app/servers").await.body.contains(&link));
    assert!(
        !alice.get("/app/shares").await.body.contains(&link),
        "the owner's outgoing list has no such link"
    );
    drop(tunnel);

    // Permission: the owner changes it (back to the server page), a stranger may not.
    let permission = format!("/app/shares/{share_id}/permission");
    let page = alice
        .submit(
            &permission,
            &[("permission", "readwrite"), ("server_id", &server_id)],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{detail}?saved=permission#sharing").as_str())
    );
    assert!(bob.get("/app/shares").await.body.contains("Read and write"));
    let page = alice.submit(&permission, &[("permission", "owner")]).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Choose read only or read and write."));
    let page = bob.submit(&permission, &[("permission", "read")]).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("This share belongs to another account."));
    let page = alice
        .submit(
            "/app/shares/no-such-share/permission",
            &[("permission", "read")],
        )
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("There is no such share."));
    // A stranger's server: no share form for it.
    let page = bob
        .submit(
            &format!("{detail}/shares"),
            &share("alice@example.com", "read", "lib-movies"),
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);

    // The owner's /app/shares lists it with the change and revoke forms; revoking there comes
    // back there; bob's lists lose it.
    let page = alice.get("/app/shares").await;
    let outgoing = page.body.split(r#"id="outgoing-shares""#).nth(1).unwrap();
    for text in [
        "Family NAS",
        "Movies",
        "bob",
        "Read and write",
        "/revoke",
        "/permission",
    ] {
        assert!(outgoing.contains(text), "{text}: {outgoing}");
    }
    let page = alice
        .submit(&format!("/app/shares/{share_id}/revoke"), &[])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/app/shares?done=revoked"));
    assert!(
        alice
            .get("/app/shares?done=revoked")
            .await
            .body
            .contains("The share was revoked.")
    );
    assert!(!bob.get("/app/shares").await.body.contains(&share_id));
    assert!(
        !bob.get("/app/servers")
            .await
            .body
            .contains("Shared with you")
    );

    // Shared again, then bob leaves it himself.
    let page = alice
        .submit(&shares_path, &share("bob@example.com", "read", "lib-shows"))
        .await;
    assert_eq!(page.status, 303);
    let page = bob.get("/app/shares").await;
    let share_id = first_share_id(&page.body, r#"id="incoming-shares""#);
    let page = bob
        .submit(&format!("/app/shares/{share_id}/leave"), &[])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/app/shares?done=left"));
    let page = bob.get("/app/shares?done=left").await;
    assert!(page.body.contains("You left the shared library."));
    assert!(!page.body.contains(&share_id));
    assert!(!alice.get(&detail).await.body.contains(&share_id));

    // The collaborator-relay switch.
    let policy = format!("{detail}/sharing-policy");
    let page = alice.submit(&policy, &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{detail}?saved=sharing-policy#sharing").as_str())
    );
    let page = alice.get(&format!("{detail}?saved=sharing-policy")).await;
    assert!(
        page.body
            .contains("Collaborators can no longer reach this server through the hub.")
    );
    assert!(
        page.body.contains(r#"id="collaborator-relay">"#),
        "unticked"
    );
    assert!(
        !store
            .server_by_id(&server_id)
            .await
            .unwrap()
            .unwrap()
            .collaborator_relay
    );
    let page = alice.submit(&policy, &[("collaborator_relay", "1")]).await;
    assert_eq!(page.status, 303);
    assert!(
        store
            .server_by_id(&server_id)
            .await
            .unwrap()
            .unwrap()
            .collaborator_relay
    );
    assert_eq!(bob.submit(&policy, &[]).await.status, 403);
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn invite_links_are_made_once_shown_and_explained_to_whoever_opens_them() {
    let hub = TestHub::start().await;
    let mut alice = WebClient::new(&hub.url(""));
    alice.sign_up("alice", "correct horse").await;
    let server_id = server_with_libraries(&hub, &mut alice, "Family NAS")
        .await
        .server_id();
    let detail = format!("/app/servers/{server_id}");
    let invites = format!("{detail}/invites");

    // Each field of the invite form says what is wrong with it.
    let page = alice
        .submit(
            &invites,
            &[
                ("library_id", "lib-music"),
                ("permission", "all"),
                ("max_uses", "0"),
                ("expires_days", "soon"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    for id in [
        "invite-library-error",
        "invite-permission-error",
        "invite-uses-error",
        "invite-expires-error",
    ] {
        assert!(
            page.body.contains(&format!(r#"id="{id}""#)),
            "{id}: {}",
            page.body
        );
    }
    assert_eq!(input_value(&page.body, "invite-uses"), "0");
    // The empty form starts from the hub's default lifetime (7 days) and one use.
    let page = alice.get(&detail).await;
    assert_eq!(input_value(&page.body, "invite-expires"), "7");
    assert_eq!(input_value(&page.body, "invite-uses"), "1");

    // A link to Shows, shown once with a copy button (hidden until the script shows it).
    let page = alice
        .submit(
            &invites,
            &[
                ("library_id", "lib-shows"),
                ("permission", "readwrite"),
                ("max_uses", "1"),
                ("expires_days", "3"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Invite link created"));
    assert!(page.body.contains(r#"data-copy="invite-link" hidden"#));
    let url = input_value(&page.body, "invite-link");
    // The link is on the hub's public URL (the test hub's `--public-url` has no port).
    assert!(url.starts_with("http://127.0.0.1/invite/"), "{url}");
    let token = token_of(&url);
    assert_eq!(token.len(), 64);
    let page = alice.get(&detail).await;
    assert!(!page.body.contains(&token), "shown only once");
    let list = page.body.split(r#"id="server-invites""#).nth(1).unwrap();
    for text in [
        "Shows",
        "Read and write",
        r#"data-status="active""#,
        "0 of 1",
    ] {
        assert!(list.contains(text), "{text}: {list}");
    }

    // Signed out, the link shows who invites whom to what, and the ways in.
    let mut carol = WebClient::new(&hub.url(""));
    let page = carol.get(&format!("/invite/{token}")).await;
    assert_eq!(page.status, 302);
    let here = format!("/app/invite/{token}");
    assert_eq!(page.location.as_deref(), Some(here.as_str()));
    let page = carol.get(&here).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("alice invites you to Shows on Family NAS"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Read and write"));
    assert!(page.body.contains("UTC"), "the expiry date");
    let next = format!("%2Fapp%2Finvite%2F{token}");
    let login = format!(r#"href="/app/login?next={next}""#);
    let signup = format!(r#"href="/app/signup?next={next}&amp;invite={token}""#);
    assert!(page.body.contains(&login), "{}", page.body);
    assert!(page.body.contains(&signup), "{}", page.body);
    assert!(!page.body.contains(r#"id="accept""#));

    // Sign-ups are closed, but the link lets carol in: the sign-up page carries the token.
    let store = hub.store().await;
    store
        .put_setting(
            "auth.signups_disabled",
            "true",
            "bool",
            phlix_hub::auth::now_unix(),
        )
        .await
        .unwrap();
    let page = carol
        .get(&format!("/app/signup?next={next}&invite={token}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!(
            r#"<input type="hidden" name="invite" value="{token}">"#
        )),
        "{}",
        page.body
    );
    // The login page's sign-up link keeps the invitation too.
    let page = carol.get(&format!("/app/login?next={next}")).await;
    assert!(
        page.body.contains(&format!("invite={token}")),
        "{}",
        page.body
    );
    let carol_fields = [
        ("username", "carol"),
        ("email", "carol@example.com"),
        ("password", "correct horse"),
        ("next", here.as_str()),
    ];
    let page = carol.submit("/app/signup", &carol_fields[..3]).await;
    assert_eq!(page.status, 403, "without the link: {}", page.body);
    assert!(page.body.contains("Sign-ups are closed on this hub."));
    let mut with_invite = carol_fields.to_vec();
    with_invite.push(("invite", &token));
    let page = carol.submit("/app/signup", &with_invite).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some(here.as_str()));

    // Signed in, the page offers Accept; accepting lands on /app/shares with a notice.
    let page = carol.get(&here).await;
    assert!(page.body.contains(r#"id="accept""#), "{}", page.body);
    assert!(page.body.contains("You accept as <strong>carol</strong>"));
    let page = carol.submit(&here, &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.location.unwrap();
    assert!(location.starts_with("/app/shares?accepted="), "{location}");
    let page = carol.get(&location).await;
    assert!(
        page.body
            .contains("Invitation accepted: alice shares Shows on Family NAS with you."),
        "{}",
        page.body
    );
    assert!(page.body.contains("Read and write"));
    // The link is used up now: its page says so (410), to anyone.
    let page = carol.get(&here).await;
    assert_eq!(page.status, 410, "{}", page.body);
    assert!(page.body.contains("Invite link used up"));
    assert!(page.body.contains("alice"));
    let page = WebClient::new(&hub.url("")).get(&here).await;
    assert_eq!(page.status, 410);
    let page = alice.get(&detail).await;
    let list = page.body.split(r#"id="server-invites""#).nth(1).unwrap();
    assert!(
        list.contains(r#"data-status="exhausted""#) && list.contains("1 of 1"),
        "{list}"
    );

    // The owner opening her own link is told she cannot accept it.
    let page = alice
        .submit(
            &invites,
            &[
                ("library_id", ""),
                ("permission", "read"),
                ("max_uses", "5"),
                ("never", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("All Libraries"));
    assert!(
        page.body.contains("<dt>Expires</dt><dd>never</dd>"),
        "{}",
        page.body
    );
    let own = format!(
        "/app/invite/{}",
        token_of(&input_value(&page.body, "invite-link"))
    );
    let page = alice.get(&own).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("This is your own invite link"),
        "{}",
        page.body
    );
    assert!(page.body.contains("All Libraries"));
    assert!(!page.body.contains(r#"id="accept""#));
    let page = alice.submit(&own, &[]).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("This is your own invite link"));
    // Carol accepts it (all libraries); accepting twice is explained.
    assert_eq!(carol.submit(&own, &[]).await.status, 303);
    let page = carol.submit(&own, &[]).await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("already shared with you"));

    // Expired: the page says when and who to ask.
    let page = alice
        .submit(
            &invites,
            &[
                ("library_id", "lib-movies"),
                ("permission", "read"),
                ("max_uses", "1"),
                ("expires_days", "1"),
            ],
        )
        .await;
    let expired_token = token_of(&input_value(&page.body, "invite-link"));
    let expired = store
        .invite_by_hash(&phlix_hub_token_hash(&expired_token))
        .await
        .unwrap()
        .unwrap();
    common::execute(
        &store,
        "UPDATE invite_links SET expires_at = 1000 WHERE id = $1",
        &[&expired.id],
    )
    .await;
    let page = WebClient::new(&hub.url(""))
        .get(&format!("/app/invite/{expired_token}"))
        .await;
    assert_eq!(page.status, 410, "{}", page.body);
    assert!(page.body.contains("Invite link expired"), "{}", page.body);
    assert!(
        page.body
            .contains("expired on 1970-01-01 00:16 UTC. Ask alice for a new link.")
    );
    let page = carol
        .submit(&format!("/app/invite/{expired_token}"), &[])
        .await;
    assert_eq!(page.status, 410, "accepting an expired link: {}", page.body);
    assert!(page.body.contains("Invite link expired"));

    // Unknown and malformed links: 404 pages, not JSON.
    for token in ["0".repeat(64), "not-a-token".to_owned(), "A".repeat(64)] {
        let page = WebClient::new(&hub.url(""))
            .get(&format!("/app/invite/{token}"))
            .await;
        assert_eq!(page.status, 404, "{token}");
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{token}"
        );
        assert!(page.body.contains("Invite link not valid"), "{}", page.body);
    }
    // A sign-up with a used-up link while sign-ups are closed is explained.
    let mut dave = WebClient::new(&hub.url(""));
    let page = dave
        .submit(
            "/app/signup",
            &[
                ("username", "dave"),
                ("email", "dave@example.com"),
                ("password", "correct horse"),
                ("invite", &token),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("this invite link can no longer be used"),
        "{}",
        page.body
    );

    // Revoking a link from the server page: its page then says it is used up.
    let page = alice
        .submit(
            &invites,
            &[
                ("library_id", ""),
                ("permission", "read"),
                ("max_uses", "2"),
                ("expires_days", ""),
            ],
        )
        .await;
    let revoked_token = token_of(&input_value(&page.body, "invite-link"));
    let revoked = store
        .invite_by_hash(&phlix_hub_token_hash(&revoked_token))
        .await
        .unwrap()
        .unwrap();
    assert!(
        revoked.expires_at.is_some(),
        "empty days: the hub's default lifetime"
    );
    let page = carol
        .submit(
            &format!("/app/invites/{}/revoke", revoked.id),
            &[("server_id", &server_id)],
        )
        .await;
    assert_eq!(page.status, 403, "not carol's link");
    let page = alice
        .submit(
            &format!("/app/invites/{}/revoke", revoked.id),
            &[("server_id", &server_id)],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{detail}?saved=invite-revoked#invites").as_str())
    );
    let page = carol.get(&format!("/app/invite/{revoked_token}")).await;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("Invite link used up"));
    store.close().await;
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Webhooks (SPEC P, Q.5)

/// Whether `body` has the message `text` in the element `id` (a field's error paragraph).
fn says(body: &str, id: &str, text: &str) -> bool {
    body.split(&format!(r#"id="{id}""#))
        .nth(1)
        .and_then(|rest| rest.split("</").next())
        .is_some_and(|message| message.contains(text))
}

#[tokio::test]
async fn the_webhook_form_explains_each_field_and_shows_the_secret_once() {
    let hub = TestHub::start().await;
    let (receiver, addr) = Receiver::start().await;
    let mut alice = WebClient::new(&hub.url(""));
    alice.sign_up("alice", "correct horse").await;
    let mut bob = WebClient::new(&hub.url(""));
    bob.sign_up("bob", "correct horse").await;

    // The page: in the navigation, empty, a picker of every event; the scope choice and the
    // whole-hub events for the administrator (alice, the first account) only.
    let page = alice.get("/app/webhooks").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(r#"<a href="/app/webhooks" aria-current="page">Webhooks</a>"#)
    );
    assert!(page.body.contains(r#"id="no-webhooks""#));
    for id in [
        "event-all",
        "event-server-online",
        "event-webhook-test",
        "event-user-created",
        "scope-hub",
    ] {
        assert!(page.body.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    let page = bob.get("/app/webhooks").await;
    assert!(page.body.contains(r#"id="event-relay-opened""#));
    assert!(
        !page.body.contains(r#"id="event-user-created""#),
        "whole-hub events are for admins"
    );
    assert!(
        !page.body.contains(r#"name="scope""#),
        "no scope choice for a non-admin"
    );

    // Every field's message at once, the values kept.
    let page = alice
        .submit(
            "/app/webhooks",
            &[("name", " "), ("url", "ftp://example.com/hook")],
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        says(&page.body, "webhook-name-error", "Enter a name"),
        "{}",
        page.body
    );
    assert!(
        says(
            &page.body,
            "webhook-url-error",
            "Use an http:// or https:// URL."
        ),
        "{}",
        page.body
    );
    assert!(
        says(
            &page.body,
            "webhook-events-error",
            "Choose at least one event"
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"value="ftp://example.com/hook""#));
    assert!(page.body.contains(r#"aria-invalid="true""#));
    let page = alice
        .submit(
            "/app/webhooks",
            &[
                ("name", "Home"),
                ("url", "https://user:pw@example.com/h"),
                ("events", "server.online"),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(
        says(
            &page.body,
            "webhook-url-error",
            "Leave the user name and password out"
        ),
        "{}",
        page.body
    );
    assert!(!page.body.contains(r#"id="webhook-events-error""#));
    assert!(
        page.body.contains(r#"id="event-server-online" checked"#),
        "the ticked box stays ticked"
    );
    let page = alice
        .submit(
            "/app/webhooks",
            &[
                ("name", "Home"),
                ("url", "https://example.com/h"),
                ("events", "server.exploded"),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(
        says(
            &page.body,
            "webhook-events-error",
            "server.exploded is not a hub event"
        ),
        "{}",
        page.body
    );
    // A non-admin asking for the whole hub is told so; nothing was made.
    let page = bob
        .submit(
            "/app/webhooks",
            &[
                ("name", "All"),
                ("url", &format!("http://{addr}/bob")),
                ("events", "*"),
                ("scope", "hub"),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        says(&page.body, "webhook-error", "Only an administrator"),
        "{}",
        page.body
    );
    let store = hub.store().await;
    let alice_id = store.user_by_login("alice").await.unwrap().unwrap().id;
    assert!(store.webhooks_of(&alice_id).await.unwrap().is_empty());

    // Created: the secret is on this page and no other.
    let url = format!("http://{addr}/page");
    let page = alice
        .submit(
            "/app/webhooks",
            &[
                ("name", "Home <Assistant>"),
                ("url", &url),
                ("events", "server.online"),
                ("events", "relay.opened"),
                ("scope", "user"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Endpoint added"));
    assert!(
        page.body.contains("Home &#60;Assistant&#62;"),
        "the name is escaped: {}",
        page.body
    );
    let id = attr_value(&page.body, "data-webhook-id");
    let secret = input_value(&page.body, "webhook-secret");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert!(
        page.body.contains(r#"data-copy="webhook-secret""#),
        "a copy button"
    );
    let list = alice.get("/app/webhooks").await;
    assert_eq!(list.status, 200);
    assert!(!list.body.contains(&secret), "the secret is shown once");
    assert!(list.body.contains(&format!(r#"data-webhook-id="{id}""#)));
    assert!(list.body.contains("server.online, relay.opened"));
    assert!(list.body.contains(&url));
    assert!(list.body.contains(r#"data-status="enabled""#));
    let detail_path = format!("/app/webhooks/{id}");
    let detail = alice.get(&detail_path).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(!detail.body.contains(&secret));
    assert!(detail.body.contains(r#"id="no-deliveries""#));

    // Someone else's endpoint is a 404 page, for every form as well; nothing changes.
    let page = bob.get(&detail_path).await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("No such webhook"), "{}", page.body);
    for action in ["test", "rotate", "delete", "enabled"] {
        let page = bob
            .submit(
                &format!("{detail_path}/{action}"),
                &[("enabled", "0"), ("confirm", "1")],
            )
            .await;
        assert_eq!(page.status, 404, "{action}: {}", page.body);
    }
    assert!(
        alice
            .get("/app/webhooks/no-such-id")
            .await
            .body
            .contains("No such webhook")
    );

    // Send test: the result on the endpoint's page, the receiver's text escaped.
    receiver.reply("page", "<script>alert('hi')</script>");
    let page = alice.submit(&format!("{detail_path}/test"), &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let delivery_id = tested_of(&page);
    assert!(page.location.as_deref().unwrap().ends_with("#test-result"));
    let detail = alice.get(page.location.as_deref().unwrap()).await;
    assert_eq!(detail.status, 200);
    assert!(
        says(&detail.body, "test-title", "Test delivered"),
        "{}",
        detail.body
    );
    assert!(
        detail
            .body
            .contains(r#"<dd id="test-status">HTTP 200</dd>"#),
        "{}",
        detail.body
    );
    assert!(detail.body.contains(r#"id="test-latency""#));
    assert!(
        detail.body.contains("&#60;script&#62;alert("),
        "{}",
        detail.body
    );
    assert!(
        !detail.body.contains("<script>alert"),
        "the receiver's text is escaped"
    );
    assert!(detail.body.contains(&format!(
        r#"data-delivery-id="{delivery_id}" data-status="delivered""#
    )));
    assert!(detail.body.contains("webhook.test"));
    let got = receiver.on("page");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].body.contains(r#""type":"webhook.test""#),
        "{}",
        got[0].body
    );
    let list = alice.get("/app/webhooks").await;
    assert!(
        list.body
            .contains(r#"<span class="http" data-ok="1">HTTP 200</span>"#),
        "{}",
        list.body
    );

    // Redeliver: queued again, delivered again with the same webhook-id.
    let page = alice
        .submit(
            &format!("{detail_path}/deliveries/{delivery_id}/redeliver"),
            &[],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{detail_path}?saved=redelivered#deliveries").as_str())
    );
    let again = receiver.wait("page", 2, Duration::from_secs(10)).await;
    assert_eq!(
        again[0].headers["webhook-id"],
        again[1].headers["webhook-id"]
    );
    let page = alice
        .submit(&format!("{detail_path}/deliveries/nope/redeliver"), &[])
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("No such delivery"));

    // Rotate: a new secret on the page this once.
    let page = alice.submit(&format!("{detail_path}/rotate"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let rotated = input_value(&page.body, "webhook-secret");
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert!(!alice.get(&detail_path).await.body.contains(&rotated));

    // Disable from the list, enable from the endpoint's page.
    let page = alice
        .submit(
            &format!("{detail_path}/enabled"),
            &[("enabled", "0"), ("back", "list")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("/app/webhooks?done=disabled&webhook={id}").as_str())
    );
    let list = alice.get(page.location.as_deref().unwrap()).await;
    assert!(
        list.body.contains("Home &#60;Assistant&#62; is disabled"),
        "{}",
        list.body
    );
    assert!(list.body.contains(r#"data-status="disabled""#));
    let page = alice
        .submit(&format!("{detail_path}/enabled"), &[("enabled", "1")])
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{detail_path}?saved=enabled").as_str())
    );
    assert!(store.webhook_by_id(&id).await.unwrap().unwrap().enabled);
    let page = alice
        .submit(&format!("{detail_path}/enabled"), &[("enabled", "maybe")])
        .await;
    assert_eq!(page.status, 400);

    // Health: a receiver answering 500 makes the endpoint failing; a 410 disables it with the
    // reason; all events read as such; an administrator's whole-hub endpoint says so.
    receiver.plan("down", &[500]);
    receiver.plan("gone", &[410]);
    for (name, path, events) in [("Down", "down", "server.offline"), ("Gone", "gone", "*")] {
        let page = alice
            .submit(
                "/app/webhooks",
                &[
                    ("name", name),
                    ("url", &format!("http://{addr}/{path}")),
                    ("events", events),
                    ("events", "server.online"),
                ],
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let hook = attr_value(&page.body, "data-webhook-id");
        let page = alice
            .submit(&format!("/app/webhooks/{hook}/test"), &[])
            .await;
        let detail = alice.get(page.location.as_deref().unwrap()).await;
        assert!(
            says(&detail.body, "test-title", "Test not delivered"),
            "{}",
            detail.body
        );
        assert!(detail.body.contains(&format!(
            r#"<dd id="test-status">HTTP {}</dd>"#,
            if path == "down" { 500 } else { 410 }
        )));
    }
    let list = alice.get("/app/webhooks").await;
    assert!(
        list.body.contains(r#"data-status="failing""#),
        "{}",
        list.body
    );
    assert!(list.body.contains("failing since"), "{}", list.body);
    assert!(
        list.body.contains("the receiver answered 410 Gone"),
        "{}",
        list.body
    );
    assert!(
        list.body.contains("All events"),
        "* wins over single events"
    );
    let page = alice
        .submit(
            "/app/webhooks",
            &[
                ("name", "Hub"),
                ("url", &format!("http://{addr}/hub")),
                ("events", "user.created"),
                ("scope", "hub"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(alice.get("/app/webhooks").await.body.contains("whole hub"));

    // Delete: only with the box ticked.
    let page = alice.submit(&format!("{detail_path}/delete"), &[]).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Tick the confirmation box"));
    let page = alice
        .submit(&format!("{detail_path}/delete"), &[("confirm", "1")])
        .await;
    assert_eq!(page.status, 303);
    let list = alice.get(page.location.as_deref().unwrap()).await;
    assert!(
        list.body.contains("Home &#60;Assistant&#62; was deleted"),
        "{}",
        list.body
    );
    assert_eq!(alice.get(&detail_path).await.status, 404);
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn a_private_webhook_target_is_refused_on_its_field() {
    let hub = TestHub::start_with(|args| args.webhook_allow_private = false).await;
    let mut alice = WebClient::new(&hub.url(""));
    alice.sign_up("alice", "correct horse").await;
    let page = alice
        .submit(
            "/app/webhooks",
            &[
                ("name", "LAN"),
                ("url", "http://127.0.0.1:9/hook"),
                ("events", "*"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        says(
            &page.body,
            "webhook-url-error",
            "127.0.0.1 is a loopback, private or link-local address"
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"id="event-all" checked"#));
    assert!(
        alice
            .get("/app/webhooks")
            .await
            .body
            .contains(r#"id="no-webhooks""#)
    );
    hub.stop().await;
}

#[tokio::test]
async fn the_admin_console_pages() {
    let hub = TestHub::start_configured(
        |_| {},
        |config| config.stats_interval = Duration::from_millis(100),
    )
    .await;
    let mut admin = WebClient::new(&hub.url(""));
    admin.sign_up("root", "correct horse").await;
    let mut member = WebClient::new(&hub.url(""));
    member.sign_up("member", "correct horse").await;
    let mut anonymous = WebClient::new(&hub.url(""));
    for path in ["/app/admin", "/app/admin/users", "/app/admin/audit"] {
        assert_eq!(member.get(path).await.status, 403, "{path}");
        let page = anonymous.get(path).await;
        assert_eq!(page.status, 302, "{path}");
        assert!(page.location.unwrap().starts_with("/app/login?next="));
    }
    assert!(
        !member
            .get("/app/servers")
            .await
            .body
            .contains(r#"href="/app/admin""#),
        "no Admin entry for members"
    );
    assert!(
        admin
            .get("/app/servers")
            .await
            .body
            .contains(r#"href="/app/admin""#)
    );
    // A heartbeat and a few sampler rounds: the dashboard draws its three charts.
    let mut server = FakePhlixServer::new(&hub.url(""), "Chart NAS");
    server.request_claim().await;
    let code = server.claim_code.clone().unwrap();
    assert_eq!(
        admin
            .submit("/app/claim-server", &[("code", &code)])
            .await
            .status,
        200
    );
    server.poll().await;
    assert_eq!(server.heartbeat(&[("1", "Films")]).await.0, 200);
    let store = hub.store().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store
        .stats_since(0)
        .await
        .unwrap()
        .iter()
        .all(|p| p.servers_online == 0)
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second point a bucket earlier so the sparkline has two points.
    common::execute(&store, "INSERT INTO hub_stats (node, minute, servers_online, relay_bytes, heartbeats) VALUES ('other', 0, 0, 0, 0)", &[]).await;
    let now = phlix_hub::auth::now_unix();
    let earlier = (now - 3600).to_string();
    common::execute(
        &store,
        "UPDATE hub_stats SET minute = CAST($1 AS BIGINT) WHERE node = 'other'",
        &[earlier.as_str()],
    )
    .await;
    let page = admin.get("/app/admin").await;
    assert_eq!(page.status, 200);
    for id in ["chart-online", "chart-bytes", "chart-heartbeats"] {
        assert!(page.body.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    assert!(
        page.body.contains("<svg class=\"sparkline\""),
        "the charts render"
    );
    assert!(
        page.body.contains("Servers online: latest 1.0"),
        "text alternative of the chart"
    );
    assert!(page.body.contains("1 of 1"), "servers online figure");
    assert!(page.body.contains(r#"id="activity""#), "recent activity");
    assert!(
        page.body.contains("claim"),
        "the claim is in the activity: {}",
        page.body
    );

    // Users: create through the form (a bad field is said), find, disable, delete with a typed
    // confirmation.
    let page = admin
        .submit(
            "/app/admin/users",
            &[("username", "x"), ("email", "bad"), ("password", "1")],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("Username must be 3 to 50"),
        "{}",
        page.body
    );
    let page = admin
        .submit(
            "/app/admin/users",
            &[
                ("username", "carla"),
                ("email", "carla@example.com"),
                ("password", "correct horse"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = admin.get("/app/admin/users?q=carl").await;
    assert!(
        page.body.contains("carla@example.com") && !page.body.contains("member@"),
        "{}",
        page.body
    );
    let id = page
        .body
        .split("data-user-id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = admin
        .submit(&format!("/app/admin/users/{id}/disable"), &[])
        .await;
    assert_eq!(page.status, 303);
    let page = admin
        .get(&format!("/app/admin/users/{id}?done=disabled"))
        .await;
    assert!(
        page.body.contains("Account disabled")
            && page.body.contains(r#"<dd id="user-state">disabled</dd>"#)
    );
    let page = admin
        .submit(&format!("/app/admin/users/{id}/reset-password"), &[])
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("shown <strong>only now</strong>"));
    let page = admin
        .submit(
            &format!("/app/admin/users/{id}/delete"),
            &[("confirm", "carl")],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Type the user name"), "{}", page.body);
    let page = admin
        .submit(
            &format!("/app/admin/users/{id}/delete"),
            &[("confirm", "carla")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/app/admin/users?done=deleted")
    );
    assert_eq!(
        admin.get(&format!("/app/admin/users/{id}")).await.status,
        404
    );
    // The admin cannot act on themself where it would lock them out.
    let page = admin.get("/app/admin/users?q=root").await;
    let me = page
        .body
        .split("data-user-id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = admin.get(&format!("/app/admin/users/{me}")).await;
    assert!(
        !page.body.contains("id=\"disable-user\"") && !page.body.contains("Delete the account")
    );
    assert_eq!(
        admin
            .submit(&format!("/app/admin/users/{me}/disable"), &[])
            .await
            .status,
        400
    );
    // Forms without the CSRF token are refused.
    assert_eq!(
        admin
            .post_form(&format!("/app/admin/users/{me}/sign-out"), &[])
            .await
            .status,
        403
    );

    // The audit log: filters, a bad filter said clearly, the CSV link keeps the filters.
    let page = admin.get("/app/admin/audit?action=user.delete").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("user.delete") && page.body.contains("(1)"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("/api/v1/me/audit-logs?format=csv&amp;action=user.delete")
    );
    let page = admin.get("/app/admin/audit?from=9&to=1").await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("from must not be after to"));
    let csv = admin
        .get("/api/v1/me/audit-logs?format=csv&action=user.delete")
        .await;
    assert_eq!(csv.status, 200, "the session cookie opens the CSV download");
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    hub.stop().await;
}
