//! The admin console's user management (SPEC Q.1) on both stores: every route for an admin, a
//! member (403 `auth.not_admin` + a `permission_denied` audit row) and anonymous (401); the
//! PHP validation bodies; the last-admin rule, also under concurrent demotions; disabling cuts
//! an open relay channel and refuses sign-in, refresh and relay tokens at once; sign-out
//! everywhere; delete cascades to the user's server (its tunnel closes) and shares.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::shared_server::{CUT_WITHIN, Setup, ping_forever};
use common::{TestHub, call, fake_tunnel};
use reqwest::Method;
use serde_json::{Value, json};

async fn login(hub: &TestHub, username: &str, password: &str) -> (u16, Value) {
    hub.post(
        "/api/v1/auth/login",
        &json!({"username": username, "password": password}),
    )
    .await
}

async fn user_id(hub: &TestHub, token: &str) -> String {
    call(hub, token, Method::GET, "/api/v1/me", None).await.1["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_admin_route_answers_admins_only() {
    let hub = TestHub::start().await;
    let admin = hub.register("root", "password123").await.access_token;
    let member = hub.register("member", "password123").await;
    let target = member.user.id.clone();
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/admin/users".into(), None),
        (Method::POST, "/api/v1/admin/users".into(), Some(json!({}))),
        (Method::GET, format!("/api/v1/admin/users/{target}"), None),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{target}"),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{target}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{target}/set-admin"),
            Some(json!({"is_admin": true})),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{target}/reset-password"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/users/{target}/profiles"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{target}/disable"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{target}/enable"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{target}/sign-out"),
            None,
        ),
        (Method::GET, "/api/v1/admin/requests".into(), None),
        (Method::GET, "/api/v1/admin/settings".into(), None),
        (Method::GET, "/api/v1/admin/dashboard/summary".into(), None),
        (Method::GET, "/api/v1/admin/dashboard/activity".into(), None),
        (Method::GET, "/api/v1/me/audit-logs".into(), None),
        (
            Method::GET,
            "/api/v1/admin/audit-logs?format=csv".into(),
            None,
        ),
        (Method::GET, "/api/v1/me/logs".into(), None),
        (
            Method::GET,
            format!("/api/v1/admin/users/{target}/bandwidth"),
            None,
        ),
    ];
    let store = hub.store().await;
    for (method, path, body) in &routes {
        let (status, answer) = call(
            &hub,
            &member.access_token,
            method.clone(),
            path,
            body.clone(),
        )
        .await;
        assert_eq!(
            (status, answer["error"].as_str(), answer["code"].as_str()),
            (403, Some("Forbidden"), Some("auth.not_admin")),
            "{method} {path}"
        );
        let mut anonymous = hub.http_client.request(method.clone(), hub.url(path));
        if let Some(body) = body {
            anonymous = anonymous.json(body);
        }
        let response = anonymous.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            (status, answer["code"].as_str()),
            (401, Some("auth.required")),
            "{method} {path}"
        );
    }
    let denied = store
        .recent_audit(Some("permission_denied"), 100)
        .await
        .unwrap();
    assert_eq!(
        denied.len(),
        routes.len(),
        "one permission_denied row per refused call"
    );
    assert!(
        denied
            .iter()
            .all(|row| row.user_id.as_deref() == Some(target.as_str()) && !row.success)
    );
    assert!(
        denied[0]
            .context_json
            .as_deref()
            .unwrap()
            .contains("/api/v1/admin/"),
        "{:?}",
        denied[0]
    );
    // The member is untouched by all of that.
    assert_eq!(login(&hub, "member", "password123").await.0, 200);
    let (status, body) = call(
        &hub,
        &admin,
        Method::GET,
        &format!("/api/v1/admin/users/{target}/profiles"),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"profiles": []})));
    hub.stop().await;
}

#[tokio::test]
async fn users_are_listed_searched_created_updated_and_validated() {
    let hub = TestHub::start().await;
    let admin = hub.register("root", "password123").await.access_token;
    for name in ["anna", "anton", "ben"] {
        hub.register(name, "password123").await;
    }
    let (status, body) = call(&hub, &admin, Method::GET, "/api/v1/admin/users", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["total"].as_i64(),
            body["limit"].as_i64(),
            body["offset"].as_i64()
        ),
        (Some(4), Some(50), Some(0))
    );
    let first = &body["users"][0];
    for key in [
        "id",
        "username",
        "email",
        "is_admin",
        "created_at",
        "updated_at",
        "disabled",
        "last_login_at",
        "server_count",
    ] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    let root = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "root")
        .unwrap();
    assert_eq!(
        (root["is_admin"].as_i64(), root["disabled"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(root["created_at"].as_str().unwrap().len(), 19);
    // Search and pages.
    let (_, body) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/admin/users?q=AN&limit=1",
        None,
    )
    .await;
    assert_eq!(
        (
            body["total"].as_i64(),
            body["users"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    assert_eq!(body["users"][0]["username"], "anna");
    let (_, body) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/admin/users?q=an&limit=1&offset=1",
        None,
    )
    .await;
    assert_eq!(body["users"][0]["username"], "anton");
    // SQL-looking and wildcard text is just text; limits are clamped; bad numbers are 400s.
    for q in ["%27%20OR%201%3D1%20--", "%25", "_"] {
        let (status, body) = call(
            &hub,
            &admin,
            Method::GET,
            &format!("/api/v1/admin/users?q={q}"),
            None,
        )
        .await;
        assert_eq!((status, body["total"].as_i64()), (200, Some(0)), "{q}");
    }
    let (status, body) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/admin/users?limit=100000",
        None,
    )
    .await;
    assert_eq!((status, body["limit"].as_i64()), (200, Some(200)));
    for query in ["offset=-1", "limit=abc", "offset=1.5"] {
        let (status, body) = call(
            &hub,
            &admin,
            Method::GET,
            &format!("/api/v1/admin/users?{query}"),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_query")),
            "{query}"
        );
    }

    // Create, with the PHP validation bodies.
    let create = |body: Value| {
        call(
            &hub,
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(body),
        )
    };
    let (status, body) = create(
        json!({"username": "carla", "email": "Carla@Example.com", "password": "password123"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], "User created successfully");
    let carla = body["user_id"].as_str().unwrap().to_owned();
    assert_eq!(login(&hub, "carla@example.com", "password123").await.0, 200);
    for (payload, error, field) in [
        (
            json!({"username": "x", "email": "x@example.com", "password": "password123"}),
            "Invalid username",
            "username",
        ),
        (
            json!({"username": "bad name!", "email": "x@example.com", "password": "password123"}),
            "Invalid username",
            "username",
        ),
        (
            json!({"username": "xavier", "email": "not-an-email", "password": "password123"}),
            "Invalid email",
            "email",
        ),
        (
            json!({"username": "xavier", "email": "x@example.com", "password": "short"}),
            "Invalid password",
            "password",
        ),
        (
            json!({"username": "carla", "email": "x@example.com", "password": "password123"}),
            "Username already exists",
            "username",
        ),
        (
            json!({"username": "xavier", "email": "carla@example.com", "password": "password123"}),
            "Email already exists",
            "email",
        ),
        (
            json!({"username": "xavier", "email": "x@example.com", "password": "password123", "is_admin": "maybe"}),
            "Invalid is_admin",
            "is_admin",
        ),
    ] {
        let (status, body) = create(payload.clone()).await;
        assert_eq!(
            (status, body["error"].as_str(), body["code"].as_str()),
            (400, Some(error), Some("validation_failed")),
            "{payload}: {body}"
        );
        assert!(body["field_errors"][field].is_string(), "{body}");
    }
    let (status, body) = create(json!({"username": "x", "email": "bad", "password": "1"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["field_errors"].as_object().unwrap().len(),
        3,
        "every bad field is named: {body}"
    );

    // Update: name, e-mail, password; clashes are validation failures.
    let path = format!("/api/v1/admin/users/{carla}");
    let (status, body) = call(
        &hub,
        &admin,
        Method::PUT,
        &path,
        Some(json!({"username": "carla2", "password": "newpassword1"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "User updated successfully"}))
    );
    assert_eq!(login(&hub, "carla2", "newpassword1").await.0, 200);
    assert_eq!(login(&hub, "carla2", "password123").await.0, 401);
    let (status, body) = call(
        &hub,
        &admin,
        Method::PUT,
        &path,
        Some(json!({"email": "anna@example.com"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str(), body["code"].as_str()),
        (400, Some("Email already exists"), Some("validation_failed"))
    );
    let (status, body) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/admin/users/nobody",
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "User not found", "code": "user_not_found"})
        )
    );
    let (status, _) = call(
        &hub,
        &admin,
        Method::PUT,
        "/api/v1/admin/users/nobody",
        Some(json!({"username": "zed"})),
    )
    .await;
    assert_eq!(status, 404);

    // Reset password: a new 16-character password, shown once; old sessions end.
    let (_, carla_login) = login(&hub, "carla2", "newpassword1").await;
    let carla_token = carla_login["access_token"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &hub,
        &admin,
        Method::POST,
        &format!("{path}/reset-password"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Password reset successfully"))
    );
    let new_password = body["new_password"].as_str().unwrap().to_owned();
    assert_eq!(new_password.len(), 16);
    let (status, _) = call(&hub, &carla_token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 401, "the old session ended");
    assert_eq!(login(&hub, "carla2", &new_password).await.0, 200);
    let store = hub.store().await;
    assert!(
        !store
            .recent_audit(None, 100)
            .await
            .unwrap()
            .iter()
            .any(|row| row
                .context_json
                .as_deref()
                .unwrap_or_default()
                .contains(&new_password)),
        "the new password is not in the audit log"
    );
    hub.stop().await;
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_removed_even_by_a_race() {
    let hub = TestHub::start().await;
    let root = hub.register("root", "password123").await;
    let (root_token, root_id) = (root.access_token, root.user.id);
    let other = hub.register("other", "password123").await;
    let other_id = other.user.id.clone();
    let (status, body) = call(
        &hub,
        &root_token,
        Method::POST,
        &format!("/api/v1/admin/users/{root_id}/set-admin"),
        Some(json!({"is_admin": false})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("cannot_demote_self"))
    );
    for (path, code) in [
        (
            format!("/api/v1/admin/users/{root_id}"),
            "cannot_delete_self",
        ),
        (
            format!("/api/v1/admin/users/{root_id}/disable"),
            "cannot_disable_self",
        ),
    ] {
        let method = if path.ends_with("disable") {
            Method::POST
        } else {
            Method::DELETE
        };
        let (status, body) = call(&hub, &root_token, method, &path, None).await;
        assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{path}");
    }
    let (status, body) = call(
        &hub,
        &root_token,
        Method::POST,
        &format!("/api/v1/admin/users/{other_id}/set-admin"),
        Some(json!({"is_admin": "maybe"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_request"))
    );

    // Two admins demote each other at the same time, many times over: never zero admins.
    for round in 0..10 {
        let (status, _) = call(
            &hub,
            &root_token,
            Method::POST,
            &format!("/api/v1/admin/users/{other_id}/set-admin"),
            Some(json!({"is_admin": true})),
        )
        .await;
        assert_eq!(status, 200);
        let other_token = login(&hub, "other", "password123").await.1["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let demote_other = format!("/api/v1/admin/users/{other_id}/set-admin");
        let demote_root = format!("/api/v1/admin/users/{root_id}/set-admin");
        let (a, b) = tokio::join!(
            call(
                &hub,
                &root_token,
                Method::POST,
                &demote_other,
                Some(json!({"is_admin": false}))
            ),
            call(
                &hub,
                &other_token,
                Method::POST,
                &demote_root,
                Some(json!({"is_admin": false}))
            ),
        );
        let statuses = [a.0, b.0];
        let (_, listing) = call(
            &hub,
            &if a.0 == 200 {
                root_token.clone()
            } else {
                other_token.clone()
            },
            Method::GET,
            "/api/v1/admin/users",
            None,
        )
        .await;
        let admins = listing["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["is_admin"] == 1)
            .count();
        assert_eq!(admins, 1, "round {round}: {statuses:?} {listing}");
        assert!(statuses.contains(&200), "round {round}: {a:?} {b:?}");
        let refused = if a.0 == 200 { &b } else { &a };
        assert!(
            matches!(
                refused.1["code"].as_str(),
                Some("last_admin") | Some("auth.not_admin")
            ),
            "round {round}: {refused:?}"
        );
        if a.0 != 200 {
            // `other` won: make root the admin again for the next round.
            let (status, _) = call(
                &hub,
                &other_token,
                Method::POST,
                &format!("/api/v1/admin/users/{root_id}/set-admin"),
                Some(json!({"is_admin": true})),
            )
            .await;
            assert_eq!(status, 200);
            let (status, _) = call(
                &hub,
                &root_token,
                Method::POST,
                &format!("/api/v1/admin/users/{other_id}/set-admin"),
                Some(json!({"is_admin": false})),
            )
            .await;
            assert_eq!(status, 200);
        }
    }
    // Disabling or deleting the only other admin is fine; then `last_admin` guards root.
    let (status, _) = call(
        &hub,
        &root_token,
        Method::POST,
        &format!("/api/v1/admin/users/{other_id}/set-admin"),
        Some(json!({"is_admin": true})),
    )
    .await;
    assert_eq!(status, 200);
    let other_token = login(&hub, "other", "password123").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &hub,
        &root_token,
        Method::POST,
        &format!("/api/v1/admin/users/{other_id}/disable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&hub, &other_token, Method::GET, "/api/v1/admin/users", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("account_disabled"))
    );
    hub.stop().await;
}

#[tokio::test]
async fn disabling_a_user_cuts_their_relay_and_refuses_their_tokens_at_once() {
    let setup = Setup::new().await;
    let hub = &setup.hub;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active().await;
    setup.share(json!({})).await;
    // The friend signs in (a refresh token), holds a relay channel and a spare relay token.
    let (_, friend_login) = login(hub, "friend", "password123").await;
    let refresh = friend_login["refresh_token"].as_str().unwrap().to_owned();
    let friend_pinger = ping_forever(setup.mount(&setup.friend).await);
    let owner_pinger = ping_forever(setup.mount(&setup.owner).await);
    let (_, spare) = setup.mint(&setup.friend).await;
    let spare = spare["token"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while friend_pinger.trips.load(Ordering::Relaxed) < 3 {
        assert!(
            Instant::now() < deadline,
            "the friend's channel never carried data"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A proxied request caches the friend's row in the access cache.
    let proxied = setup
        .proxy(&setup.friend, "/api/v1/media/echo")
        .send()
        .await
        .unwrap();
    assert!(proxied.status().is_success(), "{}", proxied.status());

    let disabled_at = Instant::now();
    let (status, body) = call(
        hub,
        &setup.owner,
        Method::POST,
        &format!("/api/v1/admin/users/{}/disable", setup.friend_id),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["disabled"], true);
    let ended = tokio::time::timeout(CUT_WITHIN, friend_pinger.task)
        .await
        .expect("the channel is cut")
        .unwrap();
    assert!(ended.duration_since(disabled_at) < CUT_WITHIN);
    // At once, not after the 5 s cache: the proxy route, the API, refresh, sign-in, relay tokens.
    let proxied = setup
        .proxy(&setup.friend, "/api/v1/media/echo")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 401);
    let (status, body) = call(hub, &setup.friend, Method::GET, "/api/v1/me", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("account_disabled"))
    );
    let (status, body) = hub
        .post("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("account_disabled")),
        "{body}"
    );
    let (status, body) = login(hub, "friend", "password123").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("account_disabled")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("disabled"));
    let (status, _) = login(hub, "friend", "wrong-password").await;
    assert_eq!(status, 401);
    assert!(
        setup.mount_with(&spare).await.is_err(),
        "the spare relay token is refused"
    );
    // The owner's channel goes on.
    assert!(!owner_pinger.ended.load(Ordering::Relaxed));
    // Enabled again: the friend signs in anew (old sessions stay ended).
    let (status, _) = call(
        hub,
        &setup.owner,
        Method::POST,
        &format!("/api/v1/admin/users/{}/enable", setup.friend_id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = hub
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": friend_login["refresh_token"]}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(login(hub, "friend", "password123").await.0, 200);
    owner_pinger.task.abort();
    setup.hub.stop().await;
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session() {
    let hub = TestHub::start().await;
    let admin = hub.register("root", "password123").await.access_token;
    let anna = hub.register("anna", "password123").await;
    let (_, phone) = login(&hub, "anna", "password123").await;
    let (status, _) = call(
        &hub,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{}/sign-out", anna.user.id),
        None,
    )
    .await;
    assert_eq!(status, 204);
    for token in [
        anna.access_token.as_str(),
        phone["access_token"].as_str().unwrap(),
    ] {
        assert_eq!(
            call(&hub, token, Method::GET, "/api/v1/me", None).await.0,
            401
        );
    }
    for refresh in [
        anna.refresh_token.as_str(),
        phone["refresh_token"].as_str().unwrap(),
    ] {
        assert_eq!(
            hub.post("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
                .await
                .0,
            401
        );
    }
    // A new sign-in in the same second works.
    let (status, fresh) = login(&hub, "anna", "password123").await;
    assert_eq!(status, 200);
    assert_eq!(
        call(
            &hub,
            fresh["access_token"].as_str().unwrap(),
            Method::GET,
            "/api/v1/me",
            None
        )
        .await
        .0,
        200
    );
    let (status, _) = call(
        &hub,
        &admin,
        Method::POST,
        "/api/v1/admin/users/nobody/sign-out",
        None,
    )
    .await;
    assert_eq!(status, 404);
    hub.stop().await;
}

#[tokio::test]
async fn deleting_a_user_closes_their_tunnel_and_their_shares() {
    let setup = Setup::new().await;
    let hub = &setup.hub;
    // The owner's server is shared with the friend; a second admin deletes the owner.
    setup.share(json!({})).await;
    let (mut tunnel_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active().await;
    let owner_id = user_id(hub, &setup.owner).await;
    let (status, _) = call(
        hub,
        &setup.owner,
        Method::POST,
        &format!("/api/v1/admin/users/{}/set-admin", setup.friend_id),
        Some(json!({"is_admin": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, shares) = call(hub, &setup.friend, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(shares["incoming"].as_array().unwrap().len(), 1);
    let (status, body) = call(
        hub,
        &setup.friend,
        Method::DELETE,
        &format!("/api/v1/admin/users/{owner_id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "User deleted successfully"}))
    );
    // The server's tunnel is closed by the hub with `server_removed`.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = tunnel_rx.recv().await {
            if let fake_tunnel::Seen::Closed(ended) = event {
                return Some(ended);
            }
        }
        None
    })
    .await
    .expect("the tunnel closes");
    assert!(
        matches!(&closed, Some(common::ws_client::Ended::Close(4401, reason)) if reason == "server_removed"),
        "{closed:?}"
    );
    let (_, shares) = call(hub, &setup.friend, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(shares["incoming"], json!([]));
    assert_eq!(setup.mint(&setup.friend).await.0, 404);
    assert_eq!(
        call(hub, &setup.owner, Method::GET, "/api/v1/me", None)
            .await
            .0,
        401
    );
    assert_eq!(login(hub, "owner", "password123").await.0, 401);
    let (status, _) = call(
        hub,
        &setup.friend,
        Method::GET,
        &format!("/api/v1/admin/users/{owner_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    setup.hub.stop().await;
}

#[tokio::test]
async fn the_audit_log_is_filtered_paged_and_exported_as_csv() {
    let hub = TestHub::start().await;
    let admin = hub.register("root", "password123").await.access_token;
    let anna = hub.register("anna", "password123").await;
    assert_eq!(login(&hub, "anna", "wrong-password").await.0, 401);
    let (status, _) = call(
        &hub,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{}/sign-out", anna.user.id),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(&hub, &admin, Method::GET, "/api/v1/me/audit-logs", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["limit"].as_i64(), body["offset"].as_i64()),
        (Some(50), Some(0))
    );
    let total = body["total"].as_i64().unwrap();
    assert!(total >= 4, "{body}");
    let newest = &body["logs"][0];
    for key in [
        "id",
        "event",
        "user_id",
        "actor",
        "resource",
        "action",
        "success",
        "reason",
        "ip_address",
        "user_agent",
        "context",
        "created_at",
    ] {
        assert!(newest.get(key).is_some(), "{key} missing in {newest}");
    }
    assert_eq!(
        (
            newest["event"].as_str(),
            newest["action"].as_str(),
            newest["actor"].as_str()
        ),
        (Some("admin_action"), Some("user.sign_out"), Some("root"))
    );
    assert_eq!(newest["context"]["target_user_id"], anna.user.id.as_str());
    // Filters.
    let (_, failures) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/me/audit-logs?success=0",
        None,
    )
    .await;
    assert!(
        failures["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["success"] == 0)
    );
    assert!(
        failures["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["event"] == "auth.login.failure")
    );
    let (_, by_user) = call(
        &hub,
        &admin,
        Method::GET,
        &format!("/api/v1/me/audit-logs?user_id={}", anna.user.id),
        None,
    )
    .await;
    assert!(
        by_user["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["user_id"] == anna.user.id.as_str())
    );
    let (_, by_action) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/me/audit-logs?action=user.sign_out&resource=users",
        None,
    )
    .await;
    assert_eq!(by_action["total"], 1);
    let (_, future) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/me/audit-logs?from=4102444800",
        None,
    )
    .await;
    assert_eq!(future["total"], 0);
    let (_, paged) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/me/audit-logs?limit=1&offset=1",
        None,
    )
    .await;
    assert_eq!(paged["logs"].as_array().unwrap().len(), 1);
    assert_eq!(paged["logs"][0]["id"], body["logs"][1]["id"]);
    // Bad input: clear 400s, clamped limits.
    let (status, clamped) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/me/audit-logs?limit=100000",
        None,
    )
    .await;
    assert_eq!((status, clamped["limit"].as_i64()), (200, Some(200)));
    let long = "x".repeat(10_000);
    for query in [
        "offset=-1",
        "from=10&to=5",
        "success=maybe",
        "from=yesterday",
        &format!("event={long}"),
    ] {
        let (status, body) = call(
            &hub,
            &admin,
            Method::GET,
            &format!("/api/v1/me/audit-logs?{query}"),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_query")),
            "{}",
            &query[..query.len().min(40)]
        );
    }
    let (status, body) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/me/audit-logs?event=%27%20OR%201%3D1%20--",
        None,
    )
    .await;
    assert_eq!((status, body["total"].as_i64()), (200, Some(0)));

    // 100 000 rows stream out as CSV, page by page.
    let store = hub.store().await;
    common::execute(
        &store,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
         INSERT INTO audit_logs (event, user_id, resource, action, success, reason, ip_address, user_agent, context_json, created_at) \
         SELECT 'bulk.row', NULL, 'bulk', 'bulk.row', TRUE, NULL, '10.0.0.1', '=cmd|x', '{\"i\":1}', 1000000 + i FROM n",
        &[],
    )
    .await;
    let response = hub
        .http_client
        .get(hub.url("/api/v1/me/audit-logs?event=bulk.row"))
        .bearer_auth(&admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let mut response = response;
    let (mut lines, mut chunks, mut tail, mut first) = (0_usize, 0_usize, Vec::new(), None);
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks += 1;
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        let head: &mut String = first.get_or_insert_with(String::new);
        if head.len() < 600 {
            head.push_str(&String::from_utf8_lossy(&chunk[..chunk.len().min(400)]));
        }
        tail = chunk.to_vec();
    }
    assert_eq!(lines, 100_001, "the header and every row");
    assert!(chunks > 10, "sent in pieces ({chunks})");
    let first = first.unwrap();
    assert!(first.starts_with("id,event,user_id,actor,resource,action,success,reason,ip_address,user_agent,context,created_at\r\n"), "{first}");
    assert!(
        first.contains(",'=cmd|x,"),
        "a formula cell is defused: {first}"
    );
    assert!(
        first.contains("\"{\"\"i\"\":1}\""),
        "JSON context is quoted: {first}"
    );
    assert!(
        String::from_utf8_lossy(&tail).contains("1970-01-12 13:46:41"),
        "the oldest row is last"
    );
    let (status, _) = call(
        &hub,
        &anna.access_token,
        Method::GET,
        "/api/v1/me/audit-logs?format=csv",
        None,
    )
    .await;
    assert_eq!(status, 401, "anna's session was ended above");
    hub.stop().await;
}

#[tokio::test]
async fn the_dashboard_sums_up_the_hub() {
    let hub = TestHub::start_configured(
        |_| {},
        |config| config.stats_interval = Duration::from_millis(100),
    )
    .await;
    let admin = hub.register("root", "password123").await.access_token;
    let anna = hub.register("anna", "password123").await.access_token;
    let mut server = common::fake_server::FakePhlixServer::new(&hub.url(""), "Dash NAS");
    server.request_claim().await;
    let code = server.claim_code.clone().unwrap();
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/server-claims/claim"))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(&anna)
        .json(&json!({"claim_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    server.poll().await;
    assert_eq!(server.heartbeat(&[("1", "Films")]).await.0, 200);
    let (status, _) = call(
        &hub,
        &anna,
        Method::POST,
        "/api/v1/me/requests",
        Some(json!({"type": "movie", "tmdb_id": 1, "title": "A film"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/admin/dashboard/summary",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(body["success"], true);
    assert_eq!(
        data["servers"],
        json!({"total": 1, "online": 1, "offline": 0})
    );
    assert_eq!(
        (
            data["pending_requests"].as_i64(),
            data["user_count"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(data["heartbeats_per_minute"], 1);
    for key in [
        "active_relay_sessions",
        "relay_bytes_today",
        "webhook_failures_24h",
    ] {
        assert!(data[key].is_i64(), "{key}: {data}");
    }
    let (status, body) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/admin/dashboard/activity?limit=3",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let entries = body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        (entries[0]["action"].as_str(), entries[0]["actor"].as_str()),
        (Some("request.create"), Some("anna"))
    );
    for key in ["id", "action", "actor", "target", "created_at"] {
        assert!(entries[0].get(key).is_some(), "{key}");
    }
    let (status, body) = call(
        &hub,
        &admin,
        Method::GET,
        "/api/v1/admin/dashboard/activity?limit=abc",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
    // The sampler writes a point per minute for the charts.
    let store = hub.store().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let points = store.stats_since(0).await.unwrap();
        if points
            .iter()
            .any(|p| p.servers_online == 1 && p.heartbeats >= 1)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{points:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hub.stop().await;
}

/// A change of a user whose body is not a JSON object is refused (found by schemathesis: an
/// array was taken for "no change" and answered 200); no body still means no change.
#[tokio::test]
async fn a_user_change_must_be_a_json_object() {
    let hub = TestHub::start().await;
    let admin = hub.register("root", "password123").await.access_token;
    let member = hub.register("member", "password123").await.user.id;
    let path = format!("/api/v1/admin/users/{member}");
    for body in ["[null, null]", "\"member2\"", "42", "null", "{oops"] {
        let resp = hub
            .http_client
            .put(hub.url(&path))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, answer) = common::status_json(resp).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["code"], "invalid_json", "{body}: {answer}");
    }
    let resp = hub
        .http_client
        .put(hub.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, answer) = common::status_json(resp).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"], "User updated successfully");
    let (status, answer) = call(&hub, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(answer["user"]["username"], "member");
}
