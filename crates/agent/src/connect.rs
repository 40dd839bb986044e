//! `phlix-agent connect` (SPEC K): every TCP connection accepted on a local port becomes its
//! own client mount — a raw channel to the server's upstream through the hub — so `ssh -p PORT
//! localhost` or a browser on `http://localhost:PORT` reaches the home service.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use phlix_proto::frame::{DEFAULT_DECODE_CAP, Frame, FrameDecoder, FrameType, MAX_PAYLOAD};
use phlix_proto::ws::{Opcode, close_code};
use phlix_proto::ws_io::{ReadError, WsEvent, WsStream};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// How the relay token is obtained.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A relay token minted beforehand (valid one hour).
    Token(String),
    /// A hub account: the agent logs in and mints (and re-mints) relay tokens itself.
    User { username: String, password: String },
}

/// What `connect` needs.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub hub: String,
    pub server_id: String,
    pub credentials: Credentials,
    pub listen: String,
    /// A private CA to trust besides the platform's and Mozilla's roots (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// A relay token and its expiry (unix seconds; `i64::MAX` when unknown).
#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires_at: i64,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Mints relay tokens for a user, logging in again when the session has expired.
struct Minter {
    http: reqwest::Client,
    options: ConnectOptions,
    current: Option<Token>,
}

impl Minter {
    async fn token(&mut self) -> anyhow::Result<String> {
        if let Some(token) = &self.current
            && token.expires_at - now() > 60
        {
            return Ok(token.value.clone());
        }
        let Credentials::User { username, password } = &self.options.credentials else {
            // A given token is used as it is; the hub says when it has expired.
            return Ok(self
                .current
                .as_ref()
                .map(|t| t.value.clone())
                .unwrap_or_default());
        };
        let hub = &self.options.hub;
        let login: Value = self
            .http
            .post(format!("{hub}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .with_context(|| format!("cannot reach the hub at {hub}"))?
            .json()
            .await
            .context("the hub's login answer is not JSON")?;
        let Some(access) = login.get("access_token").and_then(Value::as_str) else {
            bail!(
                "login refused: {}",
                login
                    .get("message")
                    .or_else(|| login.get("error"))
                    .unwrap_or(&login)
            );
        };
        let minted: Value = self
            .http
            .post(format!(
                "{hub}/api/v1/me/servers/{}/relay-token",
                self.options.server_id
            ))
            .bearer_auth(access)
            .send()
            .await?
            .json()
            .await
            .context("the hub's relay-token answer is not JSON")?;
        let (Some(value), Some(expires_at)) = (
            minted.get("token").and_then(Value::as_str),
            minted.get("expires_at").and_then(Value::as_i64),
        ) else {
            bail!(
                "cannot mint a relay token: {}",
                minted
                    .get("code")
                    .or_else(|| minted.get("error"))
                    .unwrap_or(&minted)
            );
        };
        tracing::info!(expires_at, "relay token minted");
        self.current = Some(Token {
            value: value.to_owned(),
            expires_at,
        });
        Ok(value.to_owned())
    }
}

/// The client-mount URL, from the hub's signpost (`X-WS-Endpoint`).
async fn mount_url(http: &reqwest::Client, hub: &str, server_id: &str) -> anyhow::Result<String> {
    let response = http
        .get(format!("{hub}/client/{server_id}"))
        .send()
        .await
        .map_err(|err| {
            crate::tls::explain(
                anyhow::Error::new(err).context(format!("cannot reach the hub at {hub}")),
                hub,
            )
        })?;
    response
        .headers()
        .get("x-ws-endpoint")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .with_context(|| format!("{hub} did not name its client endpoint (is it a phlix hub?)"))
}

/// Listens until `shutdown`; each connection is served on its own task.
///
/// # Errors
/// A listen address that cannot be bound, an unreachable hub, refused credentials.
pub async fn connect(options: ConnectOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tls = crate::tls::TlsClient::new(options.ca_file.as_deref())?;
    let http = tls.http(Duration::from_secs(30))?;
    let hub = options.hub.trim_end_matches('/').to_owned();
    let url = mount_url(&http, &hub, &options.server_id).await?;
    let current = match &options.credentials {
        Credentials::Token(token) => Some(Token {
            value: token.clone(),
            expires_at: i64::MAX,
        }),
        Credentials::User { .. } => None,
    };
    let minter = std::sync::Arc::new(Mutex::new(Minter {
        http,
        options: ConnectOptions {
            hub,
            ..options.clone()
        },
        current,
    }));
    // Fail early on bad credentials rather than at the first connection.
    minter.lock().await.token().await?;
    let listener = TcpListener::bind(&options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    println!(
        "listening on {} → server {} through {url}",
        listener.local_addr()?,
        options.server_id
    );
    loop {
        let (socket, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let (url, minter, tls) = (url.clone(), minter.clone(), tls.clone());
        tokio::spawn(async move {
            let token = match minter.lock().await.token().await {
                Ok(token) => token,
                Err(err) => {
                    tracing::error!(
                        error = format!("{err:#}"),
                        "no relay token; dropping the connection"
                    );
                    return;
                }
            };
            if let Err(err) = serve(socket, &url, &token, &tls).await {
                tracing::warn!(%peer, error = format!("{err:#}"), "channel ended with an error");
            }
        });
    }
}

/// One local connection ⇄ one client mount.
async fn serve(
    mut socket: TcpStream,
    url: &str,
    token: &str,
    tls: &crate::tls::TlsClient,
) -> anyhow::Result<()> {
    let _ = socket.set_nodelay(true);
    let authorization = format!("Bearer {token}");
    let WsStream {
        mut reader,
        mut writer,
    } = crate::ws::connect(url, &[("Authorization", &authorization)], tls)
        .await
        .map_err(|err| crate::tls::explain(err.context(format!("mounting {url}")), url))?;
    let (mut read, mut write) = socket.split();
    // The hub pings an idle mount; the reading side hands the pongs to the writing side.
    let (pong_tx, mut pong_rx) = mpsc::channel::<Bytes>(4);
    let upstream = async {
        let mut buf = BytesMut::with_capacity(MAX_PAYLOAD);
        loop {
            buf.reserve(MAX_PAYLOAD);
            let mut limited = (&mut read).take(MAX_PAYLOAD as u64);
            tokio::select! {
                read = limited.read_buf(&mut buf) => {
                    if read? == 0 {
                        writer.close(close_code::NORMAL, "").await;
                        return Ok::<(), anyhow::Error>(());
                    }
                    let frame = Frame::new(0, FrameType::Data, buf.split().freeze())?;
                    writer.send_frames(&[frame]).await?;
                }
                Some(payload) = pong_rx.recv() => writer.send(Opcode::Pong, &payload).await?,
            }
        }
    };
    let downstream = async {
        let mut decoder = FrameDecoder::new(DEFAULT_DECODE_CAP);
        loop {
            let payload = match reader.next().await {
                Ok(WsEvent::Data(frame)) => frame.payload,
                Ok(WsEvent::Ping(payload)) => {
                    let _ = pong_tx.try_send(payload);
                    continue;
                }
                Ok(WsEvent::Pong) => continue,
                Ok(WsEvent::Close { .. }) | Err(ReadError::Eof) => break,
                Err(err) => return Err(anyhow::Error::new(err).context("reading the mount")),
            };
            decoder.push(&payload);
            while let Some(frame) = decoder.next_frame()? {
                match frame.kind {
                    FrameType::Data => write.write_all(&frame.payload).await?,
                    FrameType::Disconnected => {
                        tracing::info!(reason = %String::from_utf8_lossy(&frame.payload), "the hub closed the channel");
                        let _ = write.shutdown().await;
                        return Ok(());
                    }
                    FrameType::Error => {
                        tracing::warn!(payload = %String::from_utf8_lossy(&frame.payload), "hub error")
                    }
                    _ => {}
                }
            }
        }
        let _ = write.shutdown().await;
        Ok::<(), anyhow::Error>(())
    };
    tokio::select! {
        result = upstream => result,
        result = downstream => result,
    }
}
