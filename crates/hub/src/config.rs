//! Configuration of `phlix-hub serve` (SPEC 0): one typed struct built from flags with
//! environment fallbacks (flag > env > default), plus the secrets resolved from the data dir.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

pub use crate::store::{DatabaseUrl, redact_url};

pub mod cluster;
pub mod edge;
pub use cluster::{ClusterArgs, ClusterConfig};
pub use edge::{Edge, EdgeArgs};

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (the default when stdout is not a terminal).
    Json,
    /// Human-readable, coloured lines (the default on a terminal).
    Pretty,
}

/// Flags of `phlix-hub serve`; every one has an environment fallback.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory for hub.db (SQLite), the hub's keys and the generated JWT secret; created if
    /// missing.
    #[arg(long, env = "HUB_DATA_DIR", default_value = "./phlix-data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://PATH` or `postgres://user:pass@host:port/db`
    /// [default: sqlite://<data-dir>/hub.db].
    #[arg(long, env = "HUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Address of the JSON API, web UI and HTTP proxy.
    #[arg(long, env = "HUB_HTTP_ADDR", default_value = "0.0.0.0:8800")]
    pub http_addr: SocketAddr,

    /// Address of the server → hub reverse tunnels (WebSocket).
    #[arg(long, env = "HUB_TUNNEL_ADDR", default_value = "0.0.0.0:8802")]
    pub tunnel_addr: SocketAddr,

    /// Address of the remote client mounts `/client/{server_id}` (WebSocket).
    #[arg(long, env = "HUB_CLIENT_ADDR", default_value = "0.0.0.0:8803")]
    pub client_addr: SocketAddr,

    /// Public base URL of the hub: `hub_base_url` in tokens and the base of every link.
    #[arg(long, env = "HUB_PUBLIC_URL", default_value = "http://localhost:8800")]
    pub public_url: String,

    /// Domain under which servers get `<subdomain>.<domain>` ingress (unset = disabled).
    #[arg(long, env = "HUB_PUBLIC_DOMAIN")]
    pub public_domain: Option<String>,

    /// TLS (certificate files or ACME) and reverse proxies (config/edge.rs).
    #[command(flatten)]
    pub edge: EdgeArgs,

    /// Log format [default: pretty on a terminal, json otherwise].
    #[arg(long, env = "HUB_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// How often the server reaper runs (marks silent servers offline, prunes old rows).
    #[arg(long, env = "HUB_REAPER_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub reaper_interval: Duration,

    /// A server without heartbeat for this long, and without an open tunnel, is offline.
    #[arg(long, env = "HUB_OFFLINE_AFTER", default_value = "180s", value_parser = parse_duration)]
    pub offline_after: Duration,

    /// Interval of the hub's HEARTBEAT frames on every tunnel.
    #[arg(long, env = "HUB_RELAY_HEARTBEAT", default_value = "30s", value_parser = parse_duration)]
    pub relay_heartbeat: Duration,

    /// A tunnel with no inbound frame for this long is closed (`timeout`).
    #[arg(long, env = "HUB_RELAY_STALE_AFTER", default_value = "90s", value_parser = parse_duration)]
    pub relay_stale_after: Duration,

    /// How long a displaced tunnel may finish its in-flight requests.
    #[arg(long, env = "HUB_RELAY_DRAIN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub relay_drain_grace: Duration,

    /// HTTP-over-relay requests allowed per user per minute (SPEC B.6: 600); 0 = unlimited.
    #[arg(long, env = "HUB_PROXY_REQUESTS_PER_MINUTE", default_value_t = 600)]
    pub proxy_requests_per_minute: u32,

    /// Name of this node in `relay_sessions.worker_node` and the cluster's node registry
    /// [default: the host name]; unique among the nodes of one database.
    #[arg(long, env = "HUB_NODE_NAME")]
    pub node_name: Option<String>,

    /// Several nodes on one PostgreSQL (config/cluster.rs).
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// A client must send a request's whole header within this time (also the time a
    /// WebSocket upgrade request may take on the tunnel and client ports).
    #[arg(long, env = "HUB_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// An API connection on which nothing is read or written for this long is closed (a
    /// stalled request body, a silent keep-alive connection).
    #[arg(long, env = "HUB_IDLE_TIMEOUT", default_value = "75s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Most connections one client address may hold open on each port; 0 = no cap.
    #[arg(long, env = "HUB_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: u32,

    /// Let webhooks reach loopback, private and link-local addresses (for a receiver on the
    /// same machine or network; off on a public hub).
    #[arg(long, env = "HUB_WEBHOOK_ALLOW_PRIVATE", default_value_t = false)]
    pub webhook_allow_private: bool,

    /// How often the database is probed for `/health` (e.g. `15s`, `500ms`).
    #[arg(long, env = "HUB_HEALTH_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub health_interval: Duration,

    /// How often approved media requests are checked in Radarr/Sonarr and marked available
    /// (e.g. `30s`, `5m`). The API keys come from HUB_RADARR_API_KEY[_FILE] and
    /// HUB_SONARR_API_KEY[_FILE] only.
    #[arg(long, env = "HUB_ARR_SYNC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub arr_sync_interval: Duration,
}

pub use phlix_common::parse_duration;

/// A secret whose `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps bytes that must never be logged.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The raw bytes, for the code that signs with it.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The resolved configuration the hub runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub http_addr: SocketAddr,
    pub tunnel_addr: SocketAddr,
    pub client_addr: SocketAddr,
    /// Without a trailing slash.
    pub public_url: String,
    pub public_domain: Option<String>,
    /// TLS, trusted proxies, advertised WebSocket URLs.
    pub edge: Edge,
    pub jwt_secret: Secret,
    pub health_interval: Duration,
    pub reaper_interval: Duration,
    pub offline_after: Duration,
    /// Host advertised in WebSocket endpoints (`HUB_WS_HOST`, else the public URL's host).
    pub ws_host: String,
    pub relay_timers: RelayTimers,
    pub node_name: String,
    /// Set when this node runs with others on one PostgreSQL.
    pub cluster: Option<ClusterConfig>,
    pub proxy_requests_per_minute: u32,
    pub connections: ConnLimits,
    /// Whether webhooks may target private addresses.
    pub webhook_allow_private: bool,
    /// Waits between webhook attempts (SPEC P.3: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h);
    /// no flag, tests shorten it.
    pub webhook_retry_schedule: Vec<Duration>,
    /// Radarr's start-up defaults and API key (SPEC O).
    pub radarr: ArrEnv,
    /// Sonarr's start-up defaults and API key (SPEC O).
    pub sonarr: ArrEnv,
    /// Interval of the media-request availability sync.
    pub arr_sync_interval: Duration,
    /// Timeout of every Radarr/Sonarr call (SPEC O: 15 s); no flag, tests shorten it.
    pub arr_timeout: Duration,
    /// Interval of the dashboard's statistics sampler (60 s); no flag, tests shorten it.
    pub stats_interval: Duration,
}

/// What the environment says about one *arr service: its API key (only ever from the
/// environment or a file) and the start-up defaults of its `enabled`/`url` settings.
#[derive(Debug, Clone, Default)]
pub struct ArrEnv {
    pub api_key: Option<Secret>,
    pub url: Option<String>,
    pub enabled: Option<bool>,
}

impl ArrEnv {
    /// Reads `HUB_<PREFIX>_API_KEY[_FILE]`, `HUB_<PREFIX>_URL` and `HUB_<PREFIX>_ENABLED`.
    ///
    /// # Errors
    /// An unreadable key file, or an `_ENABLED` value that is not a boolean.
    pub fn from_env(prefix: &str) -> anyhow::Result<Self> {
        let api_key = secret_from_env(&format!("HUB_{prefix}_API_KEY"))?
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty())
            .map(|key| Secret(key.into_bytes()));
        let url = std::env::var(format!("HUB_{prefix}_URL"))
            .ok()
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty());
        if let Some(url) = &url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("HUB_{prefix}_URL must start with http:// or https:// (got `{url}`)");
        }
        let enabled = match std::env::var(format!("HUB_{prefix}_ENABLED")) {
            Ok(v) => Some(match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                other => bail!("HUB_{prefix}_ENABLED must be true or false (got `{other}`)"),
            }),
            Err(_) => None,
        };
        Ok(Self {
            api_key,
            url,
            enabled,
        })
    }
}

/// Limits on the connections of every listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time a request's header may take to arrive (and a WebSocket upgrade request).
    pub header_read: Duration,
    /// An API connection with no byte read or written for this long is closed.
    pub idle: Duration,
    /// Most open connections per client address and port (0 = no cap).
    pub per_ip: u32,
}

/// Name of the generated HS256 secret inside the data dir.
pub const JWT_SECRET_FILE: &str = "jwt-secret";

impl Config {
    /// `https` or `http`: the scheme of the public URL (cookies' `Secure`, forwarded proto,
    /// subdomain URLs).
    #[must_use]
    pub fn public_scheme(&self) -> &'static str {
        if self.public_url.starts_with("https://") {
            "https"
        } else {
            "http"
        }
    }

    /// Builds the configuration: creates the data dir, reads or generates the JWT secret.
    ///
    /// # Errors
    /// Unusable data dir, bad database URL, bad public URL, or a JWT secret shorter than 32
    /// bytes.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let data_dir = args.data_dir.clone();
        create_private_dir(&data_dir)?;
        let database = match &args.database_url {
            Some(url) => DatabaseUrl::parse(url)?,
            None => DatabaseUrl::Sqlite(format!("sqlite://{}", data_dir.join("hub.db").display())),
        };
        let mut public_url = args.public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            bail!("--public-url must start with http:// or https:// (got `{public_url}`)");
        }
        let edge = Edge::load(&args.edge)?;
        if let Some(rest) = public_url.strip_prefix("http://").filter(|_| edge.tls_on()) {
            // The hub serves TLS itself: every link and endpoint it hands out is https/wss.
            public_url = format!("https://{rest}");
        }
        let jwt_secret = resolve_jwt_secret(&data_dir)?;
        let cluster = ClusterConfig::load(&args.cluster, database.backend() == "postgres")?;
        Ok(Self {
            cluster,
            data_dir,
            database,
            http_addr: args.http_addr,
            tunnel_addr: args.tunnel_addr,
            client_addr: args.client_addr,
            public_domain: args.public_domain.clone().filter(|d| !d.is_empty()),
            edge,
            jwt_secret,
            health_interval: args.health_interval,
            reaper_interval: args.reaper_interval,
            offline_after: args.offline_after,
            relay_timers: RelayTimers {
                heartbeat: args.relay_heartbeat,
                stale_after: args.relay_stale_after,
                drain_grace: args.relay_drain_grace,
                ..RelayTimers::default()
            },
            proxy_requests_per_minute: args.proxy_requests_per_minute,
            webhook_allow_private: args.webhook_allow_private,
            radarr: ArrEnv::from_env("RADARR")?,
            sonarr: ArrEnv::from_env("SONARR")?,
            arr_sync_interval: args.arr_sync_interval.max(Duration::from_millis(100)),
            arr_timeout: Duration::from_secs(15),
            stats_interval: Duration::from_secs(60),
            webhook_retry_schedule: [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            connections: ConnLimits {
                header_read: args.header_read_timeout,
                idle: args.idle_timeout,
                per_ip: args.max_connections_per_ip,
            },
            node_name: args
                .node_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(host_name),
            ws_host: std::env::var("HUB_WS_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| host_of(&public_url)),
            public_url,
        })
    }
}

/// This machine's host name (from `/etc/hostname`), or `phlix-hub`.
#[must_use]
pub fn host_name() -> String {
    phlix_common::host_name("phlix-hub")
}

/// The host (without port) of an `http(s)://host[:port]/…` URL.
#[must_use]
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority.to_owned(), |(h, _)| format!("{h}]"));
    }
    authority.split(':').next().unwrap_or_default().to_owned()
}

/// Reads a secret from `NAME` or from the file named by `NAME_FILE`.
///
/// # Errors
/// When the `_FILE` variable names an unreadable file.
pub fn secret_from_env(name: &str) -> anyhow::Result<Option<String>> {
    if let Ok(value) = std::env::var(name) {
        return Ok(Some(value));
    }
    let file_var = format!("{name}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {file_var}={path}"))?;
            Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
        }
        Err(_) => Ok(None),
    }
}

fn resolve_jwt_secret(data_dir: &Path) -> anyhow::Result<Secret> {
    if let Some(secret) = secret_from_env("HUB_JWT_SECRET")? {
        if secret.len() < 32 {
            bail!(
                "HUB_JWT_SECRET must be at least 32 bytes long (got {})",
                secret.len()
            );
        }
        return Ok(Secret(secret.into_bytes()));
    }
    let path = data_dir.join(JWT_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).with_context(|| {
                format!("{} is not the hex secret the hub wrote", path.display())
            })?;
            if bytes.len() < 32 {
                bail!(
                    "{} holds fewer than 32 bytes; delete it to have a new one generated",
                    path.display()
                );
            }
            Ok(Secret(bytes))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; 32];
            rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
            write_private_file(&path, hex::encode(&bytes).as_bytes())?;
            tracing::info!(path = %path.display(), "generated a new JWT secret");
            Ok(Secret(bytes))
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Creates a directory (and parents) readable only by the owner.
///
/// # Errors
/// When the directory cannot be created.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))
}

/// Writes a new file with mode 0600 (atomically: temp file, then rename).
///
/// # Errors
/// On any I/O failure.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    phlix_common::write_private_file(path, contents)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_from_urls() {
        assert_eq!(host_of("https://hub.example.com:8443/x"), "hub.example.com");
        assert_eq!(host_of("http://localhost:8800"), "localhost");
        assert_eq!(host_of("http://[::1]:8800"), "[::1]");
    }

    #[test]
    fn unknown_database_schemes_are_refused() {
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("hub.db").is_err());
        assert_eq!(
            DatabaseUrl::parse("sqlite://a.db")
                .map(|d| d.backend())
                .ok(),
            Some("sqlite")
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/d")
                .map(|d| d.backend())
                .ok(),
            Some("postgres")
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            format!("{:?}", Secret(b"abc".to_vec())),
            "Secret(<redacted>)"
        );
    }
}

/// Relay timers (SPEC B.3), configurable so tests can run them fast.
#[derive(Debug, Clone, Copy)]
pub struct RelayTimers {
    /// Hub → server HEARTBEAT interval (30 s).
    pub heartbeat: Duration,
    /// A tunnel with no inbound frame for this long is closed with `timeout` (90 s).
    pub stale_after: Duration,
    /// How long a displaced tunnel may finish its in-flight requests (10 s).
    pub drain_grace: Duration,
    /// How long a new connection may take to send its HELLO (10 s).
    pub hello_timeout: Duration,
    /// Hub → client WebSocket ping interval (30 s, SPEC L).
    pub client_ping: Duration,
    /// A client without a sign of life for this long is closed (90 s, SPEC L): nothing from it
    /// (not even a pong) and no DATA taken by its socket.
    pub client_idle: Duration,
}

impl Default for RelayTimers {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            stale_after: Duration::from_secs(90),
            drain_grace: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            client_ping: Duration::from_secs(30),
            client_idle: Duration::from_secs(90),
        }
    }
}
