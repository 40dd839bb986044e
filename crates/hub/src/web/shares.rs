//! Library sharing (SPEC M, M.1) and invite links (SPEC N) in the pages, over
//! `crate::domain::shares`: `/app/shares` (outgoing and incoming shares), the Sharing section
//! of a server's page and its forms (share, invite link, permission, revoke, leave, the
//! collaborator-relay switch). The invitation page itself is [`super::invite`].

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::html;
use super::layout::*;
use super::servers::{DetailExtras, render_server};
use super::session::{CsrfForm, Viewer};
use crate::domain::DomainError;
use crate::domain::shares::{self, InviteView, LibraryChoice, PERMISSIONS, SharedLibrary};
use crate::http::extract::{ClientInfo, Path};
use crate::http::percent_encode;
use crate::store::ShareRow;

/// Longest share or invite lifetime the forms accept, in days (the API's ten years).
pub const MAX_DAYS: i64 = 3650;
/// Most uses an invite link may be given in the form.
pub const MAX_USES: i64 = 1000;
const DAY: i64 = 86_400;

/// "Read only" / "Read and write".
#[must_use]
pub fn permission_text(level: &str) -> &'static str {
    match level {
        "readwrite" => "Read and write",
        _ => "Read only",
    }
}

// ---------------------------------------------------------------------------------------------
// View models

/// One of the owner's shares in a list.
#[derive(Debug, Clone)]
pub struct ShareLine {
    pub id: String,
    pub server_id: String,
    pub server_name: String,
    pub library_name: String,
    pub collaborator: String,
    pub permission: String,
    pub since: String,
    pub expires: String,
}

impl ShareLine {
    fn of(row: ShareRow, server_name: &str) -> Self {
        Self {
            collaborator: row
                .collaborator_name
                .unwrap_or_else(|| "(unknown account)".to_owned()),
            since: when(row.created_at).1,
            expires: row
                .expires_at
                .map_or_else(|| "never".to_owned(), |at| when(at).1),
            id: row.id,
            server_id: row.server_id,
            server_name: server_name.to_owned(),
            library_name: row.library_name,
            permission: row.permission_level,
        }
    }
}

/// A share the viewer received.
#[derive(Debug, Clone)]
pub struct IncomingLine {
    pub id: String,
    pub server_id: String,
    pub owner_name: String,
    pub server_name: String,
    pub library_name: String,
    pub permission: &'static str,
    pub expires: String,
    /// Where the viewer opens the server through the hub, while the relay allows it.
    pub relay_url: Option<String>,
}

impl IncomingLine {
    fn of(share: SharedLibrary, viewer: &Viewer) -> Self {
        Self {
            relay_url: share
                .relay_available
                .then(|| format!("{}/", viewer.core.proxy_base(&share.server_id))),
            permission: permission_text(&share.permission_level),
            expires: share
                .expires_at
                .map_or_else(|| "never".to_owned(), |at| when(at).1),
            id: share.share_id,
            server_id: share.server_id,
            owner_name: share.owner_name,
            server_name: share.server_name,
            library_name: share.library_name,
        }
    }
}

/// The viewer's shares received, for `/app/shares` and the server list.
pub(super) async fn incoming_lines(viewer: &Viewer) -> Result<Vec<IncomingLine>, DomainError> {
    Ok(shares::list(&viewer.core, &viewer.user.id)
        .await?
        .incoming
        .into_iter()
        .map(|share| IncomingLine::of(share, viewer))
        .collect())
}

/// One invite link of a server.
#[derive(Debug, Clone)]
pub struct InviteLine {
    pub id: String,
    pub library_name: String,
    pub permission: &'static str,
    pub status: &'static str,
    pub uses: String,
    pub expires: String,
    pub created: String,
}

impl InviteLine {
    fn of(invite: InviteView, libraries: &[LibraryChoice]) -> Self {
        let library_name = match invite.library_id.as_deref().filter(|id| !id.is_empty()) {
            None => shares::ALL_LIBRARIES.1.to_owned(),
            Some(id) => libraries
                .iter()
                .find(|l| l.id == id)
                .map_or_else(|| id.to_owned(), |l| l.name.clone()),
        };
        Self {
            library_name,
            permission: permission_text(&invite.permission),
            status: invite.status,
            uses: format!("{} of {}", invite.use_count, invite.max_uses),
            expires: invite
                .expires_at
                .map_or_else(|| "never".to_owned(), |at| when(at).1),
            created: when(invite.created_at).1,
            id: invite.id,
        }
    }
}

/// The share form's values and what is wrong with them.
#[derive(Debug, Clone)]
pub struct ShareFormView {
    pub library_id: String,
    pub email: String,
    pub permission: String,
    pub expires_days: String,
    /// A refusal that is about no single field (already shared, collaborator limit).
    pub error: Option<String>,
    pub library_error: Option<String>,
    pub email_error: Option<String>,
    pub permission_error: Option<String>,
    pub expires_error: Option<String>,
}

impl Default for ShareFormView {
    fn default() -> Self {
        Self {
            library_id: String::new(),
            email: String::new(),
            permission: "read".to_owned(),
            expires_days: String::new(),
            error: None,
            library_error: None,
            email_error: None,
            permission_error: None,
            expires_error: None,
        }
    }
}

impl ShareFormView {
    fn has_field_errors(&self) -> bool {
        self.library_error.is_some()
            || self.email_error.is_some()
            || self.permission_error.is_some()
            || self.expires_error.is_some()
    }
}

/// The invite form's values and what is wrong with them.
#[derive(Debug, Clone)]
pub struct InviteFormView {
    /// "" = all libraries.
    pub library_id: String,
    pub permission: String,
    pub max_uses: String,
    pub expires_days: String,
    pub never: bool,
    pub library_error: Option<String>,
    pub permission_error: Option<String>,
    pub max_uses_error: Option<String>,
    pub expires_error: Option<String>,
}

impl InviteFormView {
    /// The empty form: one use, the hub's default lifetime in days (empty when it is "never").
    pub(super) fn new(default_expiry_seconds: i64) -> Self {
        let days = (default_expiry_seconds > 0).then(|| (default_expiry_seconds + DAY - 1) / DAY);
        Self {
            library_id: String::new(),
            permission: "read".to_owned(),
            max_uses: "1".to_owned(),
            expires_days: days.map(|d| d.to_string()).unwrap_or_default(),
            never: days.is_none(),
            library_error: None,
            permission_error: None,
            max_uses_error: None,
            expires_error: None,
        }
    }

    fn has_field_errors(&self) -> bool {
        self.library_error.is_some()
            || self.permission_error.is_some()
            || self.max_uses_error.is_some()
            || self.expires_error.is_some()
    }
}

/// The Sharing and Invite links sections of a server's page.
#[derive(Debug, Clone)]
pub struct SharingSection {
    /// The server's libraries by name (the pickers).
    pub libraries: Vec<LibraryChoice>,
    pub shares: Vec<ShareLine>,
    pub invites: Vec<InviteLine>,
    pub collaborator_relay: bool,
    pub share_form: ShareFormView,
    pub invite_form: InviteFormView,
    /// A notice after a sharing action (shown in the section, where the browser lands).
    pub notice: Option<String>,
}

/// What a server page's `?saved=` says about a sharing action, and the share it names.
#[derive(Debug, Clone, Default)]
pub(super) struct SharingNotice {
    pub saved: Option<String>,
    pub share: Option<String>,
}

/// The hub's default invite lifetime in seconds (`invite.default_expiry_seconds`).
async fn default_invite_expiry(viewer: &Viewer) -> Result<i64, DomainError> {
    let value = crate::domain::settings::value(
        &viewer.core,
        crate::domain::settings::INVITE_DEFAULT_EXPIRY.key,
    )
    .await?;
    Ok(value
        .as_i64()
        .unwrap_or(crate::domain::settings::INVITE_DEFAULT_EXPIRY.default))
}

/// Builds the Sharing section of `server_id` (which the viewer owns) with the given forms.
pub(super) async fn sharing_section(
    viewer: &Viewer,
    server_id: &str,
    server_name: &str,
    collaborator_relay: bool,
    share_form: Option<ShareFormView>,
    invite_form: Option<InviteFormView>,
    notice: &SharingNotice,
) -> Result<SharingSection, DomainError> {
    let core = &viewer.core;
    let libraries = shares::libraries_of(core, &viewer.user.id, server_id).await?;
    let sharing = shares::of_server(core, &viewer.user.id, server_id).await?;
    let invite_form = match invite_form {
        Some(form) => form,
        None => InviteFormView::new(default_invite_expiry(viewer).await?),
    };
    let shares: Vec<ShareLine> = sharing
        .shares
        .into_iter()
        .map(|row| ShareLine::of(row, server_name))
        .collect();
    let notice = notice.saved.as_deref().and_then(|saved| match saved {
        "shared" => Some(
            notice
                .share
                .as_deref()
                .and_then(|id| shares.iter().find(|s| s.id == id))
                .map_or_else(
                    || "The library was shared.".to_owned(),
                    |s| format!("{} is now shared with {}.", s.library_name, s.collaborator),
                ),
        ),
        "permission" => Some("The permission was changed.".to_owned()),
        "share-revoked" => Some("The share was revoked.".to_owned()),
        "invite-revoked" => {
            Some("The invite link was revoked; shares made with it stay.".to_owned())
        }
        "sharing-policy" => Some(if collaborator_relay {
            "Collaborators may now reach this server through the hub.".to_owned()
        } else {
            "Collaborators can no longer reach this server through the hub.".to_owned()
        }),
        _ => None,
    });
    Ok(SharingSection {
        invites: sharing
            .invites
            .into_iter()
            .map(|invite| InviteLine::of(invite, &libraries))
            .collect(),
        libraries,
        shares,
        collaborator_relay,
        share_form: share_form.unwrap_or_default(),
        invite_form,
        notice,
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The page for a refused sharing action that is not a form message.
pub(super) fn sharing_error_page(viewer: &Viewer, err: &DomainError) -> Response {
    let (status, _) = err.parts();
    let (title, message) = match err {
        DomainError::NotFound("share_not_found") => (
            "No such share",
            "There is no such share. It may have been revoked already.",
        ),
        DomainError::NotFound("invite_link_not_found") => {
            ("No such invite link", "There is no such invite link.")
        }
        DomainError::Denied { code, .. } => (
            "Not yours",
            match *code {
                "not_share_owner" => "This share belongs to another account.",
                "not_link_owner" => "This invite link belongs to another account.",
                // M answers an unknown server like a stranger's (it tells no one which exist).
                _ => "There is no server of yours with this id.",
            },
        ),
        _ => return api_error_page(viewer, err),
    };
    viewer_error(viewer, status, title, message)
}

/// A number of days from a form field: `None` when empty, else 1 to [`MAX_DAYS`].
fn days(text: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(days) if (1..=MAX_DAYS).contains(&days) => Ok(Some(days)),
        _ => Err(format!(
            "Enter a whole number of days from 1 to {MAX_DAYS}."
        )),
    }
}

const PERMISSION_ERROR: &str = "Choose read only or read and write.";

/// Where a share form sends the browser back: the server's page when it came from there,
/// else `/app/shares`.
fn back(server_id: Option<&str>, saved: &str, shares_done: &str) -> Response {
    match server_id.filter(|id| !id.is_empty()) {
        Some(id) => Redirect::to(&format!(
            "/app/servers/{}?saved={saved}#sharing",
            percent_encode(id)
        ))
        .into_response(),
        None => Redirect::to(&format!("/app/shares?done={shares_done}")).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// `/app/shares`

#[derive(Template)]
#[template(path = "shares.html")]
struct SharesPage {
    layout: Layout,
    outgoing: Vec<ShareLine>,
    incoming: Vec<IncomingLine>,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SharesQuery {
    pub done: Option<String>,
    /// The share an accepted invitation made.
    pub accepted: Option<String>,
}

/// `GET /app/shares`: what the viewer shares and what is shared with them, kept current by the
/// page script.
pub async fn shares_page(
    viewer: Viewer,
    axum::extract::Query(query): axum::extract::Query<SharesQuery>,
) -> Response {
    let core = &viewer.core;
    let (list, owned) = match tokio::try_join!(
        shares::list(core, &viewer.user.id),
        crate::domain::servers::list_owned(core, &viewer.user.id)
    ) {
        Ok(both) => both,
        Err(err) => return api_error_page(&viewer, &err),
    };
    let names: HashMap<String, String> = owned
        .into_iter()
        .map(|server| (server.id, server.server_name))
        .collect();
    let outgoing: Vec<ShareLine> = list
        .outgoing
        .into_iter()
        .map(|row| {
            let name = names.get(&row.server_id).cloned().unwrap_or_default();
            ShareLine::of(row, &name)
        })
        .collect();
    let incoming: Vec<IncomingLine> = list
        .incoming
        .into_iter()
        .map(|share| IncomingLine::of(share, &viewer))
        .collect();
    let notice = match (query.accepted.as_deref(), query.done.as_deref()) {
        (Some(id), _) => Some(incoming.iter().find(|s| s.id == id).map_or_else(
            || "The invitation was accepted.".to_owned(),
            |s| {
                format!(
                    "Invitation accepted: {} shares {} on {} with you.",
                    s.owner_name, s.library_name, s.server_name
                )
            },
        )),
        (None, Some("revoked")) => Some("The share was revoked.".to_owned()),
        (None, Some("left")) => Some("You left the shared library.".to_owned()),
        (None, Some("permission")) => Some("The permission was changed.".to_owned()),
        (None, Some("invite-revoked")) => Some("The invite link was revoked.".to_owned()),
        _ => None,
    };
    let mut layout = Layout::for_viewer("Shares", &viewer, "shares");
    layout.live = true;
    let page = SharesPage {
        layout,
        outgoing,
        incoming,
        notice,
    };
    html(StatusCode::OK, page.render())
}

// ---------------------------------------------------------------------------------------------
// The server page's forms

#[derive(Debug, Deserialize)]
pub struct ShareForm {
    #[serde(default)]
    pub library_id: String,
    #[serde(default)]
    pub collaborator_email: String,
    #[serde(default)]
    pub permission: String,
    /// Empty: the share lasts until it is revoked.
    #[serde(default)]
    pub expires_days: String,
}

/// `POST /app/servers/{id}/shares`: shares one library of the server with an account of the
/// hub; refusals come back as messages on the fields.
pub async fn share(
    viewer: Viewer,
    client: ClientInfo,
    Path(server_id): Path<String>,
    CsrfForm(form): CsrfForm<ShareForm>,
) -> Response {
    let libraries = match shares::libraries_of(&viewer.core, &viewer.user.id, &server_id).await {
        Ok(libraries) => libraries,
        Err(err) => return sharing_error_page(&viewer, &err),
    };
    let mut state = ShareFormView {
        library_id: form.library_id.clone(),
        email: form.collaborator_email.trim().to_owned(),
        permission: form.permission.clone(),
        expires_days: form.expires_days.trim().to_owned(),
        ..ShareFormView::default()
    };
    let library = libraries.iter().find(|l| l.id == form.library_id);
    if library.is_none() {
        state.library_error = Some("Choose one of this server's libraries.".to_owned());
    }
    if state.email.is_empty() {
        state.email_error =
            Some("Enter the e-mail address of the account to share with.".to_owned());
    }
    if !PERMISSIONS.contains(&form.permission.as_str()) {
        state.permission_error = Some(PERMISSION_ERROR.to_owned());
    }
    let expires = match days(&form.expires_days) {
        Ok(days) => days,
        Err(message) => {
            state.expires_error = Some(message);
            None
        }
    };
    let (Some(library), false) = (library, state.has_field_errors()) else {
        return share_form_again(&viewer, &server_id, state, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    };
    let mut body = json!({
        "collaborator_email": state.email,
        "server_id": server_id,
        "library_id": library.id,
        "library_name": library.name,
        "permission": form.permission,
    });
    if let Some(days) = expires {
        body["expires_in"] = json!(days * DAY);
    }
    match shares::create(&viewer.core, &client, &viewer.user, Some(&body)).await {
        Ok(share) => Redirect::to(&format!(
            "/app/servers/{}?saved=shared&share={}#sharing",
            percent_encode(&server_id),
            percent_encode(&share.id)
        ))
        .into_response(),
        Err(err) => {
            let (status, _) = err.parts();
            match &err {
                DomainError::Missing {
                    code: "user_not_found",
                    ..
                } => {
                    state.email_error = Some(
                        "No account on this hub uses this e-mail address. They need an account first — or send them an invite link (below)."
                            .to_owned(),
                    );
                }
                DomainError::Invalid {
                    code: "missing_collaborator_email",
                    ..
                } => {
                    state.email_error =
                        Some("Enter the e-mail address of the account to share with.".to_owned());
                }
                DomainError::Invalid { message, .. } if message.contains("yourself") => {
                    state.email_error =
                        Some("You cannot share a library with yourself.".to_owned());
                }
                DomainError::Invalid { message, .. } if message.contains("permission") => {
                    state.permission_error = Some(PERMISSION_ERROR.to_owned());
                }
                DomainError::Invalid { message, .. } if message.contains("expires_in") => {
                    state.expires_error = Some(format!(
                        "Enter a whole number of days from 1 to {MAX_DAYS}."
                    ));
                }
                DomainError::Conflict {
                    code: "share_exists",
                    ..
                } => {
                    state.error = Some(format!(
                        "{} is already shared with this account.",
                        library.name
                    ));
                }
                DomainError::Conflict {
                    code: "quota.exceeded",
                    ..
                } => {
                    state.error = Some(
                        "This server has reached its collaborator limit (set by the hub's administrator)."
                            .to_owned(),
                    );
                }
                _ => return sharing_error_page(&viewer, &err),
            }
            share_form_again(&viewer, &server_id, state, status).await
        }
    }
}

/// The server's page again, with the share form as it was sent and its messages.
async fn share_form_again(
    viewer: &Viewer,
    server_id: &str,
    form: ShareFormView,
    status: StatusCode,
) -> Response {
    render_server(
        viewer,
        server_id,
        DetailExtras {
            share_form: Some(form),
            status,
            ..DetailExtras::default()
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    /// Empty: all libraries.
    #[serde(default)]
    pub library_id: String,
    #[serde(default)]
    pub permission: String,
    #[serde(default)]
    pub max_uses: String,
    /// Empty: the hub's default lifetime.
    #[serde(default)]
    pub expires_days: String,
    /// The "never expires" box.
    pub never: Option<String>,
}

#[derive(Template)]
#[template(path = "invite_created.html")]
struct InviteCreatedPage {
    layout: Layout,
    server_id: String,
    server_name: String,
    url: String,
    library_name: String,
    permission: &'static str,
    max_uses: i64,
    expires: String,
}

/// `POST /app/servers/{id}/invites`: creates an invite link and shows it this once.
pub async fn create_invite(
    viewer: Viewer,
    client: ClientInfo,
    Path(server_id): Path<String>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Response {
    let core = &viewer.core;
    let (server, libraries) = match tokio::try_join!(
        crate::domain::servers::owned_server(core, &viewer.user.id, &server_id),
        shares::libraries_of(core, &viewer.user.id, &server_id)
    ) {
        Ok(both) => both,
        Err(err) => return sharing_error_page(&viewer, &err),
    };
    let never = form.never.is_some();
    let mut state = InviteFormView {
        library_id: form.library_id.clone(),
        permission: form.permission.clone(),
        max_uses: form.max_uses.trim().to_owned(),
        expires_days: form.expires_days.trim().to_owned(),
        never,
        library_error: None,
        permission_error: None,
        max_uses_error: None,
        expires_error: None,
    };
    let library_name = if form.library_id.is_empty() {
        Some(shares::ALL_LIBRARIES.1.to_owned())
    } else {
        libraries
            .iter()
            .find(|l| l.id == form.library_id)
            .map(|l| l.name.clone())
    };
    if library_name.is_none() {
        state.library_error =
            Some("Choose all libraries or one of this server's libraries.".to_owned());
    }
    if !PERMISSIONS.contains(&form.permission.as_str()) {
        state.permission_error = Some(PERMISSION_ERROR.to_owned());
    }
    let max_uses = match state.max_uses.parse::<i64>() {
        Ok(uses) if (1..=MAX_USES).contains(&uses) => uses,
        _ => {
            state.max_uses_error = Some(format!("Enter a whole number from 1 to {MAX_USES}."));
            1
        }
    };
    let expires_in = if never {
        Some(0)
    } else {
        match days(&form.expires_days) {
            Ok(days) => days.map(|d| d * DAY),
            Err(message) => {
                state.expires_error = Some(message);
                None
            }
        }
    };
    let (Some(library_name), false) = (library_name, state.has_field_errors()) else {
        return render_server(
            &viewer,
            &server_id,
            DetailExtras {
                invite_form: Some(state),
                status: StatusCode::UNPROCESSABLE_ENTITY,
                ..DetailExtras::default()
            },
        )
        .await;
    };
    let mut body = json!({
        "server_id": server_id,
        "library_id": (!form.library_id.is_empty()).then_some(form.library_id.as_str()),
        "permission": form.permission,
        "max_uses": max_uses,
    });
    if let Some(seconds) = expires_in {
        body["expires_in"] = json!(seconds);
    }
    match shares::create_invite(core, &client, &viewer.user, Some(&body)).await {
        Ok(created) => {
            let page = InviteCreatedPage {
                layout: Layout::for_viewer("Invite link created", &viewer, "servers"),
                server_id: server.id,
                server_name: server.server_name,
                url: created.url,
                library_name,
                permission: permission_text(&form.permission),
                max_uses,
                expires: created
                    .expires_at
                    .map_or_else(|| "never".to_owned(), |at| when(at).1),
            };
            html(StatusCode::OK, page.render())
        }
        Err(err) => sharing_error_page(&viewer, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct PermissionForm {
    #[serde(default)]
    pub permission: String,
    /// Set by the server page's forms: go back there.
    pub server_id: Option<String>,
}

/// `POST /app/shares/{id}/permission`: the owner changes a share's permission.
pub async fn change_permission(
    viewer: Viewer,
    client: ClientInfo,
    Path(share_id): Path<String>,
    CsrfForm(form): CsrfForm<PermissionForm>,
) -> Response {
    let body = json!({ "permission": form.permission });
    match shares::update(
        &viewer.core,
        &client,
        &viewer.user.id,
        &share_id,
        Some(&body),
    )
    .await
    {
        Ok(_) => back(form.server_id.as_deref(), "permission", "permission"),
        Err(DomainError::Invalid { .. }) => viewer_error(
            &viewer,
            StatusCode::BAD_REQUEST,
            "Invalid permission",
            PERMISSION_ERROR,
        ),
        Err(err) => sharing_error_page(&viewer, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct ShareActionForm {
    /// Set by the server page's forms: go back there.
    pub server_id: Option<String>,
}

/// `POST /app/shares/{id}/revoke`: the owner ends a share.
pub async fn revoke(
    viewer: Viewer,
    client: ClientInfo,
    Path(share_id): Path<String>,
    CsrfForm(form): CsrfForm<ShareActionForm>,
) -> Response {
    match shares::revoke(&viewer.core, &client, &viewer.user.id, &share_id).await {
        Ok(()) => back(form.server_id.as_deref(), "share-revoked", "revoked"),
        Err(err) => sharing_error_page(&viewer, &err),
    }
}

/// `POST /app/shares/{id}/leave`: the collaborator gives a share up (the same action as the
/// owner's revoke, SPEC M).
pub async fn leave(
    viewer: Viewer,
    client: ClientInfo,
    Path(share_id): Path<String>,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
    match shares::revoke(&viewer.core, &client, &viewer.user.id, &share_id).await {
        Ok(()) => Redirect::to("/app/shares?done=left").into_response(),
        Err(err) => sharing_error_page(&viewer, &err),
    }
}

/// `POST /app/invites/{id}/revoke`: no use left on the link; shares made with it stay.
pub async fn revoke_invite(
    viewer: Viewer,
    client: ClientInfo,
    Path(invite_id): Path<String>,
    CsrfForm(form): CsrfForm<ShareActionForm>,
) -> Response {
    match shares::revoke_invite(&viewer.core, &client, &viewer.user.id, &invite_id).await {
        Ok(()) => match form.server_id.filter(|id| !id.is_empty()) {
            Some(id) => Redirect::to(&format!(
                "/app/servers/{}?saved=invite-revoked#invites",
                percent_encode(&id)
            ))
            .into_response(),
            None => Redirect::to("/app/shares?done=invite-revoked").into_response(),
        },
        Err(err) => sharing_error_page(&viewer, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct SharingPolicyForm {
    /// The checkbox: present when ticked.
    pub collaborator_relay: Option<String>,
}

/// `POST /app/servers/{id}/sharing-policy`: whether collaborators may use the relay to this
/// server (SPEC M.1).
pub async fn set_sharing_policy(
    viewer: Viewer,
    client: ClientInfo,
    Path(server_id): Path<String>,
    CsrfForm(form): CsrfForm<SharingPolicyForm>,
) -> Response {
    let on = form.collaborator_relay.is_some();
    match shares::set_sharing_policy(&viewer.core, &client, &viewer.user.id, &server_id, Some(on))
        .await
    {
        Ok(_) => Redirect::to(&format!(
            "/app/servers/{}?saved=sharing-policy#sharing",
            percent_encode(&server_id)
        ))
        .into_response(),
        Err(err) => sharing_error_page(&viewer, &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_empty_or_in_range() {
        assert_eq!(days(""), Ok(None));
        assert_eq!(days(" 7 "), Ok(Some(7)));
        assert!(days("0").is_err());
        assert!(days("3651").is_err());
        assert!(days("soon").is_err());
    }

    #[test]
    fn the_invite_form_starts_from_the_hubs_default_lifetime() {
        let form = InviteFormView::new(604_800);
        assert_eq!((form.expires_days.as_str(), form.never), ("7", false));
        let form = InviteFormView::new(90_000);
        assert_eq!(form.expires_days, "2", "rounded up to whole days");
        let form = InviteFormView::new(0);
        assert_eq!((form.expires_days.as_str(), form.never), ("", true));
    }
}
