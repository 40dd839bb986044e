//! The composition root: the HTTP router of the API port ([`app_router`]), start-up, serving,
//! background loops and graceful shutdown of the hub.
//!
//! [`launch`] takes already-bound listeners (tests bind `127.0.0.1:0`) and a cancellation
//! token. The HTTP listener serves `/health` from the first moment, so a supervisor can watch
//! the start-up steps; every other route answers 503 until the store is migrated and the keys
//! are loaded.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use std::sync::Arc;

use crate::auth::keys::KeyStore;
use crate::auth::password::PasswordHasherPool;
use crate::auth::session::SessionKeys;
use crate::config::Config;
use crate::domain::events::{EventBus, HubEvent};
use crate::domain::health::{Health, HealthState};
use crate::domain::heartbeats::HeartbeatSink;
use crate::domain::tunnels::Relay;
use crate::domain::{Core, Limits};
use crate::http::BODY_LIMIT;
use crate::http::error::{self};
use crate::http::state::AppState;
use crate::store::{Store, StoreError};

/// How long shutdown waits for in-flight requests before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// A listener to serve on: already bound, or an address to bind during start-up.
#[derive(Debug)]
pub enum Bind {
    Bound(TcpListener),
    Addr(SocketAddr),
}

impl Bind {
    async fn into_listener(self, what: &str) -> anyhow::Result<TcpListener> {
        match self {
            Self::Bound(listener) => Ok(listener),
            Self::Addr(addr) => TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind the {what} listener on {addr}")),
        }
    }
}

/// The three listeners of a hub.
#[derive(Debug)]
pub struct Listeners {
    /// JSON API, web UI and HTTP proxy; must be bound before launch so `/health` answers at once.
    pub http: TcpListener,
    /// Server → hub tunnels.
    pub tunnel: Bind,
    /// Remote client mounts.
    pub client: Bind,
}

fn serve(
    tracker: &TaskTracker,
    listener: TcpListener,
    router: Router,
    state: &AppState,
    shutdown: CancellationToken,
    name: &'static str,
) {
    let connections = state.connections();
    let (stats, idle) = match name {
        // Only the API port gets the idle timeout: tunnels and client mounts keep their own
        // liveness rules (SPEC B.3, L) once upgraded.
        "http" => (&connections.http, Some(state.config().connections.idle)),
        "tunnel" => (&connections.tunnel, None),
        "cluster" => (&connections.cluster, None),
        _ => (&connections.client, None),
    };
    let mut limits = state.config().connections;
    // The cluster listener's clients are the other nodes: plain HTTP, every connection of
    // theirs welcome (they carry many users' requests).
    let tls = if name == "cluster" {
        limits.per_ip = 0;
        None
    } else {
        connections.tls.get().cloned()
    };
    let front = crate::http::conn::Front {
        acceptor: tls.as_ref().map(|tls| {
            if name == "http" {
                tls.api_acceptor()
            } else {
                tls.ws_acceptor()
            }
        }),
        tls,
        proxies: Arc::new(state.config().edge.trusted_proxies.clone()),
    };
    tracker.spawn(crate::http::conn::serve(
        listener,
        router,
        limits,
        idle,
        Arc::clone(stats),
        front,
        shutdown,
        name,
    ));
}

/// Middleware: the PHP hub registers no HEAD routes, so HEAD to any of its paths is 404 (SPEC
/// E.1) — axum would otherwise answer HEAD wherever GET exists. The relay's proxy route keeps
/// HEAD (an upstream behind the `all` policy may need it); subdomain ingress runs before this.
async fn no_head(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let proxied = crate::http::body::is_proxy_path(request.uri().path());
    if request.method() == axum::http::Method::HEAD && !proxied {
        return axum::response::IntoResponse::into_response(error::ApiError::not_found(
            "not_found",
        ));
    }
    next.run(request).await
}

/// The whole HTTP router of the API port: the JSON API, the relay's proxy route, the pages,
/// JSON answers for unknown paths and methods, and the layers every request passes.
pub fn app_router(state: AppState) -> Router {
    let (documented, _) = crate::openapi::routes().split_for_parts();
    documented
        .merge(crate::openapi::docs())
        .merge(crate::api::mcp::router(&state))
        .merge(crate::web::router(state.clone()))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(no_head))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::maintenance::gate,
        ))
        .layer(axum::middleware::from_fn(crate::http::body::guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::relay::route::ingress,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(
            // The default span logs the whole URI: `?token=` of the proxy route, claim ids.
            |request: &axum::http::Request<axum::body::Body>| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    uri = %crate::http::redact::uri_for_log(request.uri()),
                    version = ?request.version(),
                )
            },
        ))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .with_state(state)
}

/// Retries `op` with capped exponential back-off until it succeeds, fails with a
/// non-transient error, or shutdown is requested (`Ok(None)`).
async fn retry_unavailable<T, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut op: F,
) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(250);
    loop {
        match op().await {
            Ok(value) => return Ok(Some(value)),
            Err(StoreError::Unavailable(err)) => {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis(), "{what}: database unavailable; retrying");
            }
            Err(err) => return Err(anyhow::Error::new(err).context(what.to_owned())),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Runs the hub until `shutdown` is cancelled, then stops gracefully.
///
/// # Errors
/// A fatal start-up failure (a migration that does not apply, a relay address that cannot be
/// bound). An unreachable database is not fatal: start-up waits for it.
pub async fn launch(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    launch_with(
        AppState::new(config, Health::default()),
        listeners,
        shutdown,
    )
    .await
}

/// [`launch`] on a state the caller made, so an in-process caller (a bench) reaches the
/// [`Core`] through [`AppState::core`] once the hub is ready.
///
/// # Errors
/// As [`launch`].
pub async fn launch_with(
    state: AppState,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = state.config().clone();
    let health = state.health().clone();
    // A missing, unreadable or mismatched certificate pair stops the start here.
    let tls = crate::tls::Tls::new(&config)?;
    // `shutdown` (SIGTERM, a test) starts the leave; `stop` ends everything once the node has
    // left; `accept` stops the public listeners first (a cluster node keeps its tunnels and
    // its cluster listener while its tunnels move to other nodes).
    let stop = CancellationToken::new();
    let accept = stop.child_token();
    let tracker = TaskTracker::new();
    if let Some(tls) = tls {
        let _ = state.connections().tls.set(Arc::clone(&tls));
        tracing::info!(tls = ?tls, "serving TLS on the API, tunnel and client ports");
        tracker.spawn(tls.run(shutdown.clone()));
    }
    if let Some(limit) = crate::http::conn::raise_fd_limit() {
        tracing::info!(fd_limit = limit, "file-descriptor limit");
        state
            .connections()
            .fd_limit
            .store(limit, std::sync::atomic::Ordering::Relaxed);
    }
    tracing::info!(
        http = %listeners.http.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()),
        store = config.database.backend(),
        data_dir = %config.data_dir.display(),
        "phlix-hub {} starting",
        env!("CARGO_PKG_VERSION")
    );
    serve(
        &tracker,
        listeners.http,
        app_router(state.clone()),
        &state,
        accept.clone(),
        "http",
    );

    let tokens = Tokens {
        shutdown: shutdown.clone(),
        stop: stop.clone(),
        accept,
    };
    let result = start(
        &config,
        listeners.tunnel,
        listeners.client,
        &state,
        &health,
        &tracker,
        &tokens,
    )
    .await;
    match &result {
        Ok(Some(_)) => {}
        Ok(None) => tracing::info!("shutdown requested during start-up"),
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "start-up failed");
            stop.cancel();
        }
    }
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = stop.cancelled() => {}
    }
    if let Some(core) = state.core()
        && core.cluster.enabled()
        && !stop.is_cancelled()
    {
        leave(&core, &health, &tokens).await;
    }
    stop.cancel();
    tracing::info!("shutting down");
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "some connections did not finish within {} s; closing them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    if let Some(core) = state.core() {
        flush_usage(&core, crate::auth::now_unix()).await;
        // Tunnels close on the same token; let them record their sessions before the pool goes.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while core
            .relay
            .stats()
            .tunnels_open
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    if let Ok(Some(store)) = &result {
        store.close().await;
    }
    tracing::info!("stopped");
    result.map(|_| ())
}

/// The cancellation tokens of one hub process.
struct Tokens {
    /// Asked from outside: start leaving.
    shutdown: CancellationToken,
    /// Everything ends.
    stop: CancellationToken,
    /// The public listeners stop accepting (a child of `stop`).
    accept: CancellationToken,
}

/// A cluster node's graceful leave (issue #19): `/health` says `draining` so the load balancer
/// sends nothing new, the public listeners stop accepting, relayed requests in flight finish
/// (within the drain grace), then the tunnels close with 1001 so their servers reconnect —
/// through the load balancer, to another node — while other nodes hold the requests for them
/// until they reopen there.
async fn leave(core: &Core, health: &Health, tokens: &Tokens) {
    let started = tokio::time::Instant::now();
    tracing::info!(node = %core.cluster.node(), "leaving the cluster: draining");
    health.set(HealthState::Draining);
    crate::domain::cluster::begin_leave(core).await;
    // One health-check interval of a typical balancer to notice before connections are refused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokens.accept.cancel();
    let grace = core.relay.drain_grace();
    let in_flight = || {
        core.relay
            .stats()
            .http_in_flight
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    while in_flight() > 0 && started.elapsed() < grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let servers = core.relay.close_all_for_leave();
    let deadline = tokio::time::Instant::now() + crate::domain::cluster::HOLD_FOR_MOVE;
    while !servers.is_empty()
        && !crate::domain::cluster::tunnels_moved(core, &servers).await
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    crate::domain::cluster::finish_leave(core).await;
    tracing::info!(
        node = %core.cluster.node(),
        tunnels = servers.len(),
        took_ms = started.elapsed().as_millis(),
        "left the cluster"
    );
}

async fn start(
    config: &Config,
    tunnel: Bind,
    client: Bind,
    state: &AppState,
    health: &Health,
    tracker: &TaskTracker,
    tokens: &Tokens,
) -> anyhow::Result<Option<Store>> {
    let shutdown = &tokens.shutdown;
    health.set(HealthState::Starting("open-store"));
    let Some(store) =
        retry_unavailable("open-store", shutdown, || Store::connect(&config.database)).await?
    else {
        return Ok(None);
    };
    health.set(HealthState::Starting("run-migrations"));
    if retry_unavailable("run-migrations", shutdown, || store.migrate())
        .await?
        .is_none()
    {
        return Ok(Some(store));
    }
    health.set(HealthState::Starting("load-keys"));
    let sessions = SessionKeys::new(&config.jwt_secret);
    let keys = KeyStore::load(&config.data_dir)?;
    tracing::info!(kid = %keys.current().current().kid, "hub signing key loaded");
    health.set(HealthState::Starting("bind-listeners"));
    let tunnel = tunnel.into_listener("tunnel").await?;
    let client = client.into_listener("client").await?;
    let (tunnel_port, client_port) = (tunnel.local_addr()?.port(), client.local_addr()?.port());
    tracing::info!(
        tunnel = %tunnel.local_addr()?, client = %client.local_addr()?,
        "relay listeners bound"
    );
    let cluster_listener =
        match &config.cluster {
            Some(cluster) => Some(TcpListener::bind(cluster.addr).await.with_context(|| {
                format!("cannot bind the cluster listener on {}", cluster.addr)
            })?),
            None => None,
        };
    let relay = Relay::new(
        config.node_name.clone(),
        config.relay_timers,
        tokens.stop.clone(),
    );
    match store
        .reconcile_relay_sessions(relay.node(), crate::auth::now_unix())
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            sessions = n,
            "closed relay sessions left open by a previous run"
        ),
        Err(err) => tracing::warn!(error = %err, "cannot reconcile relay sessions"),
    }
    let events = EventBus::new();
    let core = Core {
        config: Arc::new(config.clone()),
        store: store.clone(),
        sessions,
        passwords: PasswordHasherPool::default(),
        keys,
        heartbeats: HeartbeatSink::spawn(store.clone(), events.clone(), shutdown.clone(), tracker),
        events,
        access: Arc::default(),
        limits: Arc::new(Limits::new(config)),
        relay,
        tunnel_port,
        client_port,
        webhooks: Arc::new(crate::domain::webhooks::Webhooks::new(
            crate::domain::webhooks::DeliveryConfig {
                schedule: config.webhook_retry_schedule.clone(),
                allow_private: config.webhook_allow_private,
            },
        )),
        arrs: Arc::new(crate::domain::requests::Arrs::new(config.arr_timeout)?),
        maintenance: Arc::default(),
        cluster: crate::domain::cluster::Cluster::new(&config.node_name, config.cluster.clone()),
    };
    crate::domain::cluster::register(&core).await?;
    crate::domain::cluster::attach_events(&core);
    crate::domain::cluster::spawn(&core, &tokens.stop, tracker);
    let shutdown = &tokens.stop;
    crate::domain::webhooks::spawn(&core, shutdown, tracker);
    if let Err(err) = crate::domain::settings::apply_live(&core).await {
        tracing::warn!(error = %err, "cannot read the live settings");
    }
    state.set_ready(core.clone());
    serve(
        tracker,
        tunnel,
        crate::relay::tunnel::router(state.clone()),
        state,
        tokens.accept.clone(),
        "tunnel",
    );
    serve(
        tracker,
        client,
        crate::relay::client::router(state.clone()),
        state,
        tokens.accept.clone(),
        "client",
    );
    if let Some(listener) = cluster_listener {
        tracing::info!(cluster = %listener.local_addr()?, "cluster listener bound");
        serve(
            tracker,
            listener,
            crate::relay::cluster::router(
                state.clone(),
                crate::relay::client::router(state.clone()),
            ),
            state,
            tokens.stop.clone(),
            "cluster",
        );
    }
    health.set(HealthState::Ready);
    tracker.spawn(crate::domain::health::probe_loop(
        store.clone(),
        health.clone(),
        config.health_interval,
        shutdown.clone(),
    ));
    tracker.spawn(crate::domain::shares::sweep_loop(
        core.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(crate::domain::console::stats_loop(
        core.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(crate::domain::requests::sync_loop(
        core.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(maintenance_loop(core, shutdown.clone()));
    tracing::info!("hub ready");
    Ok(Some(store))
}

/// The server reaper and clean-up (SPEC D): every `reaper_interval`, servers silent for
/// `offline_after` without an open tunnel go offline; heartbeat rows older than 7 days (and
/// beyond 100 per server) are deleted, as are expired claims, revocations and rate-limit
/// windows. The key files are re-read so a rotation takes effect without a restart. In a
/// cluster every node flushes its own counters and only the leader reaps and cleans up (and
/// forgets the tunnels of dead nodes).
async fn maintenance_loop(core: Core, shutdown: CancellationToken) {
    let offline_after = i64::try_from(core.config.offline_after.as_secs()).unwrap_or(180);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(core.config.reaper_interval) => {}
        }
        let now = crate::auth::now_unix();
        core.keys.reload_if_changed();
        if let Err(err) = crate::domain::settings::apply_live(&core).await {
            tracing::warn!(error = %err, "cannot read the live settings");
        }
        core.limits.heartbeat.prune(now);
        core.limits.jwks.prune(now);
        core.relay.prune_limits(now);
        flush_usage(&core, now).await;
        for tunnel in core.relay.tunnels() {
            let counters = &tunnel.counters;
            let flushed = crate::store::SessionCounters {
                bytes_in: i64::try_from(
                    counters.bytes_in.load(std::sync::atomic::Ordering::Relaxed),
                )
                .unwrap_or(i64::MAX),
                bytes_out: i64::try_from(
                    counters
                        .bytes_out
                        .load(std::sync::atomic::Ordering::Relaxed),
                )
                .unwrap_or(i64::MAX),
                last_frame_at: i64::try_from(
                    counters
                        .last_frame_at
                        .load(std::sync::atomic::Ordering::Relaxed),
                )
                .ok(),
            };
            if let Err(err) = core
                .store
                .flush_relay_session(&tunnel.session_id, flushed)
                .await
            {
                tracing::warn!(error = %err, "cannot flush relay counters");
            }
        }
        core.access.prune();
        // The rest is the cluster's, not this node's: one node (the leader) does it.
        if !core.cluster.is_leader() {
            continue;
        }
        core.cluster.count_reaper_run();
        crate::domain::cluster::expire_dead_nodes(&core, now).await;
        match core
            .store
            .reap_offline_servers(now - offline_after, now)
            .await
        {
            Ok(flipped) => {
                for (server_id, owner_id) in &flipped {
                    tracing::info!(%server_id, "server went offline");
                    core.events
                        .publish(HubEvent::status(owner_id, server_id, false, None));
                }
            }
            Err(err) => tracing::warn!(error = %err, "server reaper failed; will retry"),
        }
        // `server.metrics.retention_days` (SPEC H.3), 7 by default.
        let retention = crate::domain::settings::METRICS_RETENTION_DAYS
            .get(&core.store)
            .await
            .map_or(HEARTBEAT_RETENTION_SECS, |days| days * 86_400);
        let results = [
            core.store
                .prune_heartbeats(now - retention, HEARTBEATS_KEPT_PER_SERVER)
                .await,
            core.store.prune_claims(now).await,
            core.store.prune_revoked_refresh(now).await,
            core.store.prune_rate_limits(now).await,
        ];
        if let Some(Err(err)) = results.iter().find(|r| r.is_err()) {
            tracing::warn!(error = %err, "clean-up failed; will retry");
        }
    }
}

/// Writes the relay usage counted since the last flush into `relay_user_quotas`.
async fn flush_usage(core: &Core, now: i64) {
    let period = crate::store::period_start(now);
    for (user, bytes_in, bytes_out) in core.relay.drain_meters() {
        let (bytes_in, bytes_out) = (
            i64::try_from(bytes_in).unwrap_or(i64::MAX),
            i64::try_from(bytes_out).unwrap_or(i64::MAX),
        );
        let flushed = core
            .store
            .add_relay_usage(&user, &period, bytes_in, bytes_out, now)
            .await;
        core.access.forget_usage(&user);
        if let Err(err) = flushed {
            tracing::warn!(error = %err, "cannot flush relay usage; it is counted again next time");
            let meter = core.relay.meter(&user);
            meter.bytes_in.fetch_add(
                u64::try_from(bytes_in).unwrap_or(0),
                std::sync::atomic::Ordering::Relaxed,
            );
            meter.bytes_out.fetch_add(
                u64::try_from(bytes_out).unwrap_or(0),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }
}

/// Heartbeat rows are kept 7 days…
pub const HEARTBEAT_RETENTION_SECS: i64 = 7 * 86_400;
/// …and at most this many per server.
pub const HEARTBEATS_KEPT_PER_SERVER: i64 = 100;
