//! `GET /metrics` (SPEC J.3): relay gauges and counters in the Prometheus text format.
//!
//! Served on the HTTP listener but only to loopback peers or admins, so metrics are never
//! public by accident.

use std::fmt::Write as _;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::http::conn::{ConnSnapshot, Connections};
use crate::http::error::ApiError;
use crate::http::extract::{AdminUser, Ready};
use crate::http::state::AppState;

/// The metrics text of this node.
#[must_use]
pub fn render(
    core: &crate::domain::Core,
    connections: &Connections,
    webhook_queue: (i64, i64),
) -> String {
    let relay = &core.relay;
    let stats = relay.stats();
    let (mut live_in, mut live_out) = (0u64, 0u64);
    for tunnel in relay.tunnels() {
        live_in += tunnel.counters.bytes_in.load(Ordering::Relaxed);
        live_out += tunnel.counters.bytes_out.load(Ordering::Relaxed);
    }
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "phlix_relay_tunnels_open",
        "gauge",
        "Server tunnels open on this node.",
        stats.tunnels_open.load(Ordering::Relaxed),
    );
    metric(
        "phlix_cluster_leader",
        "gauge",
        "1 while this node runs the cluster's chores (always 1 on a single node).",
        u64::from(core.cluster.is_leader()),
    );
    metric(
        "phlix_reaper_runs_total",
        "counter",
        "Reaper and clean-up passes this node ran.",
        core.cluster.reaper_runs(),
    );
    metric(
        "phlix_relay_clients_mounted",
        "gauge",
        "Client mounts open on this node.",
        stats.clients_mounted.load(Ordering::Relaxed),
    );
    metric(
        "phlix_relay_http_in_flight",
        "gauge",
        "HTTP-over-relay requests in flight.",
        stats.http_in_flight.load(Ordering::Relaxed),
    );
    metric(
        "phlix_relay_bytes_in_total",
        "counter",
        "Bytes received from servers over tunnels.",
        stats.bytes_in.load(Ordering::Relaxed) + live_in,
    );
    metric(
        "phlix_relay_bytes_out_total",
        "counter",
        "Bytes sent to servers over tunnels.",
        stats.bytes_out.load(Ordering::Relaxed) + live_out,
    );
    metric(
        "phlix_relay_frames_dropped_total",
        "counter",
        "Relay frames dropped (unknown channel or request, slow client).",
        stats.frames_dropped.load(Ordering::Relaxed),
    );
    let listeners = [
        ("http", connections.http.snapshot()),
        ("tunnel", connections.tunnel.snapshot()),
        ("client", connections.client.snapshot()),
    ];
    let mut family = |name: &str, kind: &str, help: &str, value: fn(&ConnSnapshot) -> u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (listener, snapshot) in &listeners {
            let _ = writeln!(out, "{name}{{listener=\"{listener}\"}} {}", value(snapshot));
        }
    };
    family(
        "phlix_connections_open",
        "gauge",
        "Connections open, by listener.",
        |s| s.open,
    );
    family(
        "phlix_connections_accepted_total",
        "counter",
        "Connections accepted, by listener.",
        |s| s.accepted,
    );
    family(
        "phlix_connections_refused_per_ip_total",
        "counter",
        "Connections refused because their address had too many open.",
        |s| s.refused_per_ip,
    );
    family(
        "phlix_connections_timed_out_total",
        "counter",
        "Connections closed by the header-read or idle timeout.",
        |s| s.timed_out,
    );
    family(
        "phlix_accept_errors_total",
        "counter",
        "accept() failures (such as running out of file descriptors).",
        |s| s.accept_errors,
    );
    let _ = writeln!(
        out,
        "# HELP phlix_fd_limit The soft RLIMIT_NOFILE of the process.\n# TYPE phlix_fd_limit gauge\nphlix_fd_limit {}",
        connections.fd_limit.load(Ordering::Relaxed)
    );
    if let Some(tls) = connections.tls.get() {
        let expiry = tls.certs().not_after().unwrap_or(0);
        let _ = writeln!(
            out,
            "# HELP phlix_tls_certificate_not_after_seconds Expiry of the served certificate (unix time; 0 = none yet).\n# TYPE phlix_tls_certificate_not_after_seconds gauge\nphlix_tls_certificate_not_after_seconds {expiry}"
        );
        for (name, help, value) in [
            (
                "phlix_tls_certificate_reloads_total",
                "Certificates installed after start (file reloads, ACME issues and renewals).",
                &tls.stats.reloads,
            ),
            (
                "phlix_tls_certificate_reload_failures_total",
                "Certificate files that changed but did not load.",
                &tls.stats.reload_failures,
            ),
            (
                "phlix_tls_handshake_failures_total",
                "TLS handshakes that failed or timed out (garbage, plain HTTP, refused certificate).",
                &tls.stats.handshake_failures,
            ),
            (
                "phlix_acme_failures_total",
                "ACME certificate requests that failed.",
                &tls.stats.acme_failures,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
    }
    let hooks = &core.webhooks.stats;
    let _ = writeln!(
        out,
        "# HELP phlix_webhook_deliveries_total Webhook attempts by outcome on this node.\n# TYPE phlix_webhook_deliveries_total counter"
    );
    for (outcome, n) in [
        ("delivered", &hooks.delivered),
        ("retried", &hooks.retried),
        ("failed", &hooks.failed),
    ] {
        let _ = writeln!(
            out,
            "phlix_webhook_deliveries_total{{outcome=\"{outcome}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP phlix_webhook_queue_depth Webhook deliveries waiting (all nodes).\n# TYPE phlix_webhook_queue_depth gauge\nphlix_webhook_queue_depth {}\n# HELP phlix_webhook_oldest_pending_seconds Age of the oldest waiting delivery.\n# TYPE phlix_webhook_oldest_pending_seconds gauge\nphlix_webhook_oldest_pending_seconds {}",
        webhook_queue.0, webhook_queue.1
    );
    let _ = writeln!(
        out,
        "# HELP phlix_webhook_first_attempt_seconds From an event's commit to its first delivery attempt.\n# TYPE phlix_webhook_first_attempt_seconds histogram"
    );
    let mut cumulative = 0;
    for (i, bound) in crate::domain::webhooks::LATENCY_BUCKETS_MS
        .iter()
        .enumerate()
    {
        cumulative += hooks.first_attempt[i].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "phlix_webhook_first_attempt_seconds_bucket{{le=\"{}\"}} {cumulative}",
            *bound as f64 / 1000.0
        );
    }
    cumulative += hooks.first_attempt[9].load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "phlix_webhook_first_attempt_seconds_bucket{{le=\"+Inf\"}} {cumulative}\nphlix_webhook_first_attempt_seconds_sum {}\nphlix_webhook_first_attempt_seconds_count {cumulative}",
        hooks.first_attempt_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "# HELP phlix_relay_tunnel_closes_total Tunnel closes by reason.\n# TYPE phlix_relay_tunnel_closes_total counter"
    );
    let closes = stats.closes.lock().unwrap_or_else(PoisonError::into_inner);
    let mut reasons: Vec<_> = closes.iter().collect();
    reasons.sort();
    for (reason, count) in reasons {
        let _ = writeln!(
            out,
            "phlix_relay_tunnel_closes_total{{reason=\"{reason}\"}} {count}"
        );
    }
    out
}

/// `GET /metrics` for loopback peers.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "meta",
    summary = "Relay, connection, TLS and webhook metrics (SPEC J.3), Prometheus text format",
    description = "Only for loopback peers (the client behind trusted proxies counts) and \
        admins.",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4",
            content_type = "text/plain", body = String),
        (status = 403, description = "`metrics.loopback_or_admin_only`", body = phlix_proto::ErrorBody),
    ),
    security((), ("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn loopback(
    Ready(core): Ready,
    State(state): State<AppState>,
    client: crate::http::forwarded::ClientAddr,
    admin: Result<AdminUser, ApiError>,
) -> Response {
    // The client behind a trusted proxy, so a proxy on loopback does not open the metrics.
    if !client.ip.is_loopback() && admin.is_err() {
        return ApiError::forbidden("metrics.loopback_or_admin_only").into_response();
    }
    let queue = crate::domain::webhooks::queue(&core)
        .await
        .unwrap_or_default();
    let mut response = render(&core, state.connections(), queue).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
