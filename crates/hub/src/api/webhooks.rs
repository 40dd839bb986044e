//! Webhook endpoints over HTTP (SPEC P.1): thin handlers over `crate::domain::webhooks`.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::webhooks;
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, MaybeJson, Path, Ready};

/// `POST /api/v1/me/webhooks` → 201 `{"webhook","secret"}` (the secret is shown only here).
pub async fn create(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Response> {
    let (webhook, secret) = webhooks::create(&core, &client, &user.user, body.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"webhook": webhook, "secret": secret})),
    )
        .into_response())
}

/// `GET /api/v1/me/webhooks` → `{"webhooks":[W]}`.
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<Value>> {
    let list = webhooks::list(&core, &user.user.id).await?;
    Ok(Json(json!({ "webhooks": list })))
}

/// `GET /api/v1/me/webhooks/{id}` → W.
pub async fn get(
    Ready(core): Ready,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<webhooks::Webhook>> {
    let row = webhooks::owned(&core, &user.user.id, &id).await?;
    Ok(Json(webhooks::Webhook::from(&row)))
}

/// `PATCH /api/v1/me/webhooks/{id}` → W.
pub async fn update(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<webhooks::Webhook>> {
    let webhook = webhooks::update(&core, &client, &user.user.id, &id, body.as_ref()).await?;
    Ok(Json(webhook))
}

/// `DELETE /api/v1/me/webhooks/{id}` → 204.
pub async fn delete(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    webhooks::delete(&core, &client, &user.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/me/webhooks/{id}/rotate-secret` → `{"secret"}`.
pub async fn rotate_secret(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let secret = webhooks::rotate_secret(&core, &client, &user.user.id, &id).await?;
    Ok(Json(json!({ "secret": secret })))
}

/// `POST /api/v1/me/webhooks/{id}/test` → the `webhook.test` delivery with its attempt.
pub async fn test(
    Ready(core): Ready,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<webhooks::Delivery>> {
    Ok(Json(webhooks::test(&core, &user.user.id, &id).await?))
}

/// Query of the delivery log.
#[derive(Debug, Default, Deserialize)]
pub struct DeliveriesQuery {
    pub limit: Option<i64>,
    /// Unix seconds: deliveries created before this.
    pub before: Option<i64>,
}

/// `GET /api/v1/me/webhooks/{id}/deliveries?limit=&before=` → `{"deliveries":[D]}`.
pub async fn deliveries(
    Ready(core): Ready,
    user: CurrentUser,
    Path(id): Path<String>,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|rejection| {
        crate::domain::DomainError::invalid("invalid_query", rejection.body_text())
    })?;
    let list = webhooks::deliveries(&core, &user.user.id, &id, query.limit, query.before).await?;
    Ok(Json(json!({ "deliveries": list })))
}

/// `POST /api/v1/me/webhooks/{id}/deliveries/{delivery_id}/redeliver` → 202.
pub async fn redeliver(
    Ready(core): Ready,
    user: CurrentUser,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    webhooks::redeliver(&core, &user.user.id, &id, &delivery_id).await?;
    Ok(StatusCode::ACCEPTED)
}
