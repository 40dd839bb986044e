//! What of a request may reach a log: the path with secret segments hidden and the query with
//! the values of sensitive parameters hidden. A claim id (a bearer secret until the server has
//! polled, SPEC C.3), an invite token or a `?token=` of the proxy route never reaches a log.

use std::fmt::Write as _;

use axum::http::Uri;

/// Query parameters whose values are hidden: any name containing one of these (the list is
/// shared with the log ring's redaction, `crate::telemetry`).
const SENSITIVE_PARAMS: [&str; 12] = crate::telemetry::SENSITIVE_PARAMS;

/// Paths whose next segment is a secret (unless it is one of the listed literals).
const SECRET_SEGMENT_AFTER: [(&str, &[&str]); 4] = [
    ("/api/v1/server-claims/", &["new", "redeem"]),
    ("/invite/", &[]),
    ("/app/invite/", &[]),
    ("/api/v1/invites/", &[]),
];

/// The placeholder of a hidden value.
pub const REDACTED: &str = "<redacted>";

/// `uri` as it may be logged.
#[must_use]
pub fn uri_for_log(uri: &Uri) -> String {
    let mut out = path_for_log(uri.path());
    if let Some(query) = uri.query() {
        out.push('?');
        out.push_str(&query_for_log(query));
    }
    out
}

fn path_for_log(path: &str) -> String {
    for (prefix, literals) in SECRET_SEGMENT_AFTER {
        if let Some(rest) = path.strip_prefix(prefix) {
            let (segment, tail) = rest
                .split_once('/')
                .map_or((rest, None), |(s, t)| (s, Some(t)));
            if segment.is_empty() || literals.contains(&segment) {
                return path.to_owned();
            }
            let mut out = format!("{prefix}{REDACTED}");
            if let Some(tail) = tail {
                let _ = write!(out, "/{tail}");
            }
            return out;
        }
    }
    path.to_owned()
}

fn query_for_log(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let lower = name.to_ascii_lowercase();
            if pair.contains('=') && SENSITIVE_PARAMS.iter().any(|s| lower.contains(s)) {
                format!("{name}={REDACTED}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(uri: &str) -> String {
        uri_for_log(&uri.parse().unwrap())
    }

    #[test]
    fn sensitive_query_values_and_secret_segments_are_hidden() {
        assert_eq!(
            log("/api/v1/servers/s1/proxy/web?token=abc&x=1&api_key=k&SIG=z"),
            "/api/v1/servers/s1/proxy/web?token=<redacted>&x=1&api_key=<redacted>&SIG=<redacted>"
        );
        assert_eq!(
            log("/api/v1/server-claims/6f0e-claim-id"),
            "/api/v1/server-claims/<redacted>"
        );
        assert_eq!(
            log("/api/v1/server-claims/new"),
            "/api/v1/server-claims/new"
        );
        assert_eq!(
            log("/app/invite/0123abcd/accept?next=/x"),
            "/app/invite/<redacted>/accept?next=/x"
        );
        assert_eq!(log("/health?verbose"), "/health?verbose");
    }
}
