//! Library sharing (SPEC M), invite links (SPEC N) and the owner's switch for collaborators
//! through the relay (SPEC M.1): the checks in the SPEC's order with its codes, one audit row
//! and one hub event per action.

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::events::HubEvent;
use super::servers::owned_server;
use super::settings::{INVITE_DEFAULT_EXPIRY, MAX_USERS_PER_SERVER};
use super::{ClientInfo, Core, DomainError, DomainResult, audit};
use crate::auth::now_unix;
use crate::store::{
    IncomingShareRow, InviteRow, NewShare, ServerRow, ShareRow, ShareWrite, UserRow,
};

/// The permission levels of a share.
pub const PERMISSIONS: [&str; 2] = ["read", "readwrite"];
/// The library id and name of a share made by an all-libraries invite link.
pub const ALL_LIBRARIES: (&str, &str) = ("", "All Libraries");
/// Longest id, name or e-mail accepted in a share body.
const FIELD_MAX: usize = 255;

fn bad(code: &'static str, message: &str) -> DomainError {
    DomainError::invalid(code, message)
}

/// A non-empty string field of at most [`FIELD_MAX`] bytes, else `code`.
fn required<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    code: &'static str,
) -> DomainResult<&'a str> {
    match body.get(field).and_then(Value::as_str).map(str::trim) {
        Some(value) if !value.is_empty() && value.len() <= FIELD_MAX => Ok(value),
        Some(value) if value.len() > FIELD_MAX => Err(bad(
            code,
            &format!("{field} must be at most {FIELD_MAX} bytes"),
        )),
        _ => Err(bad(code, &format!("{field} is required"))),
    }
}

/// The body as an object with at least one field: else 400 `invalid_body`.
fn object(body: Option<&Value>) -> DomainResult<&Map<String, Value>> {
    body.and_then(Value::as_object)
        .filter(|map| !map.is_empty())
        .ok_or_else(|| bad("invalid_body", "The request body must be a JSON object"))
}

fn share_exists(for_redeemer: bool) -> DomainError {
    DomainError::Conflict {
        code: "share_exists",
        message: if for_redeemer {
            "This library is already shared with you".into()
        } else {
            "This library is already shared with that user".into()
        },
    }
}

fn cap_reached() -> DomainError {
    DomainError::Conflict {
        code: "quota.exceeded",
        message: "This server has reached its collaborator limit".into(),
    }
}

fn not_server_owner() -> DomainError {
    DomainError::Denied {
        code: "not_server_owner",
        message: "You do not own this server".into(),
    }
}

/// The server `server_id` if `user_id` owns it, else 403 `not_server_owner` (M answers 403
/// for an unknown server too: it does not tell strangers which ids exist).
async fn server_of_owner(core: &Core, user_id: &str, server_id: &str) -> DomainResult<ServerRow> {
    match owned_server(core, user_id, server_id).await {
        Ok(server) => Ok(server),
        Err(DomainError::NotFound(_) | DomainError::Forbidden(_)) => Err(not_server_owner()),
        Err(other) => Err(other),
    }
}

/// Writes the audit row of a share or invite action (resource `sharing`).
async fn record(
    core: &Core,
    client: &ClientInfo,
    event: &str,
    user_id: &str,
    context: &Value,
) -> DomainResult<()> {
    let mut entry = audit::entry(event, client, Some(user_id), true, None);
    entry.resource = Some("sharing".into());
    entry.context_json = Some(context.to_string());
    core.store.audit(&entry).await?;
    Ok(())
}

/// Publishes a sharing event to the owner and the collaborator (and, through the bus, to the
/// webhooks of later issues).
fn publish(core: &Core, name: &'static str, share: &ShareRow) {
    let data = json!({
        "shareId": share.id,
        "serverId": share.server_id,
        "libraryId": share.library_id,
        "libraryName": share.library_name,
        "permission": share.permission_level,
        "ownerUserId": share.owner_user_id,
        "collaboratorUserId": share.collaborator_user_id,
    });
    core.events.publish(
        HubEvent::sharing(
            name,
            &[&share.owner_user_id, &share.collaborator_user_id],
            &share.server_id,
            &data,
        )
        .with_resource(serde_json::to_value(share).unwrap_or_default()),
    );
}

/// Writes a share (create or re-activate) and maps the store's refusals to M's answers.
async fn write(
    core: &Core,
    share: &NewShare,
    invite_id: Option<&str>,
    now: i64,
) -> DomainResult<ShareRow> {
    let cap = MAX_USERS_PER_SERVER.get(&core.store).await?;
    match core.store.write_share(share, cap, invite_id, now).await? {
        ShareWrite::Written(row) => Ok(*row),
        ShareWrite::Exists => Err(share_exists(invite_id.is_some())),
        ShareWrite::CapReached => Err(cap_reached()),
        ShareWrite::InviteUnavailable => Err(DomainError::Gone {
            code: "invite_expired_or_exhausted",
            message: "Invite link has been exhausted".into(),
        }),
    }
}

/// `POST /api/v1/me/shares` (SPEC M): the owner shares one library of one of their servers.
///
/// # Errors
/// M's answers, in M's order.
pub async fn create(
    core: &Core,
    client: &ClientInfo,
    owner: &UserRow,
    body: Option<&Value>,
) -> DomainResult<ShareRow> {
    let body = object(body)?;
    let email = required(body, "collaborator_email", "missing_collaborator_email")?;
    let server_id = required(body, "server_id", "missing_server_id")?;
    let library_id = required(body, "library_id", "missing_library_id")?;
    let library_name = required(body, "library_name", "missing_library_name")?;
    let collaborator = core
        .store
        .user_id_by_email(&email.to_lowercase())
        .await?
        .ok_or_else(|| DomainError::Missing {
            code: "user_not_found",
            message: "No user found with that email address".into(),
        })?;
    if collaborator == owner.id {
        return Err(bad("invalid_request", "Cannot share library with yourself"));
    }
    server_of_owner(core, &owner.id, server_id).await?;
    // A non-string permission is `read` (SPEC M); a string must be a known level.
    let permission = match body.get("permission") {
        Some(Value::String(level)) => level.as_str(),
        _ => "read",
    };
    if !PERMISSIONS.contains(&permission) {
        return Err(bad("invalid_request", "Invalid permission level"));
    }
    let now = now_unix();
    let expires_at = expires_at(body, now)?;
    let share = NewShare {
        id: uuid::Uuid::new_v4().to_string(),
        owner_user_id: owner.id.clone(),
        collaborator_user_id: collaborator,
        server_id: server_id.to_owned(),
        library_id: library_id.to_owned(),
        library_name: library_name.to_owned(),
        permission_level: permission.to_owned(),
        granted_by: owner.id.clone(),
        expires_at,
    };
    let row = write(core, &share, None, now).await?;
    record(
        core,
        client,
        "share.created",
        &owner.id,
        &json!({"share_id": row.id, "server_id": row.server_id, "library_id": row.library_id,
                "collaborator_user_id": row.collaborator_user_id, "permission": row.permission_level}),
    )
    .await?;
    publish(core, "share.created", &row);
    Ok(row)
}

/// Ours: optional `expires_in` seconds (a positive integer up to ten years).
fn expires_at(body: &Map<String, Value>, now: i64) -> DomainResult<Option<i64>> {
    match body.get("expires_in") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .filter(|s| (1..=315_360_000).contains(s))
            .map(|s| Some(now + s))
            .ok_or_else(|| {
                bad(
                    "invalid_request",
                    "expires_in must be a number of seconds from 1 to 315360000",
                )
            }),
    }
}

/// A share as `GET /api/v1/me/shares` lists it under `incoming` (SPEC M, M.1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SharedLibrary {
    pub share_id: String,
    pub owner_user_id: String,
    pub owner_name: String,
    pub server_id: String,
    pub server_name: String,
    pub library_id: String,
    pub library_name: String,
    pub library_item_count: i64,
    pub permission_level: String,
    pub access_urls: Vec<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// Ours (M.1): the collaborator can reach the server through the hub now.
    pub relay_available: bool,
}

impl From<IncomingShareRow> for SharedLibrary {
    fn from(row: IncomingShareRow) -> Self {
        Self {
            access_urls: serde_json::from_str(&row.hostname_candidates_json).unwrap_or_default(),
            relay_available: row.collaborator_relay && row.relay_active,
            share_id: row.share_id,
            owner_user_id: row.owner_user_id,
            owner_name: row.owner_name,
            server_id: row.server_id,
            server_name: row.server_name,
            library_id: row.library_id,
            library_name: row.library_name,
            library_item_count: 0,
            permission_level: row.permission_level,
            expires_at: row.expires_at,
            created_at: row.created_at,
        }
    }
}

/// The user's active shares, both ways, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Shares {
    pub outgoing: Vec<ShareRow>,
    pub incoming: Vec<SharedLibrary>,
}

/// `GET /api/v1/me/shares`.
///
/// # Errors
/// Database failures.
pub async fn list(core: &Core, user_id: &str) -> DomainResult<Shares> {
    let now = now_unix();
    Ok(Shares {
        outgoing: core.store.outgoing_shares(user_id, now).await?,
        incoming: core
            .store
            .incoming_shares(user_id, now)
            .await?
            .into_iter()
            .map(SharedLibrary::from)
            .collect(),
    })
}

fn share_not_found() -> DomainError {
    DomainError::NotFound("share_not_found")
}

fn not_share_owner() -> DomainError {
    DomainError::Denied {
        code: "not_share_owner",
        message: "You do not own this share".into(),
    }
}

/// `DELETE /api/v1/me/shares/{id}`: the owner revokes, or (ours) the collaborator leaves.
/// Idempotent on a revoked share. The collaborator's relay access ends at once (M.1).
///
/// # Errors
/// 404 `share_not_found`, 403 `not_share_owner`.
pub async fn revoke(
    core: &Core,
    client: &ClientInfo,
    user_id: &str,
    share_id: &str,
) -> DomainResult<()> {
    let share = core
        .store
        .share_by_id(share_id)
        .await?
        .ok_or_else(share_not_found)?;
    if share.owner_user_id != user_id && share.collaborator_user_id != user_id {
        return Err(not_share_owner());
    }
    if core.store.revoke_share(share_id, now_unix()).await? {
        let left = share.collaborator_user_id == user_id;
        record(
            core,
            client,
            "share.revoked",
            user_id,
            &json!({"share_id": share.id, "server_id": share.server_id,
                    "collaborator_user_id": share.collaborator_user_id, "left": left}),
        )
        .await?;
        publish(core, "share.revoked", &share);
        cut_collaborator(core, &share.server_id, &share.collaborator_user_id).await;
    }
    Ok(())
}

/// `PATCH /api/v1/me/shares/{id}` `{"permission"}`.
///
/// # Errors
/// 400 `invalid_body`, `missing_permission`, `invalid_permission` (before the lookup); 404
/// `share_not_found`; 403 `not_share_owner`.
pub async fn update(
    core: &Core,
    client: &ClientInfo,
    user_id: &str,
    share_id: &str,
    body: Option<&Value>,
) -> DomainResult<ShareRow> {
    let body = object(body)?;
    let permission = body
        .get("permission")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing_permission", "permission is required"))?;
    if !PERMISSIONS.contains(&permission) {
        return Err(bad("invalid_permission", "Invalid permission level"));
    }
    let share = core
        .store
        .share_by_id(share_id)
        .await?
        .ok_or_else(share_not_found)?;
    if share.owner_user_id != user_id {
        return Err(not_share_owner());
    }
    core.store
        .set_share_permission(share_id, permission)
        .await?;
    let share = core
        .store
        .share_by_id(share_id)
        .await?
        .ok_or_else(share_not_found)?;
    record(
        core,
        client,
        "share.updated",
        user_id,
        &json!({"share_id": share.id, "permission": share.permission_level}),
    )
    .await?;
    publish(core, "share.updated", &share);
    Ok(share)
}

/// One library in the owner's picker.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LibraryChoice {
    pub id: String,
    pub name: String,
}

/// `GET /api/v1/me/libraries?server_id=ID`: the libraries of one owned server, by name.
///
/// # Errors
/// 400 `missing_server_id` for an empty id; 403 `not_server_owner`.
pub async fn libraries_of(
    core: &Core,
    user_id: &str,
    server_id: &str,
) -> DomainResult<Vec<LibraryChoice>> {
    if server_id.trim().is_empty() {
        return Err(bad("missing_server_id", "server_id is required"));
    }
    server_of_owner(core, user_id, server_id).await?;
    let mut libraries: Vec<LibraryChoice> = core
        .store
        .libraries_of_server(server_id)
        .await?
        .into_iter()
        .map(|l| LibraryChoice {
            id: l.library_id,
            name: l.library_name,
        })
        .collect();
    libraries.sort_by_key(|l| l.name.to_lowercase());
    Ok(libraries)
}

// ---------------------------------------------------------------------------------------------
// Invite links (SPEC N)

/// An invite link as its owner sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InviteView {
    pub id: String,
    pub owner_user_id: String,
    pub server_id: String,
    pub library_id: Option<String>,
    pub permission: String,
    pub max_uses: i64,
    pub use_count: i64,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// Always null: the token is shown once, at creation.
    pub url: Option<String>,
    /// Ours: `active`, `expired` or `exhausted`.
    pub status: &'static str,
}

/// `active`, `expired` or `exhausted` at `now`.
#[must_use]
pub fn invite_status(invite: &InviteRow, now: i64) -> &'static str {
    if invite.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else if invite.use_count >= invite.max_uses {
        "exhausted"
    } else {
        "active"
    }
}

impl InviteView {
    fn of(row: InviteRow, now: i64) -> Self {
        Self {
            status: invite_status(&row, now),
            id: row.id,
            owner_user_id: row.owner_user_id,
            server_id: row.server_id,
            library_id: row.library_id,
            permission: row.permission,
            max_uses: row.max_uses,
            use_count: row.use_count,
            expires_at: row.expires_at,
            created_at: row.created_at,
            url: None,
        }
    }
}

/// A freshly created invite link: its token is shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedInvite {
    pub id: String,
    pub url: String,
    pub token: String,
    pub expires_at: Option<i64>,
}

/// The SHA-256 (hex) under which an invite token is stored.
#[must_use]
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` has the shape of an invite token (64 lowercase hex).
#[must_use]
pub fn is_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `POST /api/v1/me/invite-links` (SPEC N).
///
/// # Errors
/// 400 `invalid_body`, `missing_server_id`, `invalid_request`; 403 `not_server_owner`.
pub async fn create_invite(
    core: &Core,
    client: &ClientInfo,
    owner: &UserRow,
    body: Option<&Value>,
) -> DomainResult<CreatedInvite> {
    let body = object(body)?;
    let server_id = required(body, "server_id", "missing_server_id")?;
    let permission = match body.get("permission") {
        None | Some(Value::Null) => "read",
        Some(Value::String(level)) if PERMISSIONS.contains(&level.as_str()) => level.as_str(),
        Some(_) => return Err(bad("invalid_request", "Invalid permission level")),
    };
    let library_id = match body.get("library_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.is_empty() => None,
        Some(Value::String(id)) if id.len() <= FIELD_MAX => Some(id.clone()),
        Some(_) => {
            return Err(bad(
                "invalid_request",
                "library_id must be a library id or null",
            ));
        }
    };
    server_of_owner(core, &owner.id, server_id).await?;
    let max_uses = match body.get("max_uses") {
        None | Some(Value::Null) => 1,
        Some(value) => value
            .as_i64()
            .ok_or_else(|| bad("invalid_request", "max_uses must be an integer"))?
            .clamp(1, 1_000_000),
    };
    let now = now_unix();
    let expires_in = match body.get("expires_in") {
        None | Some(Value::Null) => INVITE_DEFAULT_EXPIRY.get(&core.store).await?,
        Some(value) => value
            .as_i64()
            .ok_or_else(|| bad("invalid_request", "expires_in must be an integer"))?
            .min(315_360_000),
    };
    let expires_at = (expires_in > 0).then(|| now + expires_in);
    let token = hex::encode(crate::auth::random_bytes::<32>());
    let invite = InviteRow {
        id: uuid::Uuid::new_v4().to_string(),
        owner_user_id: owner.id.clone(),
        server_id: server_id.to_owned(),
        library_id,
        permission: permission.to_owned(),
        max_uses,
        use_count: 0,
        expires_at,
        created_at: now,
    };
    core.store
        .insert_invite(&invite, &token_hash(&token))
        .await?;
    record(
        core,
        client,
        "invite.created",
        &owner.id,
        &json!({"invite_id": invite.id, "server_id": invite.server_id,
                "library_id": invite.library_id, "max_uses": max_uses, "expires_at": expires_at}),
    )
    .await?;
    core.events.publish(
        HubEvent::sharing(
            "invite.created",
            &[&owner.id],
            &invite.server_id,
            &json!({"inviteId": invite.id, "serverId": invite.server_id,
                    "libraryId": invite.library_id, "maxUses": max_uses, "expiresAt": expires_at}),
        )
        .with_resource(
            serde_json::to_value(InviteView::of(invite.clone(), now)).unwrap_or_default(),
        ),
    );
    Ok(CreatedInvite {
        url: format!("{}/invite/{token}", core.config.public_url),
        id: invite.id,
        token,
        expires_at,
    })
}

/// `GET /api/v1/me/invite-links`: every link of the owner, newest first.
///
/// # Errors
/// Database failures.
pub async fn invites(core: &Core, owner_id: &str) -> DomainResult<Vec<InviteView>> {
    let now = now_unix();
    Ok(core
        .store
        .invites_of(owner_id)
        .await?
        .into_iter()
        .map(|row| InviteView::of(row, now))
        .collect())
}

/// `DELETE /api/v1/me/invite-links/{id}`: no use left; the row stays listed.
///
/// # Errors
/// 404 `invite_link_not_found`, 403 `not_link_owner`.
pub async fn revoke_invite(
    core: &Core,
    client: &ClientInfo,
    owner_id: &str,
    invite_id: &str,
) -> DomainResult<()> {
    let invite = core
        .store
        .invite_by_id(invite_id)
        .await?
        .ok_or(DomainError::NotFound("invite_link_not_found"))?;
    if invite.owner_user_id != owner_id {
        return Err(DomainError::Denied {
            code: "not_link_owner",
            message: "You do not own this invite link".into(),
        });
    }
    core.store.exhaust_invite(invite_id).await?;
    record(
        core,
        client,
        "invite.revoked",
        owner_id,
        &json!({"invite_id": invite.id, "server_id": invite.server_id}),
    )
    .await?;
    Ok(())
}

/// What an invite link offers, as `/app/invite/{token}` shows it to anyone holding it.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub invite: InviteRow,
    pub owner_name: String,
    pub server_name: String,
    pub library_name: String,
    pub status: &'static str,
}

/// The invite link of `token`, unless the token is malformed or unknown (404
/// `invite_link_not_found`).
///
/// # Errors
/// As above; database failures.
pub async fn find_invite(core: &Core, token: &str) -> DomainResult<InviteRow> {
    if !is_token(token) {
        return Err(DomainError::NotFound("invite_link_not_found"));
    }
    core.store
        .invite_by_hash(&token_hash(token))
        .await?
        .ok_or(DomainError::NotFound("invite_link_not_found"))
}

/// The invitation behind `token`, for its page.
///
/// # Errors
/// 404 `invite_link_not_found`; database failures.
pub async fn invitation(core: &Core, token: &str) -> DomainResult<Invitation> {
    let invite = find_invite(core, token).await?;
    let owner_name = core
        .store
        .user_by_id(&invite.owner_user_id)
        .await?
        .map(|u| u.display_name.unwrap_or(u.username))
        .unwrap_or_default();
    let server_name = core
        .store
        .server_by_id(&invite.server_id)
        .await?
        .map(|s| s.server_name)
        .unwrap_or_default();
    let library_name = library_name_of(core, &invite).await?;
    Ok(Invitation {
        status: invite_status(&invite, now_unix()),
        invite,
        owner_name,
        server_name,
        library_name,
    })
}

/// The name a share made by this link gets: "All Libraries", the library's name, else
/// "Shared Library" (SPEC N).
async fn library_name_of(core: &Core, invite: &InviteRow) -> DomainResult<String> {
    let Some(library_id) = invite.library_id.as_deref().filter(|id| !id.is_empty()) else {
        return Ok(ALL_LIBRARIES.1.to_owned());
    };
    Ok(core
        .store
        .libraries_of_server(&invite.server_id)
        .await?
        .into_iter()
        .find(|l| l.library_id == library_id)
        .map_or_else(|| "Shared Library".to_owned(), |l| l.library_name))
}

/// Whether the link of `token` may still be redeemed now (it lets its holder sign up even
/// when sign-ups are disabled).
///
/// # Errors
/// Database failures.
pub async fn invite_is_usable(core: &Core, token: &str) -> DomainResult<bool> {
    match find_invite(core, token).await {
        Ok(invite) => Ok(invite_status(&invite, now_unix()) == "active"),
        Err(DomainError::NotFound(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// `POST /api/v1/me/invite-links/{token}/redeem` (SPEC N): the use and the share in one
/// transaction, so a failed redeem burns no use.
///
/// # Errors
/// N's answers in N's order: 404, 410 expired, 400 own link, 410 exhausted, 409.
pub async fn redeem(
    core: &Core,
    client: &ClientInfo,
    redeemer: &UserRow,
    token: &str,
) -> DomainResult<ShareRow> {
    let invite = find_invite(core, token).await?;
    let now = now_unix();
    if invite.expires_at.is_some_and(|e| e <= now) {
        return Err(DomainError::Gone {
            code: "invite_expired_or_exhausted",
            message: "Invite link has expired".into(),
        });
    }
    if invite.owner_user_id == redeemer.id {
        return Err(bad("invalid_invite", "Cannot redeem your own invite link"));
    }
    if invite.use_count >= invite.max_uses {
        return Err(DomainError::Gone {
            code: "invite_expired_or_exhausted",
            message: "Invite link has been exhausted".into(),
        });
    }
    let (library_id, library_name) = match invite.library_id.as_deref().filter(|id| !id.is_empty())
    {
        None => (ALL_LIBRARIES.0.to_owned(), ALL_LIBRARIES.1.to_owned()),
        Some(id) => (id.to_owned(), library_name_of(core, &invite).await?),
    };
    let share = NewShare {
        id: uuid::Uuid::new_v4().to_string(),
        owner_user_id: invite.owner_user_id.clone(),
        collaborator_user_id: redeemer.id.clone(),
        server_id: invite.server_id.clone(),
        library_id,
        library_name,
        permission_level: invite.permission.clone(),
        granted_by: invite.owner_user_id.clone(),
        expires_at: None,
    };
    let row = write(core, &share, Some(&invite.id), now).await?;
    record(
        core,
        client,
        "invite.redeemed",
        &redeemer.id,
        &json!({"invite_id": invite.id, "share_id": row.id, "server_id": row.server_id}),
    )
    .await?;
    publish(core, "invite.redeemed", &row);
    Ok(row)
}

// ---------------------------------------------------------------------------------------------
// Collaborators through the relay (SPEC M.1)

/// `PUT /api/v1/me/servers/{id}/sharing-policy` `{"collaborator_relay": bool}`; switching it
/// off cuts every collaborator's relay access to the server at once.
///
/// # Errors
/// 404/403 `server.not_found`/`server.not_owned`; 400 when the flag is not a boolean.
pub async fn set_sharing_policy(
    core: &Core,
    client: &ClientInfo,
    owner_id: &str,
    server_id: &str,
    collaborator_relay: Option<bool>,
) -> DomainResult<bool> {
    owned_server(core, owner_id, server_id).await?;
    let on = collaborator_relay.ok_or_else(|| {
        bad(
            "invalid_request",
            "collaborator_relay must be true or false",
        )
    })?;
    core.store
        .set_collaborator_relay(server_id, on, now_unix())
        .await?;
    super::cluster::forget_server(core, server_id);
    record(
        core,
        client,
        "server.sharing_policy",
        owner_id,
        &json!({"server_id": server_id, "collaborator_relay": on}),
    )
    .await?;
    if !on {
        super::cluster::cut_collaborators(core, server_id);
    }
    Ok(on)
}

/// Ends what `user_id` has open through the relay to `server_id` unless they still may use it
/// (another active share, or they own it).
async fn cut_collaborator(core: &Core, server_id: &str, user_id: &str) {
    super::cluster::forget_grant(core, server_id, user_id);
    match core
        .store
        .is_collaborator(server_id, user_id, now_unix())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            super::cluster::cut_user(core, server_id, user_id);
        }
        Err(err) => {
            tracing::warn!(error = %err, %server_id, "cannot re-check a collaborator; cutting");
            super::cluster::cut_user(core, server_id, user_id);
        }
    }
}

/// Whether `user_id` may use the relay to `server`: its owner, or an active collaborator while
/// the owner allows collaborators through (SPEC M.1).
///
/// # Errors
/// Database failures.
pub async fn may_relay(core: &Core, server: &ServerRow, user_id: &str) -> DomainResult<bool> {
    if server.user_id == user_id {
        return Ok(true);
    }
    if !server.collaborator_relay {
        return Ok(false);
    }
    Ok(core
        .access
        .collaborator(&core.store, &server.id, user_id)
        .await?)
}

/// The server a relay caller may use: 404 `server.not_found` for none, 403 `server.not_owned`
/// unless `user_id` owns it or may relay to it as a collaborator (SPEC M.1).
///
/// # Errors
/// As above; database failures.
pub async fn relay_server(
    core: &Core,
    server: Option<ServerRow>,
    user_id: &str,
) -> DomainResult<ServerRow> {
    let server = server.ok_or(DomainError::NotFound("server.not_found"))?;
    if may_relay(core, &server, user_id).await? {
        Ok(server)
    } else {
        Err(DomainError::Forbidden("server.not_owned"))
    }
}

/// [`relay_server`] by id, through the access cache.
///
/// # Errors
/// As [`relay_server`].
pub async fn relay_server_by_id(
    core: &Core,
    server_id: &str,
    user_id: &str,
) -> DomainResult<ServerRow> {
    let server = core.access.server(&core.store, server_id).await?;
    relay_server(core, server, user_id).await
}

/// The servers shared with `user_id` now, for its event stream (SPEC M.1: live events include
/// servers shared with the user).
///
/// # Errors
/// Database failures.
pub async fn servers_shared_with(
    core: &Core,
    user_id: &str,
) -> DomainResult<std::collections::HashSet<String>> {
    Ok(core
        .store
        .servers_shared_with(user_id, now_unix())
        .await?
        .into_iter()
        .collect())
}

/// How often open collaborator relay uses are re-checked against the database.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Re-checks every collaborator's open relay use on this node every [`SWEEP_INTERVAL`] and
/// cuts those whose share expired or was revoked (also on another node), or whose server's
/// owner switched collaborators off: access ends within a few seconds whatever ended it.
/// While no collaborator holds a relay use here there is nothing to re-check: the loop sleeps
/// until one does, and its first check comes [`SWEEP_INTERVAL`] after that.
pub async fn sweep_loop(core: Core, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = core.relay.collaborator_held() => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        let now = now_unix();
        for (server_id, user_id) in core.relay.collaborator_holds() {
            let allowed = match core.store.server_by_id(&server_id).await {
                Ok(Some(server)) if server.collaborator_relay => {
                    core.store.is_collaborator(&server_id, &user_id, now).await
                }
                Ok(_) => Ok(false),
                Err(err) => Err(err),
            };
            match allowed {
                Ok(true) => {}
                Ok(false) => {
                    super::cluster::cut_user(&core, &server_id, &user_id);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "collaborator sweep: database unavailable")
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One server's sharing, for its owner's page

/// What the Sharing section of a server's page shows its owner: the server's active shares
/// and every invite link to it (revoked, used-up and expired ones included, each with its
/// status), both newest first.
#[derive(Debug, Clone)]
pub struct ServerSharing {
    pub shares: Vec<ShareRow>,
    pub invites: Vec<InviteView>,
}

/// The shares and invite links of one server `owner_id` owns: the owner's lists of [`list`]
/// and [`invites`] narrowed to that server, so the page and the JSON API cannot disagree on
/// what is active.
///
/// # Errors
/// 403 `not_server_owner` (also for an unknown server); database failures.
pub async fn of_server(
    core: &Core,
    owner_id: &str,
    server_id: &str,
) -> DomainResult<ServerSharing> {
    server_of_owner(core, owner_id, server_id).await?;
    let now = now_unix();
    let shares = core
        .store
        .outgoing_shares(owner_id, now)
        .await?
        .into_iter()
        .filter(|share| share.server_id == server_id)
        .collect();
    let invites = core
        .store
        .invites_of(owner_id)
        .await?
        .into_iter()
        .filter(|invite| invite.server_id == server_id)
        .map(|row| InviteView::of(row, now))
        .collect();
    Ok(ServerSharing { shares, invites })
}
