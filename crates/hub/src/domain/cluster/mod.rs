//! Several hub nodes on one PostgreSQL (issue #19). PostgreSQL is the only coordinator:
//!
//! - **Registry** (`hub_nodes`): each node registers under `--node-name` and touches its row
//!   every [`TOUCH`]; a node unseen for [`DEAD_AFTER`] seconds is dead and loses its tunnels.
//! - **Tunnel ownership** (`relay_owners`): the node holding a server's tunnel records it with an
//!   epoch; a newer tunnel on another node displaces the old one (the [`Signal::Owner`] notice).
//! - **Signals** (`LISTEN`/`NOTIFY` on [`CHANNEL`]): access-cache invalidations and relay cuts
//!   (share revoked, user disabled, server removed), live events, ownership changes and a node's
//!   leave reach every node at once. Each is applied here first, then sent to the others.
//! - **Leader** (advisory lock [`LEADER_LOCK`]): one node at a time runs the cluster-wide
//!   chores (reaper, clean-up, share expiry, *arr sync, dashboard samples).
//! - **Node-to-node requests** are signed with HMAC-SHA256 over the request's identity
//!   ([`sign`], [`Verifier`]); the cluster listener (`relay::cluster`) checks them.
//!
//! On one node (SQLite, or PostgreSQL without `--cluster-url`) the same calls apply locally
//! only and this node is always the leader.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Core;
use super::events::{EventKind, HubEvent};
use crate::config::{ClusterConfig, Secret};

mod signing;
use crate::store::{OwnerRow, StoreResult};
pub use signing::{Claims, Refusal, Verifier, nonce, sign};

/// The notification channel of the cluster.
pub const CHANNEL: &str = "phlix_cluster";
/// How often a node marks itself alive.
pub const TOUCH: Duration = Duration::from_secs(5);
/// A node unseen for this many seconds is dead: its tunnels' ownership lapses.
pub const DEAD_AFTER: i64 = 15;
/// The advisory lock whose holder is the leader ("phlix" in ASCII, then 1).
pub const LEADER_LOCK: i64 = 0x7068_6c69_7801;
/// How long a looked-up tunnel owner is trusted (ownership changes also clear it at once).
const OWNER_TTL: Duration = Duration::from_secs(1);
/// How long a request waits for the tunnel of a server whose node is leaving to reopen on
/// another node: a Phlix server's first retry after a drop comes ≈ 10 s ± 30 % later (SPEC
/// B.3); `phlix-agent` reconnects within 0.5 s after a 1001 close.
pub const HOLD_FOR_MOVE: Duration = Duration::from_secs(15);
/// A signed node-to-node request older (or newer) than this is refused.
pub const SIGNATURE_WINDOW: i64 = 30;
/// `NOTIFY` payloads must stay under 8000 bytes.
const MAX_PAYLOAD: usize = 7900;

/// What one node tells the others (and applies itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Signal {
    /// `node` holds `server`'s tunnel from `epoch` on: an older tunnel elsewhere drains.
    Owner {
        server: String,
        node: String,
        epoch: i64,
    },
    /// The server changed or went: drop its cached rows.
    ForgetServer { server: String },
    /// A share changed: drop the cached "collaborator" answer.
    ForgetGrant { server: String, user: String },
    /// The user changed (disabled, deleted, role): drop their cached row.
    ForgetUser { user: String },
    /// Cut the user's relay uses of the server (share revoked).
    CutUser { server: String, user: String },
    /// Cut every collaborator's relay uses of the server (collaborators switched off).
    CutCollaborators { server: String },
    /// Cut the user's relay uses everywhere (account disabled or deleted).
    CutUserEverywhere { user: String },
    /// Close the server's tunnel (server removed).
    CloseTunnel { server: String },
    /// A live event for the streams of other nodes (J.4).
    Event(WireEvent),
    /// `node` is leaving: requests for its tunnels wait for them to reopen elsewhere.
    NodeLeaving { node: String },
}

/// A [`HubEvent`] as it crosses to other nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    pub kind: String,
    pub owner_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    pub server_id: String,
    pub data: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admins: bool,
}

impl WireEvent {
    fn of(event: &HubEvent) -> Self {
        Self {
            kind: event.kind.name().to_owned(),
            owner_id: event.owner_id.clone(),
            also: event.also.clone(),
            server_id: event.server_id.clone(),
            data: event.data.clone(),
            admins: event.admins,
        }
    }

    fn into_event(self) -> Option<HubEvent> {
        Some(HubEvent {
            kind: EventKind::from_name(&self.kind)?,
            owner_id: self.owner_id,
            also: self.also,
            server_id: self.server_id,
            data: self.data,
            resource: None,
            admins: self.admins,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    signal: Signal,
}

/// This node's place in the cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    node: String,
    peers: Option<Peers>,
    leader: AtomicBool,
    leaving: AtomicBool,
    reaper_runs: AtomicU64,
}

#[derive(Debug)]
struct Peers {
    config: ClusterConfig,
    /// Random per process: a second process under a live node's name is refused.
    instance: String,
    owners: Mutex<HashMap<String, (Instant, Option<OwnerRow>)>>,
    outbox: mpsc::UnboundedSender<String>,
    outbox_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    verifier: Verifier,
}

/// Where a relay request for a server goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node holds the tunnel (or nobody does: the local path answers `no_tunnel`).
    Local,
    /// Another node holds it.
    Remote(OwnerRow),
}

impl Cluster {
    /// The cluster of node `node`: with others when `config` is set, else alone.
    #[must_use]
    pub fn new(node: &str, config: Option<ClusterConfig>) -> Self {
        let peers = config.map(|config| {
            let (outbox, outbox_rx) = mpsc::unbounded_channel();
            Peers {
                verifier: Verifier::new(config.secret.clone()),
                config,
                instance: uuid::Uuid::new_v4().to_string(),
                owners: Mutex::new(HashMap::new()),
                outbox,
                outbox_rx: Mutex::new(Some(outbox_rx)),
            }
        });
        let alone = peers.is_none();
        Self(Arc::new(Inner {
            node: node.to_owned(),
            peers,
            leader: AtomicBool::new(alone),
            leaving: AtomicBool::new(false),
            reaper_runs: AtomicU64::new(0),
        }))
    }

    /// Whether other nodes may exist.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.0.peers.is_some()
    }

    /// This node's name.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.0.node
    }

    /// Whether this node runs the cluster-wide chores now.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.0.leader.load(Ordering::Relaxed)
    }

    /// Whether this node is leaving (SIGTERM received).
    #[must_use]
    pub fn leaving(&self) -> bool {
        self.0.leaving.load(Ordering::Relaxed)
    }

    /// Counts one reaper pass of this node (for `/metrics`).
    pub fn count_reaper_run(&self) {
        self.0.reaper_runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Reaper passes this node ran.
    #[must_use]
    pub fn reaper_runs(&self) -> u64 {
        self.0.reaper_runs.load(Ordering::Relaxed)
    }

    /// The signer of this node's outgoing node-to-node requests, when clustered.
    #[must_use]
    pub fn secret(&self) -> Option<&Secret> {
        self.0.peers.as_ref().map(|p| &p.config.secret)
    }

    /// The checker of incoming node-to-node requests, when clustered.
    #[must_use]
    pub fn verifier(&self) -> Option<&Verifier> {
        self.0.peers.as_ref().map(|p| &p.verifier)
    }

    fn send(&self, signal: &Signal) {
        let Some(peers) = &self.0.peers else { return };
        let envelope = Envelope {
            from: self.0.node.clone(),
            signal: signal.clone(),
        };
        if let Ok(payload) = serde_json::to_string(&envelope) {
            if payload.len() > MAX_PAYLOAD {
                tracing::debug!(
                    bytes = payload.len(),
                    "cluster signal too large for NOTIFY; not sent"
                );
                return;
            }
            let _ = peers.outbox.send(payload);
        }
    }

    fn forget_owner(&self, server_id: Option<&str>) {
        if let Some(peers) = &self.0.peers {
            let mut owners = peers.owners.lock().unwrap_or_else(PoisonError::into_inner);
            match server_id {
                Some(id) => {
                    owners.remove(id);
                }
                None => owners.clear(),
            }
        }
    }
}

/// Applies `signal` on this node and sends it to the others.
pub fn signal(core: &Core, signal: Signal) {
    apply(core, &signal);
    core.cluster.send(&signal);
}

/// Drops the cached rows of a server on every node.
pub fn forget_server(core: &Core, server_id: &str) {
    signal(
        core,
        Signal::ForgetServer {
            server: server_id.to_owned(),
        },
    );
}

/// Drops the cached rows of a user on every node.
pub fn forget_user(core: &Core, user_id: &str) {
    signal(
        core,
        Signal::ForgetUser {
            user: user_id.to_owned(),
        },
    );
}

/// Drops the cached "collaborator" answer of a user on a server on every node.
pub fn forget_grant(core: &Core, server_id: &str, user_id: &str) {
    signal(
        core,
        Signal::ForgetGrant {
            server: server_id.to_owned(),
            user: user_id.to_owned(),
        },
    );
}

/// Cuts the user's relay uses of the server on every node.
pub fn cut_user(core: &Core, server_id: &str, user_id: &str) {
    signal(
        core,
        Signal::CutUser {
            server: server_id.to_owned(),
            user: user_id.to_owned(),
        },
    );
}

/// Cuts every collaborator's relay uses of the server on every node.
pub fn cut_collaborators(core: &Core, server_id: &str) {
    signal(
        core,
        Signal::CutCollaborators {
            server: server_id.to_owned(),
        },
    );
}

/// Cuts the user's relay uses on every node.
pub fn cut_user_everywhere(core: &Core, user_id: &str) {
    signal(
        core,
        Signal::CutUserEverywhere {
            user: user_id.to_owned(),
        },
    );
}

/// Closes the server's tunnel, whichever node holds it.
pub fn close_tunnel(core: &Core, server_id: &str) {
    signal(
        core,
        Signal::CloseTunnel {
            server: server_id.to_owned(),
        },
    );
}

/// Applies a signal on this node (its own, or one from another node).
fn apply(core: &Core, signal: &Signal) {
    match signal {
        Signal::Owner {
            server,
            node,
            epoch,
        } => {
            core.cluster.forget_owner(Some(server));
            if node != core.cluster.node()
                && let Some(tunnel) = core.relay.tunnel(server)
                && tunnel.epoch < *epoch
            {
                tracing::info!(target: "relay", server_id = %server, %node, "the tunnel moved to another node; draining this one");
                let _ = tunnel.cmd.try_send(super::tunnels::TunnelCmd::Displace);
            }
        }
        Signal::ForgetServer { server } => core.access.forget_server(server),
        Signal::ForgetGrant { server, user } => core.access.forget_grant(server, user),
        Signal::ForgetUser { user } => core.access.forget_user(user),
        Signal::CutUser { server, user } => {
            core.access.forget_grant(server, user);
            core.relay.cut_user(server, user);
        }
        Signal::CutCollaborators { server } => {
            core.access.forget_server(server);
            core.relay.cut_collaborators(server);
        }
        Signal::CutUserEverywhere { user } => {
            core.access.forget_user(user);
            core.relay.cut_user_everywhere(user);
        }
        Signal::CloseTunnel { server } => {
            core.access.forget_server(server);
            core.relay.close_tunnel(server);
        }
        Signal::Event(_) => {}
        Signal::NodeLeaving { .. } => core.cluster.forget_owner(None),
    }
}

/// Sends every event published on this node to the other nodes' live streams.
pub fn attach_events(core: &Core) {
    if !core.cluster.enabled() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Arc<HubEvent>>();
    core.events.attach_peers(tx);
    let cluster = core.cluster.clone();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            cluster.send(&Signal::Event(WireEvent::of(&event)));
        }
    });
}

/// Registers this node, or refuses when another live process holds its name.
///
/// # Errors
/// The name is in use, or the database failed.
pub async fn register(core: &Core) -> anyhow::Result<()> {
    let Some(peers) = &core.cluster.0.peers else {
        return Ok(());
    };
    let now = crate::auth::now_unix();
    let took = core
        .store
        .register_node(
            core.cluster.node(),
            &peers.instance,
            &peers.config.url,
            now,
            now - DEAD_AFTER,
        )
        .await?;
    if !took {
        anyhow::bail!(
            "node name `{}` is in use by a running node (seen in the last {DEAD_AFTER} s): give each node its own --node-name",
            core.cluster.node()
        );
    }
    tracing::info!(node = %core.cluster.node(), url = %peers.config.url, "joined the cluster");
    Ok(())
}

/// Starts the cluster's loops: registry touch, notifications in and out, leader election.
pub fn spawn(core: &Core, shutdown: &CancellationToken, tracker: &TaskTracker) {
    let Some(peers) = &core.cluster.0.peers else {
        return;
    };
    if let Some(mut outbox) = peers
        .outbox_rx
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        let store = core.store.clone();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            loop {
                let payload = tokio::select! {
                    biased;
                    payload = outbox.recv() => payload,
                    () = stop.cancelled() => {
                        // What was signalled before the end still goes out.
                        while let Ok(payload) = outbox.try_recv() {
                            let _ = store.notify(CHANNEL, &payload).await;
                        }
                        return;
                    }
                };
                let Some(payload) = payload else { return };
                if let Err(err) = store.notify(CHANNEL, &payload).await {
                    tracing::warn!(error = %err, "cannot notify the other nodes");
                }
            }
        });
    }
    tracker.spawn(touch_loop(core.clone(), shutdown.clone()));
    tracker.spawn(listen_loop(core.clone(), shutdown.clone()));
    tracker.spawn(leader_loop(core.clone(), shutdown.clone()));
}

async fn touch_loop(core: Core, shutdown: CancellationToken) {
    let Some(peers) = &core.cluster.0.peers else {
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(TOUCH) => {}
        }
        let now = crate::auth::now_unix();
        match core
            .store
            .touch_node(core.cluster.node(), &peers.instance, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                // Declared dead while unreachable, and maybe taken over: register again.
                tracing::warn!(node = %core.cluster.node(), "this node's registry row was gone; registering again");
                if let Err(err) = register(&core).await {
                    tracing::error!(error = format!("{err:#}"), "cannot register again");
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot touch this node's registry row"),
        }
    }
}

async fn listen_loop(core: Core, shutdown: CancellationToken) {
    loop {
        let mut listener = match core.store.listen(CHANNEL).await {
            Ok(Some(listener)) => listener,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen to the other nodes; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.recv() => received,
            };
            match received {
                Ok(Some(payload)) => receive(&core, &payload),
                // The connection was lost and re-established: what was sent meanwhile is
                // lost, so cached owners may be stale.
                Ok(None) => core.cluster.forget_owner(None),
                Err(err) => {
                    tracing::warn!(error = %err, "lost the other nodes' notifications; listening again");
                    core.cluster.forget_owner(None);
                    break;
                }
            }
        }
    }
}

fn receive(core: &Core, payload: &str) {
    let Ok(envelope) = serde_json::from_str::<Envelope>(payload) else {
        tracing::debug!("ignored an unreadable cluster signal");
        return;
    };
    if envelope.from == core.cluster.node() {
        return;
    }
    match envelope.signal {
        Signal::Event(event) => {
            if let Some(event) = event.into_event() {
                core.events.publish_from_peer(event);
            }
        }
        other => apply(core, &other),
    }
}

async fn leader_loop(core: Core, shutdown: CancellationToken) {
    let mut lock = None;
    loop {
        let held = match &mut lock {
            Some(held) => {
                if crate::store::AdvisoryLock::alive(held).await {
                    true
                } else {
                    lock = None;
                    false
                }
            }
            None => match core.store.try_advisory_lock(LEADER_LOCK).await {
                Ok(Some(taken)) => {
                    lock = Some(taken);
                    tracing::info!(node = %core.cluster.node(), "this node leads the cluster's chores");
                    true
                }
                Ok(None) => false,
                Err(err) => {
                    tracing::warn!(error = %err, "leader election failed; retrying");
                    false
                }
            },
        };
        let was = core.cluster.0.leader.swap(held, Ordering::Relaxed);
        if was && !held {
            tracing::warn!(node = %core.cluster.node(), "this node lost the cluster's leadership");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Records this node as the holder of `server_id`'s tunnel; returns the epoch (0 alone).
///
/// # Errors
/// Database failures: the tunnel must then be refused.
pub async fn claim_tunnel(core: &Core, server_id: &str, now: i64) -> StoreResult<i64> {
    if !core.cluster.enabled() {
        return Ok(0);
    }
    let epoch = core
        .store
        .claim_relay_owner(server_id, core.cluster.node(), now)
        .await?;
    signal(
        core,
        Signal::Owner {
            server: server_id.to_owned(),
            node: core.cluster.node().to_owned(),
            epoch,
        },
    );
    Ok(epoch)
}

/// Gives up the ownership of a closed tunnel (kept while this node is leaving, so requests
/// wait for the tunnel to reopen elsewhere instead of failing).
pub async fn release_tunnel(core: &Core, server_id: &str, epoch: i64) {
    if !core.cluster.enabled() || core.cluster.leaving() {
        return;
    }
    if let Err(err) = core
        .store
        .release_relay_owner(server_id, core.cluster.node(), epoch)
        .await
    {
        tracing::warn!(error = %err, "cannot release a tunnel's ownership");
    }
}

async fn owner(core: &Core, server_id: &str, fresh: bool) -> StoreResult<Option<OwnerRow>> {
    let Some(peers) = &core.cluster.0.peers else {
        return Ok(None);
    };
    if !fresh
        && let Some((at, row)) = peers
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(server_id)
        && at.elapsed() < OWNER_TTL
    {
        return Ok(row.clone());
    }
    let row = core
        .store
        .relay_owner(server_id, crate::auth::now_unix() - DEAD_AFTER)
        .await?;
    let mut owners = peers.owners.lock().unwrap_or_else(PoisonError::into_inner);
    if owners.len() > 50_000 {
        owners.clear();
    }
    owners.insert(server_id.to_owned(), (Instant::now(), row.clone()));
    Ok(row)
}

/// Where a relay request for `server_id` goes: here when this node holds the tunnel (or no
/// node does), else to its holder. A holder that is leaving is waited for up to
/// [`HOLD_FOR_MOVE`] (its agent reconnects through the load balancer to another node).
///
/// # Errors
/// Database failures only.
pub async fn route(core: &Core, server_id: &str) -> StoreResult<Route> {
    if !core.cluster.enabled() || core.relay.tunnel(server_id).is_some() {
        return Ok(Route::Local);
    }
    let mut found = owner(core, server_id, false).await?;
    let deadline = Instant::now() + HOLD_FOR_MOVE;
    let mut waited = false;
    loop {
        if core.relay.tunnel(server_id).is_some() {
            return Ok(Route::Local);
        }
        match found {
            Some(row)
                if row.node == core.cluster.node()
                    && (!core.cluster.leaving() || Instant::now() >= deadline) =>
            {
                return Ok(Route::Local);
            }
            // This node's own row while it is leaving: wait for the tunnel to move too.
            Some(row) if row.node == core.cluster.node() => {}
            Some(row) if !row.draining || Instant::now() >= deadline => {
                return Ok(Route::Remote(row));
            }
            None if !waited || Instant::now() >= deadline => return Ok(Route::Local),
            _ => {}
        }
        waited = true;
        tokio::time::sleep(Duration::from_millis(50)).await;
        found = owner(core, server_id, true).await?;
    }
}

/// Starts this node's leave: marked in the registry and announced, so the other nodes hold
/// requests for its tunnels until they reopen elsewhere.
pub async fn begin_leave(core: &Core) {
    core.cluster.0.leaving.store(true, Ordering::Relaxed);
    let Some(peers) = &core.cluster.0.peers else {
        return;
    };
    if let Err(err) = core
        .store
        .set_node_draining(
            core.cluster.node(),
            &peers.instance,
            crate::auth::now_unix(),
        )
        .await
    {
        tracing::warn!(error = %err, "cannot mark this node as leaving");
    }
    signal(
        core,
        Signal::NodeLeaving {
            node: core.cluster.node().to_owned(),
        },
    );
}

/// Whether the tunnels this node held have reopened on other nodes.
pub async fn tunnels_moved(core: &Core, servers: &[String]) -> bool {
    for server in servers {
        match owner(core, server, true).await {
            Ok(Some(row)) if row.node == core.cluster.node() => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Ends this node's membership: its registry row and what it still owns go.
pub async fn finish_leave(core: &Core) {
    let Some(peers) = &core.cluster.0.peers else {
        return;
    };
    if let Err(err) = core
        .store
        .remove_node(core.cluster.node(), &peers.instance)
        .await
    {
        tracing::warn!(error = %err, "cannot remove this node from the registry");
    }
}

/// The leader's share of the reaper: the tunnels and sessions of dead nodes.
pub async fn expire_dead_nodes(core: &Core, now: i64) {
    if !core.cluster.enabled() {
        return;
    }
    match core.store.expire_dead_nodes(now - DEAD_AFTER, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(sessions = n, "closed the relay sessions of dead nodes"),
        Err(err) => tracing::warn!(error = %err, "cannot expire dead nodes"),
    }
}

/// The live nodes (for `/metrics` and the admin console).
///
/// # Errors
/// Database failures only.
pub async fn live_nodes(core: &Core) -> StoreResult<Vec<crate::store::NodeRow>> {
    core.store
        .live_nodes(crate::auth::now_unix() - DEAD_AFTER)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_events_cross_as_json() {
        let event = HubEvent::relay("u1", "s1", true);
        let envelope = Envelope {
            from: "a".into(),
            signal: Signal::Event(WireEvent::of(&event)),
        };
        let text = serde_json::to_string(&envelope).unwrap_or_default();
        let back: Envelope = serde_json::from_str(&text).unwrap_or_else(|_| Envelope {
            from: String::new(),
            signal: Signal::ForgetUser { user: "x".into() },
        });
        let Signal::Event(wire) = back.signal else {
            unreachable!("an event crossed as {text}");
        };
        let back = wire.into_event();
        assert_eq!(back.as_ref().map(|e| e.kind), Some(EventKind::RelayOpened));
        assert_eq!(back.map(|e| e.data), Some(event.data));
        let cut: Signal = serde_json::from_str(r#"{"t":"cut_user","server":"s","user":"u"}"#)
            .unwrap_or(Signal::ForgetUser {
                user: String::new(),
            });
        assert_eq!(
            cut,
            Signal::CutUser {
                server: "s".into(),
                user: "u".into()
            }
        );
    }
}
