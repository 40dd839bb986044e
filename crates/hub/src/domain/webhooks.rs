//! Webhooks (SPEC P): endpoints, the durable outbox fed by the hub's event bus, and the
//! delivery workers. An event becomes one `webhook_deliveries` row per matching endpoint; the
//! workers claim due rows with a lease, POST them signed as the Standard Webhooks
//! specification and the Phlix headers say, and retry on the schedule until delivered or
//! failed. Rows survive restarts, so a crash resumes every pending delivery. Between claims a
//! worker sleeps until the next row is due (a read of the outbox, never a write) or until
//! [`wake`] says rows were enqueued, so an idle hub does not poll the outbox.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::events::HubEvent;
use super::{ClientInfo, Core, DomainError, DomainResult, audit};
use crate::auth::now_unix;
use crate::store::{AttemptOutcome, AttemptRow, DeliveryRow, UserRow, WebhookRow};

/// The events an endpoint may ask for (SPEC P.2); `*` asks for all.
pub const EVENTS: [&str; 19] = [
    "server.claimed",
    "server.removed",
    "server.online",
    "server.offline",
    "relay.opened",
    "relay.closed",
    "share.created",
    "share.updated",
    "share.revoked",
    "invite.created",
    "invite.redeemed",
    "request.created",
    "request.approved",
    "request.denied",
    "request.available",
    "quota.exceeded",
    "user.created",
    "user.disabled",
    "webhook.test",
];
/// Events only hub-scope endpoints receive.
const HUB_ONLY: [&str; 2] = ["user.created", "user.disabled"];
/// The retry schedule after the first attempt (SPEC P.3), ±20 % jitter.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(300),
    Duration::from_secs(1800),
    Duration::from_secs(7200),
    Duration::from_secs(18_000),
    Duration::from_secs(36_000),
    Duration::from_secs(36_000),
];
/// An endpoint whose deliveries all failed for this long is disabled.
pub const FAILING_DISABLES_AFTER: i64 = 5 * 86_400;
/// A secret replaced by a rotation keeps signing for this long.
pub const ROTATION_OVERLAP: i64 = 86_400;
/// An attempt must be answered within this.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of a receiver's answer kept in the log.
pub const EXCERPT_LIMIT: usize = 4096;
/// Attempts in flight per endpoint (one slow receiver never delays the others).
const PER_ENDPOINT: usize = 4;
/// Attempts in flight per node.
const WORKERS: usize = 64;
/// How long a claimed delivery stays with its claimer.
const LEASE_MS: i64 = 60_000;
/// With nothing due sooner, the worker still reads the outbox this often: rows another node
/// or process wrote without waking this one (see [`wake`]) wait at most this long. Rows this
/// node enqueues or schedules wake it at once, and a row due sooner is claimed at its time.
const IDLE_CHECK: Duration = Duration::from_secs(10);
/// The wait before claiming again when a due row could not be claimed (another node holds it
/// while claiming).
const RECHECK: Duration = Duration::from_millis(50);
/// The wait before using the outbox again after a database failure.
const QUEUE_RETRY: Duration = Duration::from_millis(500);

/// The delivery settings of this node.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The waits before the 2nd, 3rd, … attempt.
    pub schedule: Vec<Duration>,
    /// Whether loopback/private targets are allowed (`--webhook-allow-private`).
    pub allow_private: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            schedule: RETRY_SCHEDULE.to_vec(),
            allow_private: false,
        }
    }
}

/// An endpoint as the API shows it (W of SPEC P.1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub scope: String,
    pub created_at: i64,
    pub disabled_reason: Option<String>,
    pub last_delivery_at: Option<i64>,
    pub last_delivery_status: Option<i64>,
    /// Ours: since when every delivery has failed (null when healthy).
    pub failing_since: Option<i64>,
}

impl From<&WebhookRow> for Webhook {
    fn from(row: &WebhookRow) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            url: row.url.clone(),
            events: serde_json::from_str(&row.events_json).unwrap_or_default(),
            enabled: row.enabled,
            scope: row.scope.clone(),
            created_at: row.created_at,
            disabled_reason: row.disabled_reason.clone(),
            last_delivery_at: row.last_delivery_at,
            last_delivery_status: row.last_delivery_status,
            failing_since: row.failing_since,
        }
    }
}

/// One attempt in a delivery's log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// Unix seconds.
    pub at: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: String,
}

impl From<&AttemptRow> for Attempt {
    fn from(row: &AttemptRow) -> Self {
        Self {
            at: row.at_ms / 1000,
            status_code: row.status_code,
            duration_ms: row.duration_ms,
            error: row.error.clone(),
            response_excerpt: row.response_excerpt.clone(),
        }
    }
}

/// A delivery as the API shows it (D of SPEC P.1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: Vec<Attempt>,
    /// Unix seconds.
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
}

fn bad(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::invalid(code, message)
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Unprocessable {
        code,
        message: message.into(),
    }
}

/// A fresh secret: `whsec_` + base64 of 32 CSPRNG bytes.
#[must_use]
pub fn new_secret() -> String {
    format!(
        "whsec_{}",
        STANDARD.encode(crate::auth::random_bytes::<32>())
    )
}

/// Checks a target URL's form: `http`/`https`, a host, no credentials, at most 2 048 bytes.
///
/// # Errors
/// 400 `webhook.invalid_url` naming the problem.
pub fn check_url(url: &str) -> DomainResult<reqwest::Url> {
    if url.len() > 2048 {
        return Err(bad("webhook.invalid_url", "url must be at most 2048 bytes"));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|err| bad("webhook.invalid_url", format!("url is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("webhook.invalid_url", "url must be http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("webhook.invalid_url", "url must not carry credentials"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("webhook.invalid_url", "url needs a host"));
    }
    Ok(parsed)
}

/// Whether an address is one a webhook may reach without `--webhook-allow-private`: not
/// loopback, private, link-local, CGNAT, multicast, unspecified or documentation space.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Resolves the URL's host and checks every address (SPEC P.3 SSRF rule); returns the
/// address to connect to.
///
/// # Errors
/// 422 `webhook.private_target` for a private address, 422 `webhook.unresolvable` when the
/// name does not resolve.
pub async fn resolve_target(url: &reqwest::Url, allow_private: bool) -> DomainResult<SocketAddr> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host, port)),
    )
    .await
    .map_err(|_| {
        unprocessable(
            "webhook.unresolvable",
            format!("{host} did not resolve in time"),
        )
    })?
    .map_err(|err| {
        unprocessable(
            "webhook.unresolvable",
            format!("{host} does not resolve: {err}"),
        )
    })?
    .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| unprocessable("webhook.unresolvable", format!("{host} has no address")))?;
    if !allow_private && let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(unprocessable(
            "webhook.private_target",
            format!(
                "{host} resolves to {}, a loopback, private or link-local address (allowed only with --webhook-allow-private)",
                private.ip()
            ),
        ));
    }
    Ok(first)
}

fn parse_events(value: Option<&Value>) -> DomainResult<Vec<String>> {
    let list = value.and_then(Value::as_array).ok_or_else(|| {
        bad(
            "webhook.invalid_events",
            "events must be a list of event names",
        )
    })?;
    if list.is_empty() {
        return Err(bad("webhook.invalid_events", "events must not be empty"));
    }
    let mut events = Vec::new();
    for item in list {
        let name = item
            .as_str()
            .ok_or_else(|| bad("webhook.invalid_events", "events must be strings"))?;
        if name != "*" && !EVENTS.contains(&name) {
            return Err(bad(
                "webhook.unknown_event",
                format!("{name} is not a hub event"),
            ));
        }
        if !events.iter().any(|e| e == name) {
            events.push(name.to_owned());
        }
    }
    Ok(events)
}

fn parse_name(value: Option<&Value>) -> DomainResult<String> {
    match value.and_then(Value::as_str).map(str::trim) {
        Some(name) if !name.is_empty() && name.len() <= 100 => Ok(name.to_owned()),
        _ => Err(bad(
            "webhook.invalid_name",
            "name must be 1 to 100 characters",
        )),
    }
}

fn parse_secret(value: Option<&Value>) -> DomainResult<String> {
    match value {
        None | Some(Value::Null) => Ok(new_secret()),
        Some(Value::String(secret)) => {
            let key = secret
                .strip_prefix("whsec_")
                .and_then(|b64| STANDARD.decode(b64).ok())
                .filter(|key| (24..=64).contains(&key.len()));
            if key.is_none() {
                return Err(bad(
                    "webhook.invalid_secret",
                    "secret must be whsec_ and the base64 of 24 to 64 bytes",
                ));
            }
            Ok(secret.clone())
        }
        Some(_) => Err(bad("webhook.invalid_secret", "secret must be a string")),
    }
}

fn object(body: Option<&Value>) -> DomainResult<&Map<String, Value>> {
    body.and_then(Value::as_object)
        .ok_or_else(|| bad("invalid_body", "The request body must be a JSON object"))
}

/// `POST /api/v1/me/webhooks`: a new endpoint and its secret (shown this once).
///
/// # Errors
/// 400 on a bad field, 422 for a private or unresolvable target, 403 for a hub scope asked by
/// a non-admin.
pub async fn create(
    core: &Core,
    client: &ClientInfo,
    user: &UserRow,
    body: Option<&Value>,
) -> DomainResult<(Webhook, String)> {
    let body = object(body)?;
    let name = parse_name(body.get("name"))?;
    let url = body
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("webhook.invalid_url", "url is required"))?;
    let parsed = check_url(url)?;
    let events = parse_events(body.get("events"))?;
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(on)) => *on,
        Some(_) => return Err(bad("invalid_request", "enabled must be true or false")),
    };
    let scope = match body.get("scope").and_then(Value::as_str) {
        None => "user",
        Some("user") => "user",
        Some("hub") if user.is_admin => "hub",
        Some("hub") => return Err(DomainError::Forbidden("webhook.hub_scope_admin_only")),
        Some(_) => return Err(bad("invalid_request", "scope must be user or hub")),
    };
    let secret = parse_secret(body.get("secret"))?;
    resolve_target(&parsed, core.webhooks.config.allow_private).await?;
    let now = now_unix();
    let row = WebhookRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        name,
        url: url.to_owned(),
        events_json: serde_json::to_string(&events).unwrap_or_default(),
        enabled,
        scope: scope.to_owned(),
        secret: secret.clone(),
        previous_secret: None,
        previous_secret_until: None,
        disabled_reason: None,
        failing_since: None,
        last_delivery_at: None,
        last_delivery_status: None,
        created_at: now,
        updated_at: now,
    };
    core.store.insert_webhook(&row).await?;
    core.webhooks.forget_endpoints();
    record(core, client, "webhook.created", &user.id, &row.id).await?;
    Ok((Webhook::from(&row), secret))
}

async fn record(
    core: &Core,
    client: &ClientInfo,
    event: &str,
    user_id: &str,
    webhook_id: &str,
) -> DomainResult<()> {
    let mut entry = audit::entry(event, client, Some(user_id), true, None);
    entry.resource = Some(format!("webhook:{webhook_id}"));
    core.store.audit(&entry).await?;
    Ok(())
}

/// The caller's endpoint `id`; someone else's is 404 (SPEC P.1).
///
/// # Errors
/// 404 `webhook.not_found`; database failures.
pub async fn owned(core: &Core, user_id: &str, id: &str) -> DomainResult<WebhookRow> {
    core.store
        .webhook_by_id(id)
        .await?
        .filter(|w| w.user_id == user_id)
        .ok_or(DomainError::NotFound("webhook.not_found"))
}

/// `GET /api/v1/me/webhooks`.
///
/// # Errors
/// Database failures.
pub async fn list(core: &Core, user_id: &str) -> DomainResult<Vec<Webhook>> {
    Ok(core
        .store
        .webhooks_of(user_id)
        .await?
        .iter()
        .map(Webhook::from)
        .collect())
}

/// `PATCH /api/v1/me/webhooks/{id}` `{name?, url?, events?, enabled?}`: all checked before
/// anything is written; enabling clears `disabled_reason`.
///
/// # Errors
/// As [`create`]; 404 for someone else's endpoint.
pub async fn update(
    core: &Core,
    client: &ClientInfo,
    user_id: &str,
    id: &str,
    body: Option<&Value>,
) -> DomainResult<Webhook> {
    let body = object(body)?;
    let mut row = owned(core, user_id, id).await?;
    if let Some(name) = body.get("name") {
        row.name = parse_name(Some(name))?;
    }
    if let Some(url) = body.get("url") {
        let url = url
            .as_str()
            .ok_or_else(|| bad("webhook.invalid_url", "url must be a string"))?;
        let parsed = check_url(url)?;
        resolve_target(&parsed, core.webhooks.config.allow_private).await?;
        url.clone_into(&mut row.url);
    }
    if let Some(events) = body.get("events") {
        row.events_json = serde_json::to_string(&parse_events(Some(events))?).unwrap_or_default();
    }
    match body.get("enabled") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(on)) => {
            row.enabled = *on;
            if *on {
                row.disabled_reason = None;
                row.failing_since = None;
            }
        }
        Some(_) => return Err(bad("invalid_request", "enabled must be true or false")),
    }
    core.store.update_webhook(&row, now_unix()).await?;
    core.webhooks.forget_endpoints();
    record(core, client, "webhook.updated", user_id, id).await?;
    Ok(Webhook::from(&row))
}

/// `DELETE /api/v1/me/webhooks/{id}`: the endpoint and its pending deliveries go.
///
/// # Errors
/// 404 for someone else's endpoint.
pub async fn delete(core: &Core, client: &ClientInfo, user_id: &str, id: &str) -> DomainResult<()> {
    owned(core, user_id, id).await?;
    core.store.delete_webhook(id).await?;
    core.webhooks.forget_endpoints();
    record(core, client, "webhook.deleted", user_id, id).await
}

/// `POST /api/v1/me/webhooks/{id}/rotate-secret`: a new secret; the old one keeps signing for
/// 24 h (both signatures are sent meanwhile).
///
/// # Errors
/// 404 for someone else's endpoint.
pub async fn rotate_secret(
    core: &Core,
    client: &ClientInfo,
    user_id: &str,
    id: &str,
) -> DomainResult<String> {
    let mut row = owned(core, user_id, id).await?;
    let now = now_unix();
    let secret = new_secret();
    row.previous_secret = Some(std::mem::replace(&mut row.secret, secret.clone()));
    row.previous_secret_until = Some(now + ROTATION_OVERLAP);
    core.store.update_webhook(&row, now).await?;
    core.webhooks.forget_endpoints();
    record(core, client, "webhook.secret_rotated", user_id, id).await?;
    Ok(secret)
}

/// `GET /api/v1/me/webhooks/{id}/deliveries?limit=&before=` (before: unix seconds), newest
/// first.
///
/// # Errors
/// 404 for someone else's endpoint; 400 for a bad limit.
pub async fn deliveries(
    core: &Core,
    user_id: &str,
    id: &str,
    limit: Option<i64>,
    before: Option<i64>,
) -> DomainResult<Vec<Delivery>> {
    owned(core, user_id, id).await?;
    let limit = limit.unwrap_or(50).clamp(1, 200);
    let before_ms = before.map_or(i64::MAX, |b| b.saturating_mul(1000));
    let rows = core.store.deliveries_of(id, before_ms, limit).await?;
    views(core, rows).await
}

async fn views(core: &Core, rows: Vec<DeliveryRow>) -> DomainResult<Vec<Delivery>> {
    let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
    let attempts = core.store.attempts_of(&ids).await?;
    Ok(rows
        .into_iter()
        .map(|d| Delivery {
            attempts: attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .map(Attempt::from)
                .collect(),
            next_attempt_at: (d.status == "pending")
                .then_some(d.next_attempt_ms)
                .flatten()
                .map(|ms| ms / 1000),
            created_at: d.created_ms / 1000,
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
        })
        .collect())
}

/// `POST …/deliveries/{delivery_id}/redeliver`: the delivery goes back in the queue now.
///
/// # Errors
/// 404 for someone else's endpoint or delivery.
pub async fn redeliver(
    core: &Core,
    user_id: &str,
    id: &str,
    delivery_id: &str,
) -> DomainResult<()> {
    owned(core, user_id, id).await?;
    let delivery = core
        .store
        .delivery_by_id(delivery_id)
        .await?
        .filter(|d| d.webhook_id == id)
        .ok_or(DomainError::NotFound("webhook.delivery_not_found"))?;
    core.store.requeue_delivery(&delivery.id, now_ms()).await?;
    wake(core);
    Ok(())
}

/// `POST /api/v1/me/webhooks/{id}/test`: sends `webhook.test` now and answers with that
/// attempt.
///
/// # Errors
/// 404 for someone else's endpoint.
pub async fn test(core: &Core, user_id: &str, id: &str) -> DomainResult<Delivery> {
    let row = owned(core, user_id, id).await?;
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let data = json!({"webhook_id": row.id, "name": row.name});
    let delivery = DeliveryRow {
        id: uuid::Uuid::new_v4().to_string(),
        webhook_id: row.id.clone(),
        event_id: event_id.clone(),
        event_type: "webhook.test".into(),
        payload: envelope("webhook.test", &data),
        status: "pending".into(),
        attempt_count: 0,
        // Not due for the workers: this request attempts it itself.
        next_attempt_ms: Some(i64::MAX),
        created_ms: now_ms(),
    };
    core.store
        .enqueue_deliveries(std::slice::from_ref(&delivery))
        .await?;
    attempt(core, &row, &delivery).await?;
    let row = core
        .store
        .delivery_by_id(&delivery.id)
        .await?
        .ok_or(DomainError::NotFound("webhook.delivery_not_found"))?;
    Ok(views(core, vec![row]).await?.remove(0))
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

/// The body of a delivery: `{"type","timestamp","data"}`.
fn envelope(event_type: &str, data: &Value) -> String {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({"type": event_type, "timestamp": timestamp, "data": data}).to_string()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The signature headers of one attempt (SPEC P.3), for every secret in force.
#[must_use]
pub fn signature_headers(
    secrets: &[&str],
    webhook_id: &str,
    timestamp: i64,
    body: &str,
) -> Vec<(&'static str, String)> {
    let t = timestamp.to_string();
    let mut standard = Vec::new();
    let mut phlix = Vec::new();
    let mut phlix_v2 = Vec::new();
    for secret in secrets {
        let key = secret
            .strip_prefix("whsec_")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .unwrap_or_else(|| secret.as_bytes().to_vec());
        let signed = hmac(
            &key,
            &[
                webhook_id.as_bytes(),
                b".",
                t.as_bytes(),
                b".",
                body.as_bytes(),
            ],
        );
        standard.push(format!("v1,{}", STANDARD.encode(signed)));
        phlix.push(format!(
            "sha256={}",
            hex::encode(hmac(secret.as_bytes(), &[body.as_bytes()]))
        ));
        phlix_v2.push(format!(
            "v1={}",
            hex::encode(hmac(
                secret.as_bytes(),
                &[t.as_bytes(), b".", body.as_bytes()]
            ))
        ));
    }
    vec![
        ("webhook-id", webhook_id.to_owned()),
        ("webhook-timestamp", t.clone()),
        ("webhook-signature", standard.join(" ")),
        ("x-phlix-signature", phlix.join(" ")),
        (
            "x-phlix-signature-v2",
            format!("t={t},{}", phlix_v2.join(",")),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The service: fan-out from the bus to the outbox, and the delivery workers

/// Upper bounds (ms) of the commit-to-first-attempt latency histogram.
pub const LATENCY_BUCKETS_MS: [u64; 9] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/// Delivery counters of this node, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: std::sync::atomic::AtomicU64,
    pub retried: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
    /// First attempts by latency bucket (the last slot is `+Inf`), and their sum in ms.
    pub first_attempt: [std::sync::atomic::AtomicU64; 10],
    pub first_attempt_sum_ms: std::sync::atomic::AtomicU64,
}

/// The webhook service of a node, in `Core`.
#[derive(Debug)]
pub struct Webhooks {
    pub config: DeliveryConfig,
    pub stats: DeliveryStats,
    /// Wakes the workers when rows became due.
    wake: Notify,
    /// Enabled endpoints, cached for the fan-out; dropped on every change.
    endpoints: Mutex<Option<Arc<Vec<WebhookRow>>>>,
    /// Per-endpoint concurrency.
    per_endpoint: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// One HTTP client per (host, checked address): connections are kept alive between
    /// deliveries, and building a client (TLS roots) is not paid per attempt.
    clients: Mutex<HashMap<(String, SocketAddr), reqwest::Client>>,
}

impl Webhooks {
    /// A service with `config`.
    #[must_use]
    pub fn new(config: DeliveryConfig) -> Self {
        Self {
            config,
            stats: DeliveryStats::default(),
            wake: Notify::new(),
            endpoints: Mutex::new(None),
            per_endpoint: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client that connects `host` to exactly `addr` (the address the SSRF check passed).
    fn client(&self, host: &str, addr: SocketAddr) -> Result<reqwest::Client, String> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&(host.to_owned(), addr)) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .resolve(host, addr)
            .build()
            .map_err(|e| format!("client: {e}"))?;
        if clients.len() >= 1024 {
            clients.clear();
        }
        clients.insert((host.to_owned(), addr), client.clone());
        Ok(client)
    }

    fn forget_endpoints(&self) {
        *self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn endpoint_slots(&self, id: &str) -> Arc<Semaphore> {
        let mut map = self
            .per_endpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            map.entry(id.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_ENDPOINT))),
        )
    }
}

async fn endpoints(core: &Core) -> DomainResult<Arc<Vec<WebhookRow>>> {
    if let Some(cached) = core
        .webhooks
        .endpoints
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    {
        return Ok(cached);
    }
    let loaded = Arc::new(core.store.enabled_webhooks().await?);
    *core
        .webhooks
        .endpoints
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&loaded));
    Ok(loaded)
}

/// Whether `endpoint` gets `event`: it asked for its type, and the event is its owner's (or
/// the endpoint is hub-scope).
fn matches(endpoint: &WebhookRow, event: &HubEvent, name: &str) -> bool {
    let events: Vec<String> = serde_json::from_str(&endpoint.events_json).unwrap_or_default();
    if !events.iter().any(|e| e == "*" || e == name) {
        return false;
    }
    if endpoint.scope == "hub" {
        return true;
    }
    !HUB_ONLY.contains(&name) && event.is_for(&endpoint.user_id)
}

/// The webhook data of an event: its resource, else what the live event says, in the API's
/// snake_case for server events.
async fn data_of(core: &Core, event: &HubEvent) -> Value {
    if let Some(resource) = &event.resource {
        return resource.clone();
    }
    let live: Value = serde_json::from_str(&event.data).unwrap_or_default();
    let server_name = match core.store.server_by_id(&event.server_id).await {
        Ok(Some(server)) => Value::String(server.server_name),
        _ => Value::Null,
    };
    let mut data = json!({"server_id": event.server_id, "server_name": server_name});
    if let Some(status) = live.get("status") {
        data["status"] = status.clone();
    }
    if let Some(active) = live.get("relayActive") {
        data["relay_active"] = active.clone();
    }
    if let Some(seen) = live.get("lastSeenAt") {
        data["last_seen_at"] = seen.clone();
    }
    data
}

/// Turns events into delivery rows, one per matching endpoint, and wakes the workers.
async fn fan_out(core: &Core, event: &HubEvent) -> DomainResult<()> {
    let name = event.kind.name();
    if !EVENTS.contains(&name) {
        return Ok(());
    }
    let endpoints = endpoints(core).await?;
    let targets: Vec<&WebhookRow> = endpoints
        .iter()
        .filter(|e| matches(e, event, name))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let payload = envelope(name, &data_of(core, event).await);
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let now = now_ms();
    let rows: Vec<DeliveryRow> = targets
        .iter()
        .map(|endpoint| DeliveryRow {
            id: uuid::Uuid::new_v4().to_string(),
            webhook_id: endpoint.id.clone(),
            event_id: event_id.clone(),
            event_type: name.to_owned(),
            payload: payload.clone(),
            status: "pending".into(),
            attempt_count: 0,
            next_attempt_ms: Some(now),
            created_ms: now,
        })
        .collect();
    core.store.enqueue_deliveries(&rows).await?;
    wake(core);
    Ok(())
}

/// Wakes this node's delivery worker to claim what is due now. The fan-out, a redelivery and
/// a scheduled retry call it; so must anything else that writes due rows to the outbox
/// directly (a bench, a test), or the worker finds them only at its next idle check.
pub fn wake(core: &Core) {
    core.webhooks.wake.notify_one();
}

/// Attaches the outbox to the event bus and runs the fan-out and the delivery workers until
/// `shutdown`.
pub fn spawn(core: &Core, shutdown: &CancellationToken, tracker: &tokio_util::task::TaskTracker) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Arc<HubEvent>>();
    core.events.attach_outbox(tx);
    let fan_core = core.clone();
    let fan_stop = shutdown.clone();
    tracker.spawn(async move {
        loop {
            let event = tokio::select! {
                () = fan_stop.cancelled() => return,
                event = rx.recv() => event,
            };
            let Some(event) = event else { return };
            // A database hiccup must not lose the event: retry with back-off.
            let mut delay = Duration::from_millis(100);
            while let Err(err) = fan_out(&fan_core, &event).await {
                tracing::warn!(error = %err, "webhook fan-out failed; retrying");
                tokio::select! {
                    () = fan_stop.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    });
    let work_core = core.clone();
    let work_stop = shutdown.clone();
    tracker.spawn(async move {
        // What this node was attempting when it last stopped is due again now.
        match work_core.store.release_leases(work_core.relay.node()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "webhook deliveries resumed after a restart"),
            Err(err) => tracing::warn!(error = %err, "cannot release webhook leases"),
        }
        let slots = Arc::new(Semaphore::new(WORKERS));
        // At start, whatever is due now (a restart resumes at once).
        let mut claim = true;
        loop {
            let mut found_nothing = false;
            if claim {
                let claimed_at = now_ms();
                match work_core
                    .store
                    .claim_deliveries(
                        work_core.relay.node(),
                        claimed_at,
                        LEASE_MS,
                        i64::try_from(WORKERS).unwrap_or(64),
                    )
                    .await
                {
                    Ok(claimed) if !claimed.is_empty() => {
                        for delivery in claimed {
                            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                                return;
                            };
                            let lease_until = claimed_at + LEASE_MS;
                            tokio::spawn(deliver(work_core.clone(), delivery, lease_until, slot));
                        }
                        continue;
                    }
                    Ok(_) => found_nothing = true,
                    Err(err) => {
                        tracing::warn!(error = %err, "webhook queue unavailable");
                        tokio::select! {
                            () = work_stop.cancelled() => return,
                            () = tokio::time::sleep(QUEUE_RETRY) => continue,
                        }
                    }
                }
            }
            let (wait, then_claim) = idle_wait(&work_core, found_nothing).await;
            claim = tokio::select! {
                () = work_stop.cancelled() => return,
                () = work_core.webhooks.wake.notified() => true,
                () = tokio::time::sleep(wait) => then_claim,
            };
        }
    });
}

/// How long the worker waits before the next claim, read from the outbox (nothing is written
/// while nothing is due): until the next row is due, or [`IDLE_CHECK`] when none is due
/// sooner, then only reads again (`false`). `found_nothing`: a claim just came back empty.
async fn idle_wait(core: &Core, found_nothing: bool) -> (Duration, bool) {
    match core.store.next_delivery_due().await {
        Ok(Some(due)) => {
            let in_ms = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
            let wait = Duration::from_millis(in_ms);
            if wait >= IDLE_CHECK {
                (IDLE_CHECK, false)
            } else if wait.is_zero() && found_nothing {
                // Due, yet the claim found nothing: another node is claiming it right now.
                (RECHECK, true)
            } else {
                (wait, true)
            }
        }
        Ok(None) => (IDLE_CHECK, false),
        Err(err) => {
            tracing::warn!(error = %err, "webhook queue unavailable");
            (QUEUE_RETRY, false)
        }
    }
}

/// Attempts one claimed delivery, in its endpoint's turn; `slot` is the node's attempt slot,
/// `lease_until` the end of the lease its claim took.
async fn deliver(
    core: Core,
    delivery: DeliveryRow,
    lease_until: i64,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let endpoint_slots = core.webhooks.endpoint_slots(&delivery.webhook_id);
    let Ok(_turn) = endpoint_slots.acquire_owned().await else {
        return;
    };
    // The turn can come after the lease ran out (many deliveries for one slow endpoint): take
    // the lease again for the attempt, or leave the delivery to whoever claimed it since.
    match core
        .store
        .renew_lease(
            &delivery.id,
            core.relay.node(),
            lease_until,
            now_ms() + LEASE_MS,
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(delivery = %delivery.id, "lease ran out before the attempt; claimed again elsewhere");
            return;
        }
        Err(err) => {
            tracing::warn!(error = %err, "webhook queue unavailable");
            return;
        }
    }
    // The fan-out's cache of enabled endpoints, else the row (a disabled endpoint's delivery
    // ends as failed).
    let cached = endpoints(&core)
        .await
        .ok()
        .and_then(|all| all.iter().find(|e| e.id == delivery.webhook_id).cloned());
    let endpoint = match cached {
        Some(endpoint) => Ok(Some(endpoint)),
        None => core.store.webhook_by_id(&delivery.webhook_id).await,
    };
    match endpoint {
        Ok(Some(endpoint)) => {
            if let Err(err) = attempt(&core, &endpoint, &delivery).await {
                tracing::warn!(error = %err, "webhook attempt not recorded");
            }
        }
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "webhook endpoint unreadable"),
    }
    drop(slot);
}

/// One attempt of `delivery` to `endpoint`: sends it, records the outcome, schedules the next
/// attempt or ends the delivery; a 410 disables the endpoint, and so do five days of failures.
async fn attempt(core: &Core, endpoint: &WebhookRow, delivery: &DeliveryRow) -> DomainResult<()> {
    let started = Instant::now();
    let at_ms = now_ms();
    let result = if endpoint.enabled {
        send(core, endpoint, delivery, at_ms / 1000).await
    } else {
        Err(format!(
            "endpoint disabled: {}",
            endpoint
                .disabled_reason
                .as_deref()
                .unwrap_or("by its owner")
        ))
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error, excerpt) = match result {
        Ok((code, excerpt)) => (Some(i64::from(code)), None, excerpt),
        Err(error) => (None, Some(error), String::new()),
    };
    let delivered = status_code.is_some_and(|c| (200..300).contains(&c));
    let gone = status_code == Some(410);
    let attempts_made = delivery.attempt_count + 1;
    let retry = usize::try_from(delivery.attempt_count)
        .ok()
        .and_then(|i| core.webhooks.config.schedule.get(i).copied());
    let (status, next_attempt_ms) = if delivered {
        ("delivered", None)
    } else if gone || !endpoint.enabled {
        ("failed", None)
    } else if let Some(wait) = retry {
        ("pending", Some(now_ms() + jittered(wait)))
    } else {
        ("failed", None)
    };
    let outcome = AttemptOutcome {
        at_ms,
        status_code,
        duration_ms,
        error,
        response_excerpt: excerpt,
        status,
        next_attempt_ms,
    };
    core.store.record_attempt(delivery, &outcome).await?;
    if next_attempt_ms.is_some() {
        // The worker sleeps until the earliest due row it knew of: show it this retry.
        wake(core);
    }
    count(&core.webhooks.stats, delivery, status, at_ms);
    tracing::debug!(webhook = %endpoint.id, delivery = %delivery.id, attempt = attempts_made, status, "webhook attempt");
    let now = now_unix();
    if gone {
        core.store
            .disable_webhook(&endpoint.id, "the receiver answered 410 Gone", now)
            .await?;
        core.webhooks.forget_endpoints();
    } else if !delivered
        && endpoint.enabled
        // Read fresh: the endpoint given may come from the fan-out's cache.
        && core
            .store
            .webhook_by_id(&endpoint.id)
            .await?
            .and_then(|row| row.failing_since)
            .is_some_and(|since| now - since >= FAILING_DISABLES_AFTER)
    {
        core.store
            .disable_webhook(&endpoint.id, "every delivery failed for 5 days", now)
            .await?;
        core.webhooks.forget_endpoints();
    }
    Ok(())
}

fn count(stats: &DeliveryStats, delivery: &DeliveryRow, status: &str, at_ms: i64) {
    use std::sync::atomic::Ordering::Relaxed;
    match status {
        "delivered" => stats.delivered.fetch_add(1, Relaxed),
        "failed" => stats.failed.fetch_add(1, Relaxed),
        _ => stats.retried.fetch_add(1, Relaxed),
    };
    // Latency from the event's commit (the row's creation) to its first attempt; a test
    // delivery is attempted by its request and redeliveries are not first attempts.
    if delivery.attempt_count == 0 && delivery.event_type != "webhook.test" {
        let ms = u64::try_from(at_ms - delivery.created_ms).unwrap_or(0);
        let slot = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        stats.first_attempt[slot].fetch_add(1, Relaxed);
        stats.first_attempt_sum_ms.fetch_add(ms, Relaxed);
    }
}

/// `wait` ± 20 %, in milliseconds.
fn jittered(wait: Duration) -> i64 {
    let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
    let spread = ms / 5;
    if spread == 0 {
        return ms;
    }
    let [a, b, c, d, ..] = crate::auth::random_bytes::<8>();
    let r = i64::from(
        u32::from_le_bytes([a, b, c, d]) % (u32::try_from(2 * spread).unwrap_or(u32::MAX).max(1)),
    );
    ms - spread + r
}

/// POSTs one delivery; `Ok((status, excerpt))` for any HTTP answer.
async fn send(
    core: &Core,
    endpoint: &WebhookRow,
    delivery: &DeliveryRow,
    timestamp: i64,
) -> Result<(u16, String), String> {
    let url = check_url(&endpoint.url).map_err(|e| e.to_string())?;
    // Resolve, check, and connect to exactly the address that was checked (DNS may change
    // between the check and the connection otherwise).
    let addr = resolve_target(&url, core.webhooks.config.allow_private)
        .await
        .map_err(|e| e.to_string())?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let client = core.webhooks.client(&host, addr)?;
    let now = now_unix();
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
        && until > now
    {
        secrets.push(previous.as_str());
    }
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("phlix-hub/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in
        signature_headers(&secrets, &delivery.event_id, timestamp, &delivery.payload)
    {
        request = request.header(name, value);
    }
    let exchange = async {
        let mut response = request
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(EXCERPT_LIMIT);
        Ok((status, String::from_utf8_lossy(&excerpt).into_owned()))
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err("no answer within 10 s".to_owned()))
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "no answer within 10 s".to_owned()
    } else if err.is_connect() {
        format!("cannot connect: {err}")
    } else {
        format!("{err}")
    }
}

/// Deliveries waiting and the age of the oldest, for `/metrics`.
///
/// # Errors
/// Database failures.
pub async fn queue(core: &Core) -> DomainResult<(i64, i64)> {
    let (waiting, oldest) = core.store.delivery_queue().await?;
    Ok((
        waiting,
        oldest.map_or(0, |ms| (now_ms() - ms).max(0) / 1000),
    ))
}

/// Whether only hub-scope endpoints receive `event` (the pages offer these events to
/// administrators only).
#[must_use]
pub fn is_hub_only(event: &str) -> bool {
    HUB_ONLY.contains(&event)
}
