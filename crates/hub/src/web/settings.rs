//! Hub settings (admins) over `crate::domain::settings`: one form, grouped by area, every
//! field checked before any is written.

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Viewer};
use crate::domain::settings::{self, Kind, SCHEMA};
use crate::http::extract::ClientInfo;

/// What a member is told on these pages.
const ADMINS_ONLY: &str = "Only an administrator of this hub can change its settings.";

/// One field of the settings form.
#[derive(Debug, Clone)]
pub struct SettingField {
    pub key: String,
    pub label: &'static str,
    pub help: &'static str,
    /// `int`, `bool`, `url` or `text`.
    pub input: &'static str,
    pub value: String,
    pub checked: bool,
    pub min: i64,
    pub max: i64,
    pub error: Option<String>,
}

/// The fields of one area.
#[derive(Debug, Clone)]
pub struct SettingGroup {
    pub id: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub fields: Vec<SettingField>,
}

const GROUPS: [(&str, &str, &str); 9] = [
    (
        "accounts",
        "Accounts",
        "Sign-in lifetimes and who may create an account.",
    ),
    (
        "maintenance",
        "Maintenance",
        "Pause the hub's API for everyone but administrators and home servers.",
    ),
    ("servers", "Servers", "Paired servers and their tokens."),
    ("sharing", "Sharing", "Library shares and invite links."),
    (
        "requests",
        "Media requests",
        "How people ask for films and series.",
    ),
    (
        "radarr",
        "Radarr (films)",
        "Where approved film requests go.",
    ),
    (
        "sonarr",
        "Sonarr (series)",
        "Where approved series requests go.",
    ),
    ("relay", "Relay", "The reverse tunnels of paired servers."),
    ("federation", "Federation", "Hubs working together."),
];

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    groups: Vec<SettingGroup>,
    notice: Option<String>,
    error: Option<String>,
}

fn field(setting: &settings::Setting, value: &Value, error: Option<String>) -> SettingField {
    let (input, min, max) = match setting.kind {
        Kind::Int(int) => ("int", int.min, int.max),
        Kind::Bool { .. } => ("bool", 0, 0),
        Kind::Url { .. } => ("url", 0, 0),
        Kind::Text { .. } => ("text", 0, 0),
        Kind::Float { min, max, .. } => ("float", min as i64, max as i64),
    };
    SettingField {
        key: setting.key.to_owned(),
        label: setting.label,
        help: setting.help,
        input,
        value: match value {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        },
        checked: value.as_bool().unwrap_or(false),
        min,
        max,
        error,
    }
}

fn grouped(fields: Vec<(&'static str, SettingField)>) -> Vec<SettingGroup> {
    GROUPS
        .iter()
        .map(|(id, title, intro)| SettingGroup {
            id,
            title,
            intro,
            fields: fields
                .iter()
                .filter(|(group, _)| group == id)
                .map(|(_, f)| f.clone())
                .collect(),
        })
        .filter(|g| !g.fields.is_empty())
        .collect()
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
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    match settings::current(&viewer.core).await {
        Ok(current) => {
            let fields = current
                .iter()
                .map(|c| (c.setting.group, field(c.setting, &c.value, None)))
                .collect();
            let page = SettingsPage {
                layout: Layout::for_viewer("Hub settings", &viewer, "settings"),
                groups: grouped(fields),
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
    client: ClientInfo,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    let current = match settings::current(&viewer.core).await {
        Ok(current) => current,
        Err(err) => return api_error_page(&viewer, &err),
    };
    let mut fields = Vec::new();
    let mut updates = Map::new();
    let mut failed = false;
    for setting in &SCHEMA {
        let typed = form.get(setting.key).map(String::as_str);
        // A field the form did not send is left as it is (an unchecked checkbox is `off`).
        if typed.is_none() && !matches!(setting.kind, Kind::Bool { .. }) {
            let value = current
                .iter()
                .find(|c| c.setting.key == setting.key)
                .map_or(Value::Null, |c| c.value.clone());
            fields.push((setting.group, field(setting, &value, None)));
            continue;
        }
        match setting.from_form(typed) {
            Ok(value) => {
                fields.push((setting.group, field(setting, &value, None)));
                updates.insert(setting.key.to_owned(), value);
            }
            Err(message) => {
                failed = true;
                let shown = Value::String(typed.unwrap_or_default().to_owned());
                fields.push((setting.group, field(setting, &shown, Some(message))));
            }
        }
    }
    if failed {
        let page = SettingsPage {
            layout: Layout::for_viewer("Hub settings", &viewer, "settings"),
            groups: grouped(fields),
            notice: None,
            error: Some("Nothing was saved: correct the fields marked below.".to_owned()),
        };
        return html(StatusCode::UNPROCESSABLE_ENTITY, page.render());
    }
    match settings::update(&viewer.core, &viewer.user.id, &client, &updates).await {
        Ok(()) => Redirect::to("/app/settings?saved=1").into_response(),
        Err(err) => api_error_page(&viewer, &err),
    }
}
