//! The MCP tools: their argument schemas and scopes, and what each does — the same domain
//! function as the JSON route of the same action.

use std::sync::Arc;

use axum::http::StatusCode;
use rmcp::model::Tool;
use serde_json::{Map, Value, json};

use super::Caller;
use crate::domain::health::HealthState;
use crate::domain::tokens::Scope;
use crate::domain::{Core, DomainError, requests, servers, shares};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::ServerRow;

/// Default and largest window of `server_metrics_history`, in hours.
const DEFAULT_HISTORY_HOURS: i64 = 24;
const MAX_HISTORY_HOURS: i64 = 24 * 7;
/// Most points `server_metrics_history` returns.
const MAX_HISTORY_POINTS: i64 = 1440;

/// A tool refusal or failure as the caller's assistant shows it: the JSON error body of the
/// equivalent API route (`{"error","code","message"}`). Internal failures are logged, not shown.
pub(super) struct Refusal {
    pub(super) code: String,
    pub(super) text: String,
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

pub(super) type Args = Map<String, Value>;

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
pub(super) fn tools() -> Vec<(Tool, Option<Scope>)> {
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

pub(super) fn scope_of(tool: &str) -> Option<Option<Scope>> {
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

/// Runs `tool` for `caller` (its scope already checked).
pub(super) async fn run(
    state: &AppState,
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
        "hub_health" => Ok(match state.health().get() {
            HealthState::Starting(step) => json!({"status": "starting", "step": step}),
            HealthState::Ready => json!({"status": "ok",
                                             "version": env!("CARGO_PKG_VERSION")}),
            HealthState::Degraded(issues) => json!({"status": "degraded", "issues": issues,
                                                        "version": env!("CARGO_PKG_VERSION")}),
            HealthState::Draining => json!({"status": "draining",
                                             "version": env!("CARGO_PKG_VERSION")}),
        }),
        _ => Err(invalid(format!("unknown tool {tool}"))),
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
