//! Request bodies at the edge of the API port: a body over [`BODY_LIMIT`] is refused from its
//! `Content-Length` before a byte of it is buffered, and a request that carried a body and is
//! refused (4xx) is answered with `Connection: close`, so a client never reuses a connection
//! whose unread body would be taken for its next request. The proxy route streams bodies of
//! any size to the home server and is exempt from the limit.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::BODY_LIMIT;
use super::error::ApiError;

/// Whether `path` is the relay's proxy route (`/api/v1/servers/{id}/proxy[/…]`).
#[must_use]
pub fn is_proxy_path(path: &str) -> bool {
    path.strip_prefix("/api/v1/servers/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, tail)| tail == "proxy" || tail.starts_with("proxy/"))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn has_body(headers: &HeaderMap) -> bool {
    declared_length(headers).is_some_and(|n| n > 0)
        || headers.contains_key(header::TRANSFER_ENCODING)
}

fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Middleware: the body limit from `Content-Length`, and `Connection: close` on refusals of
/// requests that carried a body.
pub async fn guard(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if !is_proxy_path(request.uri().path())
        && declared_length(headers).is_some_and(|n| n > BODY_LIMIT as u64)
    {
        return close(ApiError::PayloadTooLarge.into_response());
    }
    let carried_body = has_body(headers);
    let response = next.run(request).await;
    if carried_body && response.status().is_client_error() {
        close(response)
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_are_recognised() {
        assert!(is_proxy_path("/api/v1/servers/abc/proxy"));
        assert!(is_proxy_path("/api/v1/servers/abc/proxy/web/index.html"));
        assert!(!is_proxy_path("/api/v1/servers/abc/proxyx"));
        assert!(!is_proxy_path("/api/v1/servers/abc/heartbeat"));
        assert!(!is_proxy_path("/api/v1/servers/proxy"));
    }
}
