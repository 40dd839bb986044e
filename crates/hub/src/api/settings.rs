//! Hub settings in the PHP hub's shape (SPEC H.3): `GET`/`PUT /api/v1/me/hub-settings` (alias
//! `/api/v1/admin/settings`), admins only, over `crate::domain::settings`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tracing::instrument;

use crate::domain::{ClientInfo, Core, DomainError, settings};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AdminUser, Json, MaybeJson, Ready};

/// `{"success":true,"data":{"settings","overridden","types","schema"}}`.
async fn document(core: &Core) -> ApiResult<Value> {
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
        schema.push(json!({
            "key": setting.key,
            "type": setting.type_name(),
            "default": setting.default_value(&core.config),
            "min": min,
            "max": max,
            "restart": false,
            "group": setting.group,
            "label": setting.label,
            "help": setting.help,
            "helpText": setting.help,
            "helpLinks": [],
            "tier": "basic",
        }));
    }
    Ok(json!({
        "success": true,
        "data": {"settings": values, "overridden": overridden, "types": types, "schema": schema},
    }))
}

/// `GET /api/v1/me/hub-settings`.
pub async fn get_settings(Ready(core): Ready, _: AdminUser) -> ApiResult<Json<Value>> {
    Ok(Json(document(&core).await?))
}

/// The H.3 error body: `{"success":false,"error":<code>,"message"}` with status 400.
fn refused(code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"success": false, "error": code, "message": message})),
    )
        .into_response()
}

/// `PUT /api/v1/me/hub-settings` `{"settings":{key: value|null}}`: all or nothing.
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
        Ok(()) => Ok(axum::Json(json!({"success": true})).into_response()),
        Err(DomainError::Invalid { code, message }) => Ok(refused(code, &message)),
        Err(err) => Err(err.into()),
    }
}
