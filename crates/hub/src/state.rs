//! Shared application state: everything a handler needs, passed with `with_state` (no globals).

use std::sync::{Arc, OnceLock};

use crate::auth::keys::KeyStore;
use crate::auth::password::PasswordHasherPool;
use crate::auth::session::SessionKeys;
use crate::config::Config;
use crate::events::EventBus;
use crate::health::Health;
use crate::heartbeat::HeartbeatSink;
use crate::ratelimit::WindowLimiter;
use crate::store::Store;

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
    pub access: Arc<crate::access::AccessCache>,
    /// Live events for `GET /api/v1/me/events`.
    pub events: EventBus,
    pub limits: Arc<Limits>,
    /// Tunnels and client mounts of this node.
    pub relay: crate::relay::Relay,
    /// Port the tunnel listener is bound to (advertised in signposts).
    pub tunnel_port: u16,
    /// Port the client-mount listener is bound to.
    pub client_port: u16,
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

    /// `ws://<ws host>:<client port>/client/<server id>`: where remote clients mount (B.2).
    #[must_use]
    pub fn client_ws_endpoint(&self, server_id: &str) -> String {
        format!(
            "ws://{}:{}/client/{}",
            self.config.ws_host,
            self.client_port,
            crate::api::percent_encode(server_id)
        )
    }

    /// `<public url>/api/v1/servers/<server id>/proxy`: the base of HTTP-over-relay (A.5).
    #[must_use]
    pub fn proxy_base(&self, server_id: &str) -> String {
        format!(
            "{}/api/v1/servers/{}/proxy",
            self.config.public_url,
            crate::api::percent_encode(server_id)
        )
    }
}

#[derive(Debug)]
struct Shared {
    config: Config,
    health: Health,
    core: OnceLock<Core>,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// State of a hub that is starting: `/health` answers, everything else waits for [`Self::set_ready`].
    #[must_use]
    pub fn new(config: Config, health: Health) -> Self {
        Self(Arc::new(Shared {
            config,
            health,
            core: OnceLock::new(),
        }))
    }

    /// The configuration the hub runs with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Start-up and liveness state for `/health`.
    #[must_use]
    pub fn health(&self) -> &Health {
        &self.0.health
    }

    /// Store and keys, once start-up is done.
    #[must_use]
    pub fn core(&self) -> Option<Core> {
        self.0.core.get().cloned()
    }

    /// Publishes the ready core. Called once; later calls are ignored.
    pub fn set_ready(&self, core: Core) {
        let _ = self.0.core.set(core);
    }
}
