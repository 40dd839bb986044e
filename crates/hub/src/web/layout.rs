//! What every page shares: the layout, error pages, view helpers (times, sizes), the
//! server card, and the 404 page.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::session::Viewer;
use super::{assets, html};
use crate::domain::DomainError;
use crate::store::{ServerRow, UserRow};

/// Heartbeats the detail page charts.
pub const CHART_POINTS: i64 = 60;
/// Heartbeats the detail page lists.
pub const HISTORY_ROWS: usize = 15;
/// Relay sessions the detail page lists.
pub const SESSION_ROWS: i64 = 10;

/// What every page's frame needs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub username: Option<String>,
    pub is_admin: bool,
    pub csrf: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    pub version: String,
    /// The page follows `/api/v1/me/events`.
    pub live: bool,
    /// Maintenance mode is on: the page shows a banner.
    pub maintenance: bool,
}

tokio::task_local! {
    /// Whether maintenance mode is on, for the pages rendered inside [`maintenance_banner`]
    /// (read once per request, so no page handler has to pass it along).
    static MAINTENANCE: bool;
}

/// Middleware of the pages: looks the (cached) maintenance flag up once per request, so every
/// [`Layout`] built while answering shows the banner.
pub async fn maintenance_banner(
    axum::extract::State(state): axum::extract::State<crate::http::state::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let on = match state.core() {
        Some(core) => crate::domain::maintenance::is_on(&core).await,
        None => false,
    };
    MAINTENANCE.scope(on, next.run(request)).await
}

impl Layout {
    pub(super) fn new(
        title: impl Into<String>,
        user: Option<&UserRow>,
        csrf: &str,
        nav: &'static str,
    ) -> Self {
        Self {
            title: title.into(),
            username: user.map(|u| u.username.clone()),
            is_admin: user.is_some_and(|u| u.is_admin),
            csrf: csrf.to_owned(),
            nav,
            version: assets::VERSION.clone(),
            live: false,
            maintenance: MAINTENANCE.try_with(|on| *on).unwrap_or(false),
        }
    }

    pub(super) fn for_viewer(title: impl Into<String>, viewer: &Viewer, nav: &'static str) -> Self {
        Self::new(title, Some(&viewer.user), &viewer.csrf, nav)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub(super) struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

/// A standalone error page (no session needed).
#[must_use]
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::new(title, None, "", ""),
        status: status.as_u16(),
        message: message.to_owned(),
    };
    html(status, page.render())
}

/// An error page inside the signed-in frame.
pub(super) fn viewer_error(
    viewer: &Viewer,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    let page = ErrorPage {
        layout: Layout::for_viewer(title, viewer, ""),
        status: status.as_u16(),
        message: message.to_owned(),
    };
    html(status, page.render())
}

/// The page for an API error that is not a form message: status and a human sentence.
pub(super) fn api_error_page(viewer: &Viewer, err: &DomainError) -> Response {
    let (status, body) = err.parts();
    if status.is_server_error() {
        tracing::error!(error = %err, "page failed");
    }
    let message = match err {
        DomainError::NotFound(_) => "There is no such server.".to_owned(),
        DomainError::Forbidden(_) => "This server belongs to another account.".to_owned(),
        DomainError::Unavailable(_) => {
            "The hub cannot reach its database right now. Try again in a moment.".to_owned()
        }
        _ => body
            .message
            .unwrap_or_else(|| "Something went wrong. Try again in a moment.".to_owned()),
    };
    viewer_error(viewer, status, &body.error, &message)
}

/// The 403 page of an admin-only page for a member (`why` says what only admins may do).
pub(super) fn admin_only(viewer: &Viewer, why: &str) -> Option<Response> {
    (!viewer.user.is_admin)
        .then(|| viewer_error(viewer, StatusCode::FORBIDDEN, "Administrators only", why))
}

/// A refusal shown on a form's page: its status and one sentence (a validation failure's
/// field messages joined). A server error is logged, except 502: a third-party service
/// failed, which the page says.
pub(super) fn refusal(err: &DomainError) -> (StatusCode, String) {
    let (status, body) = err.parts();
    if status.is_server_error() && status != StatusCode::BAD_GATEWAY {
        tracing::error!(error = %err, "page failed");
    }
    let message = match err {
        DomainError::Validation { field_errors, .. } => field_errors
            .iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join(". "),
        _ => body.message.unwrap_or(body.error),
    };
    (status, message)
}

/// `YYYY-MM-DDTHH:MM:SSZ` and `YYYY-MM-DD HH:MM UTC` of a unix time.
pub(super) fn when(unix: i64) -> (String, String) {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(unix) else {
        return (String::new(), "unknown".to_owned());
    };
    let iso = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    (iso, text)
}

/// `1.5 GiB` style sizes.
#[must_use]
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `3 d 4 h` style durations.
pub(super) fn human_duration(seconds: i64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// A server as the pages show it.
#[derive(Debug, Clone)]
pub struct ServerView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub version: String,
    pub last_seen_iso: String,
    pub last_seen_text: String,
    pub relay_active: bool,
    pub library_count: i64,
    pub subdomain: Option<String>,
    pub proxy_policy: String,
    pub enrolled_text: String,
    pub hostnames: Vec<String>,
}

impl From<ServerRow> for ServerView {
    fn from(row: ServerRow) -> Self {
        let (last_seen_iso, last_seen_text) = row
            .last_seen_at
            .map_or_else(|| (String::new(), "never".to_owned()), when);
        Self {
            enrolled_text: when(row.enrolled_at).1,
            hostnames: serde_json::from_str(&row.hostname_candidates_json).unwrap_or_default(),
            id: row.id,
            name: row.server_name,
            status: row.status,
            version: row.version,
            last_seen_iso,
            last_seen_text,
            relay_active: row.relay_active,
            library_count: row.library_count,
            subdomain: row.subdomain,
            proxy_policy: row.proxy_policy,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-up, login, logout

/// Any other `/app/…` path.
pub async fn not_found(viewer: Viewer) -> Response {
    viewer_error(
        &viewer,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(human_duration(59), "0 min");
        assert_eq!(human_duration(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(human_duration(2 * 86_400 + 3600), "2 d 1 h");
    }

    #[test]
    fn times_have_an_iso_and_a_readable_form() {
        let (iso, text) = when(1_700_000_000);
        assert_eq!(iso, "2023-11-14T22:13:20Z");
        assert_eq!(text, "2023-11-14 22:13 UTC");
    }
}

#[derive(Debug, Deserialize)]
pub struct EmptyForm {}
