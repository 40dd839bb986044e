//! `GET /health` (SPEC 0): the start-up step, ready, or degraded with its issues.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::health::HealthState;
use crate::http::state::AppState;

#[derive(Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum HealthBody<'a> {
    Starting {
        step: &'static str,
    },
    Ok {
        version: &'static str,
        store: &'a str,
    },
    Degraded {
        issues: Vec<String>,
    },
}

/// `GET /health`: 200 `ok` only when ready; 503 `starting` with the step, or `degraded` with
/// the issues.
pub async fn handler(State(state): State<AppState>) -> Response {
    let backend = state.config().database.backend();
    match state.health().get() {
        HealthState::Starting(step) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthBody::Starting { step }),
        )
            .into_response(),
        HealthState::Ready => (
            StatusCode::OK,
            axum::Json(HealthBody::Ok {
                version: env!("CARGO_PKG_VERSION"),
                store: backend,
            }),
        )
            .into_response(),
        HealthState::Degraded(issues) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthBody::Degraded { issues }),
        )
            .into_response(),
    }
}
