//! The client's address and scheme as the hub believes them: the TCP peer, unless the peer is
//! a trusted reverse proxy (`--trusted-proxies`), in which case `X-Forwarded-For` (walked
//! from the right, skipping trusted hops) and `X-Forwarded-Proto` name them. Every caller that
//! needs "the client's IP" — rate limits, audit rows, the relay's connect throttles, the
//! loopback gate of `/metrics`, `X-Forwarded-For` towards the home server — reads
//! [`ClientAddr`], which the accept loop computes once per request with [`client_addr`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::config::edge::TrustedProxies;

/// Who sent the request, after the proxy rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    pub ip: IpAddr,
    /// The client reached the hub over TLS (its own listener's, or the proxy's).
    pub https: bool,
}

/// The client of a request that arrived from `peer` over a connection that is (`tls`) or is
/// not TLS. Forwarding headers from a peer outside `proxies` are ignored.
#[must_use]
pub fn client_addr(
    peer: SocketAddr,
    headers: &HeaderMap,
    tls: bool,
    proxies: &TrustedProxies,
) -> ClientAddr {
    let peer_ip = peer.ip().to_canonical();
    if proxies.is_empty() || !proxies.contains(peer_ip) {
        return ClientAddr {
            ip: peer_ip,
            https: tls,
        };
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut ip = peer_ip;
    for hop in hops.iter().rev() {
        // A hop we cannot read ends what we can believe: the last trusted hop added it.
        let Some(hop) = parse_hop(hop) else { break };
        ip = hop;
        if !proxies.contains(hop) {
            break;
        }
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map_or(tls, |proto| proto.trim().eq_ignore_ascii_case("https"));
    ClientAddr { ip, https }
}

/// `1.2.3.4`, `::1`, `1.2.3.4:5678`, `[::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(addr) = parts.extensions.get::<Self>() {
            return Ok(*addr);
        }
        // Routers served without the accept loop (unit tests): the peer, if known.
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(Self { ip, https: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let from_proxy = client_addr("127.0.0.1:5000".parse().unwrap(), &h, false, &proxies);
        assert_eq!(from_proxy.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(from_proxy.https);
        let direct = client_addr("198.51.100.7:5000".parse().unwrap(), &h, false, &proxies);
        assert_eq!(direct.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert!(!direct.https);
        let untrusting = client_addr(
            "127.0.0.1:5000".parse().unwrap(),
            &h,
            true,
            &TrustedProxies::default(),
        );
        assert_eq!(untrusting.ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(untrusting.https);
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        let kept = client_addr("127.0.0.1:1".parse().unwrap(), &garbage, false, &proxies);
        assert_eq!(kept.ip, "127.0.0.1".parse::<IpAddr>().unwrap());
    }
}
