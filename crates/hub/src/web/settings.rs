//! Hub settings (admins) over `crate::domain::settings`.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Viewer};
use crate::domain::Core;
use crate::domain::DomainError;

/// One setting field of the settings form.
#[derive(Debug, Clone)]
pub struct SettingField {
    pub key: String,
    pub label: &'static str,
    pub help: &'static str,
    pub value: String,
    pub min: i64,
    pub max: i64,
    pub error: Option<String>,
}

fn describe(key: &str) -> (&'static str, &'static str) {
    match key {
        "server.enrollment_ttl" => (
            "Enrollment token lifetime (seconds)",
            "How long a paired server's token is valid before it must renew it.",
        ),
        "auth.access_ttl" => (
            "Access token lifetime (seconds)",
            "How long a sign-in stays valid before it is silently renewed.",
        ),
        "auth.refresh_ttl" => (
            "Refresh token lifetime (seconds)",
            "How long a browser stays signed in without activity.",
        ),
        "invite.default_expiry_seconds" => (
            "Invite link lifetime (seconds)",
            "How long a new invite link works when its creator sets no expiry; 0 = never expires.",
        ),
        "server.max_users_per_server" => (
            "Collaborators per server",
            "How many different people one server may be shared with; 0 = no limit.",
        ),
        _ => ("", ""),
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    fields: Vec<SettingField>,
    notice: Option<String>,
    error: Option<String>,
}

fn admin_only(viewer: &Viewer) -> Option<Response> {
    (!viewer.user.is_admin).then(|| {
        viewer_error(
            viewer,
            StatusCode::FORBIDDEN,
            "Administrators only",
            "Only an administrator of this hub can change its settings.",
        )
    })
}

async fn current_fields(core: &Core) -> Result<Vec<SettingField>, DomainError> {
    let mut fields = Vec::new();
    for (setting, value) in crate::domain::settings::current(core).await? {
        let (label, help) = describe(setting.key);
        fields.push(SettingField {
            key: setting.key.to_owned(),
            label,
            help,
            value: value.to_string(),
            min: setting.min,
            max: setting.max,
            error: None,
        });
    }
    Ok(fields)
}

#[derive(Debug, Default, Deserialize)]
pub struct SavedQuery {
    pub saved: Option<String>,
}

/// `GET /app/settings` (admins).
pub async fn settings_page(
    viewer: Viewer,
    axum::extract::Query(query): axum::extract::Query<SavedQuery>,
) -> Response {
    if let Some(refused) = admin_only(&viewer) {
        return refused;
    }
    match current_fields(&viewer.core).await {
        Ok(fields) => {
            let page = SettingsPage {
                layout: Layout::for_viewer("Hub settings", &viewer, "settings"),
                fields,
                notice: query.saved.map(|_| "Settings saved.".to_owned()),
                error: None,
            };
            html(StatusCode::OK, page.render())
        }
        Err(err) => api_error_page(&viewer, &err),
    }
}

/// `POST /app/settings`: every field is checked before any is written (all or nothing).
pub async fn save_settings(
    viewer: Viewer,
    CsrfForm(form): CsrfForm<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(refused) = admin_only(&viewer) {
        return refused;
    }
    let mut fields = Vec::new();
    let mut updates = Vec::new();
    for setting in crate::domain::settings::ALL {
        let (label, help) = describe(setting.key);
        let typed = form
            .get(setting.key)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let error = match typed.parse::<i64>() {
            Ok(value) if setting.accepts(value) => {
                updates.push((setting.key, value));
                None
            }
            _ => Some(format!(
                "Enter a whole number from {} to {}.",
                setting.min, setting.max
            )),
        };
        fields.push(SettingField {
            key: setting.key.to_owned(),
            label,
            help,
            value: typed,
            min: setting.min,
            max: setting.max,
            error,
        });
    }
    if updates.len() < fields.len() {
        let page = SettingsPage {
            layout: Layout::for_viewer("Hub settings", &viewer, "settings"),
            fields,
            notice: None,
            error: Some("Nothing was saved: correct the fields marked below.".to_owned()),
        };
        return html(StatusCode::UNPROCESSABLE_ENTITY, page.render());
    }
    match crate::domain::settings::save_settings(&viewer.core, &updates).await {
        Ok(()) => Redirect::to("/app/settings?saved=1").into_response(),
        Err(err) => api_error_page(&viewer, &err),
    }
}
