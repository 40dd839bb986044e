//! The stylesheet and script, embedded in the binary and served with a content hash: pages link
//! `/app/assets/app.css?v=<hash>`, so a browser may cache them for a year.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// `app.css`.
pub const CSS: &str = include_str!("../../assets/app.css");
/// `app.js`.
pub const JS: &str = include_str!("../../assets/app.js");

/// First 12 hex digits of the SHA-256 of both files: changes with every edit.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    hash.update(CSS.as_bytes());
    hash.update(JS.as_bytes());
    hex::encode(hash.finalize())[..12].to_owned()
});

/// `GET /app/assets/{file}`.
pub async fn serve(
    crate::http::extract::Path(file): crate::http::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let (body, content_type) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return crate::http::error::ApiError::not_found("not_found").into_response(),
    };
    let etag = format!("\"{}\"", *VERSION);
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    response
}
