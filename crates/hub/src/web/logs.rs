//! `/app/admin/logs` (administrators): the hub's recent log records from the in-memory ring
//! of `crate::telemetry`, newest last. Without script the page shows the last
//! [`PAGE_RECORDS`] records that pass the level and target filters (a GET form); with script
//! it follows `GET /api/v1/me/logs/tail` (the page's cookie authorizes it) and appends each
//! new line, with a Pause/Resume button.

use std::collections::HashMap;

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;

use super::html;
use super::layout::{Layout, admin_only, viewer_error};
use super::session::Viewer;
use crate::http::percent_encode;
use crate::telemetry::{LogFilter, Severity, log_ring};

/// Records the page shows when it is loaded.
pub const PAGE_RECORDS: usize = 200;

/// One line as the page shows it.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub ts: String,
    pub level: &'static str,
    pub target: String,
    pub message: String,
    /// The fields as `key=value` pairs (JSON values).
    pub fields: String,
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    layout: Layout,
    levels: Vec<&'static str>,
    level: &'static str,
    target: String,
    lines: Vec<LogLine>,
    /// The URL of the live tail with the same filters.
    tail_url: String,
}

/// `GET /app/admin/logs[?level=&target=]` (administrators; 403 page otherwise).
pub async fn page(viewer: Viewer, Query(params): Query<HashMap<String, String>>) -> Response {
    if let Some(refused) = admin_only(
        &viewer,
        "Only an administrator of this hub can read its logs.",
    ) {
        return refused;
    }
    let level = match params.get("level").map(String::as_str) {
        None | Some("") => Severity::Info,
        Some(text) => match Severity::parse(text) {
            Some(level) => level,
            None => {
                return viewer_error(
                    &viewer,
                    StatusCode::BAD_REQUEST,
                    "Unknown level",
                    "Choose a level from error, warn, info, debug and trace.",
                );
            }
        },
    };
    let target = params
        .get("target")
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    let filter = LogFilter {
        level,
        target: (!target.is_empty()).then(|| target.clone()),
    };
    let lines = log_ring()
        .recent(&filter, PAGE_RECORDS)
        .iter()
        .map(|record| LogLine {
            ts: record.ts.clone(),
            level: record.level,
            target: record.target.clone(),
            message: record.message.clone(),
            fields: record
                .fields
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect();
    let mut tail_url = format!("/api/v1/me/logs/tail?level={}", level.name());
    if !target.is_empty() {
        tail_url.push_str("&target=");
        tail_url.push_str(&percent_encode(&target));
    }
    let page = LogsPage {
        layout: Layout::for_viewer("Logs", &viewer, "admin"),
        levels: Severity::ALL.iter().map(|s| s.name()).collect(),
        level: level.name(),
        target,
        lines,
        tail_url,
    };
    html(StatusCode::OK, page.render())
}
