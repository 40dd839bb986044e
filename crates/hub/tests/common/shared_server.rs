//! A hub with an owner, a friend and a stranger, and a paired fake server with a library:
//! the stage of the collaborator and admin tests (relay tokens, client mounts, the proxy
//! route, echo pingers that notice when they are cut).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use phlix_proto::frame::{Frame, FrameType};
use phlix_proto::ws::Opcode;
use reqwest::Method;
use serde_json::{Value, json};

use super::fake_server::FakePhlixServer;
use super::fake_tunnel;
use super::ws_client::{WsClient, connect};
use super::{TestHub, call};

/// A cut must land within this long of the action that causes it (SPEC M.1: 5 s).
pub const CUT_WITHIN: Duration = Duration::from_secs(5);

pub struct Setup {
    pub hub: TestHub,
    pub owner: String,
    pub friend: String,
    pub friend_id: String,
    pub stranger: String,
    pub server: FakePhlixServer,
}

impl Setup {
    pub async fn new() -> Self {
        Self::on(TestHub::start().await).await
    }

    /// The same stage on a hub the caller started (with its own flags or configuration).
    pub async fn on(hub: TestHub) -> Self {
        let owner = hub.register("owner", "password123").await.access_token;
        let friend = hub.register("friend", "password123").await;
        let stranger = hub.register("stranger", "password123").await.access_token;
        let mut server = FakePhlixServer::new(&hub.url(""), "Shared NAS");
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
        server.heartbeat(&[("lib-movies", "Movies")]).await;
        let setup = Self {
            hub,
            owner,
            friend: friend.access_token,
            friend_id: friend.user.id,
            stranger,
            server,
        };
        // Downloads at full speed: the owner (admin) lifts both throttles.
        let owner_id = setup.me(&setup.owner).await;
        for user in [owner_id, setup.friend_id.clone()] {
            let (status, body) = call(
                &setup.hub,
                &setup.owner,
                Method::PUT,
                &format!("/api/v1/admin/users/{user}/throttle"),
                Some(json!({"throttle_bps": 0})),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        setup
    }

    pub async fn me(&self, token: &str) -> String {
        call(&self.hub, token, Method::GET, "/api/v1/me", None)
            .await
            .1["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn sid(&self) -> String {
        self.server.server_id()
    }

    /// Shares Movies with the friend; returns the share id.
    pub async fn share(&self, extra: Value) -> String {
        let mut body = json!({"collaborator_email": "friend@example.com", "server_id": self.sid(),
            "library_id": "lib-movies", "library_name": "Movies"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, share) = call(
            &self.hub,
            &self.owner,
            Method::POST,
            "/api/v1/me/shares",
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{share}");
        share["id"].as_str().unwrap().to_owned()
    }

    pub async fn tunnel(&self) -> WsClient {
        let jwt = self.server.enrollment.clone().unwrap().enrollment_jwt;
        fake_tunnel::open(self.hub.tunnel, &self.sid(), &jwt)
            .await
            .0
    }

    pub async fn wait_relay_active(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while call(
            &self.hub,
            &self.owner,
            Method::GET,
            "/api/v1/me/servers",
            None,
        )
        .await
        .1["servers"][0]["relayActive"]
            != true
        {
            assert!(Instant::now() < deadline, "relay never became active");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn mint(&self, token: &str) -> (u16, Value) {
        call(
            &self.hub,
            token,
            Method::POST,
            &format!("/api/v1/me/servers/{}/relay-token", self.sid()),
            None,
        )
        .await
    }

    pub async fn mount_with(&self, relay_token: &str) -> Result<WsClient, (u16, String)> {
        connect(
            self.hub.client_addr,
            &format!("/client/{}", self.sid()),
            &[("Authorization", &format!("Bearer {relay_token}"))],
        )
        .await
        .map_err(|r| (r.status, r.body))
    }

    pub async fn mount(&self, token: &str) -> WsClient {
        let (status, body) = self.mint(token).await;
        assert_eq!(status, 201, "{body}");
        self.mount_with(body["token"].as_str().unwrap())
            .await
            .unwrap()
    }

    pub fn proxy(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.hub
            .http_client
            .get(
                self.hub
                    .url(&format!("/api/v1/servers/{}/proxy{path}", self.sid())),
            )
            .bearer_auth(token)
    }
}

pub fn data(payload: &[u8]) -> Frame {
    Frame::new(1, FrameType::Data, bytes::Bytes::copy_from_slice(payload)).unwrap()
}

/// Echo round trips on a mounted client until it ends: counts them, records when it ended.
pub struct Pinger {
    pub trips: Arc<AtomicU64>,
    pub ended: Arc<AtomicBool>,
    pub task: tokio::task::JoinHandle<Instant>,
}

pub fn ping_forever(mut client: WsClient) -> Pinger {
    let trips = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicBool::new(false));
    let (t, e) = (trips.clone(), ended.clone());
    let task = tokio::spawn(async move {
        let chunk = vec![0x5a; 16 * 1024];
        loop {
            if client
                .writer
                .send_parts(Opcode::Binary, &[data(&chunk).to_bytes()])
                .await
                .is_err()
            {
                break;
            }
            match client.next_frame().await {
                Ok(frame) if frame.kind == FrameType::Data => {
                    t.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        e.store(true, Ordering::Relaxed);
        Instant::now()
    });
    Pinger { trips, ended, task }
}
