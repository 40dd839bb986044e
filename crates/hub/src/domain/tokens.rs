//! Personal access tokens (SPEC E "MCP", `/api/v1/me/mcp-tokens`): long-lived tokens for
//! scripts and the MCP endpoint, limited to scopes.
//!
//! A token is 64 lowercase hex characters (32 random bytes), shown once at creation; the
//! store keeps its SHA-256. It is accepted as `Authorization: Bearer` on the JSON API routes
//! its scopes reach ([`required_scope`]) and on `/mcp`. Revocation takes effect on the next
//! request (tokens are looked up on every use, never cached), and a token dies with the
//! user's session epoch (sign out everywhere, disable, password reset) like the sessions do.

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::audit::{self, ClientInfo};
use super::events::HubEvent;
use super::{Core, DomainError, DomainResult};
use crate::auth::{now_unix, random_bytes};
use crate::store::{TokenRow, UserRow};

/// Lifetime of a token when the request names none (SPEC F: `mcp_token_ttl`, 90 days).
pub const DEFAULT_TTL_DAYS: i64 = 90;
/// Longest lifetime a token may be given.
pub const MAX_TTL_DAYS: i64 = 365;
/// Live tokens one user may hold.
pub const MAX_TOKENS_PER_USER: i64 = 50;
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// A use is recorded (time, address) at most this often per token, unless the address changes.
const TOUCH_INTERVAL_SECS: i64 = 60;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read the caller's servers, their status, metrics, libraries and shares.
    ServersRead,
    /// Read the caller's media requests and search the catalogue.
    RequestsRead,
    /// Create and withdraw the caller's media requests.
    RequestsWrite,
    /// The admin routes (`/api/v1/admin/…`, approve/deny over MCP) — an admin's token only.
    Admin,
}

impl Scope {
    /// Every scope, in their documented order.
    pub const ALL: [Self; 4] = [
        Self::ServersRead,
        Self::RequestsRead,
        Self::RequestsWrite,
        Self::Admin,
    ];

    /// The scope's name on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServersRead => "servers:read",
            Self::RequestsRead => "requests:read",
            Self::RequestsWrite => "requests:write",
            Self::Admin => "admin",
        }
    }

    /// The scope named `name`, if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// The scopes of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parses a space-separated list; unknown names are an error naming them.
    ///
    /// # Errors
    /// The first unknown scope name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut scopes = Vec::new();
        for name in text.split_ascii_whitespace() {
            let scope = Scope::parse(name).ok_or_else(|| name.to_owned())?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes.sort();
        Ok(Self(scopes))
    }

    /// Whether `scope` is granted.
    #[must_use]
    pub fn allows(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// The scope names, in order.
    #[must_use]
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }

    /// Whether no scope is granted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

/// What a JSON API route asks of a personal access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any valid token (who am I).
    AnyScope,
    /// This scope.
    Scope(Scope),
}

/// What a route (`method`, the path the client sent) asks of a personal access token, or
/// `None` when tokens cannot call it at all: everything that manages the account itself
/// (password, sessions, tokens), sharing and webhook changes, settings and the relay stay with
/// a signed-in session.
#[must_use]
pub fn required_scope(method: &str, path: &str) -> Option<Needs> {
    let path = path.trim_end_matches('/');
    let rest = path.strip_prefix("/api/v1/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let read = matches!(method, "GET" | "HEAD");
    let scope = |s| Some(Needs::Scope(s));
    match (read, segments.as_slice()) {
        (_, ["admin", ..]) => scope(Scope::Admin),
        (true, ["me"] | ["auth", "me"]) => Some(Needs::AnyScope),
        (
            true,
            ["me", "servers"]
            | ["me", "servers", _]
            | ["me", "servers", _, "access-info" | "metrics"]
            | ["me", "libraries" | "shares" | "events" | "bandwidth"],
        ) => scope(Scope::ServersRead),
        (true, ["me", "requests"] | ["me", "requests", _]) => scope(Scope::RequestsRead),
        (false, ["me", "requests"]) if method == "POST" => scope(Scope::RequestsWrite),
        (false, ["me", "requests", id]) if method == "DELETE" && *id != "search" => {
            scope(Scope::RequestsWrite)
        }
        _ => None,
    }
}

/// Whether `token` has the shape of a personal access token (64 lowercase hex characters),
/// as opposed to a JWT.
#[must_use]
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token as the API and the page show it (never the token itself).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// Space-separated, like the PHP hub's column: `servers:read`, `requests:read`,
    /// `requests:write`, `admin`.
    #[schema(example = "servers:read requests:read")]
    pub scopes: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub expires_at: String,
    pub last_used_at: Option<String>,
    /// The client address of the last use.
    pub last_used_ip: Option<String>,
    /// Past `expires_at`: refused, kept in the list until revoked.
    pub expired: bool,
}

impl TokenView {
    fn of(row: &TokenRow, now: i64) -> Self {
        let at = super::accounts::format_datetime;
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            scopes: row.scopes.clone(),
            created_at: at(row.created_at),
            expires_at: at(row.expires_at),
            last_used_at: row.last_used_at.map(at),
            last_used_ip: row.last_used_ip.clone(),
            expired: row.expires_at <= now,
        }
    }
}

/// A token just made: its view and the token, shown this once.
#[derive(Debug, Clone)]
pub struct Created {
    pub view: TokenView,
    pub token: String,
}

fn bad(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::invalid(code, message)
}

fn parse_name(value: Option<&Value>) -> DomainResult<String> {
    let name = match value {
        Some(Value::String(name)) => name.trim(),
        None | Some(Value::Null) => return Err(bad("token.invalid_name", "name is required")),
        Some(_) => return Err(bad("token.invalid_name", "name must be a string")),
    };
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(bad(
            "token.invalid_name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(bad(
            "token.invalid_name",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn parse_scopes(value: Option<&Value>, user: &UserRow) -> DomainResult<Scopes> {
    let text = match value {
        None | Some(Value::Null) => "servers:read requests:read".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                names.push(
                    item.as_str()
                        .ok_or_else(|| bad("token.invalid_scope", "scopes must be strings"))?,
                );
            }
            names.join(" ")
        }
        Some(_) => {
            return Err(bad(
                "token.invalid_scope",
                "scopes must be a space-separated string or a list of strings",
            ));
        }
    };
    let scopes = Scopes::parse(&text).map_err(|unknown| {
        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        bad(
            "token.invalid_scope",
            format!("unknown scope {unknown:?}; known: {}", known.join(", ")),
        )
    })?;
    if scopes.is_empty() {
        return Err(bad("token.invalid_scope", "at least one scope is required"));
    }
    if scopes.allows(Scope::Admin) && !user.is_admin {
        return Err(DomainError::Denied {
            code: "token.admin_scope_admin_only",
            message: "Only an administrator can make a token with the admin scope".into(),
        });
    }
    Ok(scopes)
}

fn parse_ttl_days(value: Option<&Value>) -> DomainResult<i64> {
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_TTL_DAYS),
        Some(value) => value
            .as_i64()
            .filter(|days| (1..=MAX_TTL_DAYS).contains(days))
            .ok_or_else(|| {
                bad(
                    "token.invalid_expiry",
                    format!("expires_in_days must be a whole number from 1 to {MAX_TTL_DAYS}"),
                )
            }),
    }
}

fn object(body: Option<&Value>) -> DomainResult<&Map<String, Value>> {
    body.and_then(Value::as_object)
        .ok_or_else(|| bad("invalid_body", "The request body must be a JSON object"))
}

/// `POST /api/v1/me/mcp-tokens` `{"name", "scopes"?, "expires_in_days"?}`: a new token.
///
/// # Errors
/// 400 on a bad field, 403 for the admin scope asked by a non-admin, 409 when the user holds
/// [`MAX_TOKENS_PER_USER`] live tokens already.
pub async fn create(
    core: &Core,
    user: &UserRow,
    client: &ClientInfo,
    body: Option<&Value>,
) -> DomainResult<Created> {
    let body = object(body)?;
    let name = parse_name(body.get("name"))?;
    let scopes = parse_scopes(body.get("scopes"), user)?;
    let days = parse_ttl_days(body.get("expires_in_days"))?;
    let now = now_unix();
    if core.store.live_token_count(&user.id, now).await? >= MAX_TOKENS_PER_USER {
        return Err(DomainError::Conflict {
            code: "token.limit_reached",
            message: format!(
                "You hold {MAX_TOKENS_PER_USER} live tokens already; revoke one first"
            ),
        });
    }
    let token = hex::encode(random_bytes::<32>());
    let row = TokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        token_hash: hash(&token),
        user_id: user.id.clone(),
        name,
        scopes: scopes.to_string(),
        session_epoch: user.session_epoch,
        expires_at: now + days * 86_400,
        created_at: now,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
    };
    core.store.insert_token(&row).await?;
    let view = TokenView::of(&row, now);
    record(core, client, "token.created", user, &row, None).await?;
    Ok(Created { view, token })
}

/// The user's tokens that are not revoked (expired ones included), newest first.
///
/// # Errors
/// Database failures.
pub async fn list(core: &Core, user_id: &str) -> DomainResult<Vec<TokenView>> {
    let now = now_unix();
    Ok(core
        .store
        .tokens_of(user_id)
        .await?
        .iter()
        .map(|row| TokenView::of(row, now))
        .collect())
}

/// `DELETE /api/v1/me/mcp-tokens/{id}`: revokes one of the user's tokens, at once.
///
/// # Errors
/// 404 `token.not_found` when the user has no such token (or it is revoked already).
pub async fn revoke(
    core: &Core,
    user: &UserRow,
    client: &ClientInfo,
    id: &str,
) -> DomainResult<()> {
    let row = core
        .store
        .tokens_of(&user.id)
        .await?
        .into_iter()
        .find(|row| row.id == id)
        .ok_or(DomainError::NotFound("token.not_found"))?;
    if !core.store.revoke_token(&user.id, id, now_unix()).await? {
        return Err(DomainError::NotFound("token.not_found"));
    }
    record(core, client, "token.revoked", user, &row, None).await
}

async fn record(
    core: &Core,
    client: &ClientInfo,
    event: &'static str,
    user: &UserRow,
    row: &TokenRow,
    extra: Option<Value>,
) -> DomainResult<()> {
    let mut entry = audit::entry(event, client, Some(&user.id), true, None);
    entry.resource = Some(format!("token:{}", row.id));
    let mut context = json!({"name": row.name, "scopes": row.scopes});
    if let Some(Value::Object(extra)) = extra {
        for (key, value) in extra {
            context[key] = value;
        }
    }
    entry.context_json = Some(context.to_string());
    core.store.audit(&entry).await?;
    core.events.publish(HubEvent::named(
        event,
        &user.id,
        "",
        json!({"id": row.id, "name": row.name, "scopes": row.scopes}),
    ));
    Ok(())
}

/// A token that authenticated a request: whose it is and what it may do.
#[derive(Debug, Clone)]
pub struct Grant {
    pub token_id: String,
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: i64,
}

impl Grant {
    /// Refuses unless the token carries `scope` (403 `token.insufficient_scope`).
    ///
    /// # Errors
    /// [`DomainError::Denied`] naming the missing scope.
    pub fn require(&self, scope: Scope) -> DomainResult<()> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(insufficient(scope))
        }
    }
}

/// The refusal of a token without `scope`.
#[must_use]
pub fn insufficient(scope: Scope) -> DomainError {
    DomainError::Denied {
        code: "token.insufficient_scope",
        message: format!("This token lacks the {} scope", scope.as_str()),
    }
}

/// The refusal of a route no personal access token may call.
#[must_use]
pub fn not_for_tokens() -> DomainError {
    DomainError::Denied {
        code: "token.route_not_allowed",
        message: "Personal access tokens cannot call this route; sign in instead".into(),
    }
}

/// The user and grant of a presented token, or `None` when it is unknown, revoked, expired,
/// of an older session epoch or its user is gone. Records the use (time and address).
///
/// # Errors
/// 401 `account_disabled` for a disabled user's token; database failures.
pub async fn authenticate(
    core: &Core,
    token: &str,
    client: &ClientInfo,
) -> DomainResult<Option<(UserRow, Grant)>> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    let Some(row) = core.store.token_by_hash(&hash(token)).await? else {
        return Ok(None);
    };
    let now = now_unix();
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Ok(None);
    }
    let Some(user) = super::accounts::find_user(core, &row.user_id).await? else {
        return Ok(None);
    };
    if user.disabled_at.is_some() {
        return Err(DomainError::AccountDisabled);
    }
    if user.session_epoch != row.session_epoch {
        return Ok(None);
    }
    let stale = row
        .last_used_at
        .is_none_or(|at| now - at >= TOUCH_INTERVAL_SECS);
    if stale || row.last_used_ip.as_deref() != Some(client.ip.as_str()) {
        core.store.touch_token(&row.id, now, &client.ip).await?;
    }
    tracing::debug!(pat_id = %row.id, user_id = %user.id, "personal access token accepted");
    let grant = Grant {
        token_id: row.id,
        name: row.name,
        // Stored by `create`, so it parses; an edited row loses what it cannot name.
        scopes: Scopes::parse(&row.scopes).unwrap_or_default(),
        expires_at: row.expires_at,
    };
    Ok(Some((user, grant)))
}

/// The audit row of one MCP tool call (`mcp.tool_called`, resource `mcp:<tool>`): who, with
/// which token, and — when it was refused or failed — why (`reason`, the error code).
///
/// # Errors
/// Database failures.
pub async fn record_tool_call(
    core: &Core,
    user: &UserRow,
    client: &ClientInfo,
    grant: &Grant,
    tool: &str,
    failure: Option<&str>,
) -> DomainResult<()> {
    let mut entry = audit::entry(
        "mcp.tool_called",
        client,
        Some(&user.id),
        failure.is_none(),
        failure,
    );
    entry.resource = Some(format!("mcp:{tool}"));
    entry.context_json = Some(json!({"token_id": grant.token_id, "tool": tool}).to_string());
    core.store.audit(&entry).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_documented_scopes() {
        let servers = Some(Needs::Scope(Scope::ServersRead));
        let reqs_r = Some(Needs::Scope(Scope::RequestsRead));
        let reqs_w = Some(Needs::Scope(Scope::RequestsWrite));
        let admin = Some(Needs::Scope(Scope::Admin));
        let cases = [
            ("GET", "/api/v1/me", Some(Needs::AnyScope)),
            ("GET", "/api/v1/auth/me", Some(Needs::AnyScope)),
            ("GET", "/api/v1/me/servers", servers),
            ("GET", "/api/v1/me/servers/abc", servers),
            ("GET", "/api/v1/me/servers/abc/metrics", servers),
            ("GET", "/api/v1/me/servers/abc/access-info", servers),
            ("GET", "/api/v1/me/shares/", servers),
            ("DELETE", "/api/v1/me/servers/abc", None),
            ("POST", "/api/v1/me/servers/abc/relay-token", None),
            ("GET", "/api/v1/me/requests", reqs_r),
            ("GET", "/api/v1/me/requests/search", reqs_r),
            ("GET", "/api/v1/me/requests/7", reqs_r),
            ("POST", "/api/v1/me/requests", reqs_w),
            ("POST", "/api/v1/me/requests/", reqs_w),
            ("DELETE", "/api/v1/me/requests/7", reqs_w),
            ("POST", "/api/v1/admin/requests/7/approve", admin),
            ("GET", "/api/v1/admin/users", admin),
            ("GET", "/api/v1/me/mcp-tokens", None),
            ("POST", "/api/v1/me/mcp-tokens", None),
            ("POST", "/api/v1/auth/logout", None),
            ("GET", "/api/v1/me/webhooks", None),
            ("PUT", "/api/v1/me/hub-settings", None),
            ("GET", "/api/v1/servers/abc/proxy/x", None),
            ("GET", "/app/servers", None),
        ];
        for (method, path, expected) in cases {
            assert_eq!(required_scope(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn scopes_parse_sort_and_refuse_unknown_names() {
        let scopes = Scopes::parse("requests:write  servers:read servers:read").unwrap();
        assert_eq!(scopes.to_string(), "servers:read requests:write");
        assert!(scopes.allows(Scope::ServersRead));
        assert!(!scopes.allows(Scope::Admin));
        assert_eq!(Scopes::parse("servers:read root").unwrap_err(), "root");
    }

    #[test]
    fn only_64_lowercase_hex_looks_like_a_token() {
        assert!(looks_like_token(&"a1".repeat(32)));
        assert!(!looks_like_token(&"A1".repeat(32)));
        assert!(!looks_like_token(&"a1".repeat(31)));
        assert!(!looks_like_token("eyJhbGciOiJIUzI1NiJ9.e30.x"));
    }
}
