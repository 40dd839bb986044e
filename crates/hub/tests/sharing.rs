//! Library sharing (SPEC M) and invite links (SPEC N) over HTTP, on the store under test:
//! every route's success and every error code in the documented order, concurrency of
//! invite redemption, expiry, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::fake_server::FakePhlixServer;
use common::{TestHub, status_json};
use reqwest::Method;
use serde_json::{Value, json};

/// A signed-up user: (access token, user id, e-mail).
struct User {
    token: String,
    id: String,
    email: String,
}

async fn user(hub: &TestHub, name: &str) -> User {
    let auth = hub.register(name, "password123").await;
    User {
        token: auth.access_token,
        id: auth.user.id,
        email: format!("{name}@example.com"),
    }
}

/// `method path` with `user`'s bearer token and an optional JSON body.
async fn call(
    hub: &TestHub,
    user: &User,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = hub
        .http_client
        .request(method, hub.url(path))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(&user.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Pairs a fake server with `owner` and reports two libraries by heartbeat.
async fn server_with_libraries(hub: &TestHub, owner: &User, name: &str) -> FakePhlixServer {
    let mut server = FakePhlixServer::new(&hub.url(""), name);
    let (status, body) = server.request_claim().await;
    assert_eq!(status, 200, "{body}");
    let code = server.claim_code.clone().unwrap();
    let (status, body) = call(
        hub,
        owner,
        Method::POST,
        "/api/v1/server-claims/claim",
        Some(json!({"claim_code": code})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.poll().await["status"], "claimed");
    let (status, body) = server
        .heartbeat(&[("lib-movies", "Movies"), ("lib-shows", "Shows")])
        .await;
    assert_eq!(status, 200, "{body}");
    server
}

fn code(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["code"].as_str())
}

#[tokio::test]
async fn shares_answer_every_spec_m_check_in_order() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    let friend = user(&hub, "friend").await;
    let other = user(&hub, "other").await;
    let server = server_with_libraries(&hub, &owner, "Family NAS").await;
    let sid = server.server_id();
    let theirs = server_with_libraries(&hub, &other, "Other NAS").await;

    let full = json!({"collaborator_email": friend.email, "server_id": sid,
        "library_id": "lib-movies", "library_name": "Movies", "permission": "read"});
    let without = |field: &str| {
        let mut body = full.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let with = |patch: Value| {
        let mut body = full.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    // Each case breaks the first check that is not already broken by an earlier field.
    let cases: Vec<(Option<Value>, u16, &str)> = vec![
        (None, 400, "invalid_body"),
        (Some(json!({})), 400, "invalid_body"),
        (Some(json!([1, 2])), 400, "invalid_body"),
        (
            Some(without("collaborator_email")),
            400,
            "missing_collaborator_email",
        ),
        (
            Some(with(json!({"collaborator_email": 5}))),
            400,
            "missing_collaborator_email",
        ),
        (
            Some(with(
                json!({"collaborator_email": format!("{}@x.example", "a".repeat(10_240))}),
            )),
            400,
            "missing_collaborator_email",
        ),
        (Some(without("server_id")), 400, "missing_server_id"),
        (
            Some(with(json!({"server_id": ["x"]}))),
            400,
            "missing_server_id",
        ),
        (Some(without("library_id")), 400, "missing_library_id"),
        (Some(without("library_name")), 400, "missing_library_name"),
        (
            Some(with(json!({"collaborator_email": "nobody@example.com"}))),
            404,
            "user_not_found",
        ),
        (
            Some(with(json!({"collaborator_email": owner.email}))),
            400,
            "invalid_request",
        ),
        (
            Some(with(json!({"server_id": theirs.server_id()}))),
            403,
            "not_server_owner",
        ),
        (
            Some(with(json!({"server_id": "no-such-server"}))),
            403,
            "not_server_owner",
        ),
        (
            Some(with(json!({"permission": "admin"}))),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, expected) in cases {
        let answer = call(
            &hub,
            &owner,
            Method::POST,
            "/api/v1/me/shares",
            body.clone(),
        )
        .await;
        assert_eq!(
            code(&answer),
            (status, Some(expected)),
            "{body:?}: {}",
            answer.1
        );
        assert!(answer.1["error"].as_str().is_some());
    }
    let (status, body) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares",
        Some(with(json!({"collaborator_email": owner.email}))),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Cannot share library with yourself"))
    );

    // Success: 201 with the Share fields; a non-string permission is `read`.
    let (status, share) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares/",
        Some(with(json!({"permission": 7}))),
    )
    .await;
    assert_eq!(status, 201, "{share}");
    for field in [
        "id",
        "owner_user_id",
        "collaborator_user_id",
        "server_id",
        "library_id",
        "library_name",
        "permission_level",
        "created_at",
        "expires_at",
        "revoked_at",
        "collaborator_name",
    ] {
        assert!(share.get(field).is_some(), "Share lacks {field}: {share}");
    }
    assert_eq!(share["permission_level"], "read");
    assert_eq!(share["collaborator_user_id"], friend.id.as_str());
    assert_eq!(share["collaborator_name"], "friend");
    assert!(share["expires_at"].is_null() && share["revoked_at"].is_null());
    let share_id = share["id"].as_str().unwrap().to_owned();
    let again = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares",
        Some(full.clone()),
    )
    .await;
    assert_eq!(code(&again), (409, Some("share_exists")), "{}", again.1);

    // Lists: outgoing for the owner, incoming (with the server's URLs and relay flag) for the
    // friend; nothing for a stranger.
    let (_, lists) = call(&hub, &owner, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(lists["outgoing"][0]["id"], share_id.as_str());
    assert_eq!(lists["incoming"], json!([]));
    let (_, lists) = call(&hub, &friend, Method::GET, "/api/v1/me/shares/", None).await;
    let incoming = &lists["incoming"][0];
    assert_eq!(incoming["share_id"], share_id.as_str());
    assert_eq!(incoming["owner_name"], "owner");
    assert_eq!(incoming["server_name"], "Family NAS");
    assert_eq!(incoming["library_item_count"], 0);
    assert!(incoming["access_urls"].is_array());
    assert!(incoming["relay_available"].is_boolean());
    let (_, lists) = call(&hub, &other, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(lists, json!({"outgoing": [], "incoming": []}));

    // PATCH: body checks before the lookup, then 404, then 403.
    let path = format!("/api/v1/me/shares/{share_id}");
    for (body, status, expected) in [
        (None, 400, "invalid_body"),
        (Some(json!({})), 400, "invalid_body"),
        (Some(json!({"permission": 1})), 400, "missing_permission"),
        (
            Some(json!({"permission": "owner"})),
            400,
            "invalid_permission",
        ),
    ] {
        let answer = call(
            &hub,
            &owner,
            Method::PATCH,
            "/api/v1/me/shares/nope",
            body.clone(),
        )
        .await;
        assert_eq!(
            code(&answer),
            (status, Some(expected)),
            "{body:?}: {}",
            answer.1
        );
    }
    let answer = call(
        &hub,
        &owner,
        Method::PATCH,
        "/api/v1/me/shares/nope",
        Some(json!({"permission": "readwrite"})),
    )
    .await;
    assert_eq!(code(&answer), (404, Some("share_not_found")));
    for stranger in [&other, &friend] {
        let answer = call(
            &hub,
            stranger,
            Method::PATCH,
            &path,
            Some(json!({"permission": "readwrite"})),
        )
        .await;
        assert_eq!(
            code(&answer),
            (403, Some("not_share_owner")),
            "{}",
            answer.1
        );
    }
    let (status, patched) = call(
        &hub,
        &owner,
        Method::PATCH,
        &path,
        Some(json!({"permission": "readwrite"})),
    )
    .await;
    assert_eq!(
        (status, patched["permission_level"].as_str()),
        (200, Some("readwrite"))
    );

    // DELETE: 404, 403 for a stranger, 204 and again 204; re-sharing re-activates in place.
    assert_eq!(
        code(&call(&hub, &owner, Method::DELETE, "/api/v1/me/shares/nope", None).await),
        (404, Some("share_not_found"))
    );
    let answer = call(&hub, &other, Method::DELETE, &path, None).await;
    assert_eq!(
        (answer.0, answer.1["message"].as_str()),
        (403, Some("You do not own this share"))
    );
    assert_eq!(call(&hub, &owner, Method::DELETE, &path, None).await.0, 204);
    assert_eq!(call(&hub, &owner, Method::DELETE, &path, None).await.0, 204);
    let (_, lists) = call(&hub, &friend, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(lists["incoming"], json!([]));
    let (status, again) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares",
        Some(with(
            json!({"permission": "readwrite", "library_name": "Films"}),
        )),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], share_id.as_str(), "re-activated in place");
    assert_eq!(again["library_name"], "Films");
    assert!(again["revoked_at"].is_null());

    // The collaborator may leave (ours).
    assert_eq!(
        call(&hub, &friend, Method::DELETE, &path, None).await.0,
        204
    );
    let (_, lists) = call(&hub, &owner, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(lists["outgoing"], json!([]));

    // Audit rows for each action.
    let store = hub.store().await;
    for event in ["share.created", "share.updated", "share.revoked"] {
        assert!(
            !store.recent_audit(Some(event), 5).await.unwrap().is_empty(),
            "{event}"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn the_collaborator_cap_counts_people_not_shares_and_shares_expire() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "capowner").await;
    let first = user(&hub, "first").await;
    let second = user(&hub, "second").await;
    let server = server_with_libraries(&hub, &owner, "Capped").await;
    let sid = server.server_id();
    let (status, body) = call(
        &hub,
        &owner,
        Method::PUT,
        "/api/v1/me/hub-settings",
        Some(json!({"settings": {"server.max_users_per_server": 1}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let share = |email: &str, library: &str, extra: Value| {
        let mut body = json!({"collaborator_email": email, "server_id": sid,
            "library_id": library, "library_name": library});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    assert_eq!(
        call(
            &hub,
            &owner,
            Method::POST,
            "/api/v1/me/shares",
            Some(share(&first.email, "lib-movies", json!({})))
        )
        .await
        .0,
        201
    );
    // The same collaborator on another library does not count twice.
    assert_eq!(
        call(
            &hub,
            &owner,
            Method::POST,
            "/api/v1/me/shares",
            Some(share(&first.email, "lib-shows", json!({})))
        )
        .await
        .0,
        201
    );
    let answer = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares",
        Some(share(&second.email, "lib-movies", json!({}))),
    )
    .await;
    assert_eq!(code(&answer), (409, Some("quota.exceeded")), "{}", answer.1);
    assert_eq!(
        answer.1["message"],
        "This server has reached its collaborator limit"
    );

    // Lift the cap; a share with `expires_in` disappears when it expires.
    call(
        &hub,
        &owner,
        Method::PUT,
        "/api/v1/me/hub-settings",
        Some(json!({"settings": {"server.max_users_per_server": 0}})),
    )
    .await;
    let (status, short) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares",
        Some(share(&second.email, "lib-movies", json!({"expires_in": 1}))),
    )
    .await;
    assert_eq!(status, 201, "{short}");
    assert!(short["expires_at"].is_i64());
    let bad = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares",
        Some(share(
            &second.email,
            "lib-shows",
            json!({"expires_in": "soon"}),
        )),
    )
    .await;
    assert_eq!(code(&bad), (400, Some("invalid_request")));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, lists) = call(&hub, &second, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(lists["incoming"], json!([]), "an expired share is gone");
    // …and may be given again (re-activated in place).
    let (status, again) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares",
        Some(share(&second.email, "lib-movies", json!({}))),
    )
    .await;
    assert_eq!((status, &again["id"]), (201, &short["id"]));
    hub.stop().await;
}

#[tokio::test]
async fn the_library_picker_lists_an_owned_servers_libraries_by_name() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "picker").await;
    let other = user(&hub, "notpicker").await;
    let server = server_with_libraries(&hub, &owner, "Picker NAS").await;
    let path = format!("/api/v1/me/libraries?server_id={}", server.server_id());
    let (status, body) = call(&hub, &owner, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"libraries": [{"id": "lib-movies", "name": "Movies"}, {"id": "lib-shows", "name": "Shows"}]})
    );
    assert_eq!(
        code(&call(&hub, &other, Method::GET, &path, None).await),
        (403, Some("not_server_owner"))
    );
    assert_eq!(
        code(
            &call(
                &hub,
                &owner,
                Method::GET,
                "/api/v1/me/libraries?server_id=",
                None
            )
            .await
        ),
        (400, Some("missing_server_id"))
    );
    // Without the parameter: every library of the caller's servers, as before.
    let (status, body) = call(&hub, &owner, Method::GET, "/api/v1/me/libraries", None).await;
    assert_eq!(
        (status, body["libraries"].as_array().unwrap().len()),
        (200, 2)
    );
    assert_eq!(body["libraries"][0]["server_name"], "Picker NAS");
    hub.stop().await;
}

#[tokio::test]
async fn invite_links_answer_every_spec_n_check_in_order() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "inviter").await;
    let guest = user(&hub, "guest").await;
    let late = user(&hub, "late").await;
    let other = user(&hub, "outsider").await;
    let server = server_with_libraries(&hub, &owner, "Invite NAS").await;
    let sid = server.server_id();
    let theirs = server_with_libraries(&hub, &other, "Not Yours").await;

    for (body, status, expected) in [
        (None, 400, "invalid_body"),
        (Some(json!({})), 400, "invalid_body"),
        (
            Some(json!({"library_id": "lib-movies"})),
            400,
            "missing_server_id",
        ),
        (
            Some(json!({"server_id": sid, "permission": "root"})),
            400,
            "invalid_request",
        ),
        (
            Some(json!({"server_id": theirs.server_id()})),
            403,
            "not_server_owner",
        ),
        (Some(json!({"server_id": 42})), 400, "missing_server_id"),
    ] {
        let answer = call(
            &hub,
            &owner,
            Method::POST,
            "/api/v1/me/invite-links",
            body.clone(),
        )
        .await;
        assert_eq!(
            code(&answer),
            (status, Some(expected)),
            "{body:?}: {}",
            answer.1
        );
    }
    // A two-use link for Movies: the token is 64 lowercase hex, shown once.
    let (status, created) = call(&hub, &owner, Method::POST, "/api/v1/me/invite-links/",
        Some(json!({"server_id": sid, "library_id": "lib-movies", "max_uses": 2, "permission": "readwrite"}))).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(
        token.len() == 64
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{token}"
    );
    assert_eq!(created["url"], format!("http://127.0.0.1/invite/{token}"));
    let week = created["expires_at"].as_i64().unwrap() - phlix_hub::auth::now_unix();
    assert!(
        (604_700..=604_800).contains(&week),
        "default expiry one week: {week}"
    );
    let (_, listed) = call(&hub, &owner, Method::GET, "/api/v1/me/invite-links", None).await;
    let link = &listed["invite_links"][0];
    assert!(
        link["url"].is_null() && link["status"] == "active",
        "{link}"
    );
    assert_eq!(
        (link["max_uses"].as_i64(), link["use_count"].as_i64()),
        (Some(2), Some(0))
    );
    let store = hub.store().await;
    assert!(
        !format!(
            "{:?}",
            store
                .invite_by_id(link["id"].as_str().unwrap())
                .await
                .unwrap()
        )
        .contains(&token),
        "only the hash is stored"
    );

    // Redeem: malformed and unknown tokens are 404, one's own link 400.
    let redeem = |t: &str| format!("/api/v1/me/invite-links/{t}/redeem");
    for bad in [
        "abc",
        &"g".repeat(64),
        &"0".repeat(64),
        &token.to_uppercase(),
    ] {
        let answer = call(&hub, &guest, Method::POST, &redeem(bad), None).await;
        assert_eq!(code(&answer), (404, Some("invite_link_not_found")), "{bad}");
    }
    let own = call(&hub, &owner, Method::POST, &redeem(&token), None).await;
    assert_eq!(
        (own.0, own.1["code"].as_str(), own.1["message"].as_str()),
        (
            400,
            Some("invalid_invite"),
            Some("Cannot redeem your own invite link")
        )
    );
    let (status, share) = call(&hub, &guest, Method::POST, &redeem(&token), None).await;
    assert_eq!(status, 201, "{share}");
    assert_eq!(
        (
            share["library_id"].as_str(),
            share["library_name"].as_str(),
            share["permission_level"].as_str()
        ),
        (Some("lib-movies"), Some("Movies"), Some("readwrite"))
    );
    // A failed redeem (already shared) burns no use.
    let twice = call(&hub, &guest, Method::POST, &redeem(&token), None).await;
    assert_eq!(
        (
            twice.0,
            twice.1["code"].as_str(),
            twice.1["message"].as_str()
        ),
        (
            409,
            Some("share_exists"),
            Some("This library is already shared with you")
        )
    );
    let (_, listed) = call(&hub, &owner, Method::GET, "/api/v1/me/invite-links", None).await;
    assert_eq!(listed["invite_links"][0]["use_count"], 1);
    assert_eq!(
        call(&hub, &late, Method::POST, &redeem(&token), None)
            .await
            .0,
        201
    );
    let exhausted = call(&hub, &other, Method::POST, &redeem(&token), None).await;
    assert_eq!(
        (
            exhausted.0,
            exhausted.1["code"].as_str(),
            exhausted.1["message"].as_str()
        ),
        (
            410,
            Some("invite_expired_or_exhausted"),
            Some("Invite link has been exhausted")
        )
    );
    let (_, listed) = call(&hub, &owner, Method::GET, "/api/v1/me/invite-links", None).await;
    assert_eq!(listed["invite_links"][0]["status"], "exhausted");

    // An all-libraries link that expires; revoke = exhaust; strangers may not revoke.
    let (_, all) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/invite-links",
        Some(json!({"server_id": sid, "expires_in": 1, "max_uses": 0})),
    )
    .await;
    let all_token = all["token"].as_str().unwrap().to_owned();
    let (_, forever) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/invite-links",
        Some(json!({"server_id": sid, "expires_in": 0})),
    )
    .await;
    assert!(
        forever["expires_at"].is_null(),
        "expires_in 0 never expires: {forever}"
    );
    let (status, everything) = call(
        &hub,
        &other,
        Method::POST,
        &redeem(forever["token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 201, "{everything}");
    assert_eq!(
        (
            everything["library_id"].as_str(),
            everything["library_name"].as_str()
        ),
        (Some(""), Some("All Libraries"))
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = call(&hub, &other, Method::POST, &redeem(&all_token), None).await;
    assert_eq!(
        (expired.0, expired.1["message"].as_str()),
        (410, Some("Invite link has expired"))
    );
    let all_id = all["id"].as_str().unwrap();
    let answer = call(
        &hub,
        &other,
        Method::DELETE,
        &format!("/api/v1/me/invite-links/{all_id}"),
        None,
    )
    .await;
    assert_eq!(
        (answer.0, answer.1["code"].as_str()),
        (403, Some("not_link_owner"))
    );
    assert_eq!(
        code(
            &call(
                &hub,
                &owner,
                Method::DELETE,
                "/api/v1/me/invite-links/nope",
                None
            )
            .await
        ),
        (404, Some("invite_link_not_found"))
    );
    let (_, fresh) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/invite-links",
        Some(json!({"server_id": sid, "max_uses": 5})),
    )
    .await;
    let fresh_id = fresh["id"].as_str().unwrap();
    assert_eq!(
        call(
            &hub,
            &owner,
            Method::DELETE,
            &format!("/api/v1/me/invite-links/{fresh_id}"),
            None
        )
        .await
        .0,
        204
    );
    let revoked = call(
        &hub,
        &guest,
        Method::POST,
        &redeem(fresh["token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(revoked.0, 410, "a revoked link is exhausted: {}", revoked.1);
    let (_, listed) = call(&hub, &owner, Method::GET, "/api/v1/me/invite-links", None).await;
    let links = listed["invite_links"].as_array().unwrap();
    assert_eq!(links[0]["id"], fresh_id, "newest first: {listed}");
    let mut statuses: Vec<&str> = links
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        ["exhausted", "exhausted", "exhausted", "expired"],
        "{listed}"
    );

    // GET /invite/{token} sends the visitor to the page.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirect
        .get(hub.url(&format!("/invite/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], format!("/app/invite/{token}"));
    for event in ["invite.created", "invite.redeemed", "invite.revoked"] {
        assert!(
            !store.recent_audit(Some(event), 5).await.unwrap().is_empty(),
            "{event}"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn a_k_use_link_redeemed_by_k_plus_3_people_at_once_makes_exactly_k_shares() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "popular").await;
    let server = server_with_libraries(&hub, &owner, "Busy NAS").await;
    let k = 4;
    let (_, created) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/invite-links",
        Some(json!({"server_id": server.server_id(), "max_uses": k})),
    )
    .await;
    let token = created["token"].as_str().unwrap().to_owned();
    let mut guests = Vec::new();
    for i in 0..k + 3 {
        guests.push(user(&hub, &format!("rush{i}")).await);
    }
    let path = format!("/api/v1/me/invite-links/{token}/redeem");
    let answers = futures_util::future::join_all(
        guests
            .iter()
            .map(|g| call(&hub, g, Method::POST, &path, None)),
    )
    .await;
    let created = answers.iter().filter(|a| a.0 == 201).count();
    let gone = answers
        .iter()
        .filter(|a| code(a) == (410, Some("invite_expired_or_exhausted")))
        .count();
    assert_eq!((created, gone), (k as usize, 3), "{answers:?}");
    let (_, listed) = call(&hub, &owner, Method::GET, "/api/v1/me/invite-links", None).await;
    assert_eq!(listed["invite_links"][0]["use_count"], k);
    let (_, shares) = call(&hub, &owner, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(shares["outgoing"].as_array().unwrap().len(), k as usize);
    hub.stop().await;
}

#[tokio::test]
async fn strangers_and_anonymous_callers_are_refused_on_every_sharing_route() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "guarded").await;
    let friend = user(&hub, "guardfriend").await;
    let stranger = user(&hub, "intruder").await;
    let server = server_with_libraries(&hub, &owner, "Guarded NAS").await;
    let sid = server.server_id();
    let (_, share) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/shares",
        Some(json!({"collaborator_email": friend.email,
        "server_id": sid, "library_id": "lib-movies", "library_name": "Movies"})),
    )
    .await;
    let share_id = share["id"].as_str().unwrap();
    let (_, invite) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/invite-links",
        Some(json!({"server_id": sid})),
    )
    .await;
    let invite_id = invite["id"].as_str().unwrap();
    let routes = [
        (
            Method::PATCH,
            format!("/api/v1/me/shares/{share_id}"),
            Some(json!({"permission": "readwrite"})),
            403,
        ),
        (
            Method::DELETE,
            format!("/api/v1/me/shares/{share_id}"),
            None,
            403,
        ),
        (
            Method::DELETE,
            format!("/api/v1/me/invite-links/{invite_id}"),
            None,
            403,
        ),
        (
            Method::GET,
            format!("/api/v1/me/libraries?server_id={sid}"),
            None,
            403,
        ),
        (
            Method::PUT,
            format!("/api/v1/me/servers/{sid}/sharing-policy"),
            Some(json!({"collaborator_relay": false})),
            403,
        ),
        (
            Method::POST,
            "/api/v1/me/shares".to_owned(),
            Some(
                json!({"collaborator_email": friend.email, "server_id": sid, "library_id": "x", "library_name": "X"}),
            ),
            403,
        ),
        (
            Method::POST,
            "/api/v1/me/invite-links".to_owned(),
            Some(json!({"server_id": sid})),
            403,
        ),
    ];
    for (method, path, body, status) in &routes {
        let answer = call(&hub, &stranger, method.clone(), path, body.clone()).await;
        assert_eq!(answer.0, *status, "{method} {path}: {}", answer.1);
        // The collaborator is no owner of the server either.
        if path.contains("sharing-policy") || path.contains("libraries") {
            let answer = call(&hub, &friend, method.clone(), path, body.clone()).await;
            assert_eq!(answer.0, 403, "collaborator: {method} {path}: {}", answer.1);
        }
        let mut anonymous = hub.http_client.request(method.clone(), hub.url(path));
        if let Some(body) = body {
            anonymous = anonymous.json(body);
        }
        let (status, body) = status_json(anonymous.send().await.unwrap()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("auth.required")),
            "{method} {path}"
        );
    }
    // Nothing changed.
    let (_, lists) = call(&hub, &friend, Method::GET, "/api/v1/me/shares", None).await;
    assert_eq!(lists["incoming"][0]["permission_level"], "read");
    hub.stop().await;
}

#[tokio::test]
async fn an_invite_lets_a_visitor_sign_up_when_sign_ups_are_disabled() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "admin").await;
    let server = server_with_libraries(&hub, &owner, "Closed NAS").await;
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
    let (status, body) = hub
        .post("/api/v1/auth/register", &json!({"username": "walkin", "email": "walkin@example.com", "password": "password123"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("signups_disabled")),
        "{body}"
    );

    let (_, invite) = call(
        &hub,
        &owner,
        Method::POST,
        "/api/v1/me/invite-links",
        Some(json!({"server_id": server.server_id()})),
    )
    .await;
    let token = invite["token"].as_str().unwrap();
    let mut browser = common::web_client::WebClient::new(&hub.url(""));
    browser.get("/app/signup").await;
    let page = browser
        .submit(
            "/app/signup",
            &[
                ("username", "invitee"),
                ("email", "invitee@example.com"),
                ("password", "password123"),
                ("invite", token),
                ("next", &format!("/app/invite/{token}")),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    // A made-up invite does not open the door.
    let mut other = common::web_client::WebClient::new(&hub.url(""));
    other.get("/app/signup").await;
    let page = other
        .submit(
            "/app/signup",
            &[
                ("username", "crasher"),
                ("email", "crasher@example.com"),
                ("password", "password123"),
                ("invite", &"a".repeat(64)),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    hub.stop().await;
}
