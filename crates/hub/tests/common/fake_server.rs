//! A fake Phlix media server that does what a real one does on the HTTP side (SPEC C, D): its
//! own Ed25519 key as one JWK, camelCase claim body, polling, the stored enrollment, heartbeats
//! and renewal — always with `Accept-Phlix-Protocol: v1`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use super::status_json;

/// What the server keeps in `hub-enrollment.json`.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub enrollment_jwt: String,
    pub hub_jwks_url: String,
    pub server_id: String,
}

pub struct FakePhlixServer {
    pub hub: String,
    pub name: String,
    pub key: SigningKey,
    pub client: reqwest::Client,
    pub claim_id: Option<String>,
    pub claim_code: Option<String>,
    pub enrollment: Option<Enrollment>,
    pub uptime: i64,
}

impl FakePhlixServer {
    pub fn new(hub: &str, name: &str) -> Self {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&uuid::Uuid::new_v4().as_bytes().repeat(2));
        Self {
            hub: hub.trim_end_matches('/').to_owned(),
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
            client: reqwest::Client::new(),
            claim_id: None,
            claim_code: None,
            enrollment: None,
            uptime: 0,
        }
    }

    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes()), "kid": "server-key-1"})
    }

    pub fn claim_body(&self) -> Value {
        json!({
            "serverName": self.name,
            "version": "0.45.0",
            "publicKeysJwk": self.jwk(),
            "hostnameCandidates": ["https://nas.example.com:443", "http://192.168.1.5:8096"],
            "protocolVersion": "v1",
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.hub))
            .header("Accept-Phlix-Protocol", "v1")
            .header("Content-Type", "application/json");
        if let Some(enrollment) = &self.enrollment {
            request = request.bearer_auth(&enrollment.enrollment_jwt);
        }
        request
    }

    /// Step 1: ask for a claim code; remembers code and id.
    pub async fn request_claim(&mut self) -> (u16, Value) {
        let resp = self
            .request(reqwest::Method::POST, "/api/v1/server-claims/new")
            .json(&self.claim_body())
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        if status == 200 {
            self.claim_id = body["claimId"].as_str().map(str::to_owned);
            self.claim_code = body["claimCode"].as_str().map(str::to_owned);
        }
        (status, body)
    }

    /// Step 3: one poll; stores the enrollment when claimed.
    pub async fn poll(&mut self) -> Value {
        let path = format!(
            "/api/v1/server-claims/{}",
            self.claim_id.as_deref().unwrap()
        );
        let resp = self
            .request(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 200, "claim status is always 200: {body}");
        if body["status"] == "claimed" {
            self.enrollment = Some(Enrollment {
                enrollment_jwt: body["enrollment_jwt"].as_str().unwrap().to_owned(),
                hub_jwks_url: body["hub_jwks_url"].as_str().unwrap().to_owned(),
                server_id: body["server_id"].as_str().unwrap().to_owned(),
            });
        }
        body
    }

    pub fn server_id(&self) -> String {
        self.enrollment.as_ref().unwrap().server_id.clone()
    }

    pub fn heartbeat_body(&self, libraries: &[(&str, &str)]) -> Value {
        let libraries: Vec<Value> = libraries
            .iter()
            .map(|(id, name)| json!({"library_id": id, "library_name": name}))
            .collect();
        json!({
            "serverId": self.server_id(),
            "version": "0.45.0",
            "timestamp": phlix_hub::auth::now_unix(),
            "uptimeSeconds": self.uptime,
            "activeSessions": 0,
            "activeTranscodes": 0,
            "hostnameCandidates": ["https://nas.example.com:443"],
            "libraries": libraries,
        })
    }

    /// One heartbeat tick.
    pub async fn heartbeat(&mut self, libraries: &[(&str, &str)]) -> (u16, Value) {
        self.uptime += 60;
        let body = self.heartbeat_body(libraries);
        self.send_heartbeat(&body).await
    }

    pub async fn send_heartbeat(&self, body: &Value) -> (u16, Value) {
        let path = format!("/api/v1/servers/{}/heartbeat", self.server_id());
        let resp = self
            .request(reqwest::Method::POST, &path)
            .json(body)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    }

    /// `POST /renew`; stores the new token on success.
    pub async fn renew(&mut self) -> (u16, Value) {
        let path = format!("/api/v1/servers/{}/renew", self.server_id());
        let resp = self
            .request(reqwest::Method::POST, &path)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        if status == 200 {
            self.enrollment.as_mut().unwrap().enrollment_jwt =
                body["enrollment_jwt"].as_str().unwrap().to_owned();
        }
        (status, body)
    }

    pub async fn info(&self) -> (u16, Value) {
        let path = format!("/api/v1/servers/{}/info", self.server_id());
        status_json(
            self.request(reqwest::Method::GET, &path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A request with the stored token and the protocol header, for error-path tests.
    pub fn call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path)
    }
}

/// Verifies an EdDSA compact JWS against a JWKS document, as an outside client would: finds
/// the key by `kid`, checks `alg`, verifies the signature. Returns (header, payload).
pub fn verify_with_jwks(token: &str, jwks: &Value) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in JWKS {jwks}"));
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["crv"].as_str(),
            jwk["alg"].as_str(),
            jwk["use"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
    );
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap()
        .try_into()
        .unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.verify_strict(
        signed.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )
    .expect("signature verifies against the JWKS key");
    (header, payload)
}
