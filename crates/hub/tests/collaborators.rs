//! Collaborators through the relay (SPEC M.1): a share lets its collaborator mint relay
//! tokens, mount clients and use the proxy route; revoking the share, its expiry or the
//! owner's switch cuts what the collaborator has open within 5 s, while the owner's own
//! channel keeps going. Also the relay token text (SPEC L) and live events of shared servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::shared_server::{CUT_WITHIN, Setup, data, ping_forever};
use common::ws_client::WsClient;
use common::{call, fake_tunnel};
use phlix_proto::ws::Opcode;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn a_collaborator_streams_ten_megabytes_both_ways_through_the_relay() {
    let setup = Setup::new().await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active().await;
    // Without a share the friend is a stranger to the server.
    assert_eq!(setup.mint(&setup.friend).await.0, 403);
    assert_eq!(
        setup
            .proxy(&setup.friend, "/api/v1/media/bytes/10")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    setup.share(json!({})).await;

    // The relay token is 64 lowercase hex (SPEC L).
    let (status, minted) = setup.mint(&setup.friend).await;
    assert_eq!(status, 201, "{minted}");
    let token = minted["token"].as_str().unwrap();
    assert!(
        token.len() == 64
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{token}"
    );

    // 10 MB through a client mount, echoed back intact.
    let client = setup.mount_with(token).await.unwrap();
    let WsClient {
        reader, mut writer, ..
    } = client;
    writer.set_client_role();
    let total = 10 * 1024 * 1024;
    let payload: Vec<u8> = (0..total).map(|i| ((i * 17 + i / 5) % 256) as u8).collect();
    let expected = hex::encode(Sha256::digest(&payload));
    let reading = tokio::spawn(async move {
        let mut reader = reader;
        let mut decoder = phlix_proto::frame::FrameDecoder::new(1 << 20);
        let mut hasher = Sha256::new();
        let mut received = 0;
        while received < total {
            if let phlix_hub::relay::ws_io::WsEvent::Data(message) = reader.next().await.unwrap() {
                decoder.push(&message.payload);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    hasher.update(&frame.payload);
                    received += frame.payload.len();
                }
            }
        }
        hex::encode(hasher.finalize())
    });
    for chunk in payload.chunks(60_000) {
        writer
            .send_parts(Opcode::Binary, &[data(chunk).to_bytes()])
            .await
            .unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, expected);

    // 10 MB through the proxy route, and the server sees who asked.
    let resp = setup
        .proxy(&setup.friend, "/api/v1/media/bytes/10485760")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), 10_485_760);
    assert!(body.iter().enumerate().all(|(i, b)| *b == (i % 253) as u8));
    let echo: Value = setup
        .proxy(&setup.friend, "/api/v1/media/echo")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        echo["headers"]["X-Phlix-Relay-User"],
        setup.friend_id.as_str()
    );

    // access-info answers the collaborator; owner-only routes stay owner-only.
    let (status, info) = call(
        &setup.hub,
        &setup.friend,
        Method::GET,
        &format!("/api/v1/me/servers/{}/access-info", setup.sid()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["relay"]["active"], true);
    for (method, path, body) in [
        (
            Method::GET,
            format!("/api/v1/me/servers/{}", setup.sid()),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/me/servers/{}", setup.sid()),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/me/servers/{}/proxy-policy", setup.sid()),
            Some(json!({"policy": "all"})),
        ),
        (
            Method::PUT,
            format!("/api/v1/me/servers/{}/sharing-policy", setup.sid()),
            Some(json!({"collaborator_relay": false})),
        ),
    ] {
        let (status, answer) = call(&setup.hub, &setup.friend, method.clone(), &path, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (403, Some("server.not_owned")),
            "{method} {path}"
        );
    }
    assert_eq!(setup.mint(&setup.stranger).await.0, 403);
    setup.hub.stop().await;
}

#[tokio::test]
async fn revoking_a_share_cuts_the_collaborator_within_five_seconds_but_not_the_owner() {
    let setup = Setup::new().await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active().await;
    let share_id = setup.share(json!({})).await;
    let owner_pinger = ping_forever(setup.mount(&setup.owner).await);
    let friend_pinger = ping_forever(setup.mount(&setup.friend).await);
    // A proxied download that never finishes: HEAD and one chunk, then the server waits.
    let hanging = setup
        .proxy(&setup.friend, "/api/v1/media/slow")
        .send()
        .await
        .unwrap();
    assert_eq!(hanging.status(), 200);
    let download = tokio::spawn(async move {
        let mut hanging = hanging;
        loop {
            match hanging.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => return (Instant::now(), "ended"),
                Err(_) => return (Instant::now(), "cut"),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        friend_pinger.trips.load(Ordering::Relaxed) > 0,
        "the friend's channel works"
    );

    let (status, _) = call(
        &setup.hub,
        &setup.owner,
        Method::DELETE,
        &format!("/api/v1/me/shares/{share_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let revoked = Instant::now();
    let friend_ended = tokio::time::timeout(CUT_WITHIN, friend_pinger.task)
        .await
        .expect("the friend's mount is cut within 5 s")
        .unwrap();
    assert!(friend_ended.duration_since(revoked) < CUT_WITHIN);
    let (download_ended, how) = tokio::time::timeout(CUT_WITHIN, download)
        .await
        .expect("the proxied download is cut within 5 s")
        .unwrap();
    assert_eq!(how, "cut");
    assert!(download_ended.duration_since(revoked) < CUT_WITHIN);

    // The owner's channel keeps going.
    let before = owner_pinger.trips.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !owner_pinger.ended.load(Ordering::Relaxed),
        "the owner's channel was cut too"
    );
    assert!(
        owner_pinger.trips.load(Ordering::Relaxed) > before,
        "the owner's channel stalled"
    );

    // And nothing new for the friend: no token, no mount with an old token, no proxy.
    assert_eq!(setup.mint(&setup.friend).await.0, 403);
    assert_eq!(
        setup
            .proxy(&setup.friend, "/api/v1/media/bytes/10")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn an_old_token_is_refused_once_the_share_is_gone_and_the_switch_cuts_collaborators() {
    let setup = Setup::new().await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active().await;
    let share_id = setup.share(json!({})).await;
    let (_, minted) = setup.mint(&setup.friend).await;
    let token = minted["token"].as_str().unwrap().to_owned();
    call(
        &setup.hub,
        &setup.owner,
        Method::DELETE,
        &format!("/api/v1/me/shares/{share_id}"),
        None,
    )
    .await;
    let refused = setup.mount_with(&token).await.err().unwrap();
    assert_eq!(refused.0, 403, "{}", refused.1);

    // Shared again; the owner switches collaborators off: the open mount is cut, new ones refused.
    setup.share(json!({})).await;
    let friend_pinger = ping_forever(setup.mount(&setup.friend).await);
    let owner_pinger = ping_forever(setup.mount(&setup.owner).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let path = format!("/api/v1/me/servers/{}/sharing-policy", setup.sid());
    let (status, body) = call(
        &setup.hub,
        &setup.owner,
        Method::PUT,
        &path,
        Some(json!({"collaborator_relay": false})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"server_id": setup.sid(), "collaborator_relay": false})
        )
    );
    let switched = Instant::now();
    let ended = tokio::time::timeout(CUT_WITHIN, friend_pinger.task)
        .await
        .expect("cut within 5 s")
        .unwrap();
    assert!(ended.duration_since(switched) < CUT_WITHIN);
    assert!(!owner_pinger.ended.load(Ordering::Relaxed));
    assert_eq!(setup.mint(&setup.friend).await.0, 403);
    let (status, lists) = call(
        &setup.hub,
        &setup.friend,
        Method::GET,
        "/api/v1/me/shares",
        None,
    )
    .await;
    assert_eq!(
        (status, &lists["incoming"][0]["relay_available"]),
        (200, &json!(false))
    );
    let bad = call(
        &setup.hub,
        &setup.owner,
        Method::PUT,
        &path,
        Some(json!({"collaborator_relay": "yes"})),
    )
    .await;
    assert_eq!(bad.0, 400, "{}", bad.1);
    let (status, _) = call(
        &setup.hub,
        &setup.owner,
        Method::PUT,
        &path,
        Some(json!({"collaborator_relay": true})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(setup.mint(&setup.friend).await.0, 201);
    setup.hub.stop().await;
}

#[tokio::test]
async fn an_expiring_share_cuts_its_collaborator_when_it_expires() {
    let setup = Setup::new().await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active().await;
    setup.share(json!({"expires_in": 2})).await;
    let created = Instant::now();
    let friend_pinger = ping_forever(setup.mount(&setup.friend).await);
    // Expiry is at +2 s (whole seconds); the sweep runs every 2 s: cut by +2 s + 1 s + 5 s.
    let ended = tokio::time::timeout(Duration::from_secs(8), friend_pinger.task)
        .await
        .expect("cut after expiry")
        .unwrap();
    let after = ended.duration_since(created);
    assert!(
        after >= Duration::from_secs(1),
        "cut before the share expired ({after:?})"
    );
    assert!(friend_pinger.trips.load(Ordering::Relaxed) > 0);
    assert_eq!(setup.mint(&setup.friend).await.0, 403);
    setup.hub.stop().await;
}

#[tokio::test]
async fn relay_tokens_minted_as_base64url_before_keep_working_until_they_expire() {
    let setup = Setup::new().await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active().await;
    // A token of the old form (43 characters of base64url), stored as the old hub stored it.
    let old = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo";
    assert_eq!(old.len(), 43);
    let owner_id = setup.me(&setup.owner).await;
    let store = setup.hub.store().await;
    let now = phlix_hub::auth::now_unix();
    store
        .insert_relay_token(
            "old-token",
            &hex::encode(Sha256::digest(old.as_bytes())),
            &owner_id,
            &setup.sid(),
            now + 60,
            now,
        )
        .await
        .unwrap();
    let mut client = setup
        .mount_with(old)
        .await
        .map_err(|(s, b)| format!("{s} {b}"))
        .unwrap();
    client
        .send_frames(Opcode::Binary, &[data(b"still works")])
        .await;
    assert_eq!(
        &client.next_frame().await.unwrap().payload[..],
        b"still works"
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn the_collaborators_event_stream_carries_the_shared_server_and_the_revoke() {
    let setup = Setup::new().await;
    let share_id = setup.share(json!({})).await;
    let mut events = setup
        .hub
        .http_client
        .get(setup.hub.url("/api/v1/me/events"))
        .bearer_auth(&setup.friend)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut server = setup.server;
    let (status, _) = server.heartbeat(&[("lib-movies", "Movies")]).await;
    assert_eq!(status, 200);
    let mut seen = String::new();
    let wanted = format!("\"serverId\":\"{}\"", server.server_id());
    while !(seen.contains("event: server.heartbeat") && seen.contains(&wanted)) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
            .await
            .expect("the heartbeat of the shared server arrives")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (status, _) = call(
        &setup.hub,
        &setup.owner,
        Method::DELETE,
        &format!("/api/v1/me/shares/{share_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    while !seen.contains("event: share.revoked") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
            .await
            .expect("share.revoked arrives")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains(&format!("\"shareId\":\"{share_id}\"")),
        "{seen}"
    );
    // After the revoke, the server's heartbeats no longer reach the former collaborator.
    let mark = seen.len();
    server.heartbeat(&[("lib-movies", "Movies")]).await;
    let quiet = tokio::time::timeout(Duration::from_millis(800), async {
        loop {
            let chunk = events.chunk().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen[mark..].contains("server.heartbeat") {
                return;
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "a heartbeat reached the former collaborator: {}",
        &seen[mark..]
    );
    setup.hub.stop().await;
}
