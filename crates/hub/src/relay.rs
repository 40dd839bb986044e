//! The two WebSocket listeners (tunnel 8802, client mounts 8803).
//!
//! The relay data plane is not part of this build: both listeners are bound (so health,
//! firewalls and process supervisors see the final layout) and answer a WebSocket upgrade by
//! closing it at once with code 1013 "try again later"; plain HTTP gets 426 JSON.

use axum::Router;
use axum::extract::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;

/// Router for a relay listener whose data plane is not available yet.
pub fn placeholder_router(listener: &'static str) -> Router {
    Router::new().fallback(
        move |upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>| async move {
            answer(listener, upgrade.ok())
        },
    )
}

fn answer(listener: &'static str, upgrade: Option<WebSocketUpgrade>) -> Response {
    match upgrade {
        Some(upgrade) => upgrade.on_upgrade(move |mut socket| async move {
            let frame = CloseFrame {
                code: close_code::AGAIN,
                reason: "relay not available in this build".into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
            tracing::debug!(listener, "closed a relay upgrade: data plane not available");
        }),
        None => (
            StatusCode::UPGRADE_REQUIRED,
            axum::Json(ErrorBody {
                error: "UPGRADE_REQUIRED".into(),
                code: Some("relay.websocket_required".into()),
                message: Some(format!("the {listener} listener only speaks WebSocket")),
            }),
        )
            .into_response(),
    }
}
