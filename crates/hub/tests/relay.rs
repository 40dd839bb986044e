//! The relay data plane over real sockets (SPEC A, B, J.1, J.2): a fake Phlix server holds a
//! tunnel, clients mount raw channels, browsers use HTTP-over-relay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::fake_server::FakePhlixServer;
use common::fake_tunnel::{self, Seen, send_php_style, wait_for};
use common::ws_client::{Ended, WsClient, connect};
use common::{TestHub, status_json};
use phlix_hub::relay::ws_io::WsEvent;
use phlix_proto::frame::{Frame, FrameType};
use phlix_proto::ws::Opcode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Setup {
    hub: TestHub,
    owner: String,
    server: FakePhlixServer,
}

impl Setup {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut phlix_hub::config::ServeArgs)) -> Self {
        Self::configured(adjust, |_| {}).await
    }

    /// A setup whose hub also has an adjusted configuration (the client-mount timers have no
    /// flag).
    async fn configured(
        adjust: impl FnOnce(&mut phlix_hub::config::ServeArgs),
        configure: impl FnOnce(&mut phlix_hub::config::Config),
    ) -> Self {
        let hub = TestHub::start_configured(adjust, configure).await;
        let owner = hub.register("owner", "password123").await.access_token;
        let mut server = FakePhlixServer::new(&hub.url(""), "Relay NAS");
        server.request_claim().await;
        let code = server.claim_code.clone().unwrap();
        let resp = hub
            .http_client
            .post(hub.url("/api/v1/server-claims/claim"))
            .header("Accept-Phlix-Protocol", "v1")
            .bearer_auth(&owner)
            .json(&json!({"claim_code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        server.poll().await;
        Self { hub, owner, server }
    }

    fn jwt(&self) -> String {
        self.server.enrollment.clone().unwrap().enrollment_jwt
    }

    async fn tunnel(&self) -> WsClient {
        fake_tunnel::open(self.hub.tunnel, &self.server.server_id(), &self.jwt())
            .await
            .0
    }

    async fn relay_token(&self) -> String {
        let resp = self
            .hub
            .http_client
            .post(self.hub.url(&format!(
                "/api/v1/me/servers/{}/relay-token",
                self.server.server_id()
            )))
            .bearer_auth(&self.owner)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    async fn client(&self) -> WsClient {
        let token = self.relay_token().await;
        let path = format!("/client/{}", self.server.server_id());
        connect(
            self.hub.client_addr,
            &path,
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await
        .map_err(|r| format!("{} {}", r.status, r.body))
        .unwrap()
    }

    /// Waits until the registry shows the tunnel (the mount needs it).
    async fn wait_relay_active(&self, active: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = self
                .hub
                .http_client
                .get(self.hub.url("/api/v1/me/servers"))
                .bearer_auth(&self.owner)
                .send()
                .await
                .unwrap();
            let (_, body) = status_json(resp).await;
            if body["servers"][0]["relayActive"] == active {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "relayActive never became {active}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The owner's server detail (`GET /api/v1/me/servers/{id}`).
    async fn detail(&self) -> Value {
        let resp = self
            .hub
            .http_client
            .get(
                self.hub
                    .url(&format!("/api/v1/me/servers/{}", self.server.server_id())),
            )
            .bearer_auth(&self.owner)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Sets the owner's throttle (bit/s, 0 = unlimited) as admin (the owner is the first user).
    async fn set_throttle(&self, bps: i64) {
        let me: Value = self
            .hub
            .http_client
            .get(self.hub.url("/api/v1/me"))
            .bearer_auth(&self.owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = me["user"]["id"].as_str().unwrap();
        let resp = self
            .hub
            .http_client
            .put(self.hub.url(&format!("/api/v1/admin/users/{id}/throttle")))
            .bearer_auth(&self.owner)
            .json(&json!({"throttle_bps": bps}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(
            (status, body["throttle_bps"].as_i64()),
            (200, Some(bps)),
            "{body}"
        );
    }

    fn proxy(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.hub
            .http_client
            .request(
                method,
                self.hub.url(&format!(
                    "/api/v1/servers/{}/proxy{path}",
                    self.server.server_id()
                )),
            )
            .bearer_auth(&self.owner)
    }

    async fn set_policy(&self, policy: &str) {
        let resp = self
            .hub
            .http_client
            .put(self.hub.url(&format!(
                "/api/v1/me/servers/{}/proxy-policy",
                self.server.server_id()
            )))
            .bearer_auth(&self.owner)
            .json(&json!({"policy": policy}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"server_id": self.server.server_id(), "policy": policy})
        );
    }
}

fn data(channel: u32, payload: &[u8]) -> Frame {
    Frame::new(channel, FrameType::Data, Bytes::copy_from_slice(payload)).unwrap()
}

#[tokio::test]
async fn raw_channels_echo_for_two_clients_with_their_own_channel_ids() {
    let setup = Setup::new().await;
    let (mut tunnel_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let mut a = setup.client().await;
    let mut b = setup.client().await;
    let connects: Vec<u32> = {
        let mut ids = Vec::new();
        for _ in 0..2 {
            if let Seen::Frame(frame) = wait_for(
                &mut tunnel_rx,
                "CLIENT_CONNECT",
                |s| matches!(s, Seen::Frame(f) if f.kind == FrameType::ClientConnect),
            )
            .await
            {
                let body: Value = serde_json::from_slice(&frame.payload).unwrap();
                assert!(body["client_id"].as_str().unwrap().len() == 36, "{body}");
                assert_eq!(body["session_id"], "");
                ids.push(frame.id);
            }
        }
        ids
    };
    assert_eq!(connects, vec![1, 2], "channel ids start at 1 and increment");

    // The client's u32 is ignored and re-tagged with its channel.
    a.send_frames(Opcode::Binary, &[data(999, b"hello from a")])
        .await;
    b.send_frames(
        Opcode::Text,
        &[data(0, b"hello from b"), data(7, b"second frame")],
    )
    .await;
    let echo_a = a.next_frame().await.unwrap();
    assert_eq!(
        (echo_a.id, echo_a.kind, &echo_a.payload[..]),
        (1, FrameType::Data, &b"hello from a"[..])
    );
    let echo_b1 = b.next_frame().await.unwrap();
    let echo_b2 = b.next_frame().await.unwrap();
    assert_eq!(
        (echo_b1.id, &echo_b1.payload[..]),
        (2, &b"hello from b"[..])
    );
    assert_eq!(
        (echo_b2.id, &echo_b2.payload[..]),
        (2, &b"second frame"[..])
    );

    // A non-DATA frame from a client gets an ERROR frame and the mount stays open.
    a.send_frames(Opcode::Binary, &[Frame::empty(0, FrameType::Heartbeat)])
        .await;
    let error = a.next_frame().await.unwrap();
    assert_eq!((error.id, error.kind), (0, FrameType::Error));
    let body: Value = serde_json::from_slice(&error.payload).unwrap();
    assert_eq!(body["error"], "Unexpected frame type");
    a.send_frames(Opcode::Binary, &[data(1, b"still here")])
        .await;
    assert_eq!(&a.next_frame().await.unwrap().payload[..], b"still here");

    // A client that leaves is announced to the server.
    a.writer.close(1000, "bye").await;
    let seen = wait_for(
        &mut tunnel_rx,
        "CLIENT_DISCONNECT",
        |s| matches!(s, Seen::Frame(f) if f.kind == FrameType::ClientDisconnect),
    )
    .await;
    let Seen::Frame(frame) = seen else {
        unreachable!()
    };
    assert_eq!(frame.id, 1);
    assert!(serde_json::from_slice::<Value>(&frame.payload).unwrap()["client_id"].is_string());
    setup.hub.stop().await;
}

#[tokio::test]
async fn ten_megabytes_cross_a_channel_intact() {
    let setup = Setup::new().await;
    setup.set_throttle(0).await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let client = setup.client().await;
    let WsClient {
        reader,
        writer,
        headers,
        ..
    } = client;
    let _ = headers;
    let total = 10 * 1024 * 1024;
    let payload: Vec<u8> = (0..total).map(|i| ((i * 31 + i / 7) % 256) as u8).collect();
    let expected = hex::encode(Sha256::digest(&payload));
    let reader_task = tokio::spawn(async move {
        let mut reader = reader;
        let mut decoder = phlix_proto::frame::FrameDecoder::new(1 << 20);
        let mut hasher = Sha256::new();
        let mut received = 0usize;
        while received < total {
            if let phlix_hub::relay::ws_io::WsEvent::Data(message) = reader.next().await.unwrap() {
                decoder.push(&message.payload);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    assert_eq!(frame.kind, FrameType::Data);
                    hasher.update(&frame.payload);
                    received += frame.payload.len();
                }
            }
        }
        hex::encode(hasher.finalize())
    });
    let mut writer = writer;
    writer.set_client_role();
    for chunk in payload.chunks(60_000) {
        let frame = data(1, chunk);
        writer
            .send_parts(Opcode::Binary, &[frame.to_bytes()])
            .await
            .unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(60), reader_task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, expected);
    setup.hub.stop().await;
}

#[tokio::test]
async fn http_over_relay_streams_megabyte_bodies_both_ways() {
    let setup = Setup::new().await;
    let (mut tunnel_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;

    // The default policy only lets the Phlix media API through.
    let resp = setup
        .proxy(reqwest::Method::GET, "/api/v1/admin/users")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(resp).await,
        (
            403,
            json!({"error": "This path is not reachable through the relay.", "code": "proxy.scope_denied"})
        )
    );
    // (`%2e%2e` segments are resolved by the client's URL parser before sending, so use forms
    // that reach the hub as such.)
    for path in [
        "/api/v1/libraries/a..b",
        "/api/v1/libraries/%00",
        "/api/v1/libraries/%5c",
        "/api/v1/libraries/x%3Fy",
    ] {
        let resp = setup
            .proxy(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(
            status_json(resp).await,
            (
                400,
                json!({"error": "The path is not allowed.", "code": "proxy.invalid_path"})
            ),
            "{path}"
        );
    }

    // A 3 MB download of unknown length, streamed.
    let resp = setup
        .proxy(reqwest::Method::GET, "/api/v1/media/bytes/3000000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("content-length").is_none(),
        "bodyLength null → chunked"
    );
    let body = resp.bytes().await.unwrap();
    let expected: Vec<u8> = (0..3_000_000).map(|i| (i % 253) as u8).collect();
    assert_eq!(body.len(), expected.len());
    assert!(body[..] == expected[..]);

    // A 2 MB upload (policy "all"), echoed as its checksum; headers are stripped and stamped.
    setup.set_policy("all").await;
    let upload: Vec<u8> = (0..2_000_000).map(|i| (i % 241) as u8).collect();
    let resp = setup
        .proxy(reqwest::Method::POST, "/upload/echo?x=1&y=%20z")
        .header("Cookie", "session=secret")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Custom", "kept")
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-fake"], "yes");
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/upload/echo");
    assert_eq!(echo["query"], "x=1&y=%20z");
    assert_eq!(echo["body_len"], 2_000_000);
    assert_eq!(echo["body_sha256"], hex::encode(Sha256::digest(&upload)));
    let headers = &echo["headers"];
    assert_eq!(headers["x-custom"], "kept");
    assert!(
        headers.get("authorization").is_none() && headers.get("cookie").is_none(),
        "{headers}"
    );
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    let me: Value = setup
        .hub
        .http_client
        .get(setup.hub.url("/api/v1/me"))
        .bearer_auth(&setup.owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(headers["X-Phlix-Relay-User"], me["user"]["id"]);

    // The route's edge (served before the router): HEAD is relayed like any method (elsewhere
    // the API answers HEAD 404); a refused request that carried a body closes its connection;
    // an empty server id is no proxy route.
    let resp = setup
        .proxy(reqwest::Method::HEAD, "/head/echo")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-fake"], "yes");
    let resp = setup
        .hub
        .http_client
        .post(setup.hub.url(&format!(
            "/api/v1/servers/{}/proxy/upload/echo",
            setup.server.server_id()
        )))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["connection"], "close");
    assert_eq!(resp.status(), 401);
    let resp = setup
        .hub
        .http_client
        .get(setup.hub.url("/api/v1/servers//proxy/x"))
        .bearer_auth(&setup.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await.0, 404);
    // Request ids are in the high range; bodies travelled in ≤ 65 534-byte chunks.
    let seen = wait_for(
        &mut tunnel_rx,
        "the upload",
        |s| matches!(s, Seen::Request { body_len, .. } if *body_len == 2_000_000),
    )
    .await;
    let Seen::Request { id, .. } = seen else {
        unreachable!()
    };
    assert!(id >= 0x8000_0001, "{id:#x}");
    setup.hub.stop().await;
}

#[tokio::test]
async fn clients_that_go_away_are_announced_and_their_requests_cancelled() {
    let setup = Setup::new().await;
    let (mut tunnel_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let resp = setup
        .proxy(reqwest::Method::GET, "/api/v1/media/slow")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut resp = resp;
    let first = resp.chunk().await.unwrap().unwrap();
    assert_eq!(first.len(), 1000);
    let seen = wait_for(
        &mut tunnel_rx,
        "the slow request",
        |s| matches!(s, Seen::Request { head, .. } if head.path.ends_with("/slow")),
    )
    .await;
    let Seen::Request { id, .. } = seen else {
        unreachable!()
    };
    drop(resp);
    let cancel = wait_for(
        &mut tunnel_rx,
        "HTTP_CANCEL",
        |s| matches!(s, Seen::Frame(f) if f.kind == FrameType::HttpCancel),
    )
    .await;
    let Seen::Frame(cancel) = cancel else {
        unreachable!()
    };
    assert_eq!(cancel.id, id);
    assert!(cancel.payload.is_empty());
    setup.hub.stop().await;
}

#[tokio::test]
async fn a_dropped_tunnel_disconnects_clients_and_fails_requests_in_flight() {
    let setup = Setup::new().await;
    let tunnel = setup.tunnel().await;
    let (mut tunnel_rx, task) = fake_tunnel::serve(tunnel);
    setup.wait_relay_active(true).await;
    // While the tunnel is up, the server detail carries its relay session (SPEC L).
    let detail = setup.detail().await;
    let session = &detail["relay_session"];
    assert_eq!(session["id"].as_str().map(str::len), Some(36), "{detail}");
    assert!(
        !session["worker_node"].as_str().unwrap().is_empty(),
        "{detail}"
    );
    assert!(session["opened_at"].as_i64().unwrap() > 0, "{detail}");
    assert!(
        session["bytes_in"].is_i64() && session["bytes_out"].is_i64(),
        "{detail}"
    );
    assert_eq!(detail["server"]["relay_active"], true, "{detail}");
    let mut client = setup.client().await;
    wait_for(
        &mut tunnel_rx,
        "CLIENT_CONNECT",
        |s| matches!(s, Seen::Frame(f) if f.kind == FrameType::ClientConnect),
    )
    .await;
    let pending = tokio::spawn(
        setup
            .proxy(reqwest::Method::GET, "/api/v1/media/hang")
            .send(),
    );
    wait_for(
        &mut tunnel_rx,
        "the hanging request",
        |s| matches!(s, Seen::Request { head, .. } if head.path.ends_with("/hang")),
    )
    .await;
    task.abort(); // the server process dies: its socket closes without a close frame
    let frame = client.next_frame().await.unwrap();
    assert_eq!((frame.id, frame.kind), (0, FrameType::Disconnected));
    assert_eq!(
        serde_json::from_slice::<Value>(&frame.payload).unwrap(),
        json!({"reason": "server_closed"})
    );
    assert!(matches!(
        client.ended().await,
        Ended::Close(..) | Ended::Eof
    ));
    let resp = pending.await.unwrap().unwrap();
    assert_eq!(
        status_json(resp).await,
        (
            503,
            json!({"error": "The relay tunnel closed before the response completed.", "code": "server.offline"})
        )
    );
    setup.wait_relay_active(false).await;
    let resp = setup
        .proxy(reqwest::Method::GET, "/api/v1/media/x")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await.1["code"], "server.no_tunnel");
    let detail = setup.detail().await;
    assert_eq!(detail["relay_session"], Value::Null, "{detail}");
    assert_eq!(detail["server"]["relay_active"], false, "{detail}");
    // The session row is closed with its reason.
    let store = setup.hub.store().await;
    let rows: Vec<(Option<String>, i64)> = match &store {
        phlix_hub::store::Store::Sqlite(pool) => {
            sqlx::query_as("SELECT close_reason, bytes_in FROM relay_sessions")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        phlix_hub::store::Store::Postgres(pool) => {
            sqlx::query_as("SELECT close_reason, bytes_in FROM relay_sessions")
                .fetch_all(pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.as_deref(), Some("server_disconnected"));
    store.close().await;
    setup.hub.stop().await;
}

#[tokio::test]
async fn a_second_hello_displaces_the_first_tunnel() {
    let setup = Setup::new().await;
    let (mut old_rx, _old) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let mut client = setup.client().await;
    wait_for(
        &mut old_rx,
        "CLIENT_CONNECT",
        |s| matches!(s, Seen::Frame(f) if f.kind == FrameType::ClientConnect),
    )
    .await;
    let (new_tunnel, ack) =
        fake_tunnel::open(setup.hub.tunnel, &setup.server.server_id(), &setup.jwt()).await;
    assert!(ack["relay_session_id"].is_string() && ack["tunnel_id"].is_string());
    let (mut new_rx, _new) = fake_tunnel::serve(new_tunnel);
    let frame = client.next_frame().await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&frame.payload).unwrap(),
        json!({"reason": "server_replaced"})
    );
    let closed = wait_for(&mut old_rx, "the old tunnel's close", |s| {
        matches!(s, Seen::Closed(_))
    })
    .await;
    assert!(
        matches!(closed, Seen::Closed(Ended::Close(_, ref reason)) if reason == "server_replaced"),
        "{closed:?}"
    );
    // New mounts reach the new tunnel.
    let mut client = setup.client().await;
    wait_for(
        &mut new_rx,
        "CLIENT_CONNECT on the new tunnel",
        |s| matches!(s, Seen::Frame(f) if f.kind == FrameType::ClientConnect),
    )
    .await;
    client
        .send_frames(Opcode::Binary, &[data(0, b"ping")])
        .await;
    assert_eq!(&client.next_frame().await.unwrap().payload[..], b"ping");
    setup.hub.stop().await;
}

#[tokio::test]
async fn a_silent_tunnel_is_closed_with_timeout_after_hub_heartbeats() {
    let setup = Setup::with(|args| {
        args.relay_heartbeat = Duration::from_millis(200);
        args.relay_stale_after = Duration::from_millis(1200);
    })
    .await;
    // The hub arms its stale timer once it has the HELLO, so the clock starts before the HELLO
    // is sent: after the handshake, a loaded machine may run this task late.
    let started = Instant::now();
    let mut tunnel = setup.tunnel().await;
    // Read without answering: the hub's heartbeats arrive, then the stale close.
    let mut heartbeats = 0;
    let ended = loop {
        match tunnel.next_frame().await {
            Ok(frame) => {
                assert_eq!((frame.id, frame.kind), (0, FrameType::Heartbeat));
                assert!(frame.payload.is_empty());
                heartbeats += 1;
            }
            Err(ended) => break ended,
        }
    };
    assert!(heartbeats >= 3, "{heartbeats} heartbeats");
    assert!(
        matches!(ended, Ended::Close(_, ref reason) if reason == "timeout"),
        "{ended:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1200));
    setup.hub.stop().await;
}

#[tokio::test]
async fn heartbeat_replies_keep_a_tunnel_open() {
    let setup = Setup::with(|args| {
        args.relay_heartbeat = Duration::from_millis(150);
        args.relay_stale_after = Duration::from_millis(700);
    })
    .await;
    let (mut rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    setup.wait_relay_active(true).await;
    while let Ok(seen) = rx.try_recv() {
        assert!(
            !matches!(seen, Seen::Closed(_)),
            "tunnel closed although it answered heartbeats"
        );
    }
    setup.hub.stop().await;
}

async fn expect_close(tunnel: &mut WsClient, reason: &str) {
    let ended = tunnel.ended().await;
    assert!(
        matches!(&ended, Ended::Close(_, r) if r == reason),
        "expected close {reason}, got {ended:?}"
    );
}

#[tokio::test]
async fn bad_frames_close_only_the_offending_tunnel() {
    let setup = Setup::new().await;
    // JSON text after the handshake: its 5th byte reads as type 0x70.
    let mut tunnel = setup.tunnel().await;
    tunnel.send_raw(Opcode::Text, br#"{"type":"hello"}"#).await;
    expect_close(&mut tunnel, "invalid_frame").await;
    // A valid type the hub never accepts from a server.
    let mut tunnel = setup.tunnel().await;
    tunnel
        .send_frames(Opcode::Binary, &[Frame::empty(5, FrameType::ClientConnect)])
        .await;
    expect_close(&mut tunnel, "protocol_error").await;
    // Meanwhile another tunnel works: serve it and do a round trip.
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let mut client = setup.client().await;
    client
        .send_frames(Opcode::Binary, &[data(0, b"alive")])
        .await;
    assert_eq!(&client.next_frame().await.unwrap().payload[..], b"alive");
    // TEXT messages with invalid UTF-8 and frames split across messages are fine.
    let mut other = setup.tunnel().await;
    send_php_style(
        &mut other,
        &[
            Frame::empty(0, FrameType::Heartbeat),
            data(77, &[0xFF, 0xFE, 0xFD]),
        ],
        true,
    )
    .await;
    send_php_style(
        &mut other,
        &[Frame::empty(0x8000_0001, FrameType::HttpCancel)],
        false,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    setup.hub.stop().await;
}

#[tokio::test]
async fn hello_rejections_close_with_4400_or_4401_and_keep_the_live_tunnel() {
    let setup = Setup::new().await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let id = setup.server.server_id();
    let jwt = setup.jwt();
    let other_ring =
        phlix_hub::auth::keys::KeyRing::load_or_create(tempfile::tempdir().unwrap().path())
            .unwrap();
    let forged = phlix_hub::auth::enrollment::mint(
        &other_ring,
        &id,
        "http://127.0.0.1",
        600,
        phlix_hub::auth::now_unix(),
    );
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"not json".to_vec(), 4400, "malformed_hello"),
        (json!({"type": "hello", "enrollment_jwt": jwt, "server_id": id, "extra": {"nested": 1}}).to_string().into_bytes(), 4400, "malformed_hello"),
        (json!({"type": "hi", "enrollment_jwt": jwt, "server_id": id}).to_string().into_bytes(), 4400, "invalid_hello"),
        (json!({"type": "hello", "enrollment_jwt": jwt, "server_id": ""}).to_string().into_bytes(), 4400, "missing_server_id"),
        (json!({"type": "hello", "enrollment_jwt": 5, "server_id": id}).to_string().into_bytes(), 4400, "invalid_hello_payload"),
        (json!({"type": "hello", "enrollment_jwt": forged, "server_id": id}).to_string().into_bytes(), 4401, "unauthorized"),
        (json!({"type": "hello", "enrollment_jwt": jwt, "server_id": "another-server"}).to_string().into_bytes(), 4401, "unauthorized"),
    ];
    for (hello, code, reason) in cases {
        let mut ws = connect(setup.hub.tunnel, "/any/path", &[]).await.unwrap();
        ws.send_raw(Opcode::Text, &hello).await;
        assert_eq!(
            ws.ended().await,
            Ended::Close(code, reason.to_owned()),
            "{}",
            String::from_utf8_lossy(&hello)
        );
    }
    // The live tunnel was not evicted.
    let mut client = setup.client().await;
    client
        .send_frames(Opcode::Binary, &[data(0, b"still mine")])
        .await;
    assert_eq!(
        &client.next_frame().await.unwrap().payload[..],
        b"still mine"
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn the_eleventh_tunnel_connect_in_a_minute_is_refused_with_1013() {
    let setup = Setup::new().await;
    for _ in 0..10 {
        let mut ws = connect(setup.hub.tunnel, "/", &[]).await.unwrap();
        ws.send_raw(Opcode::Text, b"x").await;
        assert_eq!(
            ws.ended().await,
            Ended::Close(4400, "malformed_hello".into())
        );
    }
    let mut ws = connect(setup.hub.tunnel, "/", &[]).await.unwrap();
    assert_eq!(
        ws.ended().await,
        Ended::Close(1013, "try again later".into())
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn client_mounts_need_a_valid_token_and_an_open_tunnel() {
    let setup = Setup::new().await;
    let id = setup.server.server_id();
    let path = format!("/client/{id}");
    let token = setup.relay_token().await;
    // No tunnel yet.
    let refused = connect(
        setup.hub.client_addr,
        &path,
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refused.status, 503);
    assert_eq!(
        serde_json::from_str::<Value>(&refused.body).unwrap()["code"],
        "server_offline"
    );

    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    for headers in [
        vec![],
        vec![("Authorization", "Bearer nope".to_owned())],
        vec![("Authorization", format!("Bearer {}", setup.jwt()))],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let refused = connect(setup.hub.client_addr, &path, &headers)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.status, 401);
        assert_eq!(
            serde_json::from_str::<Value>(&refused.body).unwrap(),
            json!({"error": "Unauthorized", "code": "relay.token_invalid", "message": "A valid client relay token for this server is required"})
        );
    }
    // The token is bound to its server.
    let refused = connect(
        setup.hub.client_addr,
        "/client/other-server",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refused.status, 401);
    // Browsers: the token in Sec-WebSocket-Protocol, `bearer` echoed back; trailing slash allowed.
    let protocol = format!("bearer, {token}");
    let mut client = connect(
        setup.hub.client_addr,
        &format!("{path}/"),
        &[("Sec-WebSocket-Protocol", &protocol)],
    )
    .await
    .map_err(|r| r.body)
    .unwrap();
    assert_eq!(client.header("sec-websocket-protocol"), Some("bearer"));
    client
        .send_frames(Opcode::Binary, &[data(0, b"browser")])
        .await;
    assert_eq!(&client.next_frame().await.unwrap().payload[..], b"browser");
    // Plain HTTP on the client port is told to upgrade.
    let resp = setup
        .hub
        .http_client
        .get(format!("http://{}{path}", setup.hub.client_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 426);
    setup.hub.stop().await;
}

#[tokio::test]
async fn a_slow_reader_loses_its_channel_without_stalling_another_client() {
    let setup = Setup::new().await;
    setup.set_throttle(0).await;
    let mut tunnel = setup.tunnel().await;
    setup.wait_relay_active(true).await;
    let mut slow = setup.client().await; // never reads
    let mut fast = setup.client().await;
    let mut connected = Vec::new();
    while connected.len() < 2 {
        let frame = tunnel.next_frame().await.unwrap();
        if frame.kind == FrameType::ClientConnect {
            connected.push(frame.id);
        }
    }
    let (slow_channel, fast_channel) = (connected[0], connected[1]);
    // The server floods the slow client's channel and, interleaved, sends the fast client 50
    // numbered frames; the fast client must get all of them, in order, while the slow one
    // overflows its queue.
    let flood = Bytes::from(vec![0x5A; 60_000]);
    let mut writer = tunnel.writer;
    let sender = tokio::spawn(async move {
        for i in 0..700u32 {
            let mut frames =
                vec![Frame::new(slow_channel, FrameType::Data, flood.clone()).unwrap()];
            if i % 14 == 0 {
                frames.push(data(fast_channel, &(i / 14).to_be_bytes()));
            }
            let parts: Vec<Bytes> = frames.iter().map(Frame::to_bytes).collect();
            if writer.send_parts(Opcode::Binary, &parts).await.is_err() {
                break;
            }
        }
        writer
    });
    let started = Instant::now();
    for expected in 0..50u32 {
        let frame = fast.next_frame().await.unwrap();
        assert_eq!(
            (frame.id, &frame.payload[..]),
            (fast_channel, &expected.to_be_bytes()[..])
        );
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    let _writer = sender.await.unwrap();
    // The slow client lost its own channel: the server is told, and the mount is closed.
    let mut reader = tunnel.reader;
    let mut decoder = phlix_proto::frame::FrameDecoder::new(1 << 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    'outer: loop {
        assert!(
            Instant::now() < deadline,
            "no CLIENT_DISCONNECT for the slow channel"
        );
        if let Ok(phlix_hub::relay::ws_io::WsEvent::Data(message)) = reader.next().await {
            decoder.push(&message.payload);
            while let Some(frame) = decoder.next_frame().unwrap() {
                if frame.kind == FrameType::ClientDisconnect && frame.id == slow_channel {
                    break 'outer;
                }
            }
        }
    }
    assert!(matches!(slow.ended().await, Ended::Close(..) | Ended::Eof));
    setup.hub.stop().await;
}

/// Answers the hub's pings until `stop`, then only reads: the pongs sent and how the mount
/// ended.
async fn answer_pings_until(
    mut client: WsClient,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (usize, Ended) {
    let mut pongs = 0;
    let mut answering = true;
    loop {
        let event = tokio::select! {
            event = client.reader.next() => event,
            _ = &mut stop, if answering => {
                answering = false;
                continue;
            }
        };
        match event {
            Ok(WsEvent::Ping(payload)) if answering => {
                client.writer.send(Opcode::Pong, &payload).await.unwrap();
                pongs += 1;
            }
            Ok(WsEvent::Close { code, reason }) => return (pongs, Ended::Close(code, reason)),
            Ok(_) => {}
            Err(_) => return (pongs, Ended::Eof),
        }
    }
}

/// SPEC L with fast timers (a ping every second, a silent client closed after 3 s): a client
/// that only reads a throttled download lasting over three idle windows — and never answers a
/// ping, like a WebSocket library that sends its pongs only when it next writes — keeps its
/// mount and is pinged all along; a client that answers pings and receives nothing keeps its
/// mount too. Once nothing moves, both are closed with `idle_timeout`.
#[tokio::test]
async fn mounts_that_read_or_answer_pings_outlive_the_idle_timeout() {
    const IDLE: Duration = Duration::from_secs(3);
    let setup = Setup::configured(
        |_| {},
        |config| {
            config.relay_timers.client_ping = Duration::from_secs(1);
            config.relay_timers.client_idle = IDLE;
        },
    )
    .await;
    // 1.6 Mbit/s: 200 kB/s after a 200 kB burst, so 2.2 MB take at least 10 s.
    setup.set_throttle(1_600_000).await;
    let mut tunnel = setup.tunnel().await;
    setup.wait_relay_active(true).await;
    let mut connected = async || loop {
        let frame = tunnel.next_frame().await.unwrap();
        if frame.kind == FrameType::ClientConnect {
            return frame.id;
        }
    };
    let downloader = setup.client().await;
    let channel = connected().await;
    let ponger = setup.client().await;
    connected().await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let ponger = tokio::spawn(answer_pings_until(ponger, stopped));

    // The server sends 2.2 MB in frames of 4 kB, ten to a message: far more than the client's
    // queue holds, as any real download.
    let total = 2_200_000;
    let started = Instant::now();
    let mut writer = tunnel.writer;
    let _sender = tokio::spawn(async move {
        let frame = Frame::new(channel, FrameType::Data, Bytes::from(vec![0x42; 4_000])).unwrap();
        let message = vec![frame.to_bytes(); 10];
        for _ in 0..total / 40_000 {
            writer.send_parts(Opcode::Binary, &message).await.unwrap();
        }
        writer
    });
    let WsClient {
        mut reader,
        writer: _downloader_writer,
        ..
    } = downloader;
    let mut decoder = phlix_proto::frame::FrameDecoder::new(1 << 20);
    let (mut received, mut pings) = (0, 0);
    while received < total {
        let event = tokio::time::timeout(Duration::from_secs(20), reader.next())
            .await
            .expect("something within 20 s");
        match event {
            Ok(WsEvent::Data(message)) => {
                decoder.push(&message.payload);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    assert_eq!(frame.kind, FrameType::Data, "{frame:?}");
                    received += frame.payload.len();
                }
            }
            Ok(WsEvent::Ping(_)) => pings += 1,
            Ok(WsEvent::Pong) => {}
            Ok(WsEvent::Close { code, reason }) => panic!(
                "closed ({code} {reason}) after {received} of {total} bytes, {:?}",
                started.elapsed()
            ),
            Err(err) => panic!("{err} after {received} of {total} bytes"),
        }
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= 3 * IDLE, "{total} B at 200 kB/s in {elapsed:?}");
    assert!(pings >= 3, "{pings} pings during {elapsed:?}");
    assert!(
        !ponger.is_finished(),
        "the client answering pings lost its mount: {:?}",
        ponger.await
    );

    // Nothing moves any more: both mounts are closed as idle.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match reader.next().await {
                Ok(WsEvent::Close { code, reason }) => return Ended::Close(code, reason),
                Ok(_) => {}
                Err(_) => return Ended::Eof,
            }
        }
    })
    .await
    .expect("the idle download closed within 30 s");
    assert_eq!(ended, Ended::Close(1000, "idle_timeout".into()));
    stop.send(()).unwrap();
    let (pongs, ended) = tokio::time::timeout(Duration::from_secs(30), ponger)
        .await
        .expect("the silent client closed within 30 s")
        .unwrap();
    assert!(pongs >= 3, "{pongs} pongs");
    assert_eq!(ended, Ended::Close(1000, "idle_timeout".into()));
    setup.hub.stop().await;
}

#[tokio::test]
async fn subdomain_ingress_forwards_the_owners_browser_and_sends_others_to_login() {
    let setup = Setup::with(|args| args.public_domain = Some("hub.test".into())).await;
    let (mut tunnel_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    // The server registers its subdomain.
    let resp = setup
        .server
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/servers/{}/subdomain", setup.server.server_id()),
        )
        .json(&json!({"subdomain": "jelly"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body["fqdn"].as_str()),
        (200, Some("jelly.hub.test")),
        "{body}"
    );
    setup.set_policy("all").await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = setup.hub.url("/web/index.html?x=1");

    // Without the session cookie: to the login page, with the original URL.
    let resp = no_redirect
        .get(&url)
        .header("Host", "jelly.hub.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "http://127.0.0.1/app/login?next=http%3A%2F%2Fjelly.hub.test%2Fweb%2Findex.html%3Fx%3D1"
    );
    // Another user's cookie is not enough.
    let stranger = setup
        .hub
        .register("stranger", "password123")
        .await
        .access_token;
    let resp = no_redirect
        .get(&url)
        .header("Host", "jelly.hub.test")
        .header("Cookie", format!("phlix_hub_token={stranger}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    // The owner's cookie: forwarded, path and query unchanged, user stamped.
    let resp = no_redirect
        .get(setup.hub.url("/web/echo?x=1"))
        .header("Host", "jelly.hub.test")
        .header("Cookie", format!("phlix_hub_token={}", setup.owner))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(
        (echo["path"].as_str(), echo["query"].as_str()),
        (Some("/web/echo"), Some("x=1"))
    );
    assert!(echo["headers"].get("cookie").is_none());
    assert_eq!(echo["headers"]["x-forwarded-host"], "jelly.hub.test");
    wait_for(
        &mut tunnel_rx,
        "the subdomain request",
        |s| matches!(s, Seen::Request { head, .. } if head.path == "/web/echo"),
    )
    .await;
    // Unknown labels are 404; the bare domain is the hub itself.
    let resp = no_redirect
        .get(&url)
        .header("Host", "nobody.hub.test")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await.1["code"], "server.not_found");
    let resp = no_redirect
        .get(setup.hub.url("/health"))
        .header("Host", "hub.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    setup.hub.stop().await;
}

/// SPEC A.5: the hub strips every inbound `x-phlix-relay*` header and stamps its own trust
/// markers, `X-Phlix-Relay: 1` and `X-Phlix-Relay-User: <user id>`, spelled as the PHP hub
/// spells them — on the proxy route and on subdomain ingress (J.1) alike.
#[tokio::test]
async fn relayed_requests_reach_the_server_with_both_trust_markers() {
    let setup = Setup::with(|args| args.public_domain = Some("hub.test".into())).await;
    let (mut tunnel_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let resp = setup
        .server
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/servers/{}/subdomain", setup.server.server_id()),
        )
        .json(&json!({"subdomain": "nas"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let me: Value = setup
        .hub
        .http_client
        .get(setup.hub.url("/api/v1/me"))
        .bearer_auth(&setup.owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = me["user"]["id"].as_str().unwrap().to_owned();
    let forged = |request: reqwest::RequestBuilder| {
        request
            .header("X-Phlix-Relay", "0")
            .header("X-Phlix-Relay-User", "intruder")
            .header("x-phlix-relay-role", "admin")
    };
    let proxied = forged(setup.proxy(reqwest::Method::GET, "/api/v1/libraries?via=proxy"))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 201);
    let ingress = forged(
        setup
            .hub
            .http_client
            .get(setup.hub.url("/api/v1/libraries?via=subdomain")),
    )
    .header("Host", "nas.hub.test")
    .header("Cookie", format!("phlix_hub_token={}", setup.owner))
    .send()
    .await
    .unwrap();
    assert_eq!(ingress.status(), 201);

    for via in ["via=proxy", "via=subdomain"] {
        let seen = wait_for(
            &mut tunnel_rx,
            via,
            |s| matches!(s, Seen::Request { head, .. } if head.query == via),
        )
        .await;
        let Seen::Request { head, .. } = seen else {
            unreachable!()
        };
        let markers: Vec<(&str, &str)> = head
            .headers
            .iter()
            .filter(|(name, _)| name.to_ascii_lowercase().starts_with("x-phlix-relay"))
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            markers,
            [
                ("X-Phlix-Relay", "1"),
                ("X-Phlix-Relay-User", user_id.as_str())
            ],
            "{via}: {:?}",
            head.headers
        );
    }
    setup.hub.stop().await;
}

#[tokio::test]
async fn sessions_are_recorded_and_reconciled_after_a_crash() {
    let setup = Setup::new().await;
    let (ws, ack) =
        fake_tunnel::open(setup.hub.tunnel, &setup.server.server_id(), &setup.jwt()).await;
    let (_rx, _task) = fake_tunnel::serve(ws);
    setup.wait_relay_active(true).await;
    let session = ack["relay_session_id"].as_str().unwrap().to_owned();
    let store = setup.hub.store().await;
    let query = "SELECT worker_node, closed_at IS NULL FROM relay_sessions WHERE id = $1";
    let row: (String, bool) = match &store {
        phlix_hub::store::Store::Sqlite(pool) => sqlx::query_as(query)
            .bind(&session)
            .fetch_one(pool)
            .await
            .unwrap(),
        phlix_hub::store::Store::Postgres(pool) => sqlx::query_as(query)
            .bind(&session)
            .fetch_one(pool)
            .await
            .unwrap(),
    };
    assert_eq!(row, ("test-node".to_owned(), true));
    // A row left open by a crashed run of this node is closed at the next start.
    let insert = "INSERT INTO relay_sessions (id, server_id, tunnel_id, worker_node, opened_at) VALUES ('crashed', $1, 't', 'test-node', 1)";
    common::execute(&store, insert, &[&setup.server.server_id()]).await;
    store.close().await;
    let (dir, url) = setup.hub.stop().await;
    let hub = TestHub::start_on(dir, url).await;
    let store = hub.store().await;
    let query = "SELECT id, close_reason FROM relay_sessions ORDER BY id";
    let rows: Vec<(String, Option<String>)> = match &store {
        phlix_hub::store::Store::Sqlite(pool) => {
            sqlx::query_as(query).fetch_all(pool).await.unwrap()
        }
        phlix_hub::store::Store::Postgres(pool) => {
            sqlx::query_as(query).fetch_all(pool).await.unwrap()
        }
    };
    let reasons: std::collections::HashMap<String, Option<String>> = rows.into_iter().collect();
    assert_eq!(reasons["crashed"].as_deref(), Some("reconciled_on_start"));
    assert_eq!(
        reasons[&session].as_deref(),
        Some("hub_shutdown"),
        "graceful shutdown closes live sessions"
    );
    store.close().await;
    hub.stop().await;
}

#[tokio::test]
async fn throttles_pace_clients_and_quotas_refuse_new_streams() {
    let setup = Setup::with(|args| args.reaper_interval = Duration::from_millis(200)).await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let me: Value = setup
        .hub
        .http_client
        .get(setup.hub.url("/api/v1/me"))
        .bearer_auth(&setup.owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = me["user"]["id"].as_str().unwrap().to_owned();

    // The default throttle is 3 Mbit/s; at 800 kbit/s (100 kB/s, 100 kB burst) 300 kB take ~2 s.
    let (status, doc) = status_json(
        setup
            .hub
            .http_client
            .get(setup.hub.url("/api/v1/me/bandwidth"))
            .bearer_auth(&setup.owner)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(doc["throttle_bps"], 3_000_000);
    assert_eq!(doc["period_start"].as_str().unwrap().len(), 10);
    setup.set_throttle(800_000).await;
    let mut client = setup.client().await;
    let started = Instant::now();
    for _ in 0..5 {
        client
            .send_frames(Opcode::Binary, &[data(0, &[1u8; 60_000])])
            .await;
    }
    let mut received = 0;
    while received < 300_000 {
        received += client.next_frame().await.unwrap().payload.len();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500),
        "300 kB at 100 kB/s took only {elapsed:?}"
    );
    drop(client);

    // Usage is counted and flushed to the database by the reaper tick.
    let deadline = Instant::now() + Duration::from_secs(10);
    let store = setup.hub.store().await;
    loop {
        let period = phlix_hub::store::period_start(phlix_hub::auth::now_unix());
        let bandwidth = store.bandwidth(&user_id, &period).await.unwrap();
        if bandwidth.bytes_in >= 300_000 && bandwidth.bytes_out >= 300_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "usage never flushed: {bandwidth:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;

    // One stream at a time.
    let quota = |body: Value| {
        setup
            .hub
            .http_client
            .put(
                setup
                    .hub
                    .url(&format!("/api/v1/admin/users/{user_id}/quota")),
            )
            .bearer_auth(&setup.owner)
            .json(&body)
            .send()
    };
    let (status, doc) =
        status_json(quota(json!({"max_concurrent_streams": 1})).await.unwrap()).await;
    assert_eq!(
        (status, doc["max_concurrent_streams"].as_i64()),
        (200, Some(1)),
        "{doc}"
    );
    let _first = setup.client().await;
    let token = setup.relay_token().await;
    let path = format!("/client/{}", setup.server.server_id());
    let refused = connect(
        setup.hub.client_addr,
        &path,
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refused.status, 429);
    assert_eq!(
        serde_json::from_str::<Value>(&refused.body).unwrap()["code"],
        "relay.stream_limit"
    );
    drop(_first);

    // A used-up monthly byte quota refuses mounts and proxied requests until next month.
    let (status, _) = status_json(
        quota(json!({"max_concurrent_streams": 0, "quota_bytes_out": 1000}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let token = setup.relay_token().await;
    let refused = connect(
        setup.hub.client_addr,
        &path,
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refused.status, 429);
    assert_eq!(
        serde_json::from_str::<Value>(&refused.body).unwrap()["code"],
        "relay.quota_exceeded"
    );
    let retry: u64 = refused
        .headers
        .iter()
        .find(|(n, _)| n == "retry-after")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 31 * 86_400);
    let resp = setup
        .proxy(reqwest::Method::GET, "/api/v1/libraries")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(resp).await.1["code"], "relay.quota_exceeded");

    // Validation and gates of the admin routes.
    let (status, body) = status_json(quota(json!({"quota_bytes_in": -1})).await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_request"))
    );
    let resp = setup
        .hub
        .http_client
        .get(setup.hub.url("/api/v1/admin/users/nobody/bandwidth"))
        .bearer_auth(&setup.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(resp).await,
        (404, json!({"error": "Not Found", "code": "user.not_found"}))
    );
    let member = setup
        .hub
        .register("member", "password123")
        .await
        .access_token;
    let resp = setup
        .hub
        .http_client
        .get(
            setup
                .hub
                .url(&format!("/api/v1/admin/users/{user_id}/bandwidth")),
        )
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    setup.hub.stop().await;
}

#[tokio::test]
async fn metrics_show_relay_gauges_to_loopback_peers() {
    let setup = Setup::new().await;
    let (_rx, _task) = fake_tunnel::serve(setup.tunnel().await);
    setup.wait_relay_active(true).await;
    let _client = setup.client().await;
    let resp = setup
        .hub
        .http_client
        .get(setup.hub.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    assert!(text.contains("\nphlix_relay_tunnels_open 1\n"), "{text}");
    assert!(text.contains("\nphlix_relay_clients_mounted 1\n"), "{text}");
    assert!(
        text.contains("# TYPE phlix_relay_bytes_in_total counter"),
        "{text}"
    );
    setup.hub.stop().await;
}
