//! Hub settings in the PHP hub's shape (SPEC H.3): `GET`/`PUT /api/v1/me/hub-settings` (alias
//! `/api/v1/admin/settings`), admins only, over `crate::domain::settings`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tracing::instrument;
use utoipa::ToSchema;

use crate::domain::{ClientInfo, Core, DomainError, settings};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AdminUser, Json, MaybeJson, Ready};

/// `{"success":true,"data":{"settings","overridden","types","schema"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsDoc {
    pub data: SettingsData,
    /// Always `true`.
    pub success: bool,
}

/// The settings, their types and their schema (SPEC H.3).
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsData {
    /// Keys an admin has set (the others have their default).
    pub overridden: Vec<&'static str>,
    pub schema: Vec<SettingSchema>,
    /// Effective value by key.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// `int`, `float`, `bool` or `string` by key.
    #[schema(value_type = Object)]
    pub types: Map<String, Value>,
}

/// One setting as the settings page describes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingSchema {
    /// The value without an admin's choice: a number, a boolean, a string or null.
    #[schema(value_type = serde_json::Value)]
    pub default: Value,
    pub group: &'static str,
    pub help: &'static str,
    /// Always empty.
    #[serde(rename = "helpLinks")]
    #[schema(value_type = Vec<String>, max_items = 0)]
    pub help_links: [&'static str; 0],
    /// The same text as `help`.
    #[serde(rename = "helpText")]
    pub help_text: &'static str,
    pub key: &'static str,
    pub label: &'static str,
    /// Largest value of a number, else null.
    #[schema(value_type = Option<f64>)]
    pub max: Value,
    /// Smallest value of a number, else null.
    #[schema(value_type = Option<f64>)]
    pub min: Value,
    /// Always `false`: every setting applies without a restart.
    pub restart: bool,
    /// Always `basic`.
    pub tier: &'static str,
    /// `int`, `float`, `bool` or `string`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// The settings document.
async fn document(core: &Core) -> ApiResult<SettingsDoc> {
    let mut values = Map::new();
    let mut types = Map::new();
    let mut overridden = Vec::new();
    let mut schema = Vec::new();
    for current in settings::current(core).await? {
        let setting = current.setting;
        values.insert(setting.key.to_owned(), current.value);
        types.insert(setting.key.to_owned(), json!(setting.type_name()));
        if current.overridden {
            overridden.push(setting.key);
        }
        let (min, max) = match setting.kind {
            settings::Kind::Int(int) => (json!(int.min), json!(int.max)),
            settings::Kind::Float { min, max, .. } => (json!(min), json!(max)),
            _ => (Value::Null, Value::Null),
        };
        schema.push(SettingSchema {
            default: setting.default_value(&core.config),
            group: setting.group,
            help: setting.help,
            help_links: [],
            help_text: setting.help,
            key: setting.key,
            label: setting.label,
            max,
            min,
            restart: false,
            tier: "basic",
            kind: setting.type_name(),
        });
    }
    Ok(SettingsDoc {
        data: SettingsData {
            overridden,
            schema,
            settings: values,
            types,
        },
        success: true,
    })
}

/// `GET /api/v1/me/hub-settings`.
#[utoipa::path(
    get,
    path = "/api/v1/me/hub-settings",
    tag = "settings",
    summary = "The hub's settings, their types and schema (SPEC H.3)",
    description = "Also served as `GET /api/v1/admin/settings`.",
    responses(
        (status = 200, description = "The settings", body = SettingsDoc),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn get_settings(Ready(core): Ready, _: AdminUser) -> ApiResult<Json<SettingsDoc>> {
    Ok(Json(document(&core).await?))
}

/// The H.3 error body: `{"success":false,"error":<code>,"message"}` with status 400.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsRefused {
    /// `invalid_body`, `invalid_key` or `invalid_type`.
    pub error: String,
    pub message: String,
    /// Always `false`.
    pub success: bool,
}

/// `{"success": true}`: every setting of the body is saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsSaved {
    /// Always `true`.
    pub success: bool,
}

/// Body of `PUT /api/v1/me/hub-settings`.
#[derive(Debug, ToSchema)]
pub struct SettingsChange {
    /// New value by key; `null` restores the default. All or nothing.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
}

fn refused(code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(SettingsRefused {
            error: code.to_owned(),
            message: message.to_owned(),
            success: false,
        }),
    )
        .into_response()
}

/// `PUT /api/v1/me/hub-settings` `{"settings":{key: value|null}}`: all or nothing.
#[utoipa::path(
    put,
    path = "/api/v1/me/hub-settings",
    tag = "settings",
    summary = "Change settings, all or nothing",
    description = "Every key is checked against the schema of `GET` (type, range) before any is \
        saved. Also served as `PUT /api/v1/admin/settings`.",
    request_body(
        content = SettingsChange,
        example = json!({"settings": {"auth.signups_disabled": true, "hub.maintenance_mode": null}})
    ),
    responses(
        (status = 200, description = "Saved", body = SettingsSaved),
        (status = 400, description = "`invalid_body`, `invalid_key` or `invalid_type` (SPEC H.3 \
            shape)", body = SettingsRefused),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
#[instrument(skip_all, fields(user_id = %admin.0.user.id))]
pub async fn put_settings(
    Ready(core): Ready,
    admin: AdminUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> Result<Response, ApiError> {
    let Some(Value::Object(map)) = body.as_ref().and_then(|b| b.get("settings")) else {
        return Ok(refused(
            "invalid_body",
            "Body must be a JSON object {\"settings\": {key: value}}",
        ));
    };
    match settings::update(&core, &admin.0.user.id, &client, map).await {
        Ok(()) => Ok(axum::Json(SettingsSaved { success: true }).into_response()),
        Err(DomainError::Invalid { code, message }) => Ok(refused(code, &message)),
        Err(err) => Err(err.into()),
    }
}
