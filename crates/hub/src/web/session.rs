//! Browser sessions: the page gate, silent renewal of the `phlix_hub_token` /
//! `phlix_hub_refresh` cookies (SPEC F.1; the cookies themselves are `crate::http::cookies`),
//! and CSRF protection of every form.
//!
//! CSRF: a double-submit token (SPEC E.1) — a random `phlix_hub_csrf` cookie that every form
//! repeats in its hidden `_csrf` field — plus an `Origin` check: a browser always sends
//! `Origin` with a form POST, and it must be the hub's own. The origin check also defeats a
//! cookie planted from a sibling subdomain (per-server subdomains serve foreign content).

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::layout::error_page;
use crate::auth::session::TokenKind;
use crate::config::Config;
use crate::domain::Core;
use crate::http::cookies::{
    ACCESS_COOKIE, REFRESH_COOKIE, cookie_value, set_cookie, set_session_cookies,
};
use crate::http::state::AppState;
use crate::store::UserRow;

/// Cookie holding the CSRF token the forms repeat.
pub const CSRF_COOKIE: &str = "phlix_hub_csrf";
/// Name of the hidden form field.
pub const CSRF_FIELD: &str = "_csrf";

/// The CSRF token of this request (set by [`csrf_cookie`]).
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// Middleware: every page request carries a CSRF token; a browser without one gets a new
/// cookie with the response.
pub async fn csrf_cookie(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let existing = cookie_value(request.headers(), CSRF_COOKIE).filter(|t| {
        t.len() == 43
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let (token, fresh) = match existing {
        Some(token) => (token, false),
        None => (
            URL_SAFE_NO_PAD.encode(crate::auth::random_bytes::<32>()),
            true,
        ),
    };
    request.extensions_mut().insert(CsrfToken(token.clone()));
    let mut response = next.run(request).await;
    if fresh {
        // A session cookie (no Max-Age): it lives as long as the browser session.
        set_cookie(
            response.headers_mut(),
            state.config(),
            CSRF_COOKIE,
            &token,
            None,
        );
    }
    response
}

/// Middleware: a page request whose access cookie is missing or expired but whose refresh
/// cookie is valid gets a new token pair — the request continues with the new access token and
/// the response sets both cookies. An invalid refresh cookie is left for the gate to refuse.
pub async fn renew_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(core) = state.core() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let access_valid = cookie_value(headers, ACCESS_COOKIE)
        .is_some_and(|t| core.sessions.verify(&t, TokenKind::Access).is_ok());
    let refresh = cookie_value(headers, REFRESH_COOKIE);
    let (false, Some(refresh)) = (access_valid, refresh) else {
        return next.run(request).await;
    };
    let tokens = match crate::domain::accounts::rotate_refresh(&core, &refresh).await {
        Ok(tokens) => tokens,
        Err(err) => {
            tracing::debug!(error = %err, "session renewal refused");
            return next.run(request).await;
        }
    };
    // The rest of this request sees the new access token.
    let others: Vec<String> = CookieJar::from_headers(request.headers())
        .iter()
        .filter(|c| c.name() != ACCESS_COOKIE && c.name() != REFRESH_COOKIE)
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect();
    let mut cookie_header = format!("{ACCESS_COOKIE}={}", tokens.access_token);
    for other in others {
        cookie_header.push_str("; ");
        cookie_header.push_str(&other);
    }
    if let Ok(value) = HeaderValue::from_str(&cookie_header) {
        request.headers_mut().insert(header::COOKIE, value);
    }
    let mut response = next.run(request).await;
    set_session_cookies(response.headers_mut(), &core, &tokens).await;
    response
}

/// Only a local path may follow a login: `/…`, not `//host` or a backslash trick.
#[must_use]
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/app/servers".to_owned(),
    }
}

/// The page gate: a signed-in user (from the access cookie), else a 302 to
/// `/app/login?next=<this page>`.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub core: Core,
    pub user: UserRow,
    pub csrf: String,
}

fn csrf_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<CsrfToken>()
        .map(|t| t.0.clone())
        .unwrap_or_default()
}

fn starting_page(state: &AppState) -> Response {
    let mut response = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The hub is starting",
        &format!(
            "The hub is still starting ({}). Try again in a few seconds.",
            state.health().step()
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

/// The user of the access cookie, if it is valid.
async fn signed_in(core: &Core, headers: &HeaderMap) -> Option<UserRow> {
    let token = cookie_value(headers, ACCESS_COOKIE)?;
    let claims = core.sessions.verify(&token, TokenKind::Access).ok()?;
    crate::domain::accounts::find_user(core, &claims.sub)
        .await
        .ok()
        .flatten()
        // A disabled account, or a session ended by an admin, is signed out.
        .filter(|user| user.disabled_at.is_none() && user.session_epoch == claims.sv)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let core = state.core().ok_or_else(|| starting_page(state))?;
        let csrf = csrf_of(parts);
        match signed_in(&core, &parts.headers).await {
            Some(user) => Ok(Self { core, user, csrf }),
            // A JSON client gets the API's answer (SPEC E.1), not a redirect.
            None if wants_json(&parts.headers) => Err(axum::response::IntoResponse::into_response(
                crate::http::error::ApiError::AuthRequired,
            )),
            None => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/app/servers", |p| p.as_str());
                let target = format!("/app/login?next={}", crate::http::percent_encode(here));
                Err(crate::http::found(&target))
            }
        }
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}

/// The visitor of the login and sign-up pages: maybe signed in already.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub core: Core,
    pub user: Option<UserRow>,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let core = state.core().ok_or_else(|| starting_page(state))?;
        let user = signed_in(&core, &parts.headers).await;
        Ok(Self {
            core,
            user,
            csrf: csrf_of(parts),
        })
    }
}

/// A form body that passed the CSRF checks: the `Origin` (when sent) is the hub's own and the
/// `_csrf` field equals the cookie. Refused with a 403 page; an unreadable body is a 400 page.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

fn forbidden_form() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form refused",
        "This form was not sent from a page of this hub, or it has expired. Go back, reload the page and try again.",
    )
}

fn origin_allowed(headers: &HeaderMap, config: &Config) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let public = config.public_url.trim_end_matches('/');
    let public_origin = public
        .find("://")
        .and_then(|i| public[i + 3..].find('/').map(|j| &public[..i + 3 + j]))
        .unwrap_or(public);
    if origin.eq_ignore_ascii_case(public_origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    host.is_some_and(|host| {
        origin.eq_ignore_ascii_case(&format!("http://{host}"))
            || origin.eq_ignore_ascii_case(&format!("https://{host}"))
    })
}

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        if !origin_allowed(request.headers(), state.config()) {
            tracing::info!("form refused: foreign Origin");
            return Err(forbidden_form());
        }
        let cookie = cookie_value(request.headers(), CSRF_COOKIE).unwrap_or_default();
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                error_page(status, "Form refused", "The form could not be read.")
            })?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            error_page(
                StatusCode::BAD_REQUEST,
                "Form refused",
                "The form could not be read.",
            )
        })?;
        let sent = fields
            .iter()
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value.as_str())
            .unwrap_or_default();
        let matches = !cookie.is_empty() && bool::from(sent.as_bytes().ct_eq(cookie.as_bytes()));
        if !matches {
            tracing::info!("form refused: missing or wrong CSRF token");
            return Err(forbidden_form());
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(Self)
            .map_err(|err| {
                error_page(
                    StatusCode::BAD_REQUEST,
                    "Form refused",
                    &format!("The form is incomplete: {err}."),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_may_follow_a_login() {
        assert_eq!(safe_next(Some("/app/servers/x?a=1")), "/app/servers/x?a=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "app",
        ] {
            assert_eq!(safe_next(Some(bad)), "/app/servers", "{bad}");
        }
        assert_eq!(safe_next(None), "/app/servers");
    }
}
