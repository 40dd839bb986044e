//! The JSON API on the HTTP listener (port 8800): one router, one error type, JSON everywhere.

pub mod auth;
pub mod error;
pub mod extract;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// Largest JSON body any API endpoint accepts.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The full HTTP router: API, health, and JSON answers for unknown paths and methods.
pub fn router(state: AppState) -> Router {
    let auth = Router::new()
        .route("/register", post(auth::register))
        .route("/signup", post(auth::register))
        .route("/login", post(auth::login))
        .route("/refresh", post(auth::refresh))
        .route("/logout", post(auth::logout))
        .route("/me", get(auth::me));
    let api = Router::new()
        .nest("/auth", auth)
        .route("/me", get(auth::me));
    Router::new()
        .route("/health", get(crate::health::handler))
        .nest("/api/v1", api)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .with_state(state)
}
