//! Sign-in, sign-up and sign-out pages over `crate::domain::accounts`.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Visitor, safe_next};
use crate::domain::Core;
use crate::domain::DomainError;
use crate::http::cookies::{REFRESH_COOKIE, clear_session_cookies, set_session_cookies};
use crate::http::extract::ClientInfo;
use crate::store::UserRow;

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
    pub signed_out: Option<String>,
    /// The token of the invite link the visitor came from (`/app/invite/{token}`).
    pub invite: Option<String>,
}

/// The invite token a sign-in or sign-up carries: the explicit one, else the token of an
/// invitation page the visitor returns to. Only well-formed tokens are kept (the form repeats
/// it; the link itself is checked when the account is made).
fn invite_token(explicit: Option<&str>, next: &str) -> Option<String> {
    explicit
        .or_else(|| next.strip_prefix("/app/invite/"))
        .filter(|token| crate::domain::shares::is_token(token))
        .map(str::to_owned)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    /// Carried on to the sign-up link.
    invite: Option<String>,
    login: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    next: String,
    /// The invite link's token, repeated by the form: it lets the visitor sign up even when
    /// sign-ups are disabled.
    invite: Option<String>,
    username: String,
    email: String,
    error: Option<String>,
}

/// A visitor who is signed in already goes straight to `next` from the login and sign-up
/// pages.
fn already_signed_in(visitor: &Visitor, next: &str) -> Option<Response> {
    visitor.user.as_ref().map(|_| crate::http::found(next))
}

/// `GET /app/login[?next=…]`; a signed-in visitor goes straight on.
pub async fn login_page(
    visitor: Visitor,
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if let Some(redirect) = already_signed_in(&visitor, &next) {
        return redirect;
    }
    let page = LoginPage {
        layout: Layout::new("Sign in", None, &visitor.csrf, "login"),
        invite: invite_token(query.invite.as_deref(), &next),
        next,
        login: String::new(),
        error: None,
        notice: query.signed_out.map(|_| "You are signed out.".to_owned()),
    };
    html(StatusCode::OK, page.render())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub password: String,
    pub next: Option<String>,
}

/// Signs the user in: both session cookies, then 303 to `next`.
async fn start_session(core: &Core, user: &UserRow, next: &str) -> Response {
    let tokens = match crate::domain::accounts::issue_tokens(core, user).await {
        Ok(tokens) => tokens,
        Err(err) => return error_page(err.parts().0, "Sign-in failed", "Try again in a moment."),
    };
    let mut response = Redirect::to(next).into_response();
    set_session_cookies(response.headers_mut(), core, &tokens).await;
    response
}

/// `POST /app/login` (and the PHP hub's `POST /login`).
pub async fn login(
    visitor: Visitor,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    match crate::domain::accounts::authenticate(&visitor.core, &client, &form.login, form.password)
        .await
    {
        Ok(user) => start_session(&visitor.core, &user, &next).await,
        Err(err) => {
            let (status, _) = err.parts();
            let message = match &err {
                DomainError::InvalidCredentials => "Wrong username or password.".to_owned(),
                DomainError::RateLimited { retry_after } => format!(
                    "Too many failed sign-ins from this address. Try again in {} minutes.",
                    retry_after.div_ceil(60)
                ),
                DomainError::AccountLocked { retry_after } => format!(
                    "This account is locked after too many failed sign-ins. Try again in {} minutes, or sign in from a device you have used before.",
                    retry_after.div_ceil(60)
                ),
                DomainError::Invalid { message, .. } => capitalise(message),
                DomainError::AccountDisabled => {
                    "This account has been disabled by an administrator of this hub.".to_owned()
                }
                _ => "The hub could not check your password right now. Try again in a moment."
                    .to_owned(),
            };
            let page = LoginPage {
                layout: Layout::new("Sign in", None, &visitor.csrf, "login"),
                invite: invite_token(None, &next),
                next,
                login: form.login,
                error: Some(message),
                notice: None,
            };
            let mut response = html(status, page.render());
            if let DomainError::RateLimited { retry_after }
            | DomainError::AccountLocked { retry_after } = err
                && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// `GET /app/signup`.
pub async fn signup_page(
    visitor: Visitor,
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if let Some(redirect) = already_signed_in(&visitor, &next) {
        return redirect;
    }
    let page = SignupPage {
        layout: Layout::new("Create an account", None, &visitor.csrf, "signup"),
        invite: invite_token(query.invite.as_deref(), &next),
        next,
        username: String::new(),
        email: String::new(),
        error: None,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Debug, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    pub next: Option<String>,
    /// The invite link token when signing up from `/app/invite/{token}` (it allows sign-up
    /// even when sign-ups are disabled).
    pub invite: Option<String>,
}

/// `POST /app/signup` (and `POST /signup`): creates the account and signs in.
pub async fn signup(
    visitor: Visitor,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<SignupForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let invite = invite_token(form.invite.as_deref().filter(|t| !t.is_empty()), &next);
    let request = phlix_proto::auth::RegisterRequest {
        username: Some(form.username.trim().to_owned()),
        email: Some(form.email.trim().to_owned()),
        password: Some(form.password),
        display_name: None,
    };
    match crate::domain::accounts::create_account(
        &visitor.core,
        &client,
        &request,
        invite.as_deref(),
    )
    .await
    {
        Ok(user) => start_session(&visitor.core, &user, &next).await,
        Err(err) => {
            let (status, _) = err.parts();
            let message = match &err {
                DomainError::Invalid { message, .. } => capitalise(message),
                DomainError::Conflict { code, .. } if *code == "auth.username_taken" => {
                    "This username is taken; choose another.".to_owned()
                }
                DomainError::Conflict { code, .. } if *code == "auth.email_taken" => {
                    "An account with this e-mail address exists already. Sign in instead."
                        .to_owned()
                }
                DomainError::Denied { code, .. } if *code == "signups_disabled" => {
                    if invite.is_some() {
                        "Sign-ups are closed on this hub, and this invite link can no longer be used. Ask for a new link.".to_owned()
                    } else {
                        "Sign-ups are closed on this hub. Ask someone with an account for an invite link.".to_owned()
                    }
                }
                _ => {
                    "The account could not be created right now. Try again in a moment.".to_owned()
                }
            };
            let page = SignupPage {
                layout: Layout::new("Create an account", None, &visitor.csrf, "signup"),
                invite,
                next,
                username: form.username,
                email: form.email,
                error: Some(message),
            };
            html(status, page.render())
        }
    }
}

/// `POST /app/logout` (and `POST /logout`): revokes the refresh token, clears the cookies.
pub async fn logout(
    visitor: Visitor,
    client: ClientInfo,
    jar: axum_extra::extract::CookieJar,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
    let refresh = jar.get(REFRESH_COOKIE).map(|c| c.value().to_owned());
    if let Err(err) = crate::domain::accounts::end_session(&visitor.core, &client, refresh).await {
        tracing::warn!(error = %err, "could not revoke the refresh token at logout");
    }
    let mut response = Redirect::to("/app/login?signed_out=1").into_response();
    clear_session_cookies(response.headers_mut(), &visitor.core.config);
    response
}
