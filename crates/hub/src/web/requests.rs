//! Media request pages over `crate::domain::requests`: `/app/requests` (search through the
//! *arr lookup, request, my requests with live status) and `/app/admin/requests` (the queue:
//! approve, deny with a reason, filter by status).

use std::collections::HashMap;

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Viewer};
use crate::domain::requests::{self, Created, SearchResult};
use crate::http::extract::{ClientInfo, Path};
use crate::store::RequestRow;

/// What a member is told on these pages.
const ADMINS_ONLY: &str = "Only an administrator of this hub can approve or deny requests.";

/// Image hosts of the posters the *arr lookups return (TMDB, TheTVDB, fanart.tv); the pages'
/// content security policy allows exactly these, and a poster elsewhere is not shown (a
/// request's `poster_url` comes from its requester).
pub const POSTER_HOSTS: [&str; 3] = [
    "https://image.tmdb.org/",
    "https://artworks.thetvdb.com/",
    "https://assets.fanart.tv/",
];

fn shown_poster(url: Option<&str>) -> Option<String> {
    url.filter(|u| POSTER_HOSTS.iter().any(|host| u.starts_with(host)))
        .map(str::to_owned)
}

/// A request as the pages list it.
#[derive(Debug, Clone)]
pub struct RequestView {
    pub id: i64,
    pub title: String,
    pub what: String,
    pub status: String,
    pub reason: Option<String>,
    pub requester: String,
    pub created_iso: String,
    pub created: String,
    pub poster: Option<String>,
}

fn request_view(row: &RequestRow) -> RequestView {
    let what = match (row.kind.as_str(), row.season) {
        ("movie", _) => "Film".to_owned(),
        (_, Some(season)) => format!("Series, season {season}"),
        _ => "Series, all seasons".to_owned(),
    };
    let (created_iso, created) = when(row.created_at);
    RequestView {
        id: row.id,
        title: row.title.clone(),
        what,
        status: row.status.clone(),
        reason: row.rejection_reason.clone(),
        requester: row.username.clone(),
        created_iso,
        created,
        poster: shown_poster(row.poster_url.as_deref()),
    }
}

/// A search result with what its form needs.
#[derive(Debug, Clone)]
pub struct ResultView {
    pub tmdb_id: i64,
    pub title: String,
    pub year: String,
    pub overview: String,
    pub poster: Option<String>,
    pub poster_url: String,
    pub status: &'static str,
    pub seasons: Vec<i64>,
}

fn result_view(result: SearchResult) -> ResultView {
    ResultView {
        tmdb_id: result.tmdb_id,
        poster: shown_poster(result.poster_url.as_deref()),
        poster_url: result.poster_url.unwrap_or_default(),
        title: result.title,
        year: result.year.map(|y| y.to_string()).unwrap_or_default(),
        overview: result.overview.unwrap_or_default(),
        status: result.status,
        seasons: result.seasons.into_iter().filter(|s| *s > 0).collect(),
    }
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    layout: Layout,
    kind: String,
    query: String,
    searched: bool,
    results: Vec<ResultView>,
    notice: Option<String>,
    error: Option<String>,
    mine: Vec<RequestView>,
}

fn notice_of(saved: Option<&str>) -> Option<String> {
    Some(
        match saved? {
            "created" => "Request sent. You will see here when it is approved and available.",
            "approved" => "Request sent and approved: it is on its way.",
            "deleted" => "Request removed.",
            "denied" => "Request denied.",
            _ => return None,
        }
        .to_owned(),
    )
}

async fn requests_page(
    viewer: &Viewer,
    params: &HashMap<String, String>,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let kind = match params.get("type").map(String::as_str) {
        Some("series") => "series",
        _ => "movie",
    };
    let query = params
        .get("q")
        .map(|q| q.trim().to_owned())
        .unwrap_or_default();
    let mut error = error;
    let mut results = Vec::new();
    let mut status = status;
    if !query.is_empty() {
        match requests::search(&viewer.core, Some(kind), Some(&query)).await {
            Ok(found) => results = found.into_iter().map(result_view).collect(),
            Err(err) => {
                let (code, message) = refusal(&err);
                status = code;
                error = Some(message);
            }
        }
    }
    let mine = match requests::mine(&viewer.core, &viewer.user.id, None).await {
        Ok(rows) => rows.iter().map(request_view).collect(),
        Err(err) => return api_error_page(viewer, &err),
    };
    let mut layout = Layout::for_viewer("Requests", viewer, "requests");
    layout.live = true;
    let page = RequestsPage {
        layout,
        kind: kind.to_owned(),
        searched: !query.is_empty(),
        query,
        results,
        notice: notice_of(params.get("saved").map(String::as_str)),
        error,
        mine,
    };
    html(status, page.render())
}

/// `GET /app/requests[?type=&q=]`.
pub async fn page(viewer: Viewer, Query(params): Query<HashMap<String, String>>) -> Response {
    requests_page(&viewer, &params, StatusCode::OK, None).await
}

/// `POST /app/requests`: a request from a search result.
pub async fn create(
    viewer: Viewer,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Response {
    let mut body = json!({
        "type": form.get("type").cloned().unwrap_or_default(),
        "tmdb_id": form.get("tmdb_id").cloned().unwrap_or_default(),
        "title": form.get("title").cloned().unwrap_or_default(),
    });
    if let Some(url) = form.get("poster_url").filter(|u| !u.is_empty()) {
        body["poster_url"] = json!(url);
    }
    if let Some(season) = form.get("season").filter(|s| !s.is_empty() && *s != "all") {
        body["season"] = json!(season);
    }
    let back = |params: &mut HashMap<String, String>| {
        params.insert("type".into(), form.get("type").cloned().unwrap_or_default());
        params.insert("q".into(), form.get("q").cloned().unwrap_or_default());
    };
    match requests::create(&viewer.core, &viewer.user, &client, Some(&body)).await {
        Ok(Created::New(row)) => {
            let saved = if row.status == "pending" {
                "created"
            } else {
                "approved"
            };
            Redirect::to(&format!("/app/requests?saved={saved}")).into_response()
        }
        Ok(Created::Exists(row)) => {
            let mut params = HashMap::new();
            back(&mut params);
            let message = format!(
                "You asked for {} already; that request is {}.",
                row.title, row.status
            );
            requests_page(&viewer, &params, StatusCode::CONFLICT, Some(message)).await
        }
        Err(err) => {
            let (status, message) = refusal(&err);
            let mut params = HashMap::new();
            back(&mut params);
            requests_page(&viewer, &params, status, Some(message)).await
        }
    }
}

/// `POST /app/requests/{id}/delete`: the requester (or an admin) withdraws a request.
pub async fn delete(
    viewer: Viewer,
    client: ClientInfo,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Response {
    match requests::delete(&viewer.core, &viewer.user, &client, &id).await {
        Ok(()) if form.get("from").map(String::as_str) == Some("admin") => {
            Redirect::to("/app/admin/requests?saved=deleted").into_response()
        }
        Ok(()) => Redirect::to("/app/requests?saved=deleted").into_response(),
        Err(err) => api_error_page(&viewer, &err),
    }
}

#[derive(Template)]
#[template(path = "admin_requests.html")]
struct QueuePage {
    layout: Layout,
    status: String,
    filters: Vec<(&'static str, &'static str)>,
    rows: Vec<RequestView>,
    notice: Option<String>,
    error: Option<String>,
}

const FILTERS: [(&str, &str); 5] = [
    ("pending", "Pending"),
    ("approved", "Approved"),
    ("available", "Available"),
    ("rejected", "Denied"),
    ("all", "All"),
];

async fn queue_page(
    viewer: &Viewer,
    status_filter: Option<&str>,
    saved: Option<&str>,
    code: StatusCode,
    error: Option<String>,
) -> Response {
    if let Some(refused) = admin_only(viewer, ADMINS_ONLY) {
        return refused;
    }
    let filter = status_filter
        .filter(|s| FILTERS.iter().any(|(k, _)| k == s))
        .unwrap_or("pending");
    let rows = match requests::all(&viewer.core, Some(filter)).await {
        Ok(rows) => rows.iter().map(request_view).collect(),
        Err(err) => return api_error_page(viewer, &err),
    };
    let mut layout = Layout::for_viewer("Request queue", viewer, "queue");
    layout.live = true;
    let page = QueuePage {
        layout,
        status: filter.to_owned(),
        filters: FILTERS.to_vec(),
        rows,
        notice: notice_of(saved),
        error,
    };
    html(code, page.render())
}

/// `GET /app/admin/requests[?status=]` (admins).
pub async fn queue(viewer: Viewer, Query(params): Query<HashMap<String, String>>) -> Response {
    queue_page(
        &viewer,
        params.get("status").map(String::as_str),
        params.get("saved").map(String::as_str),
        StatusCode::OK,
        None,
    )
    .await
}

/// `POST /app/admin/requests/{id}/approve`.
pub async fn approve(
    viewer: Viewer,
    client: ClientInfo,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    let filter = form.get("status").map(String::as_str);
    match requests::approve(&viewer.core, &viewer.user, &client, &id).await {
        Ok(_) => Redirect::to("/app/admin/requests?saved=approved").into_response(),
        Err(err) => {
            let (code, message) = refusal(&err);
            queue_page(&viewer, filter, None, code, Some(message)).await
        }
    }
}

/// `POST /app/admin/requests/{id}/deny` with an optional reason.
pub async fn deny(
    viewer: Viewer,
    client: ClientInfo,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    let reason = form
        .get("reason")
        .map(|r| Value::String(r.clone()))
        .unwrap_or(Value::Null);
    let filter = form.get("status").map(String::as_str);
    match requests::deny(&viewer.core, &viewer.user, &client, &id, Some(&reason)).await {
        Ok(_) => Redirect::to("/app/admin/requests?saved=denied").into_response(),
        Err(err) => {
            let (code, message) = refusal(&err);
            queue_page(&viewer, filter, None, code, Some(message)).await
        }
    }
}
