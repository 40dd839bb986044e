//! What every HTTP surface shares (the JSON API, the pages, the relay's HTTP answers): the
//! error type and its JSON mapping ([`error`]), the extractors ([`extract`]), the session
//! cookies ([`cookies`]), the application state ([`state`]), redirects and percent-encoding.
//! This layer imports only the domain and the foundation below it.

pub mod body;
pub mod conn;
pub mod cookies;
pub mod doc;
pub mod error;
pub mod extract;
pub mod forwarded;
pub mod maintenance;
pub mod redact;
pub mod state;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use phlix_common::percent_encode;

/// Largest JSON body any API endpoint accepts.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The security headers of an HTML page (the web UI's and the API docs'): its content
/// security policy, no MIME sniffing, same-origin referrers, no framing.
pub fn page_security_headers(headers: &mut axum::http::HeaderMap, csp: &'static str) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// `302 Found` to a local path: the PHP hub's redirects are 302 (SPEC E.1, E.2). Form posts
/// answer `303 See Other` instead.
#[must_use]
pub fn found(target: &str) -> Response {
    match HeaderValue::from_str(target) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        // Only our own percent-encoded paths get here; never answer a bare error.
        Err(_) => (
            StatusCode::FOUND,
            [(header::LOCATION, HeaderValue::from_static("/app/servers"))],
        )
            .into_response(),
    }
}
