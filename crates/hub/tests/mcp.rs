//! The MCP endpoint (`/mcp`, issue #18) driven by the official MCP Python SDK (`mcp` on PyPI,
//! tests/python/mcp_client.py) as an independent client: initialize, list the tools, call
//! them against a hub with a paired server reporting host metrics, scopes per tool, audit
//! rows, expired and revoked tokens; and the transport's refusals over plain HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::arr::{API_KEY, FakeArr};
use common::shared_server::Setup;
use common::{TestHub, call, execute};
use phlix_hub::config::Secret;
use reqwest::Method;
use serde_json::{Value, json};

/// Runs the Python SDK client with `spec` (`calls`, `read`) against the hub with `token`
/// (in a child process the test awaits: the hub runs on this test's runtime).
async fn mcp_client(hub: &TestHub, token: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["url"] = json!(hub.url("/mcp"));
    spec["token"] = json!(token);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_client.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the MCP SDK client");
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(spec.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the MCP client finishes within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the MCP client crashed (is `mcp` installed? scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
}

/// The stage: the owner (admin) with a paired server that reported host metrics, a fake
/// Radarr configured, and a pending request of the friend.
async fn stage() -> (Setup, FakeArr) {
    let radarr = FakeArr::radarr().await;
    let hub = TestHub::start_configured(
        |_| {},
        |config| {
            config.radarr.api_key = Some(Secret::from_bytes(API_KEY.into()));
            config.arr_timeout = Duration::from_secs(2);
        },
    )
    .await;
    let setup = Setup::on(hub).await;
    let (status, body) = call(
        &setup.hub,
        &setup.owner,
        Method::PUT,
        "/api/v1/me/hub-settings",
        Some(json!({"settings": {"server.arr.radarr.enabled": true,
                                 "server.arr.radarr.url": radarr.url()}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut heartbeat = setup.server.heartbeat_body(&[("lib-movies", "Movies")]);
    heartbeat["activeSessions"] = json!(2);
    heartbeat["hostMetrics"] = json!({"cpuPercent": 37.5, "memUsedBytes": 1024,
                                      "memTotalBytes": 4096, "load1": 0.5});
    let (status, body) = setup.server.send_heartbeat(&heartbeat).await;
    assert_eq!(status, 200, "{body}");
    (setup, radarr)
}

async fn token(hub: &TestHub, session: &str, scopes: &str) -> (String, String) {
    let (status, body) = call(
        hub,
        session,
        Method::POST,
        "/api/v1/me/mcp-tokens",
        Some(json!({"name": format!("mcp {scopes}"), "scopes": scopes})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

fn result(out: &Value, index: usize) -> &Value {
    &out["results"][index]
}

#[tokio::test]
async fn the_python_sdk_lists_tools_and_reads_servers_and_their_metrics() {
    let (setup, _radarr) = stage().await;
    let hub = &setup.hub;
    let sid = setup.sid();
    let (token_id, reader) = token(hub, &setup.owner, "servers:read requests:read").await;
    let out = mcp_client(
        hub,
        &reader,
        json!({
            "calls": [
                {"tool": "list_servers"},
                {"tool": "server_status", "args": {"server_id": sid}},
                {"tool": "server_metrics_history", "args": {"server_id": sid, "hours": 1}},
                {"tool": "hub_health"},
                {"tool": "list_shares"},
                {"tool": "server_status", "args": {"server_id": "no-such-server"}},
            ],
            "read": ["phlix://servers", format!("phlix://servers/{sid}")],
        }),
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(out["server"], "phlix-hub");
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for tool in [
        "approve_request",
        "create_request",
        "deny_request",
        "hub_health",
        "list_requests",
        "list_servers",
        "list_shares",
        "server_metrics_history",
        "server_status",
    ] {
        assert!(tools.contains(&tool), "{tool} missing: {tools:?}");
    }

    let servers = &result(&out, 0)["structured"]["servers"];
    assert_eq!(servers.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(servers[0]["serverId"], sid.as_str());
    assert_eq!(servers[0]["serverName"], "Shared NAS");
    assert_eq!(servers[0]["status"], "online");

    let status = &result(&out, 1)["structured"];
    assert_eq!(result(&out, 1)["is_error"], false, "{out}");
    assert_eq!(status["server"]["serverId"], sid.as_str());
    assert_eq!(status["latestHeartbeat"]["activeSessions"], 2);
    assert_eq!(status["latestHeartbeat"]["hostMetrics"]["cpuPercent"], 37.5);
    assert_eq!(
        status["latestHeartbeat"]["hostMetrics"]["memTotalBytes"],
        4096
    );

    let history = &result(&out, 2)["structured"];
    let points = history["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "both heartbeats of the stage: {history}");
    assert_eq!(points[1]["hostMetrics"]["load1"], 0.5);

    assert_eq!(result(&out, 3)["structured"]["status"], "ok");
    assert!(
        result(&out, 4)["structured"]["outgoing"].is_array(),
        "{out}"
    );
    // Someone else's (or no) server: a tool error naming the refusal, not a crash.
    assert_eq!(result(&out, 5)["is_error"], true);
    assert!(
        result(&out, 5)["text"]
            .as_str()
            .unwrap()
            .contains("not_found"),
        "{out}"
    );

    // Resources: the list and one per server.
    let resources = out["resources"].as_array().unwrap();
    assert!(resources.contains(&json!("phlix://servers")), "{out}");
    assert!(
        resources.contains(&json!(format!("phlix://servers/{sid}"))),
        "{out}"
    );
    assert_eq!(
        out["read"]["phlix://servers"][0]["servers"][0]["serverId"],
        sid.as_str()
    );
    assert_eq!(
        out["read"][format!("phlix://servers/{sid}")][0]["latestHeartbeat"]["hostMetrics"]["cpuPercent"],
        37.5
    );

    // Every tool call wrote an audit row with the token's id; the refused one says why.
    let (status, audit) = call(
        hub,
        &setup.owner,
        Method::GET,
        "/api/v1/admin/audit-logs?event=mcp.tool_called&limit=100",
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let rows = audit["logs"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{audit}");
    let owner_id = setup.me(&setup.owner).await;
    assert!(
        rows.iter().all(|r| r["user_id"] == owner_id.as_str()),
        "{audit}"
    );
    assert!(
        !audit.to_string().contains(&reader),
        "no token in the audit log"
    );
    assert!(audit.to_string().contains(&token_id), "{audit}");
    // `success` is 0/1 on SQLite and a boolean on PostgreSQL.
    let refused: Vec<&Value> = rows
        .iter()
        .filter(|r| r["success"] == false || r["success"] == 0)
        .collect();
    assert_eq!(refused.len(), 1, "{audit}");
    assert_eq!(refused[0]["resource"], "mcp:server_status");
}

#[tokio::test]
async fn scopes_are_enforced_per_tool_and_admin_tools_need_an_admin() {
    let (setup, radarr) = stage().await;
    let hub = &setup.hub;
    // The friend asks for a film with a requests:write token over MCP.
    let (_, friend_writer) = token(hub, &setup.friend, "requests:read requests:write").await;
    let out = mcp_client(
        hub,
        &friend_writer,
        json!({"calls": [
            {"tool": "create_request", "args": {"type": "movie", "tmdb_id": 438_631, "title": "Dune"}},
            {"tool": "create_request", "args": {"type": "movie", "tmdb_id": 438_631, "title": "Dune"}},
            {"tool": "list_requests"},
            {"tool": "list_servers"},
            {"tool": "create_request", "args": {"type": "podcast", "tmdb_id": 1, "title": "x"}},
            {"tool": "list_requests", "args": {"all_users": true}},
        ]}),
    ).await;
    assert!(out.get("error").is_none(), "{out}");
    let created = &result(&out, 0)["structured"]["request"];
    assert_eq!(created["status"], "pending", "{out}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(result(&out, 1)["is_error"], true, "a duplicate: {out}");
    assert!(
        result(&out, 1)["text"]
            .as_str()
            .unwrap()
            .contains("request_exists")
    );
    assert_eq!(result(&out, 2)["structured"]["requests"][0]["id"], id);
    // Scopes the token lacks, and bad arguments: tool errors that say why.
    assert_eq!(result(&out, 3)["is_error"], true);
    assert!(
        result(&out, 3)["text"]
            .as_str()
            .unwrap()
            .contains("token.insufficient_scope")
    );
    assert_eq!(result(&out, 4)["is_error"], true);
    assert!(
        result(&out, 5)["text"]
            .as_str()
            .unwrap()
            .contains("token.insufficient_scope")
    );

    // A token of the admin without the admin scope may not approve.
    let (_, no_admin) = token(
        hub,
        &setup.owner,
        "servers:read requests:read requests:write",
    )
    .await;
    let out = mcp_client(
        hub,
        &no_admin,
        json!({"calls": [{"tool": "approve_request", "args": {"id": id}},
                         {"tool": "deny_request", "args": {"id": id}}]}),
    )
    .await;
    for index in 0..2 {
        assert_eq!(result(&out, index)["is_error"], true, "{out}");
        assert!(
            result(&out, index)["text"]
                .as_str()
                .unwrap()
                .contains("token.insufficient_scope"),
            "{out}"
        );
    }
    assert!(
        radarr.calls().iter().all(|c| c.method != "POST"),
        "nothing reached Radarr"
    );

    // With the admin scope the admin approves: the film reaches Radarr.
    let (_, admin) = token(hub, &setup.owner, "admin requests:read").await;
    let out = mcp_client(
        hub,
        &admin,
        json!({"calls": [{"tool": "list_requests", "args": {"all_users": true}},
                         {"tool": "approve_request", "args": {"id": id}},
                         {"tool": "deny_request", "args": {"id": id + 1000}}]}),
    )
    .await;
    assert_eq!(
        result(&out, 0)["structured"]["requests"][0]["id"],
        id,
        "{out}"
    );
    assert_eq!(result(&out, 1)["is_error"], false, "{out}");
    assert_eq!(
        result(&out, 1)["structured"]["request"]["status"],
        "approved"
    );
    assert!(
        radarr
            .calls()
            .iter()
            .any(|c| c.method == "POST" && c.path == "/api/v3/movie"),
        "Radarr got the film"
    );
    assert_eq!(result(&out, 2)["is_error"], true, "{out}");
}

#[tokio::test]
async fn expired_revoked_and_foreign_tokens_are_refused_before_the_session_opens() {
    let (setup, _radarr) = stage().await;
    let hub = &setup.hub;
    let (id, revoked) = token(hub, &setup.owner, "servers:read").await;
    let ok = mcp_client(hub, &revoked, json!({"calls": [{"tool": "list_servers"}]})).await;
    assert!(ok.get("error").is_none(), "{ok}");
    let (status, _) = call(
        hub,
        &setup.owner,
        Method::DELETE,
        &format!("/api/v1/me/mcp-tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let out = mcp_client(hub, &revoked, json!({"calls": [{"tool": "list_servers"}]})).await;
    assert!(
        out["error"].is_string(),
        "a revoked token is refused: {out}"
    );

    let (id, expired) = token(hub, &setup.owner, "servers:read").await;
    execute(
        &hub.store().await,
        "UPDATE mcp_tokens SET expires_at = created_at - 1 WHERE id = $1",
        &[id.as_str()],
    )
    .await;
    let out = mcp_client(hub, &expired, json!({"calls": [{"tool": "list_servers"}]})).await;
    assert!(
        out["error"].is_string(),
        "an expired token is refused: {out}"
    );

    // A session JWT is not a personal access token.
    let out = mcp_client(hub, &setup.owner, json!({})).await;
    assert!(out["error"].is_string(), "{out}");
}

#[tokio::test]
async fn the_transport_refuses_in_json_with_the_right_status() {
    let (setup, _radarr) = stage().await;
    let hub = &setup.hub;
    let (_, reader) = token(hub, &setup.owner, "servers:read").await;
    let post = |body: &'static str| {
        hub.http_client
            .post(hub.url("/mcp"))
            .bearer_auth(&reader)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
    };
    // No token: 401 with a bearer challenge.
    let resp = hub
        .http_client
        .post(hub.url("/mcp"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "auth.required");

    for (request, status, code) in [
        (post("{nope"), 400, "invalid_json"),
        (post("[]"), 400, "invalid_json"),
        (
            hub.http_client.get(hub.url("/mcp")).bearer_auth(&reader),
            405,
            "method_not_allowed",
        ),
        (
            hub.http_client
                .post(hub.url("/mcp"))
                .bearer_auth(&reader)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(vec![b' '; 200_000]),
            413,
            "payload_too_large",
        ),
    ] {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
    }
}
