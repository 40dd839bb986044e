//! The domain layer: one module per domain, each holding the rules, validation, audit rows and
//! events of its actions as plain async functions over [`Core`]. They return
//! [`DomainError`]s, never HTTP answers; the adapters (`api`, `web`, `relay`) call them and map
//! the errors (see `crate::http::error`). This layer imports only the foundation below it
//! (`store`, `auth`, `config`, `ratelimit`).

pub mod access;
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod claims;
pub mod cluster;
pub mod console;
pub mod error;
pub mod events;
pub mod health;
pub mod heartbeats;
pub mod in_flight;
pub mod maintenance;
pub mod quotas;
pub mod relay_tokens;
pub mod requests;
pub mod servers;
pub mod settings;
pub mod shares;
pub mod tokens;
pub mod tunnels;
pub mod webhooks;

use std::sync::Arc;

pub use audit::ClientInfo;
pub use error::{ClaimFailure, DomainError, DomainResult};

use crate::auth::keys::KeyStore;
use crate::auth::password::PasswordHasherPool;
use crate::auth::session::SessionKeys;
use crate::config::Config;
use crate::ratelimit::WindowLimiter;
use crate::store::Store;
use events::EventBus;
use heartbeats::HeartbeatSink;

/// The parts that exist only once start-up has finished.
#[derive(Clone, Debug)]
pub struct Core {
    pub config: Arc<Config>,
    pub store: Store,
    pub sessions: SessionKeys,
    pub passwords: PasswordHasherPool,
    /// The Ed25519 key ring for enrollment tokens and the JWKS.
    pub keys: KeyStore,
    pub heartbeats: HeartbeatSink,
    /// Users, servers and usage as the proxy path checks them (≤ 5 s old).
    pub access: Arc<access::AccessCache>,
    /// Live events for `GET /api/v1/me/events`.
    pub events: EventBus,
    pub limits: Arc<Limits>,
    /// Tunnels and client mounts of this node.
    pub relay: tunnels::Relay,
    /// Port the tunnel listener is bound to (advertised in signposts).
    pub tunnel_port: u16,
    /// Port the client-mount listener is bound to.
    pub client_port: u16,
    /// Webhook endpoints' outbox and delivery workers.
    pub webhooks: Arc<webhooks::Webhooks>,
    /// The Radarr/Sonarr HTTP client and the availability sync's outage state.
    pub arrs: Arc<requests::Arrs>,
    /// The cached `hub.maintenance_mode` flag (SPEC Q.4).
    pub maintenance: Arc<maintenance::Maintenance>,
    /// This node among the others on one PostgreSQL (alone by default).
    pub cluster: cluster::Cluster,
}

/// Per-node rate limits (SPEC B.6).
#[derive(Debug)]
pub struct Limits {
    /// 30 heartbeats / 60 s per server.
    pub heartbeat: WindowLimiter,
    /// 120 JWKS fetches / 60 s per IP.
    pub jwks: WindowLimiter,
    /// 600 proxied requests / 60 s per user.
    pub proxy: WindowLimiter,
}

impl Limits {
    /// The SPEC's profiles, with the configured proxy limit.
    #[must_use]
    pub fn new(config: &Config) -> Self {
        Self {
            heartbeat: WindowLimiter::new(30, 60),
            jwks: WindowLimiter::new(120, 60),
            proxy: WindowLimiter::new(config.proxy_requests_per_minute, 60),
        }
    }
}

impl Core {
    /// `<public url>/.well-known/jwks.json`.
    #[must_use]
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.config.public_url)
    }

    /// `ws(s)://<ws host>:<client port>/client/<server id>` (or `--public-client-url`):
    /// where remote clients mount (B.2); `wss` when the public URL is https.
    #[must_use]
    pub fn client_ws_endpoint(&self, server_id: &str) -> String {
        self.config
            .client_endpoint(self.client_port, &phlix_common::percent_encode(server_id))
    }

    /// `ws(s)://<ws host>:<tunnel port>` (or `--public-tunnel-url`): where servers open their
    /// tunnel (B.1).
    #[must_use]
    pub fn tunnel_ws_endpoint(&self) -> String {
        self.config.tunnel_endpoint(self.tunnel_port)
    }

    /// `<public url>/api/v1/servers/<server id>/proxy`: the base of HTTP-over-relay (A.5).
    #[must_use]
    pub fn proxy_base(&self, server_id: &str) -> String {
        format!(
            "{}/api/v1/servers/{}/proxy",
            self.config.public_url,
            phlix_common::percent_encode(server_id)
        )
    }
}
