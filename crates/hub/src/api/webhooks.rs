//! Webhook endpoints over HTTP (SPEC P.1): thin handlers over `crate::domain::webhooks`.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::webhooks::{self, Delivery, Webhook};
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, MaybeJson, Path, Ready};

/// Body of `POST /api/v1/me/webhooks` (and, every field optional, of `PATCH`).
#[derive(Debug, ToSchema)]
pub struct WebhookRequest {
    /// 1–100 bytes.
    pub name: String,
    /// An http(s) URL of at most 2048 bytes, without credentials; it must resolve to public
    /// addresses unless the hub runs with `--webhook-allow-private`.
    pub url: String,
    /// Event types (SPEC P.2), at least one.
    pub events: Vec<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
    /// `user` (default) or `hub` (admins: every user's events).
    pub scope: Option<String>,
    /// `whsec_` and the base64 of 24–64 bytes; default: a fresh one.
    pub secret: Option<String>,
}

/// Answer of `POST /api/v1/me/webhooks`: the secret is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    /// The Standard Webhooks signing secret, `whsec_…`.
    pub secret: String,
    #[serde(serialize_with = "super::sorted_keys")]
    pub webhook: Webhook,
}

/// `{"webhooks": [W]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    #[serde(serialize_with = "super::sorted_keys")]
    pub webhooks: Vec<Webhook>,
}

/// `{"secret": …}`: the new signing secret (the old one keeps signing for 24 h).
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
}

/// `{"deliveries": [D]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    #[serde(serialize_with = "super::sorted_keys")]
    pub deliveries: Vec<Delivery>,
}

/// `POST /api/v1/me/webhooks` → 201 `{"webhook","secret"}` (the secret is shown only here).
#[utoipa::path(
    post,
    path = "/api/v1/me/webhooks",
    tag = "webhooks",
    summary = "Create a webhook endpoint (SPEC P.1)",
    request_body(
        content = WebhookRequest,
        example = json!({"name": "Home automation", "url": "https://hooks.example.com/phlix",
            "events": ["server.online", "server.offline"]})
    ),
    responses(
        (status = 201, description = "Created; the secret is shown only here",
            body = WebhookCreated,
        links(
            ("get" = (operation_id = "webhooks_get", parameters(("id" = "$response.body#/webhook/id")))),
            ("update" = (operation_id = "webhooks_update", parameters(("id" = "$response.body#/webhook/id")))),
            ("delete" = (operation_id = "webhooks_delete", parameters(("id" = "$response.body#/webhook/id")))),
            ("rotate_secret" = (operation_id = "webhooks_rotate_secret", parameters(("id" = "$response.body#/webhook/id")))),
            ("test" = (operation_id = "webhooks_test", parameters(("id" = "$response.body#/webhook/id")))),
            ("deliveries" = (operation_id = "webhooks_deliveries", parameters(("id" = "$response.body#/webhook/id"))))
        )),
        (status = 400, description = "`invalid_body`, `webhook.invalid_name`, \
            `webhook.invalid_url`, `webhook.invalid_events`, `webhook.unknown_event`, \
            `webhook.invalid_secret` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`webhook.hub_scope_admin_only`", body = ErrorBody),
        (status = 422, description = "`webhook.private_target` or `webhook.unresolvable`",
            body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn create(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Response> {
    let (webhook, secret) = webhooks::create(&core, &client, &user.user, body.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WebhookCreated { secret, webhook }),
    )
        .into_response())
}

/// `GET /api/v1/me/webhooks` → `{"webhooks":[W]}`.
#[utoipa::path(
    get,
    path = "/api/v1/me/webhooks",
    tag = "webhooks",
    summary = "The caller's webhook endpoints",
    responses(
        (status = 200, description = "The endpoints", body = WebhookList),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn list(Ready(core): Ready, user: CurrentUser) -> ApiResult<Json<WebhookList>> {
    let webhooks = webhooks::list(&core, &user.user.id).await?;
    Ok(Json(WebhookList { webhooks }))
}

/// `GET /api/v1/me/webhooks/{id}` → W.
#[utoipa::path(
    get,
    path = "/api/v1/me/webhooks/{id}",
    tag = "webhooks",
    summary = "One webhook endpoint of the caller",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`webhook.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn get(
    Ready(core): Ready,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Webhook>> {
    let row = webhooks::owned(&core, &user.user.id, &id).await?;
    Ok(Json(webhooks::Webhook::from(&row)))
}

/// `PATCH /api/v1/me/webhooks/{id}` → W.
#[utoipa::path(
    patch,
    path = "/api/v1/me/webhooks/{id}",
    tag = "webhooks",
    summary = "Change a webhook endpoint",
    description = "Any of `name`, `url`, `events`, `enabled`; re-enabling clears \
        `disabled_reason` and `failing_since`.",
    params(("id" = String, Path, description = "Webhook id")),
    request_body(content = WebhookRequest, example = json!({"enabled": false})),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 400, description = "`invalid_body`, `webhook.invalid_name`, \
            `webhook.invalid_url`, `webhook.invalid_events`, `webhook.unknown_event` or \
            `invalid_request`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`webhook.not_found`", body = ErrorBody),
        (status = 422, description = "`webhook.private_target` or `webhook.unresolvable`",
            body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn update(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<Webhook>> {
    let webhook = webhooks::update(&core, &client, &user.user.id, &id, body.as_ref()).await?;
    Ok(Json(webhook))
}

/// `DELETE /api/v1/me/webhooks/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/me/webhooks/{id}",
    tag = "webhooks",
    summary = "Delete a webhook endpoint and its delivery log",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`webhook.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/me/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    summary = "Rotate the signing secret",
    description = "Deliveries are signed with both the new and the old secret for 24 hours.",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The new secret, shown only here", body = RotatedSecret),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`webhook.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn rotate_secret(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<RotatedSecret>> {
    let secret = webhooks::rotate_secret(&core, &client, &user.user.id, &id).await?;
    Ok(Json(RotatedSecret { secret }))
}

/// `POST /api/v1/me/webhooks/{id}/test` → the `webhook.test` delivery with its attempt.
#[utoipa::path(
    post,
    path = "/api/v1/me/webhooks/{id}/test",
    tag = "webhooks",
    summary = "Send a `webhook.test` event now and answer with its first attempt",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The delivery with its attempt", body = Delivery,
        links(
            ("redeliver" = (operation_id = "webhooks_redeliver", parameters(("id" = "$request.path.id"), ("delivery_id" = "$response.body#/id"))))
        )),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`webhook.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn test(
    Ready(core): Ready,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Delivery>> {
    Ok(Json(webhooks::test(&core, &user.user.id, &id).await?))
}

/// Query of the delivery log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// 1–200 (clamped), default 50.
    pub limit: Option<i64>,
    /// Unix seconds: deliveries created before this.
    pub before: Option<i64>,
}

/// `GET /api/v1/me/webhooks/{id}/deliveries?limit=&before=` → `{"deliveries":[D]}`.
#[utoipa::path(
    get,
    path = "/api/v1/me/webhooks/{id}/deliveries",
    tag = "webhooks",
    summary = "The delivery log of an endpoint",
    params(("id" = String, Path, description = "Webhook id"), DeliveriesQuery),
    responses(
        (status = 200, description = "Deliveries with their attempts", body = DeliveryList),
        (status = 400, description = "`invalid_query`: `limit` or `before` is not an integer",
            body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`webhook.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
pub async fn deliveries(
    Ready(core): Ready,
    user: CurrentUser,
    Path(id): Path<String>,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DeliveryList>> {
    let Query(query) = query.map_err(|rejection| {
        crate::domain::DomainError::invalid("invalid_query", rejection.body_text())
    })?;
    let deliveries =
        webhooks::deliveries(&core, &user.user.id, &id, query.limit, query.before).await?;
    Ok(Json(DeliveryList { deliveries }))
}

/// `POST /api/v1/me/webhooks/{id}/deliveries/{delivery_id}/redeliver` → 202.
#[utoipa::path(
    post,
    path = "/api/v1/me/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks",
    summary = "Queue a delivery again",
    params(
        ("id" = String, Path, description = "Webhook id"),
        ("delivery_id" = String, Path, description = "Delivery id")
    ),
    responses(
        (status = 202, description = "Queued"),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`webhook.not_found` or `webhook.delivery_not_found`",
            body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn redeliver(
    Ready(core): Ready,
    user: CurrentUser,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    webhooks::redeliver(&core, &user.user.id, &id, &delivery_id).await?;
    Ok(StatusCode::ACCEPTED)
}
