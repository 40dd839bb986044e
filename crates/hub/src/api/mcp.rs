//! The MCP endpoint (`/mcp`, SPEC E "MCP"): the Model Context Protocol over the Streamable
//! HTTP transport, served by the official Rust SDK (`rmcp`), so an AI assistant can ask
//! "which of my servers are offline?" or "approve Anna's request".
//!
//! Every request carries a personal access token in `Authorization: Bearer` (checked here,
//! before the SDK sees the body: 401 with `WWW-Authenticate: Bearer` otherwise). The endpoint
//! is stateless (no `Mcp-Session-Id`; each POST stands alone, so any node can answer) and
//! answers plain JSON. Each tool checks its scope, calls the same domain function as the JSON
//! route of the same action, and writes an `mcp.tool_called` audit row, refused or not.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Map, Value, json};

use phlix_proto::ErrorBody;

use crate::domain::health::HealthState;
use crate::domain::tokens::{self, Grant, Scope};
use crate::domain::{ClientInfo, Core, DomainError, requests, servers, shares};
use crate::http::error::ApiError;
use crate::http::extract::{bearer_token, client_of};
use crate::http::state::AppState;
use crate::store::{ServerRow, UserRow};

/// Largest JSON-RPC message accepted (tool arguments are small).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Default and largest window of `server_metrics_history`, in hours.
const DEFAULT_HISTORY_HOURS: i64 = 24;
const MAX_HISTORY_HOURS: i64 = 24 * 7;
/// Most points `server_metrics_history` returns.
const MAX_HISTORY_POINTS: i64 = 1440;
/// The resource listing every server of the caller.
const SERVERS_URI: &str = "phlix://servers";

/// `/mcp` (POST for JSON-RPC; GET and DELETE answer 405 in stateless mode, from the SDK).
pub fn router(state: &AppState) -> Router<AppState> {
    let factory_state = state.clone();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(MAX_MESSAGE_BYTES)
        // The hub serves whatever host name its operator gives it. DNS rebinding protection
        // (the SDK's loopback-only default) defends cookie- or IP-trusted local servers; this
        // endpoint trusts only the bearer token, which a rebound page cannot send.
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || {
            Ok(HubMcp {
                state: factory_state.clone(),
            })
        },
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
}

/// The document of `/mcp` (served by `router`, whose service is the SDK's).
#[utoipa::path(
    post,
    path = "/mcp",
    tag = "mcp",
    summary = "Model Context Protocol (Streamable HTTP, stateless, JSON answers)",
    description = "One JSON-RPC 2.0 message per POST (`initialize`, `tools/list`, \
        `tools/call`, `resources/list`, `resources/read`, `ping`, notifications), with \
        `Accept: application/json, text/event-stream`. Tools: `list_servers`, `server_status`, \
        `server_metrics_history`, `list_shares` (`servers:read`), `list_requests` \
        (`requests:read`), `create_request` (`requests:write`), `approve_request`, \
        `deny_request` (`admin`), `hub_health`. No `Mcp-Session-Id`: every request stands \
        alone. GET and DELETE answer 405.",
    request_body(
        content = Object,
        description = "A JSON-RPC 2.0 request or notification",
        example = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "list_servers", "arguments": {}}})
    ),
    responses(
        (status = 200, description = "The JSON-RPC response (a tool refusal is a result with \
            `isError: true`)", content_type = "application/json", body = Object),
        (status = 202, description = "A notification or response was accepted"),
        (status = 400, description = "`invalid_json`: not a JSON-RPC message", body = ErrorBody),
        (status = 401, description = "No, an unknown, a revoked or an expired personal access \
            token (`auth.required`, `auth.invalid_token`), with `WWW-Authenticate: Bearer`",
            body = ErrorBody),
        (status = 406, description = "`not_acceptable`: `Accept` lacks `application/json` \
            and `text/event-stream`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over 64 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`",
            body = ErrorBody),
        (status = 422, description = "`invalid_request`: a request the transport refuses",
            body = ErrorBody),
    ),
    security(("patAuth" = []))
)]
#[allow(dead_code)] // Documentation only: the SDK's service answers `/mcp`.
pub(crate) async fn mcp_endpoint() {}

/// Who calls: the token's user, the token, and the client's address.
#[derive(Clone)]
struct Caller {
    user: UserRow,
    grant: Grant,
    client: ClientInfo,
}

/// The bearer token must be a live personal access token; its caller rides along in the
/// request's extensions to the tools.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(core) = state.core() else {
        return ApiError::Starting {
            step: state.health().step(),
        }
        .into_response();
    };
    let (mut parts, body) = request.into_parts();
    let caller = match caller_of(&core, &parts).await {
        Ok(caller) => caller,
        Err(err) => {
            let mut response = err.into_response();
            if response.status() == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"phlix-hub\", error=\"invalid_token\""),
                );
            }
            return response;
        }
    };
    parts.extensions.insert(caller);
    request = Request::from_parts(parts, body);
    json_errors(next.run(request).await).await
}

/// The SDK answers transport-level refusals (wrong method, a body that is not JSON-RPC, too
/// large, a wrong `Accept`) in plain text; every refusal of the hub is a JSON error body.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    // The SDK's texts are short; a longer body is cut, not buffered.
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let (status, code) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (status, "method_not_allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (status, "payload_too_large"),
        StatusCode::NOT_ACCEPTABLE => (status, "not_acceptable"),
        // A body that is not a JSON-RPC message is the client's syntax error.
        StatusCode::UNSUPPORTED_MEDIA_TYPE if text.starts_with("fail to deserialize") => {
            (StatusCode::BAD_REQUEST, "invalid_json")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (status, "unsupported_media_type"),
        _ => (status, "invalid_request"),
    };
    let body = phlix_proto::error::ErrorBody {
        error: status
            .canonical_reason()
            .unwrap_or("Bad Request")
            .to_owned(),
        code: Some(code.to_owned()),
        message: (!text.is_empty()).then_some(text),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

async fn caller_of(core: &Core, parts: &Parts) -> Result<Caller, ApiError> {
    let token = bearer_token(parts).ok_or(ApiError::AuthRequired)?;
    let client = client_of(parts);
    let (user, grant) = tokens::authenticate(core, token, &client)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    Ok(Caller {
        user,
        grant,
        client,
    })
}

/// The MCP server of one request.
#[derive(Clone)]
struct HubMcp {
    state: AppState,
}

fn caller(context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    context
        .extensions
        .get::<Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| ErrorData::invalid_request("no personal access token", None))
}

impl HubMcp {
    fn core(&self) -> Result<Core, ErrorData> {
        self.state
            .core()
            .ok_or_else(|| ErrorData::internal_error("the hub is starting", None))
    }

    /// The caller of a resource request, whose token must carry `servers:read`.
    fn resource_reader(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<(Caller, Core), ErrorData> {
        let caller = caller(context)?;
        caller
            .grant
            .require(Scope::ServersRead)
            .map_err(|err| ErrorData::invalid_request(Refusal::from(err).text, None))?;
        Ok((caller, self.core()?))
    }
}

/// A tool refusal or failure as the caller's assistant shows it: the JSON error body of the
/// equivalent API route (`{"error","code","message"}`). Internal failures are logged, not shown.
struct Refusal {
    code: String,
    text: String,
}

impl From<DomainError> for Refusal {
    fn from(err: DomainError) -> Self {
        let (status, body) = ApiError::from(err).parts();
        if status.is_server_error() && status != StatusCode::BAD_GATEWAY {
            tracing::warn!(status = status.as_u16(), code = ?body.code, "MCP tool failed");
        }
        Self {
            code: body.code.clone().unwrap_or_else(|| body.error.clone()),
            text: serde_json::to_string(&body).unwrap_or_default(),
        }
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    DomainError::invalid("invalid_arguments", message).into()
}

type Args = Map<String, Value>;

fn arg_str<'a>(args: &'a Args, name: &str) -> Result<&'a str, Refusal> {
    args.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid(format!("{name} is required (a string)")))
}

/// An id that may come as a string or a number (request ids are integers).
fn arg_id(args: &Args, name: &str) -> Result<String, Refusal> {
    match args.get(name) {
        Some(Value::String(id)) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        Some(Value::Number(id)) => Ok(id.to_string()),
        _ => Err(invalid(format!("{name} is required"))),
    }
}

fn schema(value: Value) -> Arc<Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::default(),
    }
}

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

fn server_id_argument(extra: Value) -> Value {
    let mut properties = json!({
        "server_id": {"type": "string", "description": "The server's id (from list_servers)."}
    });
    if let (Value::Object(props), Value::Object(more)) = (&mut properties, extra) {
        props.extend(more);
    }
    json!({"type": "object", "properties": properties, "required": ["server_id"],
           "additionalProperties": false})
}

/// The tools, their scopes and their argument schemas.
fn tools() -> Vec<(Tool, Option<Scope>)> {
    let read = Some(Scope::ServersRead);
    vec![
        (
            Tool::new(
                "list_servers",
                "List the media servers you own, with their status (online, offline), version, \
                 last heartbeat (unix seconds), relay state and library count.",
                schema(no_arguments()),
            ),
            read,
        ),
        (
            Tool::new(
                "server_status",
                "The status of one of your servers with its latest heartbeat: active sessions \
                 and transcodes, and host metrics (CPU, memory, disk, network) when it reports \
                 them.",
                schema(server_id_argument(json!({}))),
            ),
            read,
        ),
        (
            Tool::new(
                "server_metrics_history",
                "The heartbeats of one of your servers over the last hours, oldest first: \
                 active sessions, transcodes and host metrics per heartbeat.",
                schema(server_id_argument(json!({
                    "hours": {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY_HOURS,
                              "description": "How many hours back (default 24)."}
                }))),
            ),
            read,
        ),
        (
            Tool::new(
                "list_shares",
                "Your library shares: the ones you gave (outgoing) and the ones shared with \
                 you (incoming).",
                schema(no_arguments()),
            ),
            read,
        ),
        (
            Tool::new(
                "list_requests",
                "Media requests (films, series): yours, or with all_users every user's \
                 (admin scope). Filter by status.",
                schema(json!({"type": "object", "properties": {
                    "status": {"type": "string",
                               "enum": ["pending", "approved", "available", "rejected", "all"],
                               "description": "Default: all of yours; pending for all_users."},
                    "all_users": {"type": "boolean",
                                  "description": "Every user's requests (admins, admin scope)."}
                }, "additionalProperties": false})),
            ),
            Some(Scope::RequestsRead),
        ),
        (
            Tool::new(
                "create_request",
                "Ask for a film (type movie) or a series (type series) by its TMDB id; an \
                 administrator approves it, or it is approved at once when the hub \
                 auto-approves.",
                schema(json!({"type": "object", "properties": {
                    "type": {"type": "string", "enum": ["movie", "series"]},
                    "tmdb_id": {"type": "integer", "minimum": 1},
                    "title": {"type": "string", "minLength": 1, "maxLength": 500},
                    "season": {"type": "integer", "minimum": 0,
                               "description": "Series only: one season (default all)."}
                }, "required": ["type", "tmdb_id", "title"], "additionalProperties": false})),
            ),
            Some(Scope::RequestsWrite),
        ),
        (
            Tool::new(
                "approve_request",
                "Approve a pending media request (administrators, admin scope): the hub adds \
                 it to Radarr or Sonarr.",
                schema(json!({"type": "object", "properties": {
                    "id": {"type": "integer", "minimum": 1, "description": "The request's id."}
                }, "required": ["id"], "additionalProperties": false})),
            ),
            Some(Scope::Admin),
        ),
        (
            Tool::new(
                "deny_request",
                "Deny a pending media request (administrators, admin scope), with an optional \
                 reason the requester sees.",
                schema(json!({"type": "object", "properties": {
                    "id": {"type": "integer", "minimum": 1, "description": "The request's id."},
                    "reason": {"type": "string", "maxLength": 500}
                }, "required": ["id"], "additionalProperties": false})),
            ),
            Some(Scope::Admin),
        ),
        (
            Tool::new(
                "hub_health",
                "The hub's health: ok, starting or degraded (with the issues), and its version.",
                schema(no_arguments()),
            ),
            None,
        ),
    ]
}

fn scope_of(tool: &str) -> Option<Option<Scope>> {
    tools()
        .into_iter()
        .find(|(t, _)| t.name == tool)
        .map(|(_, scope)| scope)
}

fn server_view(row: ServerRow) -> Value {
    serde_json::to_value(row.into_info()).unwrap_or(Value::Null)
}

fn heartbeat_point(row: &crate::store::HeartbeatRow) -> Value {
    let mut point = json!({
        "receivedAt": row.received_at,
        "version": row.version,
        "activeSessions": row.active_sessions,
        "activeTranscodes": row.active_transcodes,
    });
    if let Some(metrics) = row
        .host_metrics_json
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
    {
        point["hostMetrics"] = metrics;
    }
    point
}

impl HubMcp {
    async fn run_tool(
        &self,
        core: &Core,
        caller: &Caller,
        tool: &str,
        args: &Args,
    ) -> Result<Value, Refusal> {
        let user = &caller.user;
        match tool {
            "list_servers" => {
                let rows = servers::list_owned(core, &user.id).await?;
                let servers: Vec<Value> = rows.into_iter().map(server_view).collect();
                Ok(json!({ "servers": servers }))
            }
            "server_status" => {
                let server_id = arg_str(args, "server_id")?;
                let overview = servers::overview(core, &user.id, server_id, 1, 0).await?;
                let latest = overview.recent_heartbeats.first().map(heartbeat_point);
                Ok(json!({
                    "server": server_view(overview.server),
                    "libraries": overview.libraries,
                    "latestHeartbeat": latest,
                }))
            }
            "server_metrics_history" => {
                let server_id = arg_str(args, "server_id")?;
                let hours = match args.get("hours") {
                    None | Some(Value::Null) => DEFAULT_HISTORY_HOURS,
                    Some(value) => value
                        .as_i64()
                        .filter(|h| (1..=MAX_HISTORY_HOURS).contains(h))
                        .ok_or_else(|| {
                            invalid(format!("hours must be from 1 to {MAX_HISTORY_HOURS}"))
                        })?,
                };
                let since = crate::auth::now_unix() - hours * 3600;
                let rows =
                    servers::heartbeats_since(core, &user.id, server_id, since, MAX_HISTORY_POINTS)
                        .await?;
                let points: Vec<Value> = rows.iter().map(heartbeat_point).collect();
                Ok(json!({"serverId": server_id, "since": since, "points": points}))
            }
            "list_shares" => {
                let list = shares::list(core, &user.id).await?;
                serde_json::to_value(list).map_err(|e| DomainError::Internal(e.into()).into())
            }
            "list_requests" => {
                let status = args.get("status").and_then(Value::as_str);
                let rows = if args.get("all_users").and_then(Value::as_bool) == Some(true) {
                    caller.grant.require(Scope::Admin)?;
                    if !user.is_admin {
                        return Err(DomainError::Forbidden("auth.not_admin").into());
                    }
                    requests::all(core, status).await?
                } else {
                    requests::mine(core, &user.id, status).await?
                };
                let list: Vec<requests::RequestView> = rows.iter().map(requests::view).collect();
                Ok(json!({ "requests": list }))
            }
            "create_request" => {
                let body = Value::Object(args.clone());
                match requests::create(core, user, &caller.client, Some(&body)).await? {
                    requests::Created::New(row) => Ok(json!({"request": requests::view(&row)})),
                    requests::Created::Exists(row) => Err(DomainError::Conflict {
                        code: "request_exists",
                        message: format!(
                            "You asked for this already: request {} is {}",
                            row.id, row.status
                        ),
                    }
                    .into()),
                }
            }
            "approve_request" | "deny_request" => {
                if !user.is_admin {
                    return Err(DomainError::Forbidden("auth.not_admin").into());
                }
                let id = arg_id(args, "id")?;
                let row = if tool == "approve_request" {
                    requests::approve(core, user, &caller.client, &id).await?
                } else {
                    let reason = args.get("reason").cloned().unwrap_or(Value::Null);
                    requests::deny(core, user, &caller.client, &id, Some(&reason)).await?
                };
                Ok(json!({"request": requests::view(&row)}))
            }
            "hub_health" => Ok(match self.state.health().get() {
                HealthState::Starting(step) => json!({"status": "starting", "step": step}),
                HealthState::Ready => json!({"status": "ok",
                                             "version": env!("CARGO_PKG_VERSION")}),
                HealthState::Degraded(issues) => json!({"status": "degraded", "issues": issues,
                                                        "version": env!("CARGO_PKG_VERSION")}),
            }),
            _ => Err(invalid(format!("unknown tool {tool}"))),
        }
    }
}

impl ServerHandler for HubMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("phlix-hub", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Phlix hub: your media servers behind NAT, their status and metrics, library \
             shares and media requests. Tools need the scope their description names.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            tools().into_iter().map(|(tool, _)| tool).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&context)?;
        let core = self.core()?;
        let tool = request.name.as_ref();
        let Some(scope) = scope_of(tool) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool {tool}"),
                None,
            ));
        };
        let args = request.arguments.unwrap_or_default();
        let outcome = match scope {
            Some(scope) => caller.grant.require(scope).map_err(Refusal::from),
            None => Ok(()),
        };
        let outcome = match outcome {
            Ok(()) => self.run_tool(&core, &caller, tool, &args).await,
            Err(refusal) => Err(refusal),
        };
        let failure = outcome.as_ref().err().map(|r| r.code.as_str());
        tokens::record_tool_call(
            &core,
            &caller.user,
            &caller.client,
            &caller.grant,
            tool,
            failure,
        )
        .await
        .map_err(|err| ErrorData::internal_error(Refusal::from(err).text, None))?;
        Ok(match outcome {
            Ok(value) => {
                let mut result =
                    CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
                result.structured_content = Some(value);
                result
            }
            Err(refusal) => CallToolResult::error(vec![ContentBlock::text(refusal.text)]),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let (caller, core) = self.resource_reader(&context)?;
        let rows = servers::list_owned(&core, &caller.user.id)
            .await
            .map_err(|err| ErrorData::internal_error(Refusal::from(err).text, None))?;
        let mut resources = vec![
            Resource::new(SERVERS_URI, "servers")
                .with_title("My servers")
                .with_description("Every server you own, with its status.")
                .with_mime_type("application/json"),
        ];
        resources.extend(rows.into_iter().map(|row| {
            Resource::new(
                format!("{SERVERS_URI}/{}", row.id),
                format!("server-{}", row.id),
            )
            .with_title(row.server_name.clone())
            .with_description("One server: its status, libraries and latest heartbeat.")
            .with_mime_type("application/json")
        }));
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (caller, core) = self.resource_reader(&context)?;
        let (tool, args) = if request.uri == SERVERS_URI {
            ("list_servers", Map::new())
        } else if let Some(id) = request.uri.strip_prefix(&format!("{SERVERS_URI}/")) {
            let mut args = Map::new();
            args.insert("server_id".into(), Value::String(id.to_owned()));
            ("server_status", args)
        } else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            ));
        };
        let value = self
            .run_tool(&core, &caller, tool, &args)
            .await
            .map_err(|refusal| ErrorData::resource_not_found(refusal.text, None))?;
        let contents = ResourceContents::text(value.to_string(), request.uri)
            .with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_of_the_issue_is_listed_with_an_object_schema() {
        let names: Vec<String> = tools().iter().map(|(t, _)| t.name.to_string()).collect();
        for expected in [
            "list_servers",
            "server_status",
            "server_metrics_history",
            "list_requests",
            "create_request",
            "approve_request",
            "deny_request",
            "list_shares",
            "hub_health",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        for (tool, _) in tools() {
            assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
        }
        assert_eq!(scope_of("approve_request"), Some(Some(Scope::Admin)));
        assert_eq!(scope_of("hub_health"), Some(None));
        assert_eq!(scope_of("nope"), None);
    }
}
