//! Pairing, enrollment, JWKS, heartbeats and the directory (SPEC C, D, E, F) driven by a fake
//! Phlix server and a user over real HTTP, on the backend of `PHLIX_TEST_STORE`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::fake_server::{FakePhlixServer, verify_with_jwks};
use common::{TestHub, status_json};
use reqwest::Method;
use serde_json::{Value, json};

/// Registers a user and returns its access token.
async fn user(hub: &TestHub, name: &str) -> String {
    hub.register(name, "password123").await.access_token
}

async fn redeem(hub: &TestHub, token: &str, code: &str) -> (u16, Value) {
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/server-claims/claim"))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(token)
        .json(&json!({"claim_code": code}))
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

async fn get_json(hub: &TestHub, token: &str, path: &str) -> (u16, Value) {
    let resp = hub
        .http_client
        .get(hub.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

async fn jwks(hub: &TestHub) -> Value {
    let resp = hub
        .http_client
        .get(hub.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "public, max-age=3600");
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200);
    body
}

/// Pairs a fresh fake server with the user of `token`.
async fn paired_server(hub: &TestHub, token: &str, name: &str) -> FakePhlixServer {
    let mut server = FakePhlixServer::new(&hub.url(""), name);
    let (status, body) = server.request_claim().await;
    assert_eq!(status, 200, "{body}");
    let code = server.claim_code.clone().unwrap();
    let (status, body) = redeem(hub, token, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.poll().await["status"], "claimed");
    server
}

#[tokio::test]
async fn a_fake_phlix_server_pairs_heartbeats_renews_and_deregisters() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    let mut server = FakePhlixServer::new(&hub.url(""), "Alice's NAS");

    // Step 1: claim code.
    let (status, claim) = server.request_claim().await;
    assert_eq!(status, 200, "{claim}");
    let code = claim["claimCode"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9);
    assert!(
        code.chars().enumerate().all(|(i, c)| if i == 4 {
            c == '-'
        } else {
            "ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(c)
        }),
        "{code}"
    );
    assert_eq!(claim["expiresIn"], 600);
    assert_eq!(claim["hubBaseUrl"], "http://127.0.0.1");
    let mut keys: Vec<&str> = claim
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec!["claimCode", "claimId", "expiresIn", "hubBaseUrl"]
    );
    // The same pending key gets the same claim back.
    let (_, again) = server.request_claim().await;
    assert_eq!(
        (again["claimCode"].as_str(), again["claimId"].as_str()),
        (Some(code.as_str()), claim["claimId"].as_str())
    );
    assert!(again["expiresIn"].as_i64().unwrap() <= 600);

    assert_eq!(server.poll().await, json!({"status": "pending"}));

    // Step 2: the owner types the code in any case, with a space instead of the dash.
    let typed = code.to_lowercase().replace('-', " ");
    let (status, grant) = redeem(&hub, &owner, &typed).await;
    assert_eq!(status, 200, "{grant}");
    let server_id = grant["server_id"].as_str().unwrap().to_owned();
    assert_eq!(
        grant["hub_jwks_url"],
        "http://127.0.0.1/.well-known/jwks.json"
    );

    // Step 3: the poll hands the enrollment out exactly once.
    let polled = server.poll().await;
    assert_eq!(polled["status"], "claimed", "{polled}");
    assert_eq!(polled["server_id"], server_id.as_str());
    assert_eq!(
        server.poll().await,
        json!({"status": "expired"}),
        "one-shot"
    );

    // The token verifies against the published JWKS, with the SPEC's header and claims.
    let document = jwks(&hub).await;
    assert_eq!(document["keys"].as_array().unwrap().len(), 1);
    let token = server.enrollment.clone().unwrap().enrollment_jwt;
    let (header, payload) = verify_with_jwks(&token, &document);
    assert_eq!(
        header,
        json!({"alg": "EdDSA", "typ": "JWT", "kid": document["keys"][0]["kid"]})
    );
    for (key, value) in [
        ("iss", "phlix-hub"),
        ("aud", "server"),
        ("hub_base_url", "http://127.0.0.1"),
    ] {
        assert_eq!(payload[key], value, "{payload}");
    }
    assert_eq!(payload["sub"], server_id.as_str());
    assert_eq!(payload["server_id"], server_id.as_str());
    assert_eq!(payload["kid"], header["kid"]);
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        604_800
    );
    verify_with_jwks(grant["enrollment_jwt"].as_str().unwrap(), &document);

    // Heartbeats.
    let (status, body) = server
        .heartbeat(&[("lib-movies", "Movies"), ("lib-shows", "Shows")])
        .await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = server
        .heartbeat(&[("lib-movies", "Movies"), ("lib-shows", "Shows")])
        .await;
    assert_eq!(status, 200, "{body}");

    let (_, listing) = get_json(&hub, &owner, "/api/v1/me/servers").await;
    let dto = &listing["servers"][0];
    assert_eq!(dto["serverId"], server_id.as_str());
    assert_eq!(dto["serverName"], "Alice's NAS");
    assert_eq!(dto["status"], "online");
    assert_eq!(dto["libraryCount"], 2);
    assert_eq!(dto["relayActive"], false);
    assert!(dto["lastSeenAt"].as_i64().unwrap() > 0);
    assert_eq!(
        dto["hostnameCandidates"],
        json!(["https://nas.example.com:443"])
    );
    let (_, libraries) = get_json(&hub, &owner, "/api/v1/me/libraries").await;
    assert_eq!(libraries["libraries"].as_array().unwrap().len(), 2);
    assert_eq!(libraries["libraries"][0]["library_name"], "Movies");
    let (_, me) = get_json(&hub, &owner, "/api/v1/me").await;
    assert_eq!(me["servers"][0]["serverId"], server_id.as_str());

    // Libraries are replaced when the list changes.
    server.heartbeat(&[("lib-music", "Music")]).await;
    let (_, detail) = get_json(&hub, &owner, &format!("/api/v1/me/servers/{server_id}")).await;
    assert_eq!(
        detail["libraries"],
        json!([{"library_id": "lib-music", "library_name": "Music"}])
    );
    assert_eq!(detail["recentHeartbeats"].as_array().unwrap().len(), 3);
    assert_eq!(detail["recentHeartbeats"][0]["uptimeSeconds"], 180);
    // The PHP hub's keys (SPEC L), snake_case, ahead of ours.
    let spec_server = &detail["server"];
    assert_eq!(spec_server["id"], server_id.as_str());
    assert_eq!(spec_server["server_name"], "Alice's NAS");
    assert_eq!(spec_server["status"], "online");
    assert_eq!(spec_server["relay_active"], false);
    assert!(spec_server["last_seen_at"].as_i64().unwrap() > 0);
    assert_eq!(
        spec_server["hostname_candidates"],
        json!(["https://nas.example.com:443"])
    );
    for key in ["version", "subdomain", "fqdn"] {
        assert!(spec_server.get(key).is_some(), "server.{key}: {detail}");
    }
    assert_eq!(detail["relay_session"], Value::Null);
    assert_eq!(detail["tls_status"], Value::Null);
    assert!(detail.get("tls_status").is_some());
    let history = detail["heartbeat_history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["uptime_seconds"], 180);
    assert!(history[0]["id"].as_i64().unwrap() > history[1]["id"].as_i64().unwrap());
    for key in [
        "version",
        "active_sessions",
        "active_transcodes",
        "received_at",
    ] {
        assert!(
            history[0].get(key).is_some(),
            "heartbeat_history[0].{key}: {detail}"
        );
    }

    // info / renew.
    let (status, info) = server.info().await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["serverId"], server_id.as_str());
    let (status, renewed) = server.renew().await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["expires_in"], 604_800);
    let new_token = renewed["enrollment_jwt"].as_str().unwrap();
    let (_, renewed_payload) = verify_with_jwks(new_token, &jwks(&hub).await);
    assert_eq!(renewed_payload["server_id"], server_id.as_str());
    assert!(renewed_payload["exp"].as_i64() >= payload["exp"].as_i64());
    assert_eq!(server.heartbeat(&[]).await.0, 200, "renewed token works");

    // Deregister: 204, then the server is gone.
    let path = format!("/api/v1/servers/{server_id}");
    let resp = server.call(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let (status, body) = server.heartbeat(&[]).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "SERVER_NOT_FOUND");
    let (_, listing) = get_json(&hub, &owner, "/api/v1/me/servers").await;
    assert_eq!(listing, json!({"servers": []}));
    for (method, path) in [
        (Method::POST, format!("/api/v1/servers/{server_id}/renew")),
        (Method::GET, format!("/api/v1/servers/{server_id}/info")),
        (
            Method::POST,
            format!("/api/v1/servers/{server_id}/subdomain"),
        ),
    ] {
        let (status, body) = status_json(
            server
                .call(method, &path)
                .json(&json!({}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("SERVER_NOT_FOUND")),
            "{path}"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn twenty_parallel_redemptions_of_one_code_have_exactly_one_winner() {
    let hub = TestHub::start().await;
    let mut server = FakePhlixServer::new(&hub.url(""), "Race");
    server.request_claim().await;
    let code = server.claim_code.clone().unwrap();
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(user(&hub, &format!("racer{i}")).await);
    }
    let mut tasks = Vec::new();
    for token in tokens {
        let (client, url, code) = (
            hub.http_client.clone(),
            hub.url("/api/v1/server-claims/claim"),
            code.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .header("Accept-Phlix-Protocol", "v1")
                .bearer_auth(token)
                .json(&json!({"claim_code": code}))
                .send()
                .await
                .unwrap();
            status_json(resp).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status == 409 {
            assert_eq!(body["error"], "CLAIM_CODE_ALREADY_CLAIMED");
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let store = hub.store().await;
    // Exactly one server row exists.
    let count: i64 = match &store {
        phlix_hub::store::Store::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM servers")
            .fetch_one(pool)
            .await
            .unwrap(),
        phlix_hub::store::Store::Postgres(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM servers")
                .fetch_one(pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count, 1);
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn claim_requests_are_validated_with_the_spec_answers() {
    let hub = TestHub::start().await;
    let server = FakePhlixServer::new(&hub.url(""), "Checker");
    let client = &hub.http_client;
    let new = hub.url("/api/v1/server-claims/new");
    let with = |patch: Value| {
        let mut body = server.claim_body();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let jwk = |patch: Value| {
        let mut key = server.jwk();
        for (k, v) in patch.as_object().unwrap() {
            key[k] = v.clone();
        }
        json!({"publicKeysJwk": key})
    };
    let cases = vec![
        (
            with(json!({"serverName": null})),
            400,
            json!({"error": "Bad Request", "message": "ClaimRequest \"serverName\" is required."}),
        ),
        (
            with(json!({"version": 45})),
            400,
            json!({"error": "Bad Request", "message": "ClaimRequest \"version\" is required."}),
        ),
        (
            with(json!({"protocolVersion": "v2"})),
            400,
            json!({"error": "HUB_PROTOCOL_UNSUPPORTED", "message": "Accept-Phlix-Protocol: v1 required"}),
        ),
        (
            with(jwk(json!({"kty": "RSA"}))),
            400,
            json!("SERVER_KEY_INVALID"),
        ),
        (
            with(jwk(json!({"crv": "X25519"}))),
            400,
            json!("SERVER_KEY_INVALID"),
        ),
        (
            with(jwk(json!({"x": "AAAA"}))),
            400,
            json!("SERVER_KEY_INVALID"),
        ),
        (
            with(jwk(json!({"x": "not base64 !!"}))),
            400,
            json!("SERVER_KEY_INVALID"),
        ),
        (
            with(json!({"publicKeysJwk": {"keys": [server.jwk()]}})),
            400,
            json!("SERVER_KEY_INVALID"),
        ),
        (
            with(json!({"serverName": "n".repeat(256)})),
            400,
            json!({"error": "Bad Request", "message": "ClaimRequest \"serverName\" must be 1 to 255 bytes."}),
        ),
        (
            with(json!({"serverName": ""})),
            400,
            json!({"error": "Bad Request", "message": "ClaimRequest \"serverName\" must be 1 to 255 bytes."}),
        ),
        (
            with(json!({"version": "1".repeat(33)})),
            400,
            json!({"error": "Bad Request", "message": "ClaimRequest \"version\" must be 1 to 32 bytes."}),
        ),
        (
            with(json!({"hostnameCandidates": "not-a-list"})),
            400,
            json!("Bad Request"),
        ),
    ];
    for (body, status, expected) in cases {
        let resp = client
            .post(&new)
            .header("Accept-Phlix-Protocol", "v1")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (got, answer) = status_json(resp).await;
        assert_eq!(got, status, "{body}: {answer}");
        match expected {
            Value::String(error) => assert_eq!(answer["error"], error.as_str(), "{answer}"),
            whole => assert_eq!(answer, whole),
        }
    }
    // The protocol gate on every pairing and server route.
    let paths = [
        (Method::POST, "/api/v1/server-claims/new".to_owned()),
        (Method::GET, "/api/v1/server-claims/abc".to_owned()),
        (Method::POST, "/api/v1/server-claims/claim".to_owned()),
        (Method::POST, "/api/v1/servers/x/heartbeat".to_owned()),
        (Method::POST, "/api/v1/servers/x/renew".to_owned()),
        (Method::GET, "/api/v1/servers/x/info".to_owned()),
        (Method::DELETE, "/api/v1/servers/x".to_owned()),
    ];
    for (method, path) in paths {
        for header in [None, Some("v2"), Some("V1")] {
            let mut request = client
                .request(method.clone(), hub.url(&path))
                .json(&json!({}));
            if let Some(value) = header {
                request = request.header("Accept-Phlix-Protocol", value);
            }
            let (status, body) = status_json(request.send().await.unwrap()).await;
            assert_eq!(status, 400, "{method} {path} {header:?}: {body}");
            assert_eq!(body["error"], "HUB_PROTOCOL_UNSUPPORTED");
        }
    }
    // Unknown claim ids poll as expired, always 200.
    let resp = client
        .get(hub.url("/api/v1/server-claims/nope"))
        .header("Accept-Phlix-Protocol", "v1")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await, (200, json!({"status": "expired"})));
    hub.stop().await;
}

#[tokio::test]
async fn redemption_errors_are_404_410_409_400_and_401() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    assert_eq!(
        redeem(&hub, &owner, "ZZZZ-ZZZZ").await.1["error"],
        "CLAIM_CODE_NOT_FOUND"
    );
    assert_eq!(redeem(&hub, &owner, "ZZZZ-ZZZZ").await.0, 404);
    assert_eq!(redeem(&hub, &owner, "short").await.0, 404);
    let (status, body) = redeem(&hub, &owner, "").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "Bad Request", "message": "claim_code is required"})
        )
    );

    let mut server = FakePhlixServer::new(&hub.url(""), "Late");
    server.request_claim().await;
    let code = server.claim_code.clone().unwrap();
    // Without a user.
    let resp = hub
        .http_client
        .post(hub.url("/api/v1/server-claims/claim"))
        .header("Accept-Phlix-Protocol", "v1")
        .json(&json!({"claim_code": code}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("auth.required"))
    );

    // Expire it in the database: 410, and the poll says expired.
    let store = hub.store().await;
    let sql = "UPDATE server_claims SET expires_at = 1";
    common::execute(&store, sql, &[]).await;
    let (status, body) = redeem(&hub, &owner, &code).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"], "CLAIM_CODE_EXPIRED");
    assert!(body["message"].is_string());
    assert_eq!(server.poll().await, json!({"status": "expired"}));
    // A new request for the same key issues a new claim, which redeems once, then 409.
    server.request_claim().await;
    let code = server.claim_code.clone().unwrap();
    assert_eq!(redeem(&hub, &owner, &code).await.0, 200);
    let (status, body) = redeem(&hub, &owner, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("CLAIM_CODE_ALREADY_CLAIMED"))
    );
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn the_enrollment_gate_refuses_missing_forged_expired_and_foreign_tokens() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    let mut a = paired_server(&hub, &owner, "A").await;
    let b = paired_server(&hub, &owner, "B").await;
    let a_id = a.server_id();
    let expired_json = json!({"error": "Unauthorized", "code": "ENROLLMENT_TOKEN_EXPIRED"});

    let hb = |token: Option<String>, id: &str| {
        let mut request = hub
            .http_client
            .post(hub.url(&format!("/api/v1/servers/{id}/heartbeat")))
            .header("Accept-Phlix-Protocol", "v1")
            .json(&a.heartbeat_body(&[]));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };
    // Missing, garbage, a user access token, a token signed by another key.
    let keys_elsewhere = tempfile::tempdir().unwrap();
    let other_ring = phlix_hub::auth::keys::KeyRing::load_or_create(keys_elsewhere.path()).unwrap();
    let forged = phlix_hub::auth::enrollment::mint(
        &other_ring,
        &a_id,
        "http://127.0.0.1",
        600,
        phlix_hub::auth::now_unix(),
    );
    let hub_ring = phlix_hub::auth::keys::KeyRing::load_or_create(hub.data_dir.path()).unwrap();
    let expired = phlix_hub::auth::enrollment::mint(
        &hub_ring,
        &a_id,
        "http://127.0.0.1",
        60,
        phlix_hub::auth::now_unix() - 3600,
    );
    for token in [
        None,
        Some("garbage".to_owned()),
        Some(owner.clone()),
        Some(forged),
        Some(expired),
    ] {
        let label = format!("{token:?}");
        let (status, body) = status_json(hb(token, &a_id).send().await.unwrap()).await;
        assert_eq!((status, &body), (401, &expired_json), "{label}");
    }
    // B's valid token on A's path.
    let b_token = b.enrollment.clone().unwrap().enrollment_jwt;
    let (status, body) = status_json(hb(Some(b_token.clone()), &a_id).send().await.unwrap()).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "AUTHORIZATION_FAILED", "message": "Server ID mismatch"})
        )
    );
    for (method, path) in [(Method::POST, "renew"), (Method::GET, "info")] {
        let resp = hub
            .http_client
            .request(method, hub.url(&format!("/api/v1/servers/{a_id}/{path}")))
            .header("Accept-Phlix-Protocol", "v1")
            .bearer_auth(&b_token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}");
    }
    let resp = hub
        .http_client
        .delete(hub.url(&format!("/api/v1/servers/{a_id}")))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(&b_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // A still works.
    assert_eq!(a.heartbeat(&[]).await.0, 200);
    hub.stop().await;
}

#[tokio::test]
async fn bad_heartbeats_are_refused_whole_and_the_limit_is_30_per_minute() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    let mut server = paired_server(&hub, &owner, "Strict").await;
    assert_eq!(server.heartbeat(&[("l1", "Movies")]).await.0, 200);
    let good = server.heartbeat_body(&[("l1", "Movies")]);
    let mut patches = vec![
        json!({"uptimeSeconds": 12.5}),
        json!({"activeSessions": "0"}),
        json!({"activeTranscodes": null}),
        json!({"timestamp": -1}),
        json!({"version": "v".repeat(33)}),
        json!({"serverId": "someone-else"}),
        json!({"libraries": [{"library_id": "", "library_name": "Movies"}]}),
        json!({"libraries": [{"library_id": "l2"}]}),
        json!({"libraries": {"library_id": "l2"}}),
        json!({"hostnameCandidates": ["ok", 7]}),
        json!({"hostMetrics": {"memUsedBytes": -5}}),
    ];
    patches.push(json!({"libraries": (0..2001).map(|i| json!({"library_id": format!("l{i}"), "library_name": "x"})).collect::<Vec<_>>()}));
    for patch in patches {
        let mut body = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = server.send_heartbeat(&body).await;
        assert_eq!(status, 400, "{patch}: {answer}");
        assert_eq!(answer["error"], "Bad Request");
        assert!(answer["message"].as_str().unwrap().len() > 5, "{answer}");
    }
    let raw = server
        .call(
            Method::POST,
            &format!("/api/v1/servers/{}/heartbeat", server.server_id()),
        )
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(raw).await.0, 400);
    // Nothing of the refused heartbeats was written.
    let (_, detail) = get_json(
        &hub,
        &owner,
        &format!("/api/v1/me/servers/{}", server.server_id()),
    )
    .await;
    assert_eq!(
        detail["recentHeartbeats"].as_array().unwrap().len(),
        1,
        "{detail}"
    );
    assert_eq!(
        detail["libraries"],
        json!([{"library_id": "l1", "library_name": "Movies"}])
    );

    // Host metrics (J.5) are kept with the heartbeat; unknown keys are dropped.
    let mut with_metrics = good.clone();
    with_metrics["hostMetrics"] = json!({"cpuPercent": 12.5, "memUsedBytes": 1024, "memTotalBytes": 4096, "load1": 0.5, "gpu": "ignored"});
    assert_eq!(server.send_heartbeat(&with_metrics).await.0, 200);
    let (_, detail) = get_json(
        &hub,
        &owner,
        &format!("/api/v1/me/servers/{}", server.server_id()),
    )
    .await;
    assert_eq!(
        detail["recentHeartbeats"][0]["hostMetrics"],
        json!({"cpuPercent": 12.5, "load1": 0.5, "memUsedBytes": 1024, "memTotalBytes": 4096})
    );

    // 30 per 60 s per server: 2 used (+ the refused ones count too); keep going until 429.
    let mut accepted = 0;
    let limited = loop {
        let (status, body) = server.heartbeat(&[]).await;
        if status == 429 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        accepted += 1;
        assert!(accepted <= 30, "no limit after 30 heartbeats");
    };
    assert_eq!(limited["code"], "rate_limited");
    hub.stop().await;
}

#[tokio::test]
async fn the_hub_key_survives_restarts_and_rotation_keeps_old_tokens_valid() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    let mut server = paired_server(&hub, &owner, "Keys").await;
    let key_path = hub.data_dir.path().join("hub-ed25519.key");
    let text = std::fs::read_to_string(&key_path).unwrap();
    assert!(
        text.starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n")
            && text
                .trim_end()
                .ends_with("-----END ED25519 PRIVATE KEY-----")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let first = jwks(&hub).await;
    let (dir, url) = hub.stop().await;

    let hub = TestHub::start_on(dir, url).await;
    server.hub = hub.url("");
    assert_eq!(
        jwks(&hub).await,
        first,
        "same key, same kid after a restart"
    );
    assert_eq!(
        server.heartbeat(&[]).await.0,
        200,
        "old token still verifies"
    );
    let (dir, url) = hub.stop().await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phlix-hub"))
        .args(["rotate-key", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hub = TestHub::start_on(dir, url).await;
    server.hub = hub.url("");
    let rotated = jwks(&hub).await;
    let kids: Vec<&str> = rotated["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids.len(),
        2,
        "new and previous key are published: {rotated}"
    );
    assert_ne!(kids[0], first["keys"][0]["kid"].as_str().unwrap());
    assert_eq!(kids[1], first["keys"][0]["kid"].as_str().unwrap());
    assert_eq!(
        server.heartbeat(&[]).await.0,
        200,
        "a token of the previous key verifies in the overlap"
    );
    let (status, renewed) = server.renew().await;
    assert_eq!(status, 200);
    let (header, _) = verify_with_jwks(renewed["enrollment_jwt"].as_str().unwrap(), &rotated);
    assert_eq!(header["kid"], kids[0], "new tokens use the new key");
    hub.stop().await;
}

#[tokio::test]
async fn silent_servers_go_offline_unless_a_relay_session_is_open() {
    let hub = TestHub::start_with(|args| {
        args.reaper_interval = Duration::from_millis(200);
        args.offline_after = Duration::from_secs(1);
    })
    .await;
    let owner = user(&hub, "owner").await;
    let mut quiet = paired_server(&hub, &owner, "Quiet").await;
    let mut tunnelled = paired_server(&hub, &owner, "Tunnelled").await;
    assert_eq!(quiet.heartbeat(&[]).await.0, 200);
    assert_eq!(tunnelled.heartbeat(&[]).await.0, 200);
    let store = hub.store().await;
    let sql = "INSERT INTO relay_sessions (id, server_id, tunnel_id, worker_node, opened_at) VALUES ('r1', $1, 't1', 'test', 1)";
    common::execute(&store, sql, &[&tunnelled.server_id()]).await;
    let status_of = |listing: &Value, id: &str| {
        listing["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["serverId"] == id)
            .unwrap()["status"]
            .clone()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, listing) = get_json(&hub, &owner, "/api/v1/me/servers").await;
        if status_of(&listing, &quiet.server_id()) == "offline" {
            assert_eq!(
                status_of(&listing, &tunnelled.server_id()),
                "online",
                "an open relay session keeps it online"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reaper never marked the silent server offline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A heartbeat brings it back.
    assert_eq!(quiet.heartbeat(&[]).await.0, 200);
    let (_, listing) = get_json(&hub, &owner, "/api/v1/me/servers").await;
    assert_eq!(status_of(&listing, &quiet.server_id()), "online");
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn owners_see_only_their_servers_and_mint_relay_tokens() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    let stranger = user(&hub, "stranger").await;
    let server = paired_server(&hub, &owner, "Mine").await;
    let id = server.server_id();

    for path in [
        format!("/api/v1/me/servers/{id}"),
        format!("/api/v1/me/servers/{id}/access-info"),
    ] {
        let (status, body) = get_json(&hub, &stranger, &path).await;
        assert_eq!(
            (status, body),
            (
                403,
                json!({"error": "Forbidden", "code": "server.not_owned"})
            ),
            "{path}"
        );
    }
    let (status, body) = get_json(&hub, &owner, "/api/v1/me/servers/unknown").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "Not Found", "code": "server.not_found"})
        )
    );
    let (_, listing) = get_json(&hub, &stranger, "/api/v1/me/servers").await;
    assert_eq!(listing, json!({"servers": []}));

    let (status, access) = get_json(
        &hub,
        &owner,
        &format!("/api/v1/me/servers/{id}/access-info"),
    )
    .await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(
        access["relay"]["client_ws_endpoint"],
        format!("ws://127.0.0.1:{}/client/{id}", hub.client_addr.port())
    );

    let mint = |token: &str| {
        hub.http_client
            .post(hub.url(&format!("/api/v1/me/servers/{id}/relay-token")))
            .bearer_auth(token.to_owned())
            .send()
    };
    let (status, body) = status_json(mint(&stranger).await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("server.not_owned"))
    );
    // The hub reads its clock between these two instants, however late this task runs.
    let before = phlix_hub::auth::now_unix();
    let (status, body) = status_json(mint(&owner).await.unwrap()).await;
    let after = phlix_hub::auth::now_unix();
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    // 64 lowercase hex (SPEC L, as the PHP hub mints them).
    assert_eq!(token.len(), 64);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(body["server_id"], id.as_str());
    let expires_at = body["expires_at"].as_i64().unwrap();
    assert!(
        (before + 3600..=after + 3600).contains(&expires_at),
        "{expires_at} not within [{before}, {after}] + 3600"
    );
    // Only the SHA-256 is stored.
    let store = hub.store().await;
    let hashes: Vec<String> = match &store {
        phlix_hub::store::Store::Sqlite(pool) => {
            sqlx::query_scalar("SELECT token_hash FROM client_relay_tokens")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        phlix_hub::store::Store::Postgres(pool) => {
            sqlx::query_scalar("SELECT token_hash FROM client_relay_tokens")
                .fetch_all(pool)
                .await
                .unwrap()
        }
    };
    use sha2::Digest;
    assert_eq!(
        hashes,
        vec![hex::encode(sha2::Sha256::digest(token.as_bytes()))]
    );
    store.close().await;

    // The owner removes the server.
    let resp = hub
        .http_client
        .delete(hub.url(&format!("/api/v1/me/servers/{id}")))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = hub
        .http_client
        .delete(hub.url(&format!("/api/v1/me/servers/{id}")))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        get_json(&hub, &owner, &format!("/api/v1/me/servers/{id}"))
            .await
            .0,
        404
    );
    hub.stop().await;
}

#[tokio::test]
async fn server_routes_answer_bad_bodies_with_json_400_and_413() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    let server = paired_server(&hub, &owner, "Strict").await;
    let id = server.server_id();
    let subdomain = format!("/api/v1/servers/{id}/subdomain");

    // The subdomain body is optional, but one that is sent must be what it claims to be.
    for (content_type, body, why) in [
        ("application/json", "{\"subdomain\":", "invalid JSON"),
        (
            "application/json",
            "{\"subdomain\": 5}",
            "a number for the label",
        ),
        ("application/json", "[\"x\"]", "not an object"),
        (
            "text/plain",
            "{\"subdomain\":\"strict-box\"}",
            "a wrong content type",
        ),
    ] {
        // Built by hand: the fake server's requests carry a JSON content type already.
        let resp = hub
            .http_client
            .post(hub.url(&subdomain))
            .header("Accept-Phlix-Protocol", "v1")
            .bearer_auth(&server.enrollment.as_ref().unwrap().enrollment_jwt)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, answer) = status_json(resp).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["error"], "Bad Request", "{why}: {answer}");
        assert!(answer["message"].is_string(), "{why}: {answer}");
    }
    let listing = get_json(&hub, &owner, "/api/v1/me/servers").await.1;
    assert!(
        listing["servers"][0]["subdomain"].is_null(),
        "no refused request claimed a label: {listing}"
    );

    // Over-limit bodies: refused from Content-Length at once, or while streaming (chunked).
    let big = vec![b' '; 2 * 1024 * 1024];
    let resp = server
        .call(Method::POST, &subdomain)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["connection"], "close");
    let (status, answer) = status_json(resp).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("Payload Too Large")),
        "{answer}"
    );
    let chunks = futures_util::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = server
        .call(Method::POST, &format!("/api/v1/servers/{id}/heartbeat"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let (status, answer) = status_json(resp).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("Payload Too Large")),
        "{answer}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn subdomains_and_signposts_answer_as_the_php_hub() {
    let hub = TestHub::start().await;
    let owner = user(&hub, "owner").await;
    let a = paired_server(&hub, &owner, "Alpha Box").await;
    let b = paired_server(&hub, &owner, "Beta").await;
    let (a_id, b_id) = (a.server_id(), b.server_id());

    let resp = hub
        .http_client
        .post(hub.url(&format!("/api/v1/servers/{a_id}/subdomain")))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("UNAUTHORIZED")),
        "{body}"
    );
    let (status, body) = status_json(
        a.call(Method::POST, &format!("/api/v1/servers/{a_id}/subdomain"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sub = body["subdomain"].as_str().unwrap().to_owned();
    assert!(sub.starts_with("alpha-box-"), "{sub}");
    assert_eq!(body["fqdn"], format!("{sub}.127.0.0.1"));
    assert_eq!(
        (
            body["tls_cert_path"].as_str(),
            body["tls_key_path"].as_str()
        ),
        (Some(""), Some(""))
    );
    // B cannot take A's label; B's own request for a free label works.
    let taken = b
        .call(Method::POST, &format!("/api/v1/servers/{b_id}/subdomain"))
        .json(&json!({"subdomain": sub}))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 409);
    let bad = b
        .call(Method::POST, &format!("/api/v1/servers/{b_id}/subdomain"))
        .json(&json!({"subdomain": "Not A Label"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let (_, listing) = get_json(&hub, &owner, "/api/v1/me/servers").await;
    assert!(
        listing["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["subdomain"] == sub.as_str())
    );
    let resp = a
        .call(Method::DELETE, &format!("/api/v1/servers/{a_id}/subdomain"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    // Relay signpost: 401 without a token, 426 without Upgrade, 501 with it.
    let relay = format!("/api/v1/servers/{a_id}/relay");
    let resp = hub.http_client.post(hub.url(&relay)).send().await.unwrap();
    assert_eq!(status_json(resp).await.1["error"], "UNAUTHORIZED");
    let tunnel_endpoint = format!("ws://127.0.0.1:{}", hub.tunnel.port());
    let resp = a.call(Method::POST, &relay).send().await.unwrap();
    assert_eq!(resp.headers()["x-ws-endpoint"], tunnel_endpoint.as_str());
    assert!(
        resp.headers()["link"]
            .to_str()
            .unwrap()
            .contains("rel=\"help\"")
    );
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["error"].as_str(), body["ws_endpoint"].as_str()),
        (
            426,
            Some("UPGRADE_REQUIRED"),
            Some(tunnel_endpoint.as_str())
        )
    );
    let resp = a
        .call(Method::POST, &relay)
        .header("Upgrade", "websocket")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["error"].as_str(), body["code"].as_str()),
        (
            501,
            Some("NOT_IMPLEMENTED_VIA_HTTP"),
            Some("relay.ws_http_endpoint")
        )
    );

    // Client signpost (bare path).
    let client_endpoint = format!("ws://127.0.0.1:{}/client/{a_id}", hub.client_addr.port());
    let resp = hub
        .http_client
        .get(hub.url(&format!("/client/{a_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-ws-endpoint"], client_endpoint.as_str());
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["code"].as_str(), body["ws_endpoint"].as_str()),
        (
            426,
            Some("relay.client_ws_endpoint"),
            Some(client_endpoint.as_str())
        )
    );
    let resp = hub
        .http_client
        .get(hub.url(&format!("/client/{a_id}")))
        .header("Upgrade", "websocket")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await.0, 501);
    // The root-level forms must not exist (SPEC I.11).
    let resp = a
        .call(Method::POST, &format!("/servers/{a_id}/relay"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    hub.stop().await;
}

#[tokio::test]
async fn admins_read_and_write_hub_settings_and_they_apply_at_the_next_mint() {
    let hub = TestHub::start().await;
    let admin = user(&hub, "admin").await;
    let member = user(&hub, "member").await;
    for path in ["/api/v1/me/hub-settings", "/api/v1/admin/settings"] {
        let (status, body) = get_json(&hub, &member, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("auth.not_admin")),
            "{path}"
        );
        let (status, body) = get_json(&hub, &admin, path).await;
        assert_eq!(status, 200);
        assert_eq!(body["success"], true);
        let data = &body["data"];
        let settings = data["settings"].as_object().unwrap();
        for (key, value) in [
            ("server.enrollment_ttl", json!(604_800)),
            ("auth.access_ttl", json!(3600)),
            ("auth.refresh_ttl", json!(604_800)),
            ("invite.default_expiry_seconds", json!(604_800)),
            ("server.max_users_per_server", json!(0)),
            ("auth.signups_disabled", json!(false)),
            ("requests.auto_approve", json!(false)),
            ("requests.movie_limit", json!(0)),
            ("server.arr.radarr.enabled", json!(false)),
            ("server.arr.radarr.url", json!("http://localhost:7878")),
            ("server.arr.sonarr.url", json!("http://localhost:8989")),
            ("server.arr.sonarr.root_folder", json!("")),
        ] {
            assert_eq!(settings[key], value, "{key}");
        }
        assert_eq!(data["overridden"], json!([]));
        assert_eq!(data["types"]["auth.access_ttl"], "int");
        assert_eq!(data["types"]["auth.signups_disabled"], "bool");
        assert_eq!(data["types"]["server.arr.radarr.url"], "string");
        let schema = data["schema"].as_array().unwrap();
        assert_eq!(schema.len(), settings.len());
        let access = schema
            .iter()
            .find(|e| e["key"] == "auth.access_ttl")
            .unwrap();
        assert_eq!(
            (access["min"].clone(), access["max"].clone()),
            (json!(300), json!(86_400))
        );
        assert_eq!(access["group"], "accounts");
    }
    let put = |token: &str, body: Value| {
        hub.http_client
            .put(hub.url("/api/v1/me/hub-settings"))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    // One bad value: nothing is written.
    let (status, body) = status_json(
        put(
            &admin,
            json!({"settings": {"auth.access_ttl": 900, "server.enrollment_ttl": 10}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["success"].as_bool(), body["error"].as_str()),
        (400, Some(false), Some("invalid_type")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("Must be >= 60"),
        "{body}"
    );
    let (status, body) = status_json(
        put(&admin, json!({"settings": {"auth.secret": 1}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_key")),
        "{body}"
    );
    // Strict JSON types: an integer setting refuses a string or a float, a boolean a number;
    // a body without a `settings` object is `invalid_body`.
    for bad in [
        json!({"settings": {"auth.access_ttl": "900"}}),
        json!({"settings": {"auth.access_ttl": 900.5}}),
        json!({"settings": {"auth.signups_disabled": 1}}),
        json!({"settings": {"server.arr.radarr.url": "javascript:alert(1)"}}),
        json!({"settings": {"server.arr.radarr.url": "http://user:pw@radarr"}}),
    ] {
        let (status, body) = status_json(put(&admin, bad.clone()).await.unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_type")),
            "{bad} {body}"
        );
    }
    for bad in [
        json!({"auth.access_ttl": 900}),
        json!([1]),
        json!({"settings": 5}),
    ] {
        let (status, body) = status_json(put(&admin, bad.clone()).await.unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_body")),
            "{bad} {body}"
        );
    }
    assert_eq!(
        get_json(&hub, &admin, "/api/v1/me/hub-settings").await.1["data"]["settings"]["auth.access_ttl"],
        3600
    );
    assert_eq!(
        status_json(
            put(&member, json!({"settings": {"auth.access_ttl": 900}}))
                .await
                .unwrap()
        )
        .await
        .0,
        403
    );

    let (status, body) = status_json(
        put(
            &admin,
            json!({"settings": {"auth.access_ttl": 900, "server.enrollment_ttl": 3600}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, &body), (200, &json!({"success": true})));
    let (_, document) = get_json(&hub, &admin, "/api/v1/me/hub-settings").await;
    assert_eq!(document["data"]["settings"]["server.enrollment_ttl"], 3600);
    assert_eq!(
        document["data"]["overridden"],
        json!(["auth.access_ttl", "server.enrollment_ttl"])
    );
    let server = paired_server(&hub, &admin, "Short").await;
    let (_, payload) = verify_with_jwks(
        &server.enrollment.clone().unwrap().enrollment_jwt,
        &jwks(&hub).await,
    );
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        3600
    );
    let (_, login) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "password123"}),
        )
        .await;
    assert_eq!(login["expires_in"], 900);
    // `null` removes an override: back to the default.
    let (status, _) = status_json(
        put(&admin, json!({"settings": {"auth.access_ttl": null}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, document) = get_json(&hub, &admin, "/api/v1/me/hub-settings").await;
    assert_eq!(document["data"]["settings"]["auth.access_ttl"], 3600);
    assert_eq!(
        document["data"]["overridden"],
        json!(["server.enrollment_ttl"])
    );
    hub.stop().await;
}

#[tokio::test]
async fn the_remaining_h3_keys_are_typed_and_take_effect() {
    let hub = TestHub::start().await;
    let admin = user(&hub, "admin").await;
    let member = user(&hub, "member").await;
    let put = |body: Value| {
        hub.http_client
            .put(hub.url("/api/v1/me/hub-settings"))
            .bearer_auth(admin.clone())
            .json(&body)
            .send()
    };
    // The float key takes a number in range; the others their types.
    for (bad, message) in [
        (
            json!({"server.relay.reconnect_drain_grace_seconds": "5"}),
            "Must be a number",
        ),
        (
            json!({"server.relay.reconnect_drain_grace_seconds": 301}),
            "Must be <= 300",
        ),
        (json!({"server.metrics.retention_days": 0}), "Must be >= 1"),
        (
            json!({"server.max_servers_per_user": 1001}),
            "Must be <= 1000",
        ),
        (
            json!({"federation.enabled": "yes"}),
            "Must be true or false",
        ),
    ] {
        let (status, body) = status_json(put(json!({"settings": bad})).await.unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_type")),
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
    let (status, body) = status_json(
        put(
            json!({"settings": {"server.relay.reconnect_drain_grace_seconds": 2.5,
            "server.metrics.retention_days": 30, "server.max_servers_per_user": 1,
            "federation.enabled": false}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, document) = get_json(&hub, &admin, "/api/v1/me/hub-settings").await;
    let data = &document["data"];
    assert_eq!(
        data["settings"]["server.relay.reconnect_drain_grace_seconds"],
        2.5
    );
    assert_eq!(
        data["types"]["server.relay.reconnect_drain_grace_seconds"],
        "float"
    );
    assert_eq!(data["settings"]["server.metrics.retention_days"], 30);
    // One server per member: the second claim is refused clearly; admins are exempt.
    paired_server(&hub, &member, "First").await;
    let mut second = FakePhlixServer::new(&hub.url(""), "Second");
    second.request_claim().await;
    let code = second.claim_code.clone().unwrap();
    let (status, body) = redeem(&hub, &member, &code).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("server_limit_reached")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("limit of 1 servers"),
        "{body}"
    );
    let (status, _) = redeem(&hub, &admin, &code).await;
    assert_eq!(status, 200, "admins are exempt");
    hub.stop().await;
}
