//! The MCP endpoint (`/mcp`, SPEC E "MCP"): the Model Context Protocol over the Streamable
//! HTTP transport, served by the official Rust SDK (`rmcp`), so an AI assistant can ask
//! "which of my servers are offline?" or "approve Anna's request".
//!
//! Every request carries a personal access token in `Authorization: Bearer` (checked here,
//! before the SDK sees the body: 401 with `WWW-Authenticate: Bearer` otherwise). The endpoint
//! is stateless (no `Mcp-Session-Id`; each POST stands alone, so any node can answer) and
//! answers plain JSON. Each tool checks its scope, calls the same domain function as the JSON
//! route of the same action, and writes an `mcp.tool_called` audit row, refused or not.

mod tools;

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
    ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Map, Value};

use phlix_proto::ErrorBody;
use tools::Refusal;

use crate::domain::tokens::{self, Grant, Scope};
use crate::domain::{ClientInfo, Core, servers};
use crate::http::error::ApiError;
use crate::http::extract::{bearer_token, client_of};
use crate::http::state::AppState;
use crate::store::UserRow;

/// Largest JSON-RPC message accepted (tool arguments are small).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
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
            tools::tools().into_iter().map(|(tool, _)| tool).collect(),
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
        let Some(scope) = tools::scope_of(tool) else {
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
            Ok(()) => tools::run(&self.state, &core, &caller, tool, &args).await,
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
        let value = tools::run(&self.state, &core, &caller, tool, &args)
            .await
            .map_err(|refusal| ErrorData::resource_not_found(refusal.text, None))?;
        let contents = ResourceContents::text(value.to_string(), request.uri)
            .with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}
