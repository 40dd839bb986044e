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
        .is_some_and(|(id, tail)| !id.is_empty() && (tail == "proxy" || tail.starts_with("proxy/")))
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

/// Whether the request announces a body (a `Content-Length` above 0, or chunked).
#[must_use]
pub fn has_body(headers: &HeaderMap) -> bool {
    declared_length(headers).is_some_and(|n| n > 0)
        || headers.contains_key(header::TRANSFER_ENCODING)
}

/// [`guard`]'s rule for the requests served before it (the relay's entry points,
/// `relay::route::ingress`): a 4xx answer to a request that carried a body closes the
/// connection.
#[must_use]
pub fn close_if_refused(carried_body: bool, response: Response) -> Response {
    if carried_body && response.status().is_client_error() {
        close(response)
    } else {
        response
    }
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
    close_if_refused(carried_body, next.run(request).await)
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
        assert!(!is_proxy_path("/api/v1/servers//proxy/x"));
    }
}
