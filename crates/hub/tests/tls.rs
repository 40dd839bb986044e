//! TLS end to end (issue #17), over real sockets on 127.0.0.1: the hub serving HTTPS/WSS from
//! a PEM pair made here with rcgen, the agent's library pairing, heartbeating and tunnelling
//! through it, a certificate renewed on disk while a tunnel stays up, a wrong CA, plaintext,
//! garbage and slow handshakes; ACME against a real Pebble; a real Caddy terminating TLS in
//! front of a plain hub with `--trusted-proxies`. Store-independent: `scripts/test` runs it on
//! SQLite only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::routing::get;
use common::TestHub;
use phlix_agent::state::DataDir;
use rcgen::{CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A test CA that issues server certificates.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Self {
            ca,
            dir: dir.to_path_buf(),
        };
        std::fs::write(pki.ca_file(), pki.ca.pem()).unwrap();
        pki
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join(format!(
            "ca-{}.pem",
            hex::encode(&self.ca.der()[self.ca.der().len() - 8..])
        ))
    }

    fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A server certificate for localhost and 127.0.0.1: (PEM chain, PEM key, DER leaf).
    fn issue(&self) -> (String, String, CertificateDer<'static>) {
        self.issue_until(time::OffsetDateTime::now_utc() + time::Duration::days(90))
    }

    /// [`Self::issue`], valid until `not_after`.
    fn issue_until(
        &self,
        not_after: time::OffsetDateTime,
    ) -> (String, String, CertificateDer<'static>) {
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    /// Writes a fresh pair to `cert.pem` / `key.pem` in the dir (atomically, as a renewal
    /// tool would) and returns the leaf.
    fn write_pair(&self) -> CertificateDer<'static> {
        self.write_pair_until(time::OffsetDateTime::now_utc() + time::Duration::days(90))
    }

    fn write_pair_until(&self, not_after: time::OffsetDateTime) -> CertificateDer<'static> {
        let (cert, key, der) = self.issue_until(not_after);
        for (name, text) in [("key.pem", key), ("cert.pem", cert)] {
            let tmp = self.dir.join(format!("{name}.tmp"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, self.dir.join(name)).unwrap();
        }
        der
    }
}

fn client_config(roots: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth(),
    )
}

/// The leaf certificate `addr` presents to a verifying client (name `name`).
async fn served_leaf(
    addr: SocketAddr,
    name: &str,
    roots: &[CertificateDer<'static>],
) -> Result<CertificateDer<'static>, std::io::Error> {
    let connector = tokio_rustls::TlsConnector::from(client_config(roots));
    let tcp = TcpStream::connect(addr).await?;
    let stream = connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await?;
    Ok(stream.get_ref().1.peer_certificates().unwrap()[0].clone())
}

fn https_client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A hub serving TLS from `pki`'s `cert.pem`/`key.pem`, checking the files every 100 ms.
async fn tls_hub(pki: &Pki, adjust: impl FnOnce(&mut phlix_hub::config::ServeArgs)) -> TestHub {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(data_dir.path()).await;
    let (cert, key) = (pki.dir.join("cert.pem"), pki.dir.join("key.pem"));
    let hub = TestHub::spawn_configured(
        data_dir,
        database_url,
        |args| {
            args.edge.tls_cert = Some(cert);
            args.edge.tls_key = Some(key);
            adjust(args);
        },
        |config| config.edge.reload_poll = Duration::from_millis(100),
    )
    .await;
    let client = https_client(&pki.ca_file());
    let url = format!("https://127.0.0.1:{}/health", hub.http.port());
    wait_until(
        "the TLS hub's /health",
        Duration::from_secs(30),
        async || {
            client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    hub
}

fn pattern(n: usize) -> impl Iterator<Item = u8> {
    (0..n).map(|i| (i % 251) as u8)
}

/// The home service: `GET /bytes/{n}` streams n pattern bytes; `GET /headers` answers the
/// forwarding headers it was sent.
async fn upstream() -> u16 {
    let app = Router::new()
        .route(
            "/bytes/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    let length = [(axum::http::header::CONTENT_LENGTH, n.to_string())];
                    let chunks = (0..n).step_by(65_536).map(move |start| {
                        let end = (start + 65_536).min(n);
                        Ok::<_, std::io::Error>(Bytes::from(
                            (start..end).map(|i| (i % 251) as u8).collect::<Vec<u8>>(),
                        ))
                    });
                    (
                        length,
                        Body::from_stream(futures_util::stream::iter(chunks)),
                    )
                },
            ),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let get = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                axum::Json(json!({
                    "x-forwarded-for": get("x-forwarded-for"),
                    "x-forwarded-proto": get("x-forwarded-proto"),
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// An owner account; returns its access token.
async fn register(client: &reqwest::Client, base: &str, name: &str) -> String {
    let body: Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "password123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn my_server(client: &reqwest::Client, base: &str, token: &str) -> Value {
    let body: Value = client
        .get(format!("{base}/api/v1/me/servers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["servers"][0].clone()
}

/// A paired, running agent (the library, in this process).
struct Agent {
    server_id: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Agent {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Pairs an agent with the hub at `base` (trusting `ca`), the owner `token` redeeming the
/// code, and runs it against the upstream until its tunnel is up.
async fn paired_agent(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    ca: Option<PathBuf>,
    upstream_port: u16,
) -> Agent {
    let (data, dir, enrollment) =
        common::pairing::pair_through_claim(base, "tls-e2e", ca.clone(), async |code| {
            let resp = client
                .post(format!("{base}/api/v1/server-claims/claim"))
                .header("Accept-Phlix-Protocol", "v1")
                .bearer_auth(token)
                .json(&json!({"claim_code": code}))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            assert_eq!(status, 200, "{}", resp.text().await.unwrap());
        })
        .await;
    let shutdown = CancellationToken::new();
    let options = phlix_agent::run::RunOptions {
        upstream: format!("127.0.0.1:{upstream_port}"),
        heartbeat_interval: Duration::from_millis(500),
        reconnect_base: Duration::from_millis(200),
        tunnel_url: None,
        ca_file: ca,
    };
    let task = tokio::spawn(phlix_agent::run::run(data, options, shutdown.clone()));
    wait_until("the tunnel", Duration::from_secs(20), async || {
        my_server(client, base, token).await["relayActive"] == true
    })
    .await;
    // Every path of the test upstream may be relayed.
    let resp = client
        .put(format!(
            "{base}/api/v1/me/servers/{}/proxy-policy",
            enrollment.server_id
        ))
        .bearer_auth(token)
        .json(&json!({"policy": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    Agent {
        server_id: enrollment.server_id,
        shutdown,
        task,
        _dir: dir,
    }
}

/// Fetches `size` pattern bytes through the relay's proxy route and checks every byte.
async fn fetch_through_relay(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    server: &str,
    size: usize,
) {
    let mut resp = client
        .get(format!("{base}/api/v1/servers/{server}/proxy/bytes/{size}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut expected = pattern(size);
    let mut received = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        for byte in chunk.iter() {
            assert_eq!(Some(*byte), expected.next(), "byte {received}");
            received += 1;
        }
    }
    assert_eq!(received, size);
}

/// Reads what the peer sends until it closes (or `within` passes: `None`).
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| got)
}

/// Reads an HTTP/1.1 200 answer with a body of `size` bytes from a raw channel (which stays
/// open after the upstream's close) and returns the body.
async fn read_http_body(stream: &mut TcpStream, size: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n")
                && got.len() >= end + 4 + size
            {
                assert!(got.starts_with(b"HTTP/1.1 200"));
                return got.split_off(end + 4);
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the channel closed after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the answer within 60 s")
}

/// The relay sessions of `server` (newest first): (opened_at, still open).
async fn sessions(hub: &TestHub, server: &str) -> Vec<(i64, bool)> {
    let store = hub.store().await;
    let rows = store.relay_sessions_of_server(server, 10).await.unwrap();
    store.close().await;
    rows.iter()
        .map(|r| (r.opened_at, r.closed_at.is_none()))
        .collect()
}

async fn metric(client: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_pairs_heartbeats_and_tunnels_over_https_and_wss() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "hub");
    pki.write_pair();
    let hub = tls_hub(&pki, |_| {}).await;
    let client = https_client(&pki.ca_file());
    let base = format!("https://127.0.0.1:{}", hub.http.port());
    let token = register(&client, &base, "owner").await;
    let upstream_port = upstream().await;
    let agent = paired_agent(&client, &base, &token, Some(pki.ca_file()), upstream_port).await;

    // Heartbeats over https: the server is online with a recent heartbeat.
    wait_until("a heartbeat", Duration::from_secs(10), async || {
        my_server(&client, &base, &token).await["status"] == "online"
    })
    .await;
    // The signposts advertise wss:// on the bound ports (the agent found its tunnel so).
    let resp = client
        .get(format!("{base}/client/{}", agent.server_id))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-ws-endpoint"].to_str().unwrap(),
        format!(
            "wss://127.0.0.1:{}/client/{}",
            hub.client_addr.port(),
            agent.server_id
        )
    );
    // HTTP/2 is offered on the API port (ALPN).
    let h2 = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(pki.ca_file()).unwrap()).unwrap(),
        ])
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = h2.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);

    // 10 MB through HTTP-over-relay (https in, wss tunnel).
    fetch_through_relay(&client, &base, &token, &agent.server_id, 10 * 1024 * 1024).await;

    // 10 MB through a raw channel: `connect` mounts over wss:// with the same CA.
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let connect_stop = CancellationToken::new();
    let connect = tokio::spawn(phlix_agent::connect::connect(
        phlix_agent::connect::ConnectOptions {
            hub: base.clone(),
            server_id: agent.server_id.clone(),
            credentials: phlix_agent::connect::Credentials::User {
                username: "owner".into(),
                password: "password123".into(),
            },
            listen: listen.to_string(),
            ca_file: Some(pki.ca_file()),
        },
        connect_stop.clone(),
    ));
    let mut local = None;
    wait_until("connect's listener", Duration::from_secs(10), async || {
        local = TcpStream::connect(listen).await.ok();
        local.is_some()
    })
    .await;
    let mut local = local.unwrap();
    // Client mounts are paced by the user's throttle (3 Mbit/s by default): 1 MB.
    let size = 1024 * 1024;
    local
        .write_all(
            format!("GET /bytes/{size} HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let body = read_http_body(&mut local, size).await;
    assert!(body.into_iter().eq(pattern(size)));
    connect_stop.cancel();
    connect.await.unwrap().unwrap();

    agent.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_reaches_new_connections_while_the_tunnel_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "hub");
    let first = pki.write_pair();
    let hub = tls_hub(&pki, |_| {}).await;
    let client = https_client(&pki.ca_file());
    let base = format!("https://127.0.0.1:{}", hub.http.port());
    let token = register(&client, &base, "owner").await;
    let agent = paired_agent(
        &client,
        &base,
        &token,
        Some(pki.ca_file()),
        upstream().await,
    )
    .await;
    let before = sessions(&hub, &agent.server_id).await;
    assert_eq!(before.len(), 1);
    let ca = [pki.ca_der()];
    for addr in [hub.http, hub.tunnel, hub.client_addr] {
        assert_eq!(served_leaf(addr, "localhost", &ca).await.unwrap(), first);
    }

    // A renewal tool rewrites both files; the watcher installs the new pair.
    let second = pki.write_pair();
    assert_ne!(first, second);
    wait_until("the new certificate", Duration::from_secs(10), async || {
        served_leaf(hub.http, "localhost", &ca).await.unwrap() == second
    })
    .await;
    for addr in [hub.tunnel, hub.client_addr] {
        assert_eq!(served_leaf(addr, "localhost", &ca).await.unwrap(), second);
    }
    // The tunnel opened before the reload is the one still serving: no reconnect happened.
    fetch_through_relay(&client, &base, &token, &agent.server_id, 1024 * 1024).await;
    assert_eq!(sessions(&hub, &agent.server_id).await, before);
    assert_eq!(metric(&client, &base, "phlix_relay_tunnels_open").await, 1);
    assert!(metric(&client, &base, "phlix_tls_certificate_reloads_total").await >= 1);

    // A broken rewrite (a key of another certificate) keeps the current certificate.
    let (_, other_key, _) = pki.issue();
    std::fs::write(pki.dir.join("key.pem"), other_key).unwrap();
    wait_until("the refused reload", Duration::from_secs(10), async || {
        metric(
            &client,
            &base,
            "phlix_tls_certificate_reload_failures_total",
        )
        .await
            >= 1
    })
    .await;
    assert_eq!(
        served_leaf(hub.http, "localhost", &ca).await.unwrap(),
        second
    );

    agent.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_certificate_from_an_unknown_ca_is_refused_with_the_host_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "hub");
    pki.write_pair();
    let hub = tls_hub(&pki, |_| {}).await;
    let base = format!("https://127.0.0.1:{}", hub.http.port());
    std::fs::create_dir(dir.path().join("stranger")).unwrap();
    let stranger = Pki::new(&dir.path().join("stranger"), "stranger");

    // pair: without the hub's CA, and with another CA.
    for ca in [None, Some(stranger.ca_file())] {
        let agent_dir = tempfile::tempdir().unwrap();
        let err = phlix_agent::pair::pair_with(
            &DataDir::open(agent_dir.path()).unwrap(),
            &phlix_agent::pair::PairOptions {
                hub: base.clone(),
                name: "x".into(),
                poll_interval: Duration::from_millis(200),
                ca_file: ca,
            },
            |_, _, _| panic!("no claim code without trust"),
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.starts_with(&format!("cannot reach the hub at {base}: its certificate is signed by a CA this agent does not trust")),
            "{text}"
        );
    }
    // connect: the same sentence, naming the host.
    let err = phlix_agent::connect::connect(
        phlix_agent::connect::ConnectOptions {
            hub: base.clone(),
            server_id: "s".into(),
            credentials: phlix_agent::connect::Credentials::Token("t".into()),
            listen: "127.0.0.1:0".into(),
            ca_file: None,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.starts_with("TLS: cannot trust 127.0.0.1: its certificate is signed by a CA"),
        "{text}"
    );
    // run: the tunnel refuses the hub too (the override skips the signpost).
    let agent_dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(agent_dir.path()).unwrap();
    data.save_enrollment(&phlix_agent::state::Enrollment {
        enrollment_jwt: "x.y.z".into(),
        hub_jwks_url: format!("{base}/.well-known/jwks.json"),
        server_id: "s".into(),
        hub_base_url: base.clone(),
        enrolled_at: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap();
    // The agent's state file records what the tunnel loop saw; the log line is the operator's.
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(phlix_agent::run::run(
        data.clone(),
        phlix_agent::run::RunOptions {
            upstream: "127.0.0.1:9".into(),
            heartbeat_interval: Duration::from_secs(60),
            reconnect_base: Duration::from_secs(60),
            tunnel_url: Some(format!("wss://127.0.0.1:{}", hub.tunnel.port())),
            ca_file: None,
        },
        shutdown.clone(),
    ));
    wait_until("the refused tunnel", Duration::from_secs(10), async || {
        data.run_state().is_some_and(|s| s.tunnel == "disconnected")
    })
    .await;
    shutdown.cancel();
    run.await.unwrap().unwrap();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_garbage_and_slow_handshakes_are_closed_and_the_listeners_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "hub");
    pki.write_pair();
    let hub = tls_hub(&pki, |args| {
        args.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let client = https_client(&pki.ca_file());
    let base = format!("https://127.0.0.1:{}", hub.http.port());
    for addr in [hub.http, hub.tunnel, hub.client_addr] {
        // Plain HTTP: a 400 that names the fix, then a close.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut tcp, Duration::from_secs(5))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 400"), "{addr}: {text}");
        assert!(text.contains("\"code\":\"tls_required\""), "{text}");

        // Garbage instead of a ClientHello: closed at once, nothing sent.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&[0x00, 0xff, 0x13, 0x37, 0x42, 0x00, 0x01])
            .await
            .unwrap();
        let answer = read_to_close(&mut tcp, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(answer.is_empty(), "{addr}: {answer:?}");

        // A handshake record that is not a ClientHello: a TLS alert at most, then a close.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00])
            .await
            .unwrap();
        let answer = read_to_close(&mut tcp, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            answer.len() <= 7 && answer.first().is_none_or(|b| *b == 0x15),
            "{answer:?}"
        );

        // A handshake that starts and stalls: closed by the 1 s header-read timeout.
        let started = Instant::now();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .unwrap();
        assert!(
            read_to_close(&mut tcp, Duration::from_secs(5))
                .await
                .is_some(),
            "{addr}: a stalled handshake stayed open"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );

        // A client that says nothing at all is closed by the same timeout.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        assert!(
            read_to_close(&mut tcp, Duration::from_secs(5))
                .await
                .is_some()
        );
    }
    // The hub still serves, and counted what it refused.
    let resp = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(metric(&client, &base, "phlix_tls_handshake_failures_total").await >= 15);
    assert!(
        metric(
            &client,
            &base,
            "phlix_connections_timed_out_total{listener=\"tunnel\"}"
        )
        .await
            >= 2
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_about_to_expire_degrades_health_until_it_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "hub");
    pki.write_pair();
    let hub = tls_hub(&pki, |_| {}).await;
    let client = https_client(&pki.ca_file());
    let base = format!("https://127.0.0.1:{}", hub.http.port());
    pki.write_pair_until(time::OffsetDateTime::now_utc() + time::Duration::days(3));
    let mut body = Value::Null;
    wait_until(
        "the degraded /health",
        Duration::from_secs(10),
        async || {
            let resp = client.get(format!("{base}/health")).send().await.unwrap();
            let status = resp.status();
            body = resp.json().await.unwrap();
            status == 503
        },
    )
    .await;
    assert_eq!(body["status"], "degraded");
    let issue = body["issues"][0].as_str().unwrap();
    assert!(
        issue.starts_with("the TLS certificate expires in "),
        "{issue}"
    );
    let expiry = metric(&client, &base, "phlix_tls_certificate_not_after_seconds").await;
    let left = expiry as i64 - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((2 * 86_400..4 * 86_400).contains(&left), "{left}");
    pki.write_pair();
    wait_until("/health ok again", Duration::from_secs(10), async || {
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn a_missing_or_mismatched_pair_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "hub");
    pki.write_pair();
    let (_, other_key, _) = pki.issue();
    std::fs::write(dir.path().join("other-key.pem"), other_key).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not pem").unwrap();
    let cert = dir.path().join("cert.pem");
    let cases = [
        (
            dir.path().join("missing.pem"),
            dir.path().join("key.pem"),
            "cannot read the TLS certificate",
        ),
        (
            cert.clone(),
            dir.path().join("junk.pem"),
            "holds no PEM private key",
        ),
        (
            dir.path().join("junk.pem"),
            dir.path().join("key.pem"),
            "holds no PEM CERTIFICATE block",
        ),
        (
            cert.clone(),
            dir.path().join("other-key.pem"),
            "does not belong to the certificate",
        ),
    ];
    for (cert, key, expected) in cases {
        let data = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_phlix-hub"))
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--tunnel-addr",
                "127.0.0.1:0",
            ])
            .args(["--client-addr", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env("HUB_LOG_FORMAT", "json")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        // Never the key material.
        assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    }
    // A certificate without its key is refused before anything starts.
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_phlix-hub"))
        .args(["serve", "--data-dir"])
        .arg(data.path())
        .arg("--tls-cert")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-cert needs --tls-key"));
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills a child process when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_in_front_terminates_tls_and_the_client_address_comes_through_trusted_proxies() {
    if !have("caddy") {
        eprintln!("SKIPPED: caddy is not installed (scripts/test installs the Debian package)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "proxy");
    pki.write_pair();
    let (api, tunnel, client_port) = (free_port(), free_port(), free_port());
    let base = format!("https://localhost:{api}");
    // A plain hub behind Caddy: public URL and advertised WebSocket URLs are Caddy's.
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(data_dir.path()).await;
    let hub = TestHub::spawn_configured(
        data_dir,
        database_url,
        |args| {
            args.public_url = base.clone();
            args.edge.trusted_proxies = vec!["127.0.0.1".into()];
            args.edge.public_tunnel_url = Some(format!("wss://localhost:{tunnel}"));
            args.edge.public_client_url = Some(format!("wss://localhost:{client_port}"));
        },
        |_| {},
    )
    .await;
    hub.wait_ready().await;
    let caddyfile = dir.path().join("Caddyfile");
    let site = |port: u16, upstream: SocketAddr| {
        format!(
            "https://localhost:{port} {{\n\tbind 127.0.0.1\n\ttls {cert} {key}\n\treverse_proxy {upstream}\n}}\n",
            cert = pki.dir.join("cert.pem").display(),
            key = pki.dir.join("key.pem").display(),
        )
    };
    std::fs::write(
        &caddyfile,
        format!(
            "{{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system {}\n}}\n{}{}{}",
            dir.path().join("caddy-data").display(),
            site(api, hub.http),
            site(tunnel, hub.tunnel),
            site(client_port, hub.client_addr),
        ),
    )
    .unwrap();
    let _caddy = Child(
        std::process::Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("xdg-data"))
            .env("XDG_CONFIG_HOME", dir.path().join("xdg-config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("caddy.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let caddy_log = dir.path().join("caddy.log");
    // The client comes from 127.0.0.2, Caddy from 127.0.0.1.
    let pem = std::fs::read(pki.ca_file()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = client.get(format!("{base}/health")).send().await;
        if health.as_ref().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Caddy did not proxy /health: {health:?}\n{}",
            std::fs::read_to_string(&caddy_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = register(&client, &base, "owner").await;
    let agent = paired_agent(
        &client,
        &base,
        &token,
        Some(pki.ca_file()),
        upstream().await,
    )
    .await;
    // The signposts name Caddy's ports.
    let resp = client
        .get(format!("{base}/client/{}", agent.server_id))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-ws-endpoint"].to_str().unwrap(),
        format!("wss://localhost:{client_port}/client/{}", agent.server_id)
    );
    fetch_through_relay(&client, &base, &token, &agent.server_id, 4 * 1024 * 1024).await;

    // The home server hears of the client's address and scheme, not Caddy's.
    let seen: Value = client
        .get(format!(
            "{base}/api/v1/servers/{}/proxy/headers",
            agent.server_id
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["x-forwarded-for"], "127.0.0.2");
    assert_eq!(seen["x-forwarded-proto"], "https");
    // The audit log too.
    let store = hub.store().await;
    let rows = store.recent_audit(Some("auth.register"), 5).await.unwrap();
    assert_eq!(rows[0].ip_address.as_deref(), Some("127.0.0.2"));
    // A client talking to the hub directly cannot claim an address.
    let direct = reqwest::Client::builder()
        .local_address(Some("127.0.0.3".parse().unwrap()))
        .build()
        .unwrap();
    let resp = direct
        .post(format!("http://{}/api/v1/auth/login", hub.http))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"username": "owner", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let rows = store
        .recent_audit(Some("auth.login.failure"), 5)
        .await
        .unwrap();
    assert_eq!(rows[0].ip_address.as_deref(), Some("127.0.0.3"));
    store.close().await;

    // `connect` through Caddy's client port: a raw channel end to end.
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let stop = CancellationToken::new();
    let connect = tokio::spawn(phlix_agent::connect::connect(
        phlix_agent::connect::ConnectOptions {
            hub: base.clone(),
            server_id: agent.server_id.clone(),
            credentials: phlix_agent::connect::Credentials::User {
                username: "owner".into(),
                password: "password123".into(),
            },
            listen: listen.to_string(),
            ca_file: Some(pki.ca_file()),
        },
        stop.clone(),
    ));
    let mut local = None;
    wait_until("connect's listener", Duration::from_secs(10), async || {
        local = TcpStream::connect(listen).await.ok();
        local.is_some()
    })
    .await;
    let mut local = local.unwrap();
    local
        .write_all(b"GET /bytes/100000 HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let body = read_http_body(&mut local, 100_000).await;
    assert!(body.into_iter().eq(pattern(100_000)));
    stop.cancel();
    connect.await.unwrap().unwrap();
    agent.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_obtains_a_certificate_from_pebble_and_a_forced_renewal_swaps_it_live() {
    if !have("pebble")
        && std::process::Command::new("pebble")
            .arg("-h")
            .output()
            .is_err()
    {
        eprintln!("SKIPPED: pebble is not installed (scripts/test installs the Debian package)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Pebble's own listener certificate, from a CA the hub is told to trust (--acme-ca-file).
    let pki = Pki::new(dir.path(), "pebble-listener");
    let (cert, key, _) = pki.issue();
    std::fs::write(dir.path().join("pebble-cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("pebble-key.pem"), key).unwrap();
    let (acme_port, management_port) = (free_port(), free_port());
    let config = json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{management_port}"),
        "certificate": dir.path().join("pebble-cert.pem"),
        "privateKey": dir.path().join("pebble-key.pem"),
        "httpPort": free_port(),
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
    let pebble = Child(
        std::process::Command::new("pebble")
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .env("PEBBLE_VA_ALWAYS_VALID", "1")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::fs::File::create(dir.path().join("pebble.log")).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let to_pebble = https_client(&pki.ca_file());
    let directory = format!("https://127.0.0.1:{acme_port}/dir");
    wait_until("Pebble", Duration::from_secs(20), async || {
        to_pebble
            .get(&directory)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let root_pem = to_pebble
        .get(format!("https://127.0.0.1:{management_port}/roots/0"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let root = CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap();

    // The hub binary, with ACME for hub.example.com.
    let data = tempfile::tempdir().unwrap();
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let hub_log = dir.path().join("hub.log");
    let hub = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_phlix-hub"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data.path())
            .args(["--http-addr", &http.to_string()])
            .args(["--tunnel-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--client-addr", &format!("127.0.0.1:{}", free_port())])
            .args([
                "--public-url",
                &format!("https://hub.example.com:{}", http.port()),
            ])
            .args([
                "--acme-domain",
                "hub.example.com",
                "--acme-email",
                "ops@example.com",
            ])
            .args(["--acme-directory", &directory])
            .arg("--acme-ca-file")
            .arg(pki.ca_file())
            .env("HUB_LOG_FORMAT", "json")
            .stdout(std::fs::File::create(&hub_log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let roots = [root.clone()];
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.is_none() {
        first = served_leaf(http, "hub.example.com", &roots).await.ok();
        assert!(
            Instant::now() < deadline,
            "no Pebble certificate within 60 s:\n{}",
            std::fs::read_to_string(&hub_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = first.unwrap();
    // A client verifying with Pebble's root reaches the API over HTTPS (and HTTP/2).
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root_pem.as_bytes()).unwrap()])
        .resolve("hub.example.com", http)
        .build()
        .unwrap();
    let health = format!("https://hub.example.com:{}/health", http.port());
    wait_until(
        "/health over the ACME certificate",
        Duration::from_secs(20),
        async || {
            client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    // Account key and certificate are stored for the owner only.
    #[cfg(unix)]
    for name in ["account.json", "cert.pem", "key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("acme").join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }

    // SIGHUP forces a renewal; new connections get the new certificate.
    let status = std::process::Command::new("kill")
        .args(["-HUP", &hub.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(
        "the renewed certificate",
        Duration::from_secs(60),
        async || {
            served_leaf(http, "hub.example.com", &roots)
                .await
                .is_ok_and(|leaf| leaf != first)
        },
    )
    .await;
    let resp = client.get(&health).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let second = served_leaf(http, "hub.example.com", &roots).await.unwrap();
    let log = std::fs::read_to_string(&hub_log).unwrap();
    assert_eq!(
        log.matches("ACME certificate installed").count(),
        2,
        "{log}"
    );

    // The CA goes away: a forced renewal fails, is logged and counted, and the current
    // certificate keeps being served.
    drop(pebble);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &hub.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the failed renewal", Duration::from_secs(30), async || {
        std::fs::read_to_string(&hub_log)
            .unwrap()
            .contains("ACME certificate request failed")
    })
    .await;
    assert_eq!(
        served_leaf(http, "hub.example.com", &roots).await.unwrap(),
        second
    );
    let metrics = client
        .get(format!("https://hub.example.com:{}/metrics", http.port()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("phlix_acme_failures_total 1"), "{metrics}");
    // Far from expiry, a failed renewal does not degrade the hub.
    assert_eq!(client.get(&health).send().await.unwrap().status(), 200);
    let log = std::fs::read_to_string(&hub_log).unwrap();
    assert!(!log.contains("PRIVATE KEY"));
    drop(hub);
}

/// The hub chooses the cipher (AES-128-GCM first, BENCHMARKS.md "TLS against plain"), even
/// for a client that lists AES-256-GCM first, as rustls' defaults do; a client offering only
/// AES-256-GCM still gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_picks_aes_128_gcm_on_every_listener() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "hub");
    pki.write_pair();
    let hub = tls_hub(&pki, |_| {}).await;
    let ca = [pki.ca_der()];
    let negotiated = async |addr: SocketAddr, config: Arc<rustls::ClientConfig>| {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        stream
            .get_ref()
            .1
            .negotiated_cipher_suite()
            .unwrap()
            .suite()
    };
    let default = client_config(&ca);
    assert_eq!(
        rustls::crypto::aws_lc_rs::default_provider().cipher_suites[0].suite(),
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
        "the client prefers AES-256"
    );
    for addr in [hub.http, hub.tunnel, hub.client_addr] {
        assert_eq!(
            negotiated(addr, default.clone()).await,
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
    }
    let mut only_256 = rustls::crypto::aws_lc_rs::default_provider();
    only_256
        .cipher_suites
        .retain(|s| s.suite() == rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
    let mut store = rustls::RootCertStore::empty();
    store.add(ca[0].clone()).unwrap();
    let only_256 = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(only_256))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth(),
    );
    assert_eq!(
        negotiated(hub.http, only_256).await,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
    );
}
