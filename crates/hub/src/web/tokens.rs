//! The personal access token page over `crate::domain::tokens`: `/app/tokens` lists the
//! caller's tokens (scopes, expiry, last use) with a revoke button each, and makes new ones;
//! a new token is shown once, with how to point an MCP client at the hub.

use std::collections::HashMap;

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Viewer};
use crate::domain::tokens::{self, Scope, TokenView};
use crate::http::extract::{ClientInfo, Path};

/// A scope checkbox of the form.
#[derive(Debug, Clone)]
pub struct ScopeChoice {
    pub name: &'static str,
    pub id: String,
    pub what: &'static str,
    pub checked: bool,
}

fn choices(is_admin: bool, checked: &[String]) -> Vec<ScopeChoice> {
    Scope::ALL
        .into_iter()
        .filter(|scope| is_admin || *scope != Scope::Admin)
        .map(|scope| ScopeChoice {
            name: scope.as_str(),
            id: format!("scope-{}", scope.as_str().replace(':', "-")),
            what: match scope {
                Scope::ServersRead => "see your servers, their status, metrics and shares",
                Scope::RequestsRead => "see your media requests and search the catalogue",
                Scope::RequestsWrite => "ask for films and series, and withdraw requests",
                Scope::Admin => "the admin routes: users, the request queue (approve, deny)",
            },
            checked: checked.iter().any(|c| c == scope.as_str()),
        })
        .collect()
}

/// The lifetimes offered, in days.
const LIFETIMES: [i64; 5] = [7, 30, 90, 180, 365];

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenView>,
    notice: Option<&'static str>,
    error: Option<String>,
    name: String,
    choices: Vec<ScopeChoice>,
    lifetimes: Vec<i64>,
    days: i64,
}

async fn tokens_page(
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    form: (String, Vec<String>, i64),
    error: Option<String>,
) -> Response {
    let list = match tokens::list(&viewer.core, &viewer.user.id).await {
        Ok(list) => list,
        Err(err) => return api_error_page(viewer, &err),
    };
    let (name, checked, days) = form;
    let page = TokensPage {
        layout: Layout::for_viewer("Access tokens", viewer, "tokens"),
        tokens: list,
        notice,
        error,
        name,
        choices: choices(viewer.user.is_admin, &checked),
        lifetimes: LIFETIMES.to_vec(),
        days,
    };
    html(status, page.render())
}

fn default_form() -> (String, Vec<String>, i64) {
    let checked = vec!["servers:read".to_owned(), "requests:read".to_owned()];
    (String::new(), checked, tokens::DEFAULT_TTL_DAYS)
}

/// `GET /app/tokens[?saved=revoked]`.
pub async fn page(viewer: Viewer, Query(params): Query<HashMap<String, String>>) -> Response {
    let notice = (params.get("saved").map(String::as_str) == Some("revoked"))
        .then_some("Token revoked: it stopped working at once.");
    tokens_page(&viewer, StatusCode::OK, notice, default_form(), None).await
}

#[derive(Template)]
#[template(path = "token_created.html")]
struct CreatedPage {
    layout: Layout,
    token: TokenView,
    secret: String,
    mcp_url: String,
}

/// `POST /app/tokens` (`name`, `scopes` repeated, `days`): a new token, shown this once.
pub async fn create(
    viewer: Viewer,
    client: ClientInfo,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let name = fields
        .iter()
        .find(|(n, _)| n == "name")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let scopes: Vec<String> = fields
        .iter()
        .filter(|(n, _)| n == "scopes")
        .map(|(_, v)| v.clone())
        .collect();
    let days = fields
        .iter()
        .find(|(n, _)| n == "days")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .unwrap_or(tokens::DEFAULT_TTL_DAYS);
    let body = json!({"name": name, "scopes": scopes, "expires_in_days": days});
    match tokens::create(&viewer.core, &viewer.user, &client, Some(&body)).await {
        Ok(created) => {
            let public = viewer.core.config.public_url.trim_end_matches('/');
            let page = CreatedPage {
                layout: Layout::for_viewer("Token created", &viewer, "tokens"),
                token: created.view,
                secret: created.token,
                mcp_url: format!("{public}/mcp"),
            };
            let mut response = html(StatusCode::CREATED, page.render());
            // The token is in this page only: keep it out of every cache.
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(err) => {
            let (status, message) = refusal(&err);
            let message = if scopes.is_empty() {
                "Choose at least one scope.".to_owned()
            } else {
                message
            };
            tokens_page(&viewer, status, None, (name, scopes, days), Some(message)).await
        }
    }
}

/// `POST /app/tokens/{id}/revoke`.
pub async fn revoke(
    viewer: Viewer,
    client: ClientInfo,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Response {
    match tokens::revoke(&viewer.core, &viewer.user, &client, &id).await {
        Ok(()) => Redirect::to("/app/tokens?saved=revoked").into_response(),
        Err(err) => api_error_page(&viewer, &err),
    }
}
