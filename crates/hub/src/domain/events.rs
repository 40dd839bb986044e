//! Live events (SPEC J.4): what changes about a server, published once by whoever changes it
//! (heartbeat writer, reaper, tunnel) and fanned out to every open `GET /api/v1/me/events`
//! stream of its owner.
//!
//! The bus is a bounded `broadcast` channel of this node: publishing never blocks and a
//! subscriber that falls behind skips what it missed (its page then resynchronises itself).
//! In a cluster every event also goes to the other nodes (`domain::cluster`, LISTEN/NOTIFY),
//! whose streams see it within a moment; webhooks are queued once, by the publishing node.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts to miss some.
pub const BUS_CAPACITY: usize = 1024;

/// The event names of SPEC J.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ServerOnline,
    ServerOffline,
    ServerHeartbeat,
    RelayOpened,
    RelayClosed,
    /// Ours: the user's account was locked after failed sign-ins.
    AccountLocked,
    /// The events named by their domain: sharing and invites (`share.*`, `invite.*`),
    /// `server.claimed`, `server.removed`, `user.created`, `webhook.test` (SPEC P.2).
    Named(&'static str),
}

/// Every name of [`EventKind::Named`] seen on this node, kept once each (events from other
/// nodes arrive with their name as text).
static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

impl EventKind {
    /// The kind named `name` (an event from another node); `None` for a name no hub uses.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "server.online" => Self::ServerOnline,
            "server.offline" => Self::ServerOffline,
            "server.heartbeat" => Self::ServerHeartbeat,
            "relay.opened" => Self::RelayOpened,
            "relay.closed" => Self::RelayClosed,
            "auth.account_locked" => Self::AccountLocked,
            other => {
                let plausible = !other.is_empty()
                    && other.len() <= 64
                    && other.contains('.')
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
                if !plausible {
                    return None;
                }
                let mut names = NAMES
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(known) = names.iter().find(|n| **n == other) {
                    return Some(Self::Named(known));
                }
                // Bounded: only names the hub's code publishes reach here in practice; the
                // cap keeps a misbehaving peer from growing it.
                if names.len() >= 256 {
                    return None;
                }
                let leaked: &'static str = Box::leak(other.to_owned().into_boxed_str());
                names.push(leaked);
                Self::Named(leaked)
            }
        })
    }

    /// The SSE `event:` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ServerOnline => "server.online",
            Self::ServerOffline => "server.offline",
            Self::ServerHeartbeat => "server.heartbeat",
            Self::RelayOpened => "relay.opened",
            Self::RelayClosed => "relay.closed",
            Self::AccountLocked => "auth.account_locked",
            Self::Named(name) => name,
        }
    }
}

/// One event: who may see it and its JSON `data:` line, serialised once for every subscriber.
#[derive(Debug, Clone)]
pub struct HubEvent {
    pub kind: EventKind,
    /// The owner of the server; this user's streams receive it.
    pub owner_id: String,
    /// Other users whose streams receive it (a share's collaborator).
    pub also: Vec<String>,
    pub server_id: String,
    pub data: String,
    /// The resource as the API shows it, for webhook deliveries (SPEC P.3), when the live
    /// `data` is not that.
    pub resource: Option<Value>,
    /// Every administrator's stream receives it too (media requests awaiting a decision).
    pub admins: bool,
}

impl HubEvent {
    fn new(kind: EventKind, owner_id: &str, server_id: &str, data: &Value) -> Self {
        Self {
            kind,
            owner_id: owner_id.to_owned(),
            also: Vec::new(),
            resource: None,
            admins: false,
            server_id: server_id.to_owned(),
            data: data.to_string(),
        }
    }

    /// `server.online` / `server.offline`: `{"serverId","status","lastSeenAt"}`.
    #[must_use]
    pub fn status(
        owner_id: &str,
        server_id: &str,
        online: bool,
        last_seen_at: Option<i64>,
    ) -> Self {
        let (kind, status) = if online {
            (EventKind::ServerOnline, "online")
        } else {
            (EventKind::ServerOffline, "offline")
        };
        let data = json!({"serverId": server_id, "status": status, "lastSeenAt": last_seen_at});
        Self::new(kind, owner_id, server_id, &data)
    }

    /// `server.heartbeat`: `{"serverId","lastSeenAt","version","activeSessions",
    /// "libraryCount"?,"hostMetrics"?}`.
    #[must_use]
    pub fn heartbeat(
        owner_id: &str,
        server_id: &str,
        last_seen_at: i64,
        version: &str,
        active_sessions: i64,
        library_count: Option<usize>,
        host_metrics: Option<&str>,
    ) -> Self {
        let mut data = json!({
            "serverId": server_id,
            "lastSeenAt": last_seen_at,
            "version": version,
            "activeSessions": active_sessions,
        });
        if let Some(count) = library_count {
            data["libraryCount"] = json!(count);
        }
        if let Some(metrics) = host_metrics.and_then(|m| serde_json::from_str::<Value>(m).ok()) {
            data["hostMetrics"] = metrics;
        }
        Self::new(EventKind::ServerHeartbeat, owner_id, server_id, &data)
    }

    /// Whether this event is about a server's state (online, heartbeat, relay), which its
    /// collaborators see too (SPEC M.1).
    #[must_use]
    pub fn is_server_state(&self) -> bool {
        matches!(
            self.kind,
            EventKind::ServerOnline
                | EventKind::ServerOffline
                | EventKind::ServerHeartbeat
                | EventKind::RelayOpened
                | EventKind::RelayClosed
        )
    }

    /// Whether `user_id` is a direct recipient (the owner or one of `also`).
    #[must_use]
    pub fn is_for(&self, user_id: &str) -> bool {
        self.owner_id == user_id || self.also.iter().any(|u| u == user_id)
    }

    /// A sharing event (`share.*`, `invite.*`) to the users of `audience` (the first is the
    /// owner).
    #[must_use]
    pub fn sharing(name: &'static str, audience: &[&str], server_id: &str, data: &Value) -> Self {
        let mut event = Self::new(
            EventKind::Named(name),
            audience.first().copied().unwrap_or_default(),
            server_id,
            data,
        );
        event.also = audience.iter().skip(1).map(|u| (*u).to_owned()).collect();
        event
    }

    /// An event named by its domain (`server.claimed`, `user.created`, …) for `owner_id`, with
    /// `resource` as its webhook data and its live data.
    #[must_use]
    pub fn named(name: &'static str, owner_id: &str, server_id: &str, resource: Value) -> Self {
        let mut event = Self::new(EventKind::Named(name), owner_id, server_id, &resource);
        event.resource = Some(resource);
        event
    }

    /// Sends this event to every administrator's stream as well.
    #[must_use]
    pub fn to_admins(mut self) -> Self {
        self.admins = true;
        self
    }

    /// Sets the webhook resource of this event.
    #[must_use]
    pub fn with_resource(mut self, resource: Value) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Whether this is a sharing event (`share.*`, `invite.*`).
    #[must_use]
    pub fn is_sharing(&self) -> bool {
        let name = self.kind.name();
        name.starts_with("share.") || name.starts_with("invite.")
    }

    /// `auth.account_locked` (ours), to the user themself: `{"userId","failures","lockedUntil"}`.
    #[must_use]
    pub fn account_locked(user_id: &str, failures: i64, locked_until: i64) -> Self {
        let data = json!({"userId": user_id, "failures": failures, "lockedUntil": locked_until});
        Self::new(EventKind::AccountLocked, user_id, "", &data)
    }

    /// `relay.opened` / `relay.closed`: `{"serverId","relayActive"}`.
    #[must_use]
    pub fn relay(owner_id: &str, server_id: &str, active: bool) -> Self {
        let kind = if active {
            EventKind::RelayOpened
        } else {
            EventKind::RelayClosed
        };
        let data = json!({"serverId": server_id, "relayActive": active});
        Self::new(kind, owner_id, server_id, &data)
    }
}

/// The node's event bus. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<HubEvent>>,
    outbox: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Arc<HubEvent>>>>,
    /// The other nodes of a cluster (their live streams see this node's events).
    peers: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Arc<HubEvent>>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with [`BUS_CAPACITY`] slots.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(BUS_CAPACITY).0,
            outbox: Arc::default(),
            peers: Arc::default(),
        }
    }

    /// Publishes an event to the live streams (dropped at once without subscribers) and to
    /// the webhook outbox, when one is attached (it never drops an event).
    pub fn publish(&self, event: HubEvent) {
        let event = Arc::new(event);
        if let Some(outbox) = self.outbox.get() {
            let _ = outbox.send(Arc::clone(&event));
        }
        if let Some(peers) = self.peers.get() {
            let _ = peers.send(Arc::clone(&event));
        }
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event);
        }
    }

    /// Attaches the webhook outbox: every event published from now on is also sent there.
    pub fn attach_outbox(&self, outbox: tokio::sync::mpsc::UnboundedSender<Arc<HubEvent>>) {
        let _ = self.outbox.set(outbox);
    }

    /// Attaches the other nodes of a cluster: every event published from now on goes there.
    pub fn attach_peers(&self, peers: tokio::sync::mpsc::UnboundedSender<Arc<HubEvent>>) {
        let _ = self.peers.set(peers);
    }

    /// An event another node published: to this node's live streams only (its webhooks were
    /// queued by the node that published it).
    pub fn publish_from_peer(&self, event: HubEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(event));
        }
    }

    /// A new subscription that sees every event published from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.tx.subscribe()
    }

    /// Open subscriptions (for `/metrics`).
    #[must_use]
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_events_carry_the_metrics_object() {
        let event = HubEvent::heartbeat(
            "u",
            "s",
            10,
            "1.0",
            2,
            Some(3),
            Some(r#"{"cpuPercent":12.5}"#),
        );
        let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
        assert_eq!(data["serverId"], "s");
        assert_eq!(data["lastSeenAt"], 10);
        assert_eq!(data["hostMetrics"]["cpuPercent"], 12.5);
        assert_eq!(data["libraryCount"], 3);
        let bare = HubEvent::heartbeat("u", "s", 10, "1.0", 2, None, None);
        assert!(!bare.data.contains("hostMetrics"), "{}", bare.data);
        assert!(!bare.data.contains("libraryCount"), "{}", bare.data);
    }

    #[tokio::test]
    async fn subscribers_receive_what_is_published_after_they_subscribe() {
        let bus = EventBus::new();
        bus.publish(HubEvent::relay("u", "before", true));
        let mut rx = bus.subscribe();
        bus.publish(HubEvent::status("u", "after", false, Some(5)));
        let event = rx.recv().await.ok();
        assert_eq!(event.as_ref().map(|e| e.server_id.as_str()), Some("after"));
        assert_eq!(event.map(|e| e.kind), Some(EventKind::ServerOffline));
    }
}
