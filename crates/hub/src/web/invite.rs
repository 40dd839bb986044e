//! `/app/invite/{token}` (SPEC N): what an invite link offers, to anyone holding it, signed in
//! or not; *Sign in* / *Create an account* for a visitor (the sign-up form carries the token,
//! which lets the visitor in even when sign-ups are disabled), *Accept* for a signed-in user.
//! An unknown, malformed, expired or used-up link gets a page that says which.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Viewer, Visitor};
use super::shares::permission_text;
use crate::domain::DomainError;
use crate::domain::shares::{self, Invitation};
use crate::http::extract::{ClientInfo, Path};
use crate::http::percent_encode;
use crate::store::UserRow;

/// Who looks at the invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Signed out: offered sign-in and sign-up.
    Visitor,
    /// Signed in as someone else than the owner: offered *Accept*.
    Invitee,
    /// The link's owner: cannot accept it.
    Owner,
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    layout: Layout,
    token: String,
    /// `/app/invite/{token}`, percent-encoded, for the sign-in and sign-up links.
    here: String,
    audience: Audience,
    owner_name: String,
    server_name: String,
    library_name: String,
    permission: &'static str,
    expires: String,
    /// Why the last *Accept* failed.
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "invite_problem.html")]
struct ProblemPage {
    layout: Layout,
    status: u16,
    message: String,
}

fn layout(title: &str, user: Option<&UserRow>, csrf: &str) -> Layout {
    Layout::new(title, user, csrf, "shares")
}

/// The page of an invite link that cannot be used: unknown or malformed (404), expired or used
/// up (410).
fn problem(user: Option<&UserRow>, csrf: &str, invitation: Option<&Invitation>) -> Response {
    let (status, title, message) = match invitation {
        None => (
            StatusCode::NOT_FOUND,
            "Invite link not valid",
            "This invite link is not valid: it may be mistyped or cut short, or it was never made on this hub. Ask the person who sent it for a new link.".to_owned(),
        ),
        Some(invitation) if invitation.status == "expired" => (
            StatusCode::GONE,
            "Invite link expired",
            format!(
                "This invite link from {} to {} on {} expired on {}. Ask {} for a new link.",
                invitation.owner_name,
                invitation.library_name,
                invitation.server_name,
                invitation
                    .invite
                    .expires_at
                    .map_or_else(|| "an earlier date".to_owned(), |at| when(at).1),
                invitation.owner_name
            ),
        ),
        Some(invitation) => (
            StatusCode::GONE,
            "Invite link used up",
            format!(
                "This invite link from {} to {} on {} has been used as many times as it allows, or {} revoked it. Ask {} for a new link.",
                invitation.owner_name,
                invitation.library_name,
                invitation.server_name,
                invitation.owner_name,
                invitation.owner_name
            ),
        ),
    };
    let page = ProblemPage {
        layout: layout(title, user, csrf),
        status: status.as_u16(),
        message,
    };
    html(status, page.render())
}

/// Renders the invitation of `token` for `user` (`None`: signed out), or the page of its
/// problem.
async fn render(
    core: &crate::domain::Core,
    user: Option<&UserRow>,
    csrf: &str,
    token: &str,
    error: Option<(StatusCode, String)>,
) -> Response {
    let invitation = match shares::invitation(core, token).await {
        Ok(invitation) => invitation,
        Err(DomainError::NotFound(_)) => return problem(user, csrf, None),
        Err(err) => {
            let (status, _) = err.parts();
            tracing::error!(error = %err, "invite page failed");
            return error_page(
                status,
                "Invite not available",
                "The hub cannot read this invitation right now. Try again in a moment.",
            );
        }
    };
    if invitation.status != "active" {
        return problem(user, csrf, Some(&invitation));
    }
    let audience = match user {
        None => Audience::Visitor,
        Some(user) if user.id == invitation.invite.owner_user_id => Audience::Owner,
        Some(_) => Audience::Invitee,
    };
    let (status, error) = error.map_or((StatusCode::OK, None), |(s, e)| (s, Some(e)));
    let title = format!("Invitation from {}", invitation.owner_name);
    let page = InvitePage {
        layout: layout(&title, user, csrf),
        here: percent_encode(&format!("/app/invite/{token}")),
        token: token.to_owned(),
        audience,
        permission: permission_text(&invitation.invite.permission),
        expires: invitation
            .invite
            .expires_at
            .map_or_else(|| "never".to_owned(), |at| when(at).1),
        owner_name: invitation.owner_name,
        server_name: invitation.server_name,
        library_name: invitation.library_name,
        error,
    };
    html(status, page.render())
}

/// `GET /app/invite/{token}`: the invitation, signed in or not.
pub async fn invite(visitor: Visitor, Path(token): Path<String>) -> Response {
    render(
        &visitor.core,
        visitor.user.as_ref(),
        &visitor.csrf,
        &token,
        None,
    )
    .await
}

/// `POST /app/invite/{token}`: accepts the invitation (a share for the signed-in user), then
/// `/app/shares` with a notice; a refusal comes back on the invitation's page.
pub async fn accept(
    viewer: Viewer,
    client: ClientInfo,
    Path(token): Path<String>,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
    match shares::redeem(&viewer.core, &client, &viewer.user, &token).await {
        Ok(share) => Redirect::to(&format!(
            "/app/shares?accepted={}",
            percent_encode(&share.id)
        ))
        .into_response(),
        Err(err) => {
            let (status, _) = err.parts();
            let message = match &err {
                DomainError::Conflict {
                    code: "share_exists",
                    ..
                } => "This library is already shared with you; you find it under Shares.",
                DomainError::Conflict {
                    code: "quota.exceeded",
                    ..
                } => {
                    "This server has reached its collaborator limit, so the invitation cannot be accepted now. Tell the person who invited you."
                }
                DomainError::Invalid {
                    code: "invalid_invite",
                    ..
                } => "This is your own invite link; send it to the person you want to share with.",
                // Unknown, expired, used up: the page explains it.
                DomainError::NotFound(_) | DomainError::Gone { .. } => {
                    return render(&viewer.core, Some(&viewer.user), &viewer.csrf, &token, None)
                        .await;
                }
                _ => {
                    if status.is_server_error() {
                        tracing::error!(error = %err, "accepting an invitation failed");
                    }
                    "The invitation could not be accepted right now. Try again in a moment."
                }
            };
            render(
                &viewer.core,
                Some(&viewer.user),
                &viewer.csrf,
                &token,
                Some((status, message.to_owned())),
            )
            .await
        }
    }
}
