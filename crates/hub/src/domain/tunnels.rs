//! The node's relay registry (SPEC A, B): which tunnels are open, their handles and counters,
//! per-user meters and quota checks. The adapters in `crate::relay` (tunnel and client
//! listeners, HTTP-over-relay) register here; the domain and the API read it.
//!
//! Each tunnel is one actor task that owns its socket reader, its channel map and its table of
//! in-flight HTTP requests, plus one writer task that drains two bounded queues (control frames
//! first, then data) and coalesces frames into WebSocket messages. Nothing is locked per frame:
//! the registry lock is taken only to find a tunnel when a client mounts or a request starts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use phlix_proto::frame::Frame;
use phlix_proto::ws::close_code;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::ratelimit::WindowLimiter;

pub use crate::config::RelayTimers;

/// Why a tunnel closed: the reason sent to clients (`DISCONNECTED`) and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ServerClosed,
    Timeout,
    ServerReplaced,
    ProtocolError,
    InvalidFrame,
    FrameBufferOverflow,
    BackpressureOverflow,
    BackpressureTimeout,
    HubShutdown,
    /// The server (or its owner's account) was removed: it may not hold a tunnel any more.
    ServerRemoved,
}

impl CloseReason {
    /// The SPEC's reason string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerClosed => "server_closed",
            Self::Timeout => "timeout",
            Self::ServerReplaced => "server_replaced",
            Self::ProtocolError => "protocol_error",
            Self::InvalidFrame => "invalid_frame",
            Self::FrameBufferOverflow => "frame_buffer_overflow",
            Self::BackpressureOverflow => "backpressure_overflow",
            Self::BackpressureTimeout => "backpressure_timeout",
            Self::HubShutdown => "hub_shutdown",
            Self::ServerRemoved => "server_removed",
        }
    }

    /// The `relay_sessions.close_reason` (SPEC B.4 names a peer close `server_disconnected`).
    #[must_use]
    pub fn session_reason(self) -> &'static str {
        match self {
            Self::ServerClosed => "server_disconnected",
            other => other.as_str(),
        }
    }

    pub fn close_code(self) -> u16 {
        match self {
            Self::ServerClosed | Self::ServerReplaced => close_code::NORMAL,
            Self::HubShutdown => close_code::GOING_AWAY,
            // The HELLO rejection's `unauthorized` (SPEC L): reconnecting will not help.
            Self::ServerRemoved => 4401,
            Self::Timeout | Self::BackpressureOverflow | Self::BackpressureTimeout => {
                close_code::INTERNAL
            }
            Self::ProtocolError | Self::InvalidFrame | Self::FrameBufferOverflow => {
                close_code::PROTOCOL
            }
        }
    }
}

/// What the tunnel writer sends ahead of data: control frames, pongs, and the final close.
#[derive(Debug)]
pub enum Outbound {
    Frame(Frame),
    Pong(Bytes),
    Close(CloseReason),
}

/// Queue sizes (SPEC A.4).
pub const CONTROL_QUEUE: usize = 256;
pub const DATA_QUEUE: usize = 256;
pub const CLIENT_QUEUE: usize = 256;
/// A blocked sender that cannot enqueue within this closes the tunnel (`backpressure_timeout`).
pub const BACKPRESSURE_TIMEOUT: Duration = Duration::from_secs(30);

/// First HTTP-over-relay request id; ids wrap back here after `u32::MAX` (SPEC A.5).
pub const FIRST_REQUEST_ID: u32 = 0x8000_0001;

/// What a tunnel reports to an HTTP-over-relay request.
#[derive(Debug)]
pub enum ResponseEvent {
    /// A response chunk payload (HEAD, BODY or END), still tagged.
    Chunk(Bytes),
    /// The tunnel closed before END (`server.offline`).
    TunnelClosed,
}

/// A client asking to mount (boxed in [`TunnelCmd`] to keep every command small).
#[derive(Debug)]
pub struct MountRequest {
    pub client_id: String,
    pub tx: mpsc::Sender<Frame>,
    /// Cancelled by the tunnel when it drops the client (stalled, teardown).
    pub gone: CancellationToken,
    pub reply: oneshot::Sender<Option<u32>>,
}

/// Commands to a tunnel actor.
#[derive(Debug)]
pub enum TunnelCmd {
    /// A client mounts; the reply is its channel id, or `None` when the tunnel is closing.
    Mount(Box<MountRequest>),
    /// A client went away.
    Unmount { channel: u32 },
    /// A newer tunnel for the same server took over.
    Displace,
    /// A sender could not enqueue in time.
    Backpressure,
    /// The server was removed: close now.
    Remove,
    /// This node is leaving the cluster: close with `hub_shutdown` (1001) so the server
    /// reconnects, through the load balancer, to another node.
    Leave,
}

/// Byte counters of one tunnel, shared with the tasks that move its bytes.
#[derive(Debug, Default)]
pub struct TunnelCounters {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub last_frame_at: AtomicU64,
}

/// A live tunnel as others see it.
#[derive(Debug, Clone)]
pub struct TunnelHandle {
    pub tunnel_id: String,
    pub server_id: String,
    /// The user who owns the server (for live events).
    pub owner_id: String,
    pub session_id: String,
    /// The cluster's ownership epoch of this tunnel (0 on a single node).
    pub epoch: i64,
    pub cmd: mpsc::Sender<TunnelCmd>,
    /// Outbound control frames (HEARTBEAT, HTTP_CANCEL, CLIENT_CONNECT/DISCONNECT).
    pub control: mpsc::Sender<Outbound>,
    /// Outbound data frames (client DATA, HTTP_REQUEST).
    pub data: mpsc::Sender<Frame>,
    /// The HTTP-over-relay requests in flight, registered by their own tasks.
    pub requests: Arc<super::in_flight::InFlight>,
    pub counters: Arc<TunnelCounters>,
}

/// Live gauges and counters for `/metrics`.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub tunnels_open: AtomicU64,
    pub clients_mounted: AtomicU64,
    pub http_in_flight: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub closes: std::sync::Mutex<HashMap<String, u64>>,
}

impl RelayStats {
    /// Counts one tunnel close with `reason`.
    pub fn count_close(&self, reason: &str) {
        let mut closes = self.closes.lock().unwrap_or_else(PoisonError::into_inner);
        *closes.entry(reason.to_owned()).or_default() += 1;
    }
}

/// Relay bytes and open streams of one user on this node, counted without locks and flushed
/// to `relay_user_quotas` on every reaper tick.
#[derive(Debug, Default)]
pub struct UserMeter {
    /// Client → server bytes not yet flushed.
    pub bytes_in: AtomicU64,
    /// Server → client bytes not yet flushed.
    pub bytes_out: AtomicU64,
    /// Client mounts open now.
    pub streams: AtomicU64,
}

/// The relay of one hub node.
#[derive(Debug, Clone)]
pub struct Relay(Arc<RelayInner>);

#[derive(Debug)]
struct RelayInner {
    tunnels: RwLock<HashMap<String, TunnelHandle>>,
    node: String,
    timers: RelayTimers,
    /// The `server.relay.reconnect_drain_grace_seconds` setting in ms (`u64::MAX`: unset).
    drain_grace_ms: AtomicU64,
    connect_limit: WindowLimiter,
    mount_limit: WindowLimiter,
    next_request_id: AtomicU32,
    shutdown: CancellationToken,
    stats: RelayStats,
    meters: std::sync::Mutex<HashMap<String, Arc<UserMeter>>>,
    /// What each user has open through the relay, per server: cancelled to cut them off.
    grants: std::sync::Mutex<HashMap<String, Vec<GrantEntry>>>,
    next_grant: AtomicU64,
    /// Notified when a collaborator's relay use is registered (wakes the idle sweep).
    collaborator_held: tokio::sync::Notify,
}

#[derive(Debug)]
struct GrantEntry {
    id: u64,
    user_id: String,
    collaborator: bool,
    cut: CancellationToken,
}

/// One relay use (a client mount, a proxied request) of a user on a server; cancelled when
/// that user loses access (share revoked, collaborators switched off). Dropping it forgets it.
#[derive(Debug)]
pub struct RelayGrant {
    relay: Relay,
    server_id: String,
    id: u64,
    /// Cancelled when the user must be cut off.
    pub cut: CancellationToken,
}

impl Drop for RelayGrant {
    fn drop(&mut self) {
        let mut grants = self
            .relay
            .0
            .grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entries) = grants.get_mut(&self.server_id) {
            entries.retain(|e| e.id != self.id);
            if entries.is_empty() {
                grants.remove(&self.server_id);
            }
        }
    }
}

impl Relay {
    /// A relay for node `node` (recorded in `relay_sessions.worker_node`).
    #[must_use]
    pub fn new(node: String, timers: RelayTimers, shutdown: CancellationToken) -> Self {
        Self(Arc::new(RelayInner {
            tunnels: RwLock::new(HashMap::new()),
            node,
            timers,
            drain_grace_ms: AtomicU64::new(u64::MAX),
            connect_limit: WindowLimiter::new(10, 60),
            mount_limit: WindowLimiter::new(30, 60),
            next_request_id: AtomicU32::new(FIRST_REQUEST_ID),
            shutdown,
            stats: RelayStats::default(),
            meters: std::sync::Mutex::new(HashMap::new()),
            grants: std::sync::Mutex::new(HashMap::new()),
            next_grant: AtomicU64::new(1),
            collaborator_held: tokio::sync::Notify::new(),
        }))
    }

    /// Registers a relay use of `user_id` on `server_id` (`collaborator`: not its owner).
    #[must_use]
    pub fn hold(&self, server_id: &str, user_id: &str, collaborator: bool) -> RelayGrant {
        let id = self.0.next_grant.fetch_add(1, Ordering::Relaxed);
        let cut = CancellationToken::new();
        self.0
            .grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(server_id.to_owned())
            .or_default()
            .push(GrantEntry {
                id,
                user_id: user_id.to_owned(),
                collaborator,
                cut: cut.clone(),
            });
        if collaborator {
            self.0.collaborator_held.notify_one();
        }
        RelayGrant {
            relay: self.clone(),
            server_id: server_id.to_owned(),
            id,
            cut,
        }
    }

    /// Cuts every relay use of `user_id` on `server_id` now; returns how many.
    pub fn cut_user(&self, server_id: &str, user_id: &str) -> usize {
        self.cut_where(server_id, |e| e.user_id == user_id)
    }

    /// Cuts every relay use of `user_id` on every server now (account disabled or deleted);
    /// returns how many.
    pub fn cut_user_everywhere(&self, user_id: &str) -> usize {
        let servers: Vec<String> = self
            .0
            .grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        servers
            .iter()
            .map(|server| self.cut_where(server, |e| e.user_id == user_id))
            .sum()
    }

    /// Closes the tunnel of `server_id` on this node, if it holds one (the server was
    /// removed); returns whether it did.
    pub fn close_tunnel(&self, server_id: &str) -> bool {
        self.tunnel(server_id)
            .is_some_and(|tunnel| tunnel.cmd.try_send(TunnelCmd::Remove).is_ok())
    }

    /// Closes every tunnel of this node with `hub_shutdown` (the node is leaving); returns the
    /// servers whose tunnels it held.
    pub fn close_all_for_leave(&self) -> Vec<String> {
        self.tunnels()
            .into_iter()
            .map(|tunnel| {
                let _ = tunnel.cmd.try_send(TunnelCmd::Leave);
                tunnel.server_id
            })
            .collect()
    }

    /// Cuts every collaborator's relay use of `server_id` now; returns how many.
    pub fn cut_collaborators(&self, server_id: &str) -> usize {
        self.cut_where(server_id, |e| e.collaborator)
    }

    /// Returns once a collaborator holds a relay use on this node (at once if one does; or
    /// after a later [`Self::hold`] of a collaborator): the collaborator sweep waits here
    /// while there is nothing to sweep.
    pub async fn collaborator_held(&self) {
        loop {
            if !self.collaborator_holds().is_empty() {
                return;
            }
            // A permit stored by a `hold` since the check above ends this wait at once.
            self.0.collaborator_held.notified().await;
        }
    }

    /// The distinct (server, user) pairs of collaborators holding relay uses now.
    #[must_use]
    pub fn collaborator_holds(&self) -> Vec<(String, String)> {
        let grants = self.0.grants.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pairs: Vec<(String, String)> = grants
            .iter()
            .flat_map(|(server, entries)| {
                entries
                    .iter()
                    .filter(|e| e.collaborator && !e.cut.is_cancelled())
                    .map(move |e| (server.clone(), e.user_id.clone()))
            })
            .collect();
        pairs.sort();
        pairs.dedup();
        pairs
    }

    fn cut_where(&self, server_id: &str, which: impl Fn(&GrantEntry) -> bool) -> usize {
        let grants = self.0.grants.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cut = 0;
        for entry in grants
            .get(server_id)
            .into_iter()
            .flatten()
            .filter(|e| which(e))
        {
            entry.cut.cancel();
            cut += 1;
        }
        if cut > 0 {
            tracing::info!(target: "relay", %server_id, cut, "relay access cut");
        }
        cut
    }

    /// This node's name.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.0.node
    }

    /// The timers in force.
    #[must_use]
    pub fn timers(&self) -> RelayTimers {
        self.0.timers
    }

    /// How long a displaced tunnel may drain: the hub setting when an admin set one, else the
    /// configured `--relay-drain-grace`.
    #[must_use]
    pub fn drain_grace(&self) -> std::time::Duration {
        match self.0.drain_grace_ms.load(Ordering::Relaxed) {
            u64::MAX => self.0.timers.drain_grace,
            ms => std::time::Duration::from_millis(ms),
        }
    }

    /// Sets (or, with `None`, clears) the drain grace of the hub setting.
    pub fn set_drain_grace(&self, grace: Option<std::time::Duration>) {
        let ms = grace.map_or(u64::MAX, |g| {
            u64::try_from(g.as_millis()).unwrap_or(u64::MAX - 1)
        });
        self.0.drain_grace_ms.store(ms, Ordering::Relaxed);
    }

    /// Cancelled when the hub shuts down.
    #[must_use]
    pub fn shutdown(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    /// Counters for `/metrics`.
    #[must_use]
    pub fn stats(&self) -> &RelayStats {
        &self.0.stats
    }

    /// Counts a tunnel connection attempt from `ip` (10 / 60 s).
    #[must_use]
    pub fn allow_connect(&self, ip: &str, now: i64) -> bool {
        self.0.connect_limit.check(ip, now).is_ok()
    }

    /// Counts a client mount from `ip` (30 / 60 s); `Err(retry_after)` when over.
    ///
    /// # Errors
    /// Seconds to wait.
    pub fn allow_mount(&self, ip: &str, now: i64) -> Result<(), u64> {
        self.0.mount_limit.check(ip, now)
    }

    /// Forgets rate-limit windows that ended.
    pub fn prune_limits(&self, now: i64) {
        self.0.connect_limit.prune(now);
        self.0.mount_limit.prune(now);
    }

    /// The live tunnel of a server.
    #[must_use]
    pub fn tunnel(&self, server_id: &str) -> Option<TunnelHandle> {
        self.0
            .tunnels
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(server_id)
            .cloned()
    }

    /// Every live tunnel (for counter flushes and shutdown).
    #[must_use]
    pub fn tunnels(&self) -> Vec<TunnelHandle> {
        self.0
            .tunnels
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Registers a tunnel, returning the one it displaces.
    pub fn register(&self, handle: TunnelHandle) -> Option<TunnelHandle> {
        self.0
            .tunnels
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(handle.server_id.clone(), handle)
    }

    /// Removes a tunnel if it is still the registered one for its server.
    pub fn unregister(&self, server_id: &str, tunnel_id: &str) {
        let mut tunnels = self
            .0
            .tunnels
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if tunnels
            .get(server_id)
            .is_some_and(|t| t.tunnel_id == tunnel_id)
        {
            tunnels.remove(server_id);
        }
    }

    /// The usage meter of a user (created on first use).
    #[must_use]
    pub fn meter(&self, user_id: &str) -> Arc<UserMeter> {
        let mut meters = self.0.meters.lock().unwrap_or_else(PoisonError::into_inner);
        meters.entry(user_id.to_owned()).or_default().clone()
    }

    /// Takes the unflushed byte counts of every user, `(user, in, out)`, and forgets idle
    /// meters.
    #[must_use]
    pub fn drain_meters(&self) -> Vec<(String, u64, u64)> {
        let mut meters = self.0.meters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut drained = Vec::new();
        meters.retain(|user, meter| {
            let (bytes_in, bytes_out) = (
                meter.bytes_in.swap(0, Ordering::Relaxed),
                meter.bytes_out.swap(0, Ordering::Relaxed),
            );
            if bytes_in > 0 || bytes_out > 0 {
                drained.push((user.clone(), bytes_in, bytes_out));
            }
            meter.streams.load(Ordering::Relaxed) > 0 || Arc::strong_count(meter) > 1
        });
        drained
    }

    /// The next HTTP-over-relay request id: 0x80000001 upward, wrapping within the high range.
    #[must_use]
    pub fn next_request_id(&self) -> u32 {
        let mut current = self.0.next_request_id.load(Ordering::Relaxed);
        loop {
            let next = if current == u32::MAX {
                FIRST_REQUEST_ID
            } else {
                current + 1
            };
            match self.0.next_request_id.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return current,
                Err(actual) => current = actual,
            }
        }
    }

    #[cfg(test)]
    fn set_next_request_id(&self, id: u32) {
        self.0.next_request_id.store(id, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_start_high_and_wrap_within_the_high_range() {
        let relay = Relay::new("n".into(), RelayTimers::default(), CancellationToken::new());
        assert_eq!(relay.next_request_id(), 0x8000_0001);
        assert_eq!(relay.next_request_id(), 0x8000_0002);
        relay.set_next_request_id(u32::MAX);
        assert_eq!(relay.next_request_id(), u32::MAX);
        assert_eq!(relay.next_request_id(), 0x8000_0001);
    }
}

/// Why a user may not open another relay stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// The monthly byte quota is used up; retry at the next month (seconds).
    Bytes { retry_after: u64 },
    /// `max_concurrent_streams` mounts are open.
    Streams,
}

/// Checks the user's monthly quota (stored usage plus what this node has not flushed yet) and,
/// when `new_stream`, the concurrent-stream limit.
///
/// # Errors
/// Database failures.
pub async fn check_quota(
    core: &crate::domain::Core,
    user_id: &str,
    new_stream: bool,
) -> Result<Option<QuotaRefusal>, crate::store::StoreError> {
    let now = crate::auth::now_unix();
    let bandwidth = core
        .access
        .bandwidth(&core.store, user_id, &crate::store::period_start(now))
        .await?;
    let meter = core.relay.meter(user_id);
    let used_in = bandwidth
        .bytes_in
        .saturating_add(i64::try_from(meter.bytes_in.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
    let used_out = bandwidth
        .bytes_out
        .saturating_add(i64::try_from(meter.bytes_out.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
    let over = |quota: i64, used: i64| quota > 0 && used >= quota;
    if over(bandwidth.quota_bytes_in, used_in) || over(bandwidth.quota_bytes_out, used_out) {
        return Ok(Some(QuotaRefusal::Bytes {
            retry_after: seconds_to_next_month(now),
        }));
    }
    let streams = i64::try_from(meter.streams.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
    if new_stream
        && bandwidth.max_concurrent_streams > 0
        && streams >= bandwidth.max_concurrent_streams
    {
        return Ok(Some(QuotaRefusal::Streams));
    }
    Ok(None)
}

/// Seconds until the next UTC month starts.
#[must_use]
pub fn seconds_to_next_month(now: i64) -> u64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(now) else {
        return 1;
    };
    let (year, month) = if u8::from(t.month()) == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), u8::from(t.month()) + 1)
    };
    let next = time::Month::try_from(month)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(year, m, 1).ok())
        .map(|d| d.midnight().assume_utc().unix_timestamp());
    next.map_or(1, |next| u64::try_from(next - now).unwrap_or(1).max(1))
}

/// Records a tunnel's relay session as open on this node (SPEC B.3, the `relay_sessions` row)
/// and, in a cluster, this node as the tunnel's holder; returns the ownership epoch (0 on a
/// single node).
///
/// # Errors
/// Database failures: the tunnel must then be refused.
pub async fn open_session(
    core: &super::Core,
    session_id: &str,
    server_id: &str,
    tunnel_id: &str,
    now: i64,
) -> super::DomainResult<i64> {
    core.store
        .open_relay_session(session_id, server_id, tunnel_id, core.relay.node(), now)
        .await?;
    Ok(super::cluster::claim_tunnel(core, server_id, now).await?)
}

/// Records a relay session as closed with its reason and final counters; a failure is logged
/// (the node's reconciliation closes the row at its next start).
pub async fn close_session(
    core: &super::Core,
    session_id: &str,
    reason: CloseReason,
    counters: crate::store::SessionCounters,
) {
    if let Err(err) = core
        .store
        .close_relay_session(
            session_id,
            reason.session_reason(),
            counters,
            crate::auth::now_unix(),
        )
        .await
    {
        tracing::warn!(target: "relay", error = %err, "cannot close relay session row");
    }
}
