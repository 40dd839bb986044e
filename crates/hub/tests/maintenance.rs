//! Maintenance mode (SPEC Q.4, setting `hub.maintenance_mode`) over real sockets, on the
//! backend `PHLIX_TEST_STORE` names: with it on, the user API answers 503
//! `provider_unavailable` with `Retry-After: 60`, while sign-in, refresh, the settings, health,
//! JWKS, the admin routes and a paired server's heartbeats keep working and every page shows
//! a banner; turning it off restores the user API at once; a change written by another node
//! (straight into the database) is followed within the cache's refresh period.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::fake_server::FakePhlixServer;
use common::web_client::WebClient;
use common::{TestHub, call, status_json};
use reqwest::Method;
use serde_json::{Value, json};

const BANNER: &str = "The hub is in maintenance mode";

async fn set_maintenance(hub: &TestHub, admin: &str, on: Value) {
    let (status, body) = call(
        hub,
        admin,
        Method::PUT,
        "/api/v1/me/hub-settings",
        Some(json!({"settings": {"hub.maintenance_mode": on}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn assert_paused(what: &str, status: u16, body: &Value) {
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(
        body,
        &json!({
            "error": "Service Unavailable",
            "code": "provider_unavailable",
            "message": "The hub is in maintenance mode; try again later",
        }),
        "{what}"
    );
}

/// Pairs a fake server with the user of `token`.
async fn paired_server(hub: &TestHub, token: &str) -> FakePhlixServer {
    let mut server = FakePhlixServer::new(&hub.url(""), "NAS");
    let (status, body) = server.request_claim().await;
    assert_eq!(status, 200, "{body}");
    let code = server.claim_code.clone().unwrap();
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/server-claims/claim"))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(token)
        .json(&json!({"claim_code": code}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.poll().await["status"], "claimed");
    server
}

#[tokio::test]
async fn maintenance_pauses_the_user_api_and_keeps_operators_and_servers_working() {
    let hub = TestHub::start().await;
    let admin = hub.register("root", "correct horse").await;
    let member = hub.register("anna", "correct horse").await;
    let mut server = paired_server(&hub, &member.access_token).await;
    let (status, _) = call(
        &hub,
        &member.access_token,
        Method::GET,
        "/api/v1/me/servers",
        None,
    )
    .await;
    assert_eq!(status, 200, "off by default");

    // A wrong type is refused like any setting; a non-admin cannot turn it on.
    let (status, body) = call(
        &hub,
        &admin.access_token,
        Method::PUT,
        "/api/v1/me/hub-settings",
        Some(json!({"settings": {"hub.maintenance_mode": "yes"}})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_type");
    let (status, _) = call(
        &hub,
        &member.access_token,
        Method::PUT,
        "/api/v1/me/hub-settings",
        Some(json!({"settings": {"hub.maintenance_mode": true}})),
    )
    .await;
    assert_eq!(status, 403);

    set_maintenance(&hub, &admin.access_token, json!(true)).await;
    let (status, body) = call(
        &hub,
        &admin.access_token,
        Method::GET,
        "/api/v1/me/hub-settings",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["settings"]["hub.maintenance_mode"], true);
    assert_eq!(body["data"]["types"]["hub.maintenance_mode"], "bool");

    // The user API: 503 with Retry-After, for members and admins alike, at once on this node.
    let resp = hub
        .http_client
        .get(hub.url("/api/v1/me/servers"))
        .bearer_auth(&member.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "60");
    let (status, body) = status_json(resp).await;
    assert_paused("GET /api/v1/me/servers", status, &body);
    for (method, path, body) in [
        (Method::GET, "/api/v1/me/servers", None),
        (Method::GET, "/api/v1/me", None),
        (Method::GET, "/api/v1/me/shares", None),
        (Method::GET, "/api/v1/me/events", None),
        (
            Method::POST,
            "/api/v1/me/requests",
            Some(json!({"media_type": "movie", "tmdb_id": 438631, "title": "Dune"})),
        ),
        (
            Method::POST,
            &format!("/api/v1/me/servers/{}/relay-token", server.server_id()),
            None,
        ),
    ] {
        for token in [&member.access_token, &admin.access_token] {
            let (status, answer) = call(&hub, token, method.clone(), path, body.clone()).await;
            assert_paused(&format!("{method} {path}"), status, &answer);
        }
    }
    // Anonymous callers of a paused path learn about maintenance, not about their token.
    let (status, body) = status_json(
        hub.http_client
            .get(hub.url("/api/v1/me/servers"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_paused("anonymous", status, &body);

    // What keeps working.
    let (status, login) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "anna", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 200, "login: {login}");
    let (status, refreshed) = hub
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(status, 200, "refresh: {refreshed}");
    for path in [
        "/api/v1/me/hub-settings",
        "/api/v1/admin/settings",
        "/api/v1/admin/users",
    ] {
        let (status, body) = call(&hub, &admin.access_token, Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _) = call(
        &hub,
        &admin.access_token,
        Method::GET,
        "/api/v1/me/logs",
        None,
    )
    .await;
    assert_eq!(status, 200, "admin logs");
    // Settings and admin routes keep their own gate: a member is refused as usual, not 503.
    let (status, body) = call(
        &hub,
        &member.access_token,
        Method::GET,
        "/api/v1/admin/users",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!("auth.not_admin"))
    );
    let (status, _) = call(
        &hub,
        &member.access_token,
        Method::GET,
        "/api/v1/me/hub-settings",
        None,
    )
    .await;
    assert_eq!(status, 403);
    for path in ["/health", "/.well-known/jwks.json"] {
        let resp = hub.http_client.get(hub.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    // The home server: heartbeats, info and renewal.
    let (status, body) = server.heartbeat(&[("1", "Movies")]).await;
    assert_eq!(status, 200, "heartbeat: {body}");
    let (status, body) = server.renew().await;
    assert_eq!(status, 200, "renew: {body}");
    let (status, _) = FakePhlixServer::new(&hub.url(""), "Second NAS")
        .request_claim()
        .await;
    assert_eq!(status, 200, "a new claim");

    // Pages: the banner on every page, for everyone, and the pages still answer.
    let mut anonymous = WebClient::new(&hub.url(""));
    let page = anonymous.get("/app/login").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(BANNER), "{}", page.body);
    let mut web = WebClient::new(&hub.url(""));
    let page = web
        .submit(
            "/app/login",
            &[("login", "root"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    for path in ["/app/servers", "/app/settings", "/app/admin/logs"] {
        let page = web.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains(BANNER), "{path}");
    }
    assert!(
        web.get("/app/settings")
            .await
            .body
            .contains("id=\"hub.maintenance_mode\""),
        "the settings page offers the switch"
    );

    // Off again: at once.
    set_maintenance(&hub, &admin.access_token, json!(false)).await;
    let (status, body) = call(
        &hub,
        &member.access_token,
        Method::GET,
        "/api/v1/me/servers",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["servers"].as_array().map(Vec::len), Some(1), "{body}");
    assert!(!anonymous.get("/app/login").await.body.contains(BANNER));
    // `null` removes the override: back to the default (off).
    set_maintenance(&hub, &admin.access_token, json!(true)).await;
    set_maintenance(&hub, &admin.access_token, Value::Null).await;
    let (status, _) = call(&hub, &member.access_token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200);
    hub.stop().await;
}

#[tokio::test]
async fn a_change_made_by_another_node_is_followed_within_the_refresh_period() {
    let hub = TestHub::start().await;
    hub.register("root", "correct horse").await;
    let member = hub.register("anna", "correct horse").await;
    let get = || {
        call(
            &hub,
            &member.access_token,
            Method::GET,
            "/api/v1/me/servers",
            None,
        )
    };
    assert_eq!(get().await.0, 200);

    // Another node writes the setting: this node has no notice and must read it itself.
    let store = hub.store().await;
    store
        .write_settings(
            &[("hub.maintenance_mode", Some("true".into()), "bool")],
            phlix_hub::auth::now_unix(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let (status, body) = get().await;
        if status == 503 {
            assert_paused("after another node's change", status, &body);
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "maintenance not followed within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store
        .write_settings(
            &[("hub.maintenance_mode", None, "bool")],
            phlix_hub::auth::now_unix(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    while get().await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not turned off within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.stop().await;
}
