//! The admin console's user management (SPEC Q.1): list, read, create, update, delete with
//! cascade, set-admin, reset-password, disable/enable, sign-out everywhere — with the PHP
//! hub's validation bodies and the rules that keep one enabled admin, also under concurrency
//! (`Store::guarded_user_change`). Every action writes an `admin_action` audit row.

use serde_json::{Value, json};

use super::{ClientInfo, Core, DomainError, DomainResult, audit};
use crate::auth::now_unix;
use crate::store::{AdminChange, AdminUserRow, GuardedAction, NewUser, UserRow};

/// Most users one page lists.
pub const MAX_LIMIT: i64 = 200;
/// Users per page by default.
pub const DEFAULT_LIMIT: i64 = 50;

/// A user as the admin routes show it (SPEC Q.1 U). Fields in alphabetical order: the bytes
/// the PHP-compatible `json!` object had.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    pub disabled: bool,
    pub display_name: Option<String>,
    pub email: String,
    pub id: String,
    /// `1` or `0` (the PHP hub's TINYINT).
    pub is_admin: i32,
    /// `YYYY-MM-DD HH:MM:SS`, UTC; null before the first sign-in.
    pub last_login_at: Option<String>,
    pub server_count: i64,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub updated_at: String,
    pub username: String,
}

/// A user as the admin routes show it (SPEC Q.1 U).
#[must_use]
pub fn view(row: &AdminUserRow) -> UserView {
    UserView {
        created_at: super::accounts::format_datetime(row.created_at),
        disabled: row.disabled_at.is_some(),
        display_name: row.display_name.clone(),
        email: row.email.clone(),
        id: row.id.clone(),
        is_admin: i32::from(row.is_admin),
        last_login_at: row.last_login_at.map(super::accounts::format_datetime),
        server_count: row.server_count,
        updated_at: super::accounts::format_datetime(row.updated_at),
        username: row.username.clone(),
    }
}

fn user_not_found() -> DomainError {
    DomainError::Php {
        status: 404,
        error: "User not found",
        code: "user_not_found",
    }
}

fn refused(code: &'static str, message: &str) -> DomainError {
    DomainError::invalid(code, message)
}

/// Writes the `admin_action` audit row of `action` (`user.delete`, …) on `target`.
async fn record(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    action: &str,
    target: &str,
    context: Value,
) -> DomainResult<()> {
    let mut entry = audit::entry("admin_action", client, Some(&admin.id), true, None);
    entry.resource = Some("users".into());
    entry.action = Some(action.to_owned());
    let mut context = context;
    context["target_user_id"] = json!(target);
    entry.context_json = Some(context.to_string());
    core.store.audit(&entry).await?;
    Ok(())
}

/// The `permission_denied` audit row of a non-admin at an admin route (SPEC E.1).
///
/// # Errors
/// Database failures only.
pub async fn permission_denied(
    core: &Core,
    user: &UserRow,
    client: &ClientInfo,
    path: &str,
) -> DomainResult<()> {
    let mut entry = audit::entry(
        "permission_denied",
        client,
        Some(&user.id),
        false,
        Some("not_admin"),
    );
    entry.resource = Some("admin".into());
    entry.action = Some("admin.access".into());
    let path: String = path.chars().take(200).collect();
    entry.context_json = Some(json!({ "path": path }).to_string());
    core.store.audit(&entry).await?;
    Ok(())
}

/// A page of users whose name or e-mail contains `query`, with the total.
///
/// # Errors
/// 400 `invalid_query` for a non-numeric `limit`/`offset` or a negative offset; `limit` is
/// clamped to 1..=200.
pub async fn list(
    core: &Core,
    query: Option<&str>,
    limit: Option<&str>,
    offset: Option<&str>,
) -> DomainResult<(Vec<AdminUserRow>, i64, i64, i64)> {
    let (limit, offset) = page(limit, offset, DEFAULT_LIMIT, MAX_LIMIT)?;
    let query = query
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| q.chars().take(100).collect::<String>());
    let (rows, total) = core
        .store
        .list_users(query.as_deref(), limit, offset)
        .await?;
    Ok((rows, total, limit, offset))
}

/// `limit`/`offset` of a paginated query: `limit` clamped to `1..=max` (default `default`),
/// `offset` ≥ 0.
///
/// # Errors
/// 400 `invalid_query` when either is not an integer or `offset` is negative.
pub fn page(
    limit: Option<&str>,
    offset: Option<&str>,
    default: i64,
    max: i64,
) -> DomainResult<(i64, i64)> {
    let number = |name: &str, text: Option<&str>| -> DomainResult<Option<i64>> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => t.parse::<i64>().map(Some).map_err(|_| {
                DomainError::invalid("invalid_query", format!("{name} must be an integer"))
            }),
        }
    };
    let limit = number("limit", limit)?.unwrap_or(default).clamp(1, max);
    let offset = number("offset", offset)?.unwrap_or(0);
    if offset < 0 {
        return Err(DomainError::invalid(
            "invalid_query",
            "offset must be 0 or more",
        ));
    }
    Ok((limit, offset))
}

/// One user.
///
/// # Errors
/// 404 `user_not_found`.
pub async fn get(core: &Core, id: &str) -> DomainResult<AdminUserRow> {
    core.store.admin_user(id).await?.ok_or_else(user_not_found)
}

fn check_username(username: &str) -> Option<&'static str> {
    let ok = (3..=50).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    (!ok).then_some("Username must be 3 to 50 letters, digits or underscores")
}

fn check_email(email: &str) -> Option<&'static str> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    (!ok).then_some("Email must be a valid e-mail address")
}

fn check_password(password: &str) -> Option<&'static str> {
    let ok = password.chars().count() >= 8 && password.len() <= 1024;
    (!ok).then_some("Password must be at least 8 characters long")
}

/// The PHP hub's `validation_failed` with the first failing field as `error`.
fn validation(errors: Vec<(&'static str, &'static str, &'static str)>) -> DomainResult<()> {
    match errors.first() {
        None => Ok(()),
        Some((_, summary, _)) => Err(DomainError::Validation {
            summary: (*summary).to_owned(),
            field_errors: errors
                .iter()
                .map(|(field, _, text)| ((*field).to_owned(), (*text).to_owned()))
                .collect(),
        }),
    }
}

/// Maps a unique-constraint conflict to the PHP hub's validation body.
fn clash(err: DomainError) -> DomainError {
    match err {
        DomainError::Conflict {
            code: "auth.email_taken",
            ..
        } => DomainError::Validation {
            summary: "Email already exists".into(),
            field_errors: vec![("email".into(), "Email already exists".into())],
        },
        DomainError::Conflict {
            code: "auth.username_taken",
            ..
        } => DomainError::Validation {
            summary: "Username already exists".into(),
            field_errors: vec![("username".into(), "Username already exists".into())],
        },
        other => other,
    }
}

fn text_field<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str).map(str::trim)
}

/// `POST /api/v1/admin/users`: creates an account (admin when `is_admin`).
///
/// # Errors
/// 400 `validation_failed` with `field_errors`.
pub async fn create(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    body: Option<&Value>,
) -> DomainResult<String> {
    let body = body.filter(|b| b.is_object()).unwrap_or(&Value::Null);
    let username = text_field(body, "username").unwrap_or_default();
    let email = text_field(body, "email").unwrap_or_default().to_lowercase();
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut errors = Vec::new();
    if let Some(text) = check_username(username) {
        errors.push(("username", "Invalid username", text));
    }
    if let Some(text) = check_email(&email) {
        errors.push(("email", "Invalid email", text));
    }
    if let Some(text) = check_password(password) {
        errors.push(("password", "Invalid password", text));
    }
    let is_admin = match body.get("is_admin") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            n.as_i64() == Some(1)
        }
        Some(_) => {
            errors.push((
                "is_admin",
                "Invalid is_admin",
                "is_admin must be true or false",
            ));
            false
        }
    };
    validation(errors)?;
    let hash = core
        .passwords
        .hash(password.to_owned())
        .await
        .map_err(DomainError::Internal)?;
    let user = core
        .store
        .create_user(&NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.to_owned(),
            email,
            password_hash: hash,
            display_name: None,
            force_admin: is_admin,
            now: now_unix(),
        })
        .await
        .map_err(|e| clash(e.into()))?;
    record(
        core,
        admin,
        client,
        "user.create",
        &user.id,
        json!({"username": user.username, "is_admin": user.is_admin}),
    )
    .await?;
    core.events.publish(
        super::events::HubEvent::named(
            "user.created",
            &user.id,
            "",
            json!({"user_id": user.id, "username": user.username}),
        )
        .to_admins(),
    );
    Ok(user.id)
}

/// `PUT /api/v1/admin/users/{id}`: any of `username`, `email`, `password`.
///
/// # Errors
/// 404 `user_not_found`, 400 `validation_failed`, 400 `invalid_request` for a body that is not
/// a JSON object.
pub async fn update(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    id: &str,
    body: Option<&Value>,
) -> DomainResult<()> {
    get(core, id).await?;
    // No body changes nothing; a body that is not an object is a mistake, not "no change".
    let body = match body {
        None => &Value::Null,
        Some(body) if body.is_object() => body,
        Some(_) => {
            return Err(refused(
                "invalid_request",
                "The request body must be a JSON object",
            ));
        }
    };
    let username = text_field(body, "username").filter(|u| !u.is_empty());
    let email = text_field(body, "email")
        .filter(|e| !e.is_empty())
        .map(str::to_lowercase);
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let mut errors = Vec::new();
    for field in ["username", "email", "password"] {
        if body
            .get(field)
            .is_some_and(|v| !v.is_string() && !v.is_null())
        {
            errors.push((field, "Invalid request", "Must be a string"));
        }
    }
    if let Some(text) = username.and_then(check_username) {
        errors.push(("username", "Invalid username", text));
    }
    if let Some(text) = email.as_deref().and_then(check_email) {
        errors.push(("email", "Invalid email", text));
    }
    if let Some(text) = password.and_then(check_password) {
        errors.push(("password", "Invalid password", text));
    }
    validation(errors)?;
    let hash = match password {
        Some(p) => Some(
            core.passwords
                .hash(p.to_owned())
                .await
                .map_err(DomainError::Internal)?,
        ),
        None => None,
    };
    core.store
        .update_user(id, username, email.as_deref(), hash.as_deref(), now_unix())
        .await
        .map_err(|e| clash(e.into()))?;
    super::cluster::forget_user(core, id);
    let changed: Vec<&str> = [
        ("username", username.is_some()),
        ("email", email.is_some()),
        ("password", hash.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, on)| on.then_some(f))
    .collect();
    record(
        core,
        admin,
        client,
        "user.update",
        id,
        json!({ "fields": changed }),
    )
    .await
}

/// Applies a guarded change and maps its refusals.
async fn guarded(core: &Core, id: &str, action: GuardedAction) -> DomainResult<()> {
    match core
        .store
        .guarded_user_change(id, action, now_unix())
        .await?
    {
        AdminChange::Done => {
            super::cluster::forget_user(core, id);
            Ok(())
        }
        AdminChange::NotFound => Err(user_not_found()),
        AdminChange::LastAdmin => Err(refused(
            "last_admin",
            "This is the last enabled administrator; make another user an administrator first",
        )),
    }
}

/// `DELETE /api/v1/admin/users/{id}`: the account and everything of it (servers, shares,
/// invites, requests, tokens, webhooks); its servers' tunnels and its relay uses end now.
///
/// # Errors
/// 400 `cannot_delete_self`, `last_admin`; 404 `user_not_found`.
pub async fn delete(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    id: &str,
) -> DomainResult<()> {
    if id == admin.id {
        return Err(refused(
            "cannot_delete_self",
            "You cannot delete your own account",
        ));
    }
    let user = get(core, id).await?;
    let servers = core.store.server_ids_of(id).await?;
    guarded(core, id, GuardedAction::Delete).await?;
    for server_id in &servers {
        // Both signals drop the server's cached rows too.
        super::cluster::close_tunnel(core, server_id);
        super::cluster::cut_collaborators(core, server_id);
    }
    super::cluster::cut_user_everywhere(core, id);
    record(
        core,
        admin,
        client,
        "user.delete",
        id,
        json!({"username": user.username, "servers": servers.len()}),
    )
    .await
}

/// `POST /api/v1/admin/users/{id}/set-admin` `{"is_admin": bool}`.
///
/// # Errors
/// 400 `invalid_request` (not a boolean), `cannot_demote_self`, `last_admin`; 404.
pub async fn set_admin(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    id: &str,
    body: Option<&Value>,
) -> DomainResult<()> {
    let Some(is_admin) = body
        .and_then(|b| b.get("is_admin"))
        .and_then(Value::as_bool)
    else {
        return Err(refused("invalid_request", "is_admin must be true or false"));
    };
    if id == admin.id && !is_admin {
        return Err(refused(
            "cannot_demote_self",
            "You cannot remove your own administrator role",
        ));
    }
    guarded(core, id, GuardedAction::SetAdmin(is_admin)).await?;
    record(
        core,
        admin,
        client,
        "user.set_admin",
        id,
        json!({ "is_admin": is_admin }),
    )
    .await
}

/// `POST /api/v1/admin/users/{id}/disable` or `/enable`. Disabling ends every session, cuts
/// the user's open relay uses and revokes their relay tokens; their servers stay reachable.
///
/// # Errors
/// 400 `cannot_disable_self`, `last_admin`; 404.
pub async fn set_disabled(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    id: &str,
    disabled: bool,
) -> DomainResult<AdminUserRow> {
    if id == admin.id && disabled {
        return Err(refused(
            "cannot_disable_self",
            "You cannot disable your own account",
        ));
    }
    guarded(core, id, GuardedAction::SetDisabled(disabled)).await?;
    if disabled {
        core.store.revoke_relay_tokens_of(id).await?;
        super::cluster::cut_user_everywhere(core, id);
    }
    let row = get(core, id).await?;
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    record(core, admin, client, action, id, json!({})).await?;
    if disabled {
        core.events.publish(
            super::events::HubEvent::named(
                "user.disabled",
                id,
                "",
                json!({"user_id": id, "username": row.username}),
            )
            .to_admins(),
        );
    }
    Ok(row)
}

/// `POST /api/v1/admin/users/{id}/sign-out`: every session of the user ends.
///
/// # Errors
/// 404 `user_not_found`.
pub async fn sign_out(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    id: &str,
) -> DomainResult<()> {
    if !core.store.end_sessions(id, now_unix()).await? {
        return Err(user_not_found());
    }
    super::cluster::forget_user(core, id);
    record(core, admin, client, "user.sign_out", id, json!({})).await
}

/// A new random password: 16 characters from an unambiguous alphabet.
fn new_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut password = String::with_capacity(16);
    while password.len() < 16 {
        for byte in crate::auth::random_bytes::<32>() {
            if usize::from(byte) < limit && password.len() < 16 {
                password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    password
}

/// `POST /api/v1/admin/users/{id}/reset-password`: a new password (returned once); every
/// session of the user ends.
///
/// # Errors
/// 404 `user_not_found`.
pub async fn reset_password(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    id: &str,
) -> DomainResult<String> {
    get(core, id).await?;
    let password = new_password();
    let hash = core
        .passwords
        .hash(password.clone())
        .await
        .map_err(DomainError::Internal)?;
    core.store
        .update_user(id, None, None, Some(&hash), now_unix())
        .await?;
    super::cluster::forget_user(core, id);
    record(core, admin, client, "user.reset_password", id, json!({})).await?;
    Ok(password)
}
