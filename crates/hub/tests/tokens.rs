//! Personal access tokens (`/api/v1/me/mcp-tokens`, issue #18) over real sockets: shown once
//! and stored hashed, the scope matrix on the JSON API, revocation and expiry at once, the
//! session epoch, audit rows, bad input, and never a token in the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::shared_server::Setup;
use common::{TestHub, call, execute};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Makes a token for `session` with `scopes`; its id and the token.
async fn make(hub: &TestHub, session: &str, name: &str, scopes: Option<&str>) -> (String, String) {
    let mut body = json!({ "name": name });
    if let Some(scopes) = scopes {
        body["scopes"] = json!(scopes);
    }
    let (status, created) = call(
        hub,
        session,
        Method::POST,
        "/api/v1/me/mcp-tokens",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    )
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_token_is_shown_once_stored_hashed_and_listed_without_its_secret() {
    let setup = Setup::new().await;
    let hub = &setup.hub;
    let (status, created) = call(
        hub,
        &setup.owner,
        Method::POST,
        "/api/v1/me/mcp-tokens",
        Some(json!({"name": "  Home Assistant  "})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(created["name"], "Home Assistant");
    assert_eq!(
        created["scopes"], "servers:read requests:read",
        "the default scopes"
    );
    assert_eq!(created["expired"], false);
    assert!(created["last_used_at"].is_null());
    // 90 days by default (times as `YYYY-MM-DD HH:MM:SS`, UTC).
    let at = |field: &str| {
        let format =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        time::PrimitiveDateTime::parse(created[field].as_str().unwrap(), &format)
            .unwrap_or_else(|err| panic!("{field}: {err}: {created}"))
    };
    assert_eq!((at("expires_at") - at("created_at")).whole_days(), 90);

    let (status, list) = call(
        hub,
        &setup.owner,
        Method::GET,
        "/api/v1/me/mcp-tokens",
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(list["tokens"][0]["id"], created["id"]);
    assert!(
        !list.to_string().contains(token),
        "the list shows no token: {list}"
    );
    assert!(list["tokens"][0].get("token").is_none());

    // Only the SHA-256 is stored: looking the hash up finds the row, the token itself does not.
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let store = hub.store().await;
    let by_hash = count_tokens_with_hash(&store, &hash).await;
    let by_token = count_tokens_with_hash(&store, token).await;
    assert_eq!((by_hash, by_token), (1, 0));

    // The token works, and its use is recorded (time and address).
    let (status, me) = call(hub, token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["claims"]["type"], "pat");
    assert_eq!(
        me["claims"]["scope"],
        json!(["servers:read", "requests:read"])
    );
    let (_, list) = call(
        hub,
        &setup.owner,
        Method::GET,
        "/api/v1/me/mcp-tokens",
        None,
    )
    .await;
    assert_eq!(list["tokens"][0]["last_used_ip"], "127.0.0.1", "{list}");
    assert!(list["tokens"][0]["last_used_at"].is_string(), "{list}");

    // Someone else's list does not show it.
    let (_, theirs) = call(
        hub,
        &setup.friend,
        Method::GET,
        "/api/v1/me/mcp-tokens",
        None,
    )
    .await;
    assert_eq!(theirs["tokens"], json!([]));
}

async fn count_tokens_with_hash(store: &phlix_hub::store::Store, hash: &str) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM mcp_tokens WHERE token_hash = $1";
    match store {
        phlix_hub::store::Store::Sqlite(pool) => sqlx::query_scalar(SQL)
            .bind(hash)
            .fetch_one(pool)
            .await
            .unwrap(),
        phlix_hub::store::Store::Postgres(pool) => sqlx::query_scalar(SQL)
            .bind(hash)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

/// Every scope against the routes it opens and the ones it must not: the status a token of
/// each scope gets (`ok` = the route answered as for a session, whatever it answered).
#[tokio::test]
async fn scopes_open_exactly_their_routes() {
    let setup = Setup::new().await;
    let hub = &setup.hub;
    let sid = setup.sid();
    let mut tokens = Vec::new();
    for scope in ["servers:read", "requests:read", "requests:write", "admin"] {
        tokens.push((scope, make(hub, &setup.owner, scope, Some(scope)).await.1));
    }
    let owner_id = setup.me(&setup.owner).await;
    // (method, path, body, the one scope that opens it — or None: no token opens it).
    let routes: Vec<(Method, String, Option<Value>, Option<&str>)> = vec![
        (
            Method::GET,
            "/api/v1/me/servers".into(),
            None,
            Some("servers:read"),
        ),
        (
            Method::GET,
            format!("/api/v1/me/servers/{sid}"),
            None,
            Some("servers:read"),
        ),
        (
            Method::GET,
            format!("/api/v1/me/servers/{sid}/metrics"),
            None,
            Some("servers:read"),
        ),
        (
            Method::GET,
            format!("/api/v1/me/servers/{sid}/access-info"),
            None,
            Some("servers:read"),
        ),
        (
            Method::GET,
            "/api/v1/me/shares".into(),
            None,
            Some("servers:read"),
        ),
        (
            Method::GET,
            "/api/v1/me/libraries".into(),
            None,
            Some("servers:read"),
        ),
        (
            Method::GET,
            "/api/v1/me/requests".into(),
            None,
            Some("requests:read"),
        ),
        (
            Method::GET,
            "/api/v1/me/requests/12345".into(),
            None,
            Some("requests:read"),
        ),
        (
            Method::POST,
            "/api/v1/me/requests".into(),
            Some(json!({"type": "movie", "tmdb_id": 603, "title": "The Matrix"})),
            Some("requests:write"),
        ),
        (
            Method::DELETE,
            "/api/v1/me/requests/12345".into(),
            None,
            Some("requests:write"),
        ),
        (
            Method::GET,
            "/api/v1/admin/users".into(),
            None,
            Some("admin"),
        ),
        (
            Method::GET,
            format!("/api/v1/admin/users/{owner_id}"),
            None,
            Some("admin"),
        ),
        (
            Method::GET,
            "/api/v1/admin/requests".into(),
            None,
            Some("admin"),
        ),
        (
            Method::POST,
            "/api/v1/admin/requests/12345/approve".into(),
            None,
            Some("admin"),
        ),
        // No token opens these: the account, its sessions and tokens, changes to servers,
        // shares, webhooks and settings.
        (Method::GET, "/api/v1/me/mcp-tokens".into(), None, None),
        (
            Method::POST,
            "/api/v1/me/mcp-tokens".into(),
            Some(json!({"name": "x"})),
            None,
        ),
        (
            Method::POST,
            "/api/v1/me/shares".into(),
            Some(
                json!({"collaborator_email": "friend@example.com", "server_id": sid,
                        "library_id": "lib-movies", "library_name": "Movies"}),
            ),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/me/servers/{sid}"),
            None,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/me/servers/{sid}/relay-token"),
            None,
            None,
        ),
        (Method::GET, "/api/v1/me/webhooks".into(), None, None),
        (Method::GET, "/api/v1/me/hub-settings".into(), None, None),
        (
            Method::GET,
            format!("/api/v1/servers/{sid}/proxy/"),
            None,
            None,
        ),
    ];
    for (method, path, body, opener) in &routes {
        for (scope, token) in &tokens {
            let (status, answer) = call(hub, token, method.clone(), path, body.clone()).await;
            let what = format!("{scope} token, {method} {path}: {status} {answer}");
            if opener == &Some(*scope) {
                assert!(status != 401 && status != 403, "opened: {what}");
            } else {
                assert_eq!(status, 403, "refused: {what}");
                let expected = if opener.is_some() {
                    "token.insufficient_scope"
                } else {
                    "token.route_not_allowed"
                };
                assert_eq!(code(&answer), expected, "{what}");
            }
        }
    }
    // The session itself still reaches everything of the table that it reached before.
    let (status, _) = call(
        hub,
        &setup.owner,
        Method::GET,
        "/api/v1/me/mcp-tokens",
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_admin_scope_is_for_admins_and_still_needs_an_admin() {
    let setup = Setup::new().await;
    let hub = &setup.hub;
    // The friend is no admin: no admin-scoped token for them.
    let (status, body) = call(
        hub,
        &setup.friend,
        Method::POST,
        "/api/v1/me/mcp-tokens",
        Some(json!({"name": "x", "scopes": ["servers:read", "admin"]})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (403, "token.admin_scope_admin_only"),
        "{body}"
    );
    // An admin's admin token made while admin loses the admin routes with the admin rights.
    let friend_id = setup.me(&setup.friend).await;
    let (status, body) = call(
        hub,
        &setup.owner,
        Method::POST,
        &format!("/api/v1/admin/users/{friend_id}/set-admin"),
        Some(json!({"is_admin": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, friend_admin) = make(hub, &setup.friend, "ops", Some("admin")).await;
    let (status, _) = call(hub, &friend_admin, Method::GET, "/api/v1/admin/users", None).await;
    assert_eq!(status, 200);
    let (status, body) = call(
        hub,
        &setup.owner,
        Method::POST,
        &format!("/api/v1/admin/users/{friend_id}/set-admin"),
        Some(json!({"is_admin": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(hub, &friend_admin, Method::GET, "/api/v1/admin/users", None).await;
    assert_eq!((status, code(&body)), (403, "auth.not_admin"), "{body}");
}

#[tokio::test]
async fn revocation_expiry_and_sign_out_end_a_token_at_once() {
    let setup = Setup::new().await;
    let hub = &setup.hub;
    let (id, token) = make(hub, &setup.owner, "script", None).await;
    let (status, _) = call(hub, &token, Method::GET, "/api/v1/me/servers", None).await;
    assert_eq!(status, 200);

    // Another user cannot revoke it.
    let path = format!("/api/v1/me/mcp-tokens/{id}");
    let (status, body) = call(hub, &setup.friend, Method::DELETE, &path, None).await;
    assert_eq!((status, code(&body)), (404, "token.not_found"), "{body}");
    let (status, _) = call(hub, &token, Method::GET, "/api/v1/me/servers", None).await;
    assert_eq!(status, 200);

    // Revoked: the very next request is refused.
    let (status, body) = call(hub, &setup.owner, Method::DELETE, &path, None).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(hub, &token, Method::GET, "/api/v1/me/servers", None).await;
    assert_eq!((status, code(&body)), (401, "auth.invalid_token"), "{body}");
    let (status, _) = call(hub, &setup.owner, Method::DELETE, &path, None).await;
    assert_eq!(status, 404, "revoking twice");
    let (_, list) = call(
        hub,
        &setup.owner,
        Method::GET,
        "/api/v1/me/mcp-tokens",
        None,
    )
    .await;
    assert_eq!(list["tokens"], json!([]), "a revoked token leaves the list");

    // Expired: refused, and listed as expired.
    let (id, token) = make(hub, &setup.owner, "old", None).await;
    let store = hub.store().await;
    execute(
        &store,
        "UPDATE mcp_tokens SET expires_at = created_at - 1 WHERE id = $1",
        &[id.as_str()],
    )
    .await;
    let (status, _) = call(hub, &token, Method::GET, "/api/v1/me/servers", None).await;
    assert_eq!(status, 401);
    let (_, list) = call(
        hub,
        &setup.owner,
        Method::GET,
        "/api/v1/me/mcp-tokens",
        None,
    )
    .await;
    assert_eq!(list["tokens"][0]["expired"], true, "{list}");

    // An admin's "sign out everywhere" of the friend ends the friend's tokens too.
    let (_, friend_token) = make(hub, &setup.friend, "phone", None).await;
    let (status, _) = call(hub, &friend_token, Method::GET, "/api/v1/me/servers", None).await;
    assert_eq!(status, 200);
    let friend_id = setup.me(&setup.friend).await;
    let (status, body) = call(
        hub,
        &setup.owner,
        Method::POST,
        &format!("/api/v1/admin/users/{friend_id}/sign-out"),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, _) = call(hub, &friend_token, Method::GET, "/api/v1/me/servers", None).await;
    assert_eq!(status, 401);

    // A token-shaped string that was never issued.
    let (status, body) = call(hub, &"ab".repeat(32), Method::GET, "/api/v1/me", None).await;
    assert_eq!((status, code(&body)), (401, "auth.invalid_token"), "{body}");
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let hub = TestHub::start().await;
    let session = hub.register("owner", "password123").await.access_token;
    let cases = [
        (json!({}), 400, "token.invalid_name"),
        (json!({"name": ""}), 400, "token.invalid_name"),
        (json!({"name": 7}), 400, "token.invalid_name"),
        (json!({"name": "x".repeat(101)}), 400, "token.invalid_name"),
        (json!({"name": "a\u{7}b"}), 400, "token.invalid_name"),
        (
            json!({"name": "x", "scopes": "servers:read root"}),
            400,
            "token.invalid_scope",
        ),
        (
            json!({"name": "x", "scopes": ""}),
            400,
            "token.invalid_scope",
        ),
        (
            json!({"name": "x", "scopes": [1]}),
            400,
            "token.invalid_scope",
        ),
        (
            json!({"name": "x", "scopes": 3}),
            400,
            "token.invalid_scope",
        ),
        (
            json!({"name": "x", "expires_in_days": 0}),
            400,
            "token.invalid_expiry",
        ),
        (
            json!({"name": "x", "expires_in_days": 366}),
            400,
            "token.invalid_expiry",
        ),
        (
            json!({"name": "x", "expires_in_days": "30"}),
            400,
            "token.invalid_expiry",
        ),
        (
            json!({"name": "x", "expires_in_days": 1.5}),
            400,
            "token.invalid_expiry",
        ),
        (json!([1, 2]), 400, "invalid_body"),
    ];
    for (body, status, expected) in cases {
        let (got, answer) = call(
            &hub,
            &session,
            Method::POST,
            "/api/v1/me/mcp-tokens",
            Some(body.clone()),
        )
        .await;
        assert_eq!((got, code(&answer)), (status, expected), "{body}: {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    // Not JSON at all.
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/me/mcp-tokens"))
        .bearer_auth(&session)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // An unknown id, and no session at all.
    let (status, _) = call(
        &hub,
        &session,
        Method::DELETE,
        "/api/v1/me/mcp-tokens/nope",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let resp = hub
        .http_client
        .get(hub.url("/api/v1/me/mcp-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // A custom lifetime is kept; the limit of live tokens is 50.
    let (status, body) = call(
        &hub,
        &session,
        Method::POST,
        "/api/v1/me/mcp-tokens",
        Some(json!({"name": "week", "expires_in_days": 7, "scopes": ["requests:write"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scopes"], "requests:write");
    for n in 1..50 {
        make(&hub, &session, &format!("t{n}"), None).await;
    }
    let (status, body) = call(
        &hub,
        &session,
        Method::POST,
        "/api/v1/me/mcp-tokens",
        Some(json!({"name": "one too many"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (409, "token.limit_reached"),
        "{body}"
    );
}

#[tokio::test]
async fn tokens_are_audited_and_never_logged() {
    phlix_hub::telemetry::init_for_tests();
    let setup = Setup::new().await;
    let hub = &setup.hub;
    let (id, token) = make(hub, &setup.owner, "audited", Some("servers:read")).await;
    // Uses that succeed and uses that are refused, in the header and (wrongly) in a query.
    call(hub, &token, Method::GET, "/api/v1/me/servers", None).await;
    call(hub, &token, Method::GET, "/api/v1/me/webhooks", None).await;
    call(hub, &token, Method::GET, "/api/v1/me/requests", None).await;
    let _ = hub
        .http_client
        .get(hub.url(&format!("/api/v1/me/servers?token={token}")))
        .send()
        .await
        .unwrap();
    let (status, _) = call(
        hub,
        &setup.owner,
        Method::DELETE,
        &format!("/api/v1/me/mcp-tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    call(hub, &token, Method::GET, "/api/v1/me/servers", None).await;

    for event in ["token.created", "token.revoked"] {
        let (status, audit) = call(
            hub,
            &setup.owner,
            Method::GET,
            &format!("/api/v1/admin/audit-logs?event={event}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{audit}");
        let rows = audit["logs"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{event}: {audit}");
        assert_eq!(rows[0]["resource"], format!("token:{id}"));
        assert!(!audit.to_string().contains(&token));
    }

    // The process's log ring saw the token being used (its id), never the token.
    let (status, logs) = call(
        hub,
        &setup.owner,
        Method::GET,
        "/api/v1/me/logs?limit=5000&level=debug",
        None,
    )
    .await;
    assert_eq!(status, 200, "{logs}");
    let text = logs.to_string();
    assert!(
        text.contains(&id),
        "the ring recorded the token's use by id"
    );
    assert!(!text.contains(&token), "a token reached the log");
}
