//! `GET /health` (SPEC 0): the start-up step, ready, or degraded with its issues.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use std::sync::atomic::Ordering;

use crate::domain::health::HealthState;
use crate::http::conn::Connections;
use crate::http::state::AppState;

/// Open connections against the descriptor limit.
#[derive(Serialize, ToSchema)]
struct Pressure {
    open: u64,
    fd_limit: u64,
    refused_per_ip: u64,
    timed_out: u64,
}

impl Pressure {
    fn of(connections: &Connections) -> Self {
        let all = [
            connections.http.snapshot(),
            connections.tunnel.snapshot(),
            connections.client.snapshot(),
        ];
        Self {
            open: all.iter().map(|s| s.open).sum(),
            fd_limit: connections.fd_limit.load(Ordering::Relaxed),
            refused_per_ip: all.iter().map(|s| s.refused_per_ip).sum(),
            timed_out: all.iter().map(|s| s.timed_out).sum(),
        }
    }
}

/// The hub's state: `starting` (with the start-up step), `ok`, or `degraded` (with its issues).
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
enum HealthBody<'a> {
    Starting {
        step: &'static str,
    },
    Ok {
        version: &'static str,
        store: &'a str,
        /// Accepted-connection pressure (ours): open connections of the three listeners
        /// against the process's file-descriptor limit.
        connections: Pressure,
    },
    Degraded {
        issues: Vec<String>,
    },
    /// The node is leaving the cluster (SIGTERM): in-flight requests finish, new ones belong
    /// on another node.
    Draining,
}

/// `GET /health`: 200 `ok` only when ready; 503 `starting` with the step, or `degraded` with
/// the issues.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "meta",
    summary = "Liveness and readiness (SPEC 0)",
    description = "Answers from the first moment of start-up. 200 only when the hub is ready.",
    responses(
        (status = 200, description = "`ok`: ready", body = HealthBody,
            example = json!({"status": "ok", "version": "0.1.0", "store": "sqlite",
                "connections": {"open": 3, "fd_limit": 65536, "refused_per_ip": 0, "timed_out": 0}})),
        (status = 503, description = "`starting` (with the start-up step), `degraded` (with \
            its issues: database unreachable, TLS certificate expiring) or `draining` (a \
            cluster node leaving after SIGTERM)", body = HealthBody,
            example = json!({"status": "starting", "step": "run-migrations"})),
    )
)]
pub async fn handler(State(state): State<AppState>) -> Response {
    let backend = state.config().database.backend();
    match state.health().get() {
        HealthState::Starting(step) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthBody::Starting { step }),
        )
            .into_response(),
        HealthState::Ready if tls_issue(&state).is_some() => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthBody::Degraded {
                issues: tls_issue(&state).into_iter().collect(),
            }),
        )
            .into_response(),
        HealthState::Ready => (
            StatusCode::OK,
            axum::Json(HealthBody::Ok {
                version: env!("CARGO_PKG_VERSION"),
                store: backend,
                connections: Pressure::of(state.connections()),
            }),
        )
            .into_response(),
        HealthState::Degraded(issues) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthBody::Degraded { issues }),
        )
            .into_response(),
        HealthState::Draining => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthBody::Draining),
        )
            .into_response(),
    }
}

/// A TLS certificate about to expire (or not obtained yet) degrades the hub (issue #17).
fn tls_issue(state: &AppState) -> Option<String> {
    let tls = state.connections().tls.get()?;
    tls.issue(time::OffsetDateTime::now_utc().unix_timestamp())
}
