//! Node-to-node forwarding (issue #19): a client mount or an HTTP-over-relay request that
//! reaches a node without the server's tunnel is forwarded to the node that holds it, over that
//! node's cluster listener, and streams both ways from there.
//!
//! - **HTTP over the relay** (`/api/v1/servers/{id}/proxy/…`, subdomain ingress): the entry
//!   node authenticates the user (and checks the share) and forwards the request, body
//!   streamed, to `POST|GET|… /cluster/v1/relay/{id}` naming the user, the client's address and
//!   the home-server path; the holder applies the proxy policy, the rate limit and the quota
//!   and relays it — so throttles and bytes are accounted once, on the node that moves them.
//! - **Client mounts** (`/client/{id}`): the WebSocket upgrade goes to
//!   `/cluster/v1/client/{id}` unchanged (the relay token included); the holder authenticates
//!   and accepts it, and the two upgraded connections are spliced. The holder's liveness,
//!   throttle and cut rules apply as on a direct mount.
//!
//! Every request carries an HMAC-SHA256 signature (`domain::cluster::sign`) over its method,
//! target, origin node, time, nonce, client address, scheme, user and path; the cluster
//! listener refuses anything unsigned, stale or replayed with 401. The body is not signed:
//! keep the cluster listener on a private network.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use phlix_proto::ErrorBody;
use tower::ServiceExt as _;

use super::proxy::{ProxyError, ProxyRequest};
use crate::domain::Core;
use crate::domain::cluster::{Claims, Refusal};
use crate::http::extract::Ready;
use crate::http::forwarded::ClientAddr;
use crate::http::state::AppState;
use crate::store::OwnerRow;

const NODE: &str = "x-phlix-cluster-node";
const TIME: &str = "x-phlix-cluster-time";
const NONCE: &str = "x-phlix-cluster-nonce";
const CLIENT: &str = "x-phlix-cluster-client";
const PROTO: &str = "x-phlix-cluster-proto";
const USER: &str = "x-phlix-cluster-user";
const PATH: &str = "x-phlix-cluster-path";
const SIGNATURE: &str = "x-phlix-cluster-signature";

/// How long a forwarded request may wait for the holder's response head (longer than the
/// holder's own relay timeouts, which answer first).
const HEAD_TIMEOUT: Duration = Duration::from_secs(75);

/// Marks a request that came over the cluster listener: it is never forwarded again.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded;

/// Headers never passed between nodes (hop-by-hop, and the client's credentials for the
/// relay path, which the entry node already checked).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn client() -> &'static Client<HttpConnector, Body> {
    static CLIENT: OnceLock<Client<HttpConnector, Body>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector)
    })
}

/// The cluster listener's router: the two forwarding entry points, behind the signature check.
pub fn router(state: AppState, client_listener: Router) -> Router {
    Router::new()
        .route("/cluster/v1/relay/{server_id}", any(relay_in))
        // `/cluster/v1/client/{server_id}`, matched without a route parameter: the client
        // listener's own route extracts the id, and axum would hand it both.
        .fallback(move |ready: Ready, request: Request| {
            client_in(ready, client_listener.clone(), request)
        })
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

fn refused(why: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(ErrorBody {
            error: "Unauthorized".into(),
            code: Some("cluster.unauthorized".into()),
            message: Some(format!("node-to-node request refused: {why}")),
        }),
    )
        .into_response()
}

fn text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The verified claims of a request on the cluster listener, or why it is refused.
fn verify(core: &Core, request: &Request) -> Result<Claims, &'static str> {
    let Some(verifier) = core.cluster.verifier() else {
        return Err("this node is not in a cluster");
    };
    let headers = request.headers();
    let claims = Claims {
        method: request.method().as_str().to_owned(),
        target: request
            .uri()
            .path_and_query()
            .map_or_else(String::new, |pq| pq.as_str().to_owned()),
        node: text(headers, NODE),
        time: text(headers, TIME).parse().unwrap_or_default(),
        nonce: text(headers, NONCE),
        client: text(headers, CLIENT),
        proto: text(headers, PROTO),
        user: text(headers, USER),
        path: text(headers, PATH),
    };
    match verifier.check(&claims, &text(headers, SIGNATURE), crate::auth::now_unix()) {
        Ok(()) => Ok(claims),
        Err(refusal) => {
            let why = match refusal {
                Refusal::BadSignature => "bad signature",
                Refusal::Expired => "outside the time window",
                Refusal::Replayed => "replayed",
            };
            tracing::warn!(target: "relay", node = %claims.node, why, "node-to-node request refused");
            Err(why)
        }
    }
}

/// `ANY /cluster/v1/relay/{server_id}`: HTTP over this node's tunnel for a user another node
/// authenticated.
async fn relay_in(
    Ready(core): Ready,
    crate::http::extract::Path(server_id): crate::http::extract::Path<String>,
    request: Request,
) -> Response {
    let claims = match verify(&core, &request) {
        Ok(claims) => claims,
        Err(why) => return refused(why),
    };
    let Ok(client_ip) = claims.client.parse::<IpAddr>() else {
        return refused("no client address");
    };
    let server = match core.access.server(&core.store, &server_id).await {
        Ok(server) => server,
        Err(err) => return crate::http::error::ApiError::from(err).into_response(),
    };
    // The share may have ended since the entry node looked: check again, from the cache.
    let server = match crate::domain::shares::relay_server(&core, server, &claims.user).await {
        Ok(server) => server,
        Err(err) => return err.into_response(),
    };
    let (parts, body) = request.into_parts();
    let request = ProxyRequest {
        method: parts.method,
        path: claims.path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
        user_id: claims.user,
        client_ip: client_ip.to_string(),
        forwarded_proto: core.config.public_scheme(),
    };
    super::route::relay_request(&core, &server, request, true).await
}

/// `GET /cluster/v1/client/{server_id}`: a client mount another node received, handled by this
/// node's client listener as if the client had come here.
async fn client_in(Ready(core): Ready, listener: Router, request: Request) -> Response {
    if !request.uri().path().starts_with("/cluster/v1/client/") {
        return crate::http::error::ApiError::not_found("not_found").into_response();
    }
    let claims = match verify(&core, &request) {
        Ok(claims) => claims,
        Err(why) => return refused(why),
    };
    let Ok(ip) = claims.client.parse::<IpAddr>() else {
        return refused("no client address");
    };
    let (mut parts, body) = request.into_parts();
    let Some(server_id) = parts
        .uri
        .path()
        .strip_prefix("/cluster/v1/client/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
    else {
        return crate::http::error::ApiError::not_found("not_found").into_response();
    };
    let Ok(uri) = format!("/client/{server_id}").parse::<Uri>() else {
        return crate::http::error::ApiError::not_found("not_found").into_response();
    };
    parts.uri = uri;
    parts.extensions.insert(ClientAddr {
        ip,
        https: claims.proto == "https",
    });
    parts.extensions.insert(ConnectInfo(SocketAddr::new(ip, 0)));
    parts.extensions.insert(Forwarded);
    match listener.oneshot(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Signs `request` for `owner` as coming from this node on behalf of `client`.
fn sign(
    core: &Core,
    headers: &mut HeaderMap,
    method: &str,
    target: &str,
    client: ClientAddr,
    user: &str,
    path: &str,
) -> bool {
    let Some(secret) = core.cluster.secret() else {
        return false;
    };
    let claims = Claims {
        method: method.to_owned(),
        target: target.to_owned(),
        node: core.cluster.node().to_owned(),
        time: crate::auth::now_unix(),
        nonce: crate::domain::cluster::nonce(),
        client: client.ip.to_string(),
        proto: if client.https { "https" } else { "http" }.to_owned(),
        user: user.to_owned(),
        path: path.to_owned(),
    };
    let signature = crate::domain::cluster::sign(secret, &claims);
    for (name, value) in [
        (NODE, claims.node.as_str()),
        (TIME, &claims.time.to_string()),
        (NONCE, &claims.nonce),
        (CLIENT, &claims.client),
        (PROTO, &claims.proto),
        (USER, &claims.user),
        (PATH, &claims.path),
        (SIGNATURE, &signature),
    ] {
        let Ok(value) = HeaderValue::from_str(value) else {
            return false;
        };
        headers.insert(HeaderName::from_static(name), value);
    }
    true
}

/// The headers of a forwarded request: the client's, without hop-by-hop ones (but the upgrade
/// pair, for a mount) and without any `x-phlix-cluster-*` the client made up.
fn pass_headers(headers: &HeaderMap, upgrade: bool, drop_credentials: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len() + 8);
    for (name, value) in headers {
        let lower = name.as_str();
        let hop = HOP_BY_HOP.contains(&lower)
            && !(upgrade && (lower == "connection" || lower == "upgrade"));
        let credential = drop_credentials && (lower == "authorization" || lower == "cookie");
        if hop || credential || lower == "host" || lower.starts_with("x-phlix-cluster-") {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

async fn send(
    owner: &OwnerRow,
    request: axum::http::Request<Body>,
) -> Option<Response<hyper::body::Incoming>> {
    match tokio::time::timeout(HEAD_TIMEOUT, client().request(request)).await {
        Ok(Ok(response)) => Some(response),
        Ok(Err(err)) => {
            tracing::warn!(target: "relay", node = %owner.node, error = %err, "cannot reach the node holding the tunnel");
            None
        }
        Err(_) => {
            tracing::warn!(target: "relay", node = %owner.node, "the node holding the tunnel did not answer in time");
            None
        }
    }
}

/// Forwards an HTTP-over-relay request the entry node authenticated to the tunnel's holder and
/// streams its answer back.
pub async fn forward_relay(
    core: &Core,
    owner: &OwnerRow,
    server_id: &str,
    request: ProxyRequest,
) -> Response {
    let mut target = format!("/cluster/v1/relay/{server_id}");
    if !request.query.is_empty() {
        target.push('?');
        target.push_str(&request.query);
    }
    let mut headers = pass_headers(&request.headers, false, true);
    let client = ClientAddr {
        ip: request
            .client_ip
            .parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        https: request.forwarded_proto == "https",
    };
    if !sign(
        core,
        &mut headers,
        request.method.as_str(),
        &target,
        client,
        &request.user_id,
        &request.path,
    ) {
        return ProxyError::InvalidPath.into_response();
    }
    let Ok(uri) = format!("{}{target}", owner.cluster_url).parse::<Uri>() else {
        return ProxyError::NoTunnel.into_response();
    };
    let mut forwarded = axum::http::Request::new(request.body);
    *forwarded.method_mut() = request.method;
    *forwarded.uri_mut() = uri;
    *forwarded.headers_mut() = headers;
    match send(owner, forwarded).await {
        Some(response) => response.map(Body::new),
        None => ProxyError::NoTunnel.into_response(),
    }
}

/// Forwards a client mount's WebSocket upgrade to the tunnel's holder and, once it accepted,
/// splices the client's connection with the holder's.
pub async fn forward_mount(
    core: &Core,
    owner: &OwnerRow,
    server_id: &str,
    client: ClientAddr,
    mut request: Request,
) -> Response {
    let target = format!(
        "/cluster/v1/client/{}",
        crate::http::percent_encode(server_id)
    );
    let mut headers = pass_headers(request.headers(), true, false);
    if !sign(core, &mut headers, "GET", &target, client, "", "") {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let Ok(uri) = format!("{}{target}", owner.cluster_url).parse::<Uri>() else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let from_client = hyper::upgrade::on(&mut request);
    let mut forwarded = axum::http::Request::new(Body::empty());
    *forwarded.uri_mut() = uri;
    *forwarded.headers_mut() = headers;
    let Some(mut response) = send(owner, forwarded).await else {
        return offline();
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return response.map(Body::new);
    }
    let from_owner = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let (Ok(client), Ok(owner)) = tokio::join!(from_client, from_owner) else {
            return;
        };
        let _ = tokio::io::copy_bidirectional_with_sizes(
            &mut TokioIo::new(client),
            &mut TokioIo::new(owner),
            64 * 1024,
            64 * 1024,
        )
        .await;
    });
    let (parts, _) = response.into_parts();
    let mut answer = Response::new(Body::empty());
    *answer.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    answer
}

/// The client listener's answer when no node holds the tunnel any more.
fn offline() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(ErrorBody {
            error: "Service Unavailable".into(),
            code: Some("server_offline".into()),
            message: Some("The server has no open tunnel to this hub".into()),
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_drop_hop_by_hop_credentials_and_made_up_cluster_claims() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("authorization", "Bearer t"),
            ("cookie", "a=b"),
            ("host", "hub"),
            ("x-phlix-cluster-user", "admin"),
            ("accept", "*/*"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let relay = pass_headers(&headers, false, true);
        let names: Vec<&str> = relay.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept"]);
        let mount = pass_headers(&headers, true, false);
        let mut names: Vec<&str> = mount.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["accept", "authorization", "connection", "cookie", "upgrade"]
        );
    }
}
