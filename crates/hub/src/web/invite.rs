//! `/app/invite/{token}`: invite links are not built yet; the page says so.

use axum::http::StatusCode;
use axum::response::Response;

use super::layout::*;
use super::session::Viewer;
use crate::http::extract::Path;

/// `GET /app/invite/{token}`: invite links are not available on this hub yet.
pub async fn invite(viewer: Viewer, Path(_token): Path<String>) -> Response {
    viewer_error(
        &viewer,
        StatusCode::NOT_FOUND,
        "Invite not available",
        "This hub does not support invite links yet, so this link cannot be used. Ask the person who sent it to share the library with your account instead.",
    )
}
