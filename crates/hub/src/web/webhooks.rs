//! Webhook endpoints in the pages (SPEC P, Q.5) over `crate::domain::webhooks`:
//! `/app/webhooks` (the viewer's endpoints with their health, and the form that adds one —
//! its secret is shown this once), `/app/webhooks/{id}` (the endpoint, its actions and its
//! delivery log), and the forms: enable/disable, rotate the secret (the new one shown once),
//! send a test (its result shown on the endpoint's page), redeliver, delete.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Viewer};
use crate::domain::DomainError;
use crate::domain::webhooks::{self, Attempt, Delivery, EVENTS, Webhook};
use crate::http::extract::{ClientInfo, Path};
use crate::http::percent_encode;

/// Deliveries an endpoint's page lists (the newest).
pub const DELIVERY_ROWS: i64 = 50;

// ---------------------------------------------------------------------------------------------
// View models

/// An endpoint as the pages show it.
#[derive(Debug, Clone)]
pub struct WebhookView {
    pub id: String,
    pub name: String,
    pub url: String,
    /// Its events, or empty when it asked for all (`*`).
    pub events: Vec<String>,
    pub all_events: bool,
    /// "All events", the names, or the first two and how many more.
    pub events_text: String,
    pub hub_scope: bool,
    pub enabled: bool,
    /// `enabled`, `failing` or `disabled` (the badge).
    pub state: &'static str,
    pub state_text: &'static str,
    pub disabled_reason: Option<String>,
    /// `HTTP 200`, `no answer`, or `none yet`.
    pub last_status: String,
    pub last_ok: bool,
    pub last_at: Option<(String, String)>,
    pub failing_since: Option<(String, String)>,
    pub created: String,
}

impl From<Webhook> for WebhookView {
    fn from(hook: Webhook) -> Self {
        let all_events = hook.events.iter().any(|e| e == "*");
        let events: Vec<String> = if all_events { Vec::new() } else { hook.events };
        let events_text = match events.len() {
            _ if all_events => "All events".to_owned(),
            0..=3 => events.join(", "),
            n => format!("{}, {} and {} more", events[0], events[1], n - 2),
        };
        let (state, state_text) = if !hook.enabled {
            ("disabled", "disabled")
        } else if hook.failing_since.is_some() {
            ("failing", "failing")
        } else {
            ("enabled", "enabled")
        };
        let last_status = match (hook.last_delivery_at, hook.last_delivery_status) {
            (None, _) => "none yet".to_owned(),
            (Some(_), Some(code)) => format!("HTTP {code}"),
            (Some(_), None) => "no answer".to_owned(),
        };
        Self {
            last_ok: hook
                .last_delivery_status
                .is_some_and(|c| (200..300).contains(&c)),
            last_at: hook.last_delivery_at.map(when),
            failing_since: hook.failing_since.map(when),
            created: when(hook.created_at).1,
            hub_scope: hook.scope == "hub",
            id: hook.id,
            name: hook.name,
            url: hook.url,
            events,
            all_events,
            events_text,
            enabled: hook.enabled,
            state,
            state_text,
            disabled_reason: hook.disabled_reason,
            last_status,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone)]
pub struct AttemptLine {
    pub at_iso: String,
    pub at_text: String,
    /// `HTTP 200` or `no answer`.
    pub status_text: String,
    pub ok: bool,
    pub duration: String,
    pub error: Option<String>,
    /// The start of the receiver's answer: its own text, escaped by the template.
    pub excerpt: String,
}

impl From<Attempt> for AttemptLine {
    fn from(attempt: Attempt) -> Self {
        let (at_iso, at_text) = when(attempt.at);
        Self {
            at_iso,
            at_text,
            status_text: attempt
                .status_code
                .map_or_else(|| "no answer".to_owned(), |c| format!("HTTP {c}")),
            ok: attempt.status_code.is_some_and(|c| (200..300).contains(&c)),
            duration: format!("{} ms", attempt.duration_ms),
            error: attempt.error,
            excerpt: attempt.response_excerpt,
        }
    }
}

/// One delivery of the log.
#[derive(Debug, Clone)]
pub struct DeliveryLine {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub created_iso: String,
    pub created_text: String,
    pub attempts: Vec<AttemptLine>,
    /// When a pending delivery is tried next.
    pub next_attempt: Option<String>,
}

impl From<Delivery> for DeliveryLine {
    fn from(delivery: Delivery) -> Self {
        let (created_iso, created_text) = when(delivery.created_at);
        Self {
            id: delivery.id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status,
            created_iso,
            created_text,
            attempts: delivery
                .attempts
                .into_iter()
                .map(AttemptLine::from)
                .collect(),
            next_attempt: delivery.next_attempt_at.map(|at| when(at).1),
        }
    }
}

/// The result of *Send test*, from the test delivery's first attempt.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub delivered: bool,
    pub status_text: String,
    pub duration: String,
    pub error: Option<String>,
    pub excerpt: String,
    pub next_attempt: Option<String>,
}

impl TestResult {
    fn of(delivery: &DeliveryLine) -> Option<Self> {
        let first = delivery.attempts.first()?;
        Some(Self {
            delivered: first.ok,
            status_text: first.status_text.clone(),
            duration: first.duration.clone(),
            error: first.error.clone(),
            excerpt: first.excerpt.clone(),
            next_attempt: delivery.next_attempt.clone(),
        })
    }
}

/// One box of the event picker.
#[derive(Debug, Clone)]
pub struct EventChoice {
    pub name: &'static str,
    /// `event-server-online`: an id without dots, so CSS selectors need no escaping.
    pub id: String,
    pub checked: bool,
    /// Only whole-hub endpoints receive it.
    pub hub_only: bool,
}

/// The create form's values and what is wrong with them.
#[derive(Debug, Clone)]
pub struct CreateFormView {
    pub name: String,
    pub url: String,
    pub all_events: bool,
    pub choices: Vec<EventChoice>,
    /// `user` or `hub`.
    pub scope: String,
    /// A refusal that is about no single field.
    pub error: Option<String>,
    pub name_error: Option<String>,
    pub url_error: Option<String>,
    pub events_error: Option<String>,
    pub scope_error: Option<String>,
}

impl CreateFormView {
    /// The empty form: no event ticked, the viewer's own scope. Whole-hub events are offered
    /// to administrators only (nobody else can make an endpoint that receives them).
    fn new(is_admin: bool) -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            all_events: false,
            choices: EVENTS
                .iter()
                .copied()
                .filter(|name| is_admin || !webhooks::is_hub_only(name))
                .map(|name| EventChoice {
                    name,
                    id: format!("event-{}", name.replace('.', "-")),
                    checked: false,
                    hub_only: webhooks::is_hub_only(name),
                })
                .collect(),
            scope: "user".to_owned(),
            error: None,
            name_error: None,
            url_error: None,
            events_error: None,
            scope_error: None,
        }
    }

    fn has_field_errors(&self) -> bool {
        self.name_error.is_some() || self.url_error.is_some() || self.events_error.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The page for a refused webhook action that is not a form message.
fn webhook_error_page(viewer: &Viewer, err: &DomainError) -> Response {
    match err {
        DomainError::NotFound("webhook.not_found") => viewer_error(
            viewer,
            StatusCode::NOT_FOUND,
            "No such webhook",
            "There is no webhook endpoint of yours with this id. It may have been deleted.",
        ),
        DomainError::NotFound("webhook.delivery_not_found") => viewer_error(
            viewer,
            StatusCode::NOT_FOUND,
            "No such delivery",
            "This endpoint has no delivery with this id.",
        ),
        _ => api_error_page(viewer, err),
    }
}

/// What a refused URL gets on its field.
fn url_message(url: &str, err: &DomainError) -> String {
    let host = webhooks::check_url(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    match err {
        DomainError::Unprocessable {
            code: "webhook.private_target",
            ..
        } => format!(
            "{host} is a loopback, private or link-local address. This hub sends webhooks only to public addresses (its administrator can allow private ones with --webhook-allow-private)."
        ),
        DomainError::Unprocessable {
            code: "webhook.unresolvable",
            ..
        } => format!("The hub cannot find the address of {host}: check the host name."),
        DomainError::Invalid { message, .. } if message.contains("http or https") => {
            "Use an http:// or https:// URL.".to_owned()
        }
        DomainError::Invalid { message, .. } if message.contains("credentials") => {
            "Leave the user name and password out of the URL: receivers check the signature instead."
                .to_owned()
        }
        DomainError::Invalid { message, .. } if message.contains("2048") => {
            "The URL may be at most 2048 bytes long.".to_owned()
        }
        DomainError::Invalid { message, .. } if message.contains("needs a host") => {
            "The URL needs a host name, such as https://example.com/hooks/phlix.".to_owned()
        }
        _ => "Enter a full URL, such as https://example.com/hooks/phlix.".to_owned(),
    }
}

const EVENTS_ERROR: &str = "Choose at least one event, or all events.";

// ---------------------------------------------------------------------------------------------
// `/app/webhooks`

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    webhooks: Vec<WebhookView>,
    form: CreateFormView,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// What was just done: `enabled`, `disabled`, `deleted`.
    pub done: Option<String>,
    /// The endpoint it was done to (`enabled`, `disabled`).
    pub webhook: Option<String>,
    /// The deleted endpoint's name.
    pub name: Option<String>,
}

/// `GET /app/webhooks`: the viewer's endpoints and the form that adds one.
pub async fn webhooks_page(
    viewer: Viewer,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Response {
    render_list(&viewer, None, &query, StatusCode::OK).await
}

async fn render_list(
    viewer: &Viewer,
    form: Option<CreateFormView>,
    query: &ListQuery,
    status: StatusCode,
) -> Response {
    let list = match webhooks::list(&viewer.core, &viewer.user.id).await {
        Ok(list) => list,
        Err(err) => return webhook_error_page(viewer, &err),
    };
    let webhooks: Vec<WebhookView> = list.into_iter().map(WebhookView::from).collect();
    let name_of = |id: Option<&str>| {
        id.and_then(|id| webhooks.iter().find(|w| w.id == id))
            .map_or_else(|| "The endpoint".to_owned(), |w| w.name.clone())
    };
    let notice = match query.done.as_deref() {
        Some("enabled") => Some(format!(
            "{} is enabled: it receives its events again.",
            name_of(query.webhook.as_deref())
        )),
        Some("disabled") => Some(format!(
            "{} is disabled: it receives nothing until you enable it.",
            name_of(query.webhook.as_deref())
        )),
        Some("deleted") => Some(format!(
            "{} was deleted, with its pending deliveries.",
            query.name.as_deref().unwrap_or("The endpoint")
        )),
        _ => None,
    };
    let page = WebhooksPage {
        layout: Layout::for_viewer("Webhooks", viewer, "webhooks"),
        webhooks,
        form: form.unwrap_or_else(|| CreateFormView::new(viewer.user.is_admin)),
        notice,
    };
    html(status, page.render())
}

#[derive(Template)]
#[template(path = "webhook_created.html")]
struct WebhookCreatedPage {
    layout: Layout,
    hook: WebhookView,
    secret: String,
}

/// `POST /app/webhooks`: adds an endpoint and shows its secret this once; refusals come back
/// as messages on the fields. The form repeats `events` once per ticked box (`*` = all), so
/// it is read as a list of pairs.
pub async fn create(
    viewer: Viewer,
    client: ClientInfo,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let mut events: Vec<String> = fields
        .iter()
        .filter(|(n, _)| n == "events")
        .map(|(_, v)| v.clone())
        .collect();
    let mut form = CreateFormView::new(viewer.user.is_admin);
    form.name = field("name").unwrap_or_default();
    form.url = field("url").unwrap_or_default();
    form.all_events = events.iter().any(|e| e == "*");
    for choice in &mut form.choices {
        choice.checked = events.iter().any(|e| e == choice.name);
    }
    let scope = field("scope");
    if let Some(scope) = &scope {
        scope.clone_into(&mut form.scope);
    }

    // Each field is checked here first, so every message shows at once; the domain has the
    // last word (and the only one on the target's address).
    if form.name.is_empty() {
        form.name_error =
            Some("Enter a name, such as the service that receives the events.".into());
    }
    if form.url.is_empty() {
        form.url_error = Some("Enter the URL the hub should send the events to.".to_owned());
    } else if let Err(err) = webhooks::check_url(&form.url) {
        form.url_error = Some(url_message(&form.url, &err));
    }
    if events.is_empty() {
        form.events_error = Some(EVENTS_ERROR.to_owned());
    }
    if form.has_field_errors() {
        return render_list(
            &viewer,
            Some(form),
            &ListQuery::default(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if form.all_events {
        events = vec!["*".to_owned()];
    }
    let mut body = json!({"name": form.name, "url": form.url, "events": events});
    if let Some(scope) = scope {
        body["scope"] = Value::String(scope);
    }
    match webhooks::create(&viewer.core, &client, &viewer.user, Some(&body)).await {
        Ok((hook, secret)) => {
            let page = WebhookCreatedPage {
                layout: Layout::for_viewer("Webhook endpoint added", &viewer, "webhooks"),
                hook: hook.into(),
                secret,
            };
            html(StatusCode::OK, page.render())
        }
        Err(err) => {
            let (status, _) = err.parts();
            match &err {
                DomainError::Invalid {
                    code: "webhook.invalid_name",
                    ..
                } => form.name_error = Some("Enter a name of 1 to 100 characters.".to_owned()),
                DomainError::Invalid {
                    code: "webhook.invalid_url",
                    ..
                }
                | DomainError::Unprocessable {
                    code: "webhook.private_target" | "webhook.unresolvable",
                    ..
                } => form.url_error = Some(url_message(&form.url, &err)),
                DomainError::Invalid {
                    code: "webhook.invalid_events",
                    ..
                } => form.events_error = Some(EVENTS_ERROR.to_owned()),
                DomainError::Invalid {
                    code: "webhook.unknown_event",
                    message,
                } => form.events_error = Some(format!("Choose events from the list ({message}).")),
                DomainError::Forbidden("webhook.hub_scope_admin_only") => {
                    let message = "Only an administrator can add an endpoint for the whole hub.";
                    if viewer.user.is_admin {
                        form.scope_error = Some(message.to_owned());
                    } else {
                        form.error = Some(message.to_owned());
                    }
                }
                DomainError::Invalid {
                    code: "invalid_request",
                    message,
                } if message.contains("scope") => {
                    form.scope_error =
                        Some("Choose your own events or the whole hub's.".to_owned());
                }
                _ => return webhook_error_page(&viewer, &err),
            }
            render_list(&viewer, Some(form), &ListQuery::default(), status).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `/app/webhooks/{id}`

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    layout: Layout,
    hook: WebhookView,
    deliveries: Vec<DeliveryLine>,
    notice: Option<String>,
    /// A secret made this once (a rotation).
    secret: Option<String>,
    test: Option<TestResult>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    /// What was just saved: `enabled`, `disabled`, `redelivered`.
    pub saved: Option<String>,
    /// The test delivery whose result the page shows.
    pub tested: Option<String>,
}

/// What an endpoint's page shows beyond the endpoint: a notice, a new secret, a test result.
#[derive(Debug, Default)]
struct DetailExtras {
    notice: Option<String>,
    secret: Option<String>,
    tested: Option<String>,
}

/// `GET /app/webhooks/{id}`: the endpoint, its actions and its newest deliveries; someone
/// else's endpoint is a 404 page.
pub async fn webhook_page(
    viewer: Viewer,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<DetailQuery>,
) -> Response {
    let notice = match query.saved.as_deref() {
        Some("enabled") => Some("The endpoint is enabled: it receives its events again.".into()),
        Some("disabled") => {
            Some("The endpoint is disabled: it receives nothing until you enable it.".into())
        }
        Some("redelivered") => {
            Some("The delivery is queued again; it goes out within seconds.".into())
        }
        _ => None,
    };
    let extras = DetailExtras {
        notice,
        secret: None,
        tested: query.tested,
    };
    render_detail(&viewer, &id, extras).await
}

async fn render_detail(viewer: &Viewer, id: &str, extras: DetailExtras) -> Response {
    let core = &viewer.core;
    let user_id = &viewer.user.id;
    let (row, deliveries) = match tokio::try_join!(
        webhooks::owned(core, user_id, id),
        webhooks::deliveries(core, user_id, id, Some(DELIVERY_ROWS), None)
    ) {
        Ok(both) => both,
        Err(err) => return webhook_error_page(viewer, &err),
    };
    let hook = WebhookView::from(Webhook::from(&row));
    let deliveries: Vec<DeliveryLine> = deliveries.into_iter().map(DeliveryLine::from).collect();
    let test = extras
        .tested
        .as_deref()
        .and_then(|tested| deliveries.iter().find(|d| d.id == tested))
        .and_then(TestResult::of);
    let page = WebhookPage {
        layout: Layout::for_viewer(hook.name.clone(), viewer, "webhooks"),
        hook,
        deliveries,
        notice: extras.notice,
        secret: extras.secret,
        test,
    };
    html(StatusCode::OK, page.render())
}

// ---------------------------------------------------------------------------------------------
// The endpoint's forms

#[derive(Debug, Deserialize)]
pub struct EnabledForm {
    /// `1` enables, `0` disables.
    #[serde(default)]
    pub enabled: String,
    /// `list` when the form is on `/app/webhooks` (the browser goes back there).
    pub back: Option<String>,
}

/// `POST /app/webhooks/{id}/enabled`: enables (which clears `disabled_reason`) or disables the
/// endpoint.
pub async fn set_enabled(
    viewer: Viewer,
    client: ClientInfo,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<EnabledForm>,
) -> Response {
    let on = match form.enabled.as_str() {
        "1" | "true" => true,
        "0" | "false" => false,
        _ => {
            return viewer_error(
                &viewer,
                StatusCode::BAD_REQUEST,
                "Form refused",
                "Choose to enable or to disable the endpoint.",
            );
        }
    };
    let body = json!({ "enabled": on });
    match webhooks::update(&viewer.core, &client, &viewer.user.id, &id, Some(&body)).await {
        Ok(_) => {
            let done = if on { "enabled" } else { "disabled" };
            let to = if form.back.as_deref() == Some("list") {
                format!("/app/webhooks?done={done}&webhook={}", percent_encode(&id))
            } else {
                format!("/app/webhooks/{}?saved={done}", percent_encode(&id))
            };
            Redirect::to(&to).into_response()
        }
        Err(err) => webhook_error_page(&viewer, &err),
    }
}

/// `POST /app/webhooks/{id}/rotate`: a new secret, shown this once on the endpoint's page; the
/// old one keeps signing for 24 hours.
pub async fn rotate(
    viewer: Viewer,
    client: ClientInfo,
    Path(id): Path<String>,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
    match webhooks::rotate_secret(&viewer.core, &client, &viewer.user.id, &id).await {
        Ok(secret) => {
            let extras = DetailExtras {
                notice: None,
                secret: Some(secret),
                tested: None,
            };
            render_detail(&viewer, &id, extras).await
        }
        Err(err) => webhook_error_page(&viewer, &err),
    }
}

/// `POST /app/webhooks/{id}/test`: sends `webhook.test` now, then shows its result on the
/// endpoint's page (redirect after post: the result is the delivery's first attempt).
pub async fn send_test(
    viewer: Viewer,
    Path(id): Path<String>,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
    match webhooks::test(&viewer.core, &viewer.user.id, &id).await {
        Ok(delivery) => Redirect::to(&format!(
            "/app/webhooks/{}?tested={}#test-result",
            percent_encode(&id),
            percent_encode(&delivery.id)
        ))
        .into_response(),
        Err(err) => webhook_error_page(&viewer, &err),
    }
}

/// `POST /app/webhooks/{id}/deliveries/{delivery_id}/redeliver`: the delivery goes back in the
/// queue now.
pub async fn redeliver(
    viewer: Viewer,
    Path((id, delivery_id)): Path<(String, String)>,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
    match webhooks::redeliver(&viewer.core, &viewer.user.id, &id, &delivery_id).await {
        Ok(()) => Redirect::to(&format!(
            "/app/webhooks/{}?saved=redelivered#deliveries",
            percent_encode(&id)
        ))
        .into_response(),
        Err(err) => webhook_error_page(&viewer, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    /// The confirmation checkbox.
    pub confirm: Option<String>,
}

/// `POST /app/webhooks/{id}/delete`: needs the confirmation box ticked.
pub async fn delete(
    viewer: Viewer,
    client: ClientInfo,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Response {
    let core = &viewer.core;
    // Someone else's endpoint is a 404 with or without the box.
    let row = match webhooks::owned(core, &viewer.user.id, &id).await {
        Ok(row) => row,
        Err(err) => return webhook_error_page(&viewer, &err),
    };
    if form.confirm.is_none() {
        return viewer_error(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not deleted",
            "Tick the confirmation box to delete the endpoint.",
        );
    }
    match webhooks::delete(core, &client, &viewer.user.id, &id).await {
        Ok(()) => Redirect::to(&format!(
            "/app/webhooks?done=deleted&name={}",
            percent_encode(&row.name)
        ))
        .into_response(),
        Err(err) => webhook_error_page(&viewer, &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: &[&str]) -> Webhook {
        Webhook {
            id: "w".into(),
            name: "n".into(),
            url: "https://example.com/h".into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            enabled: true,
            scope: "user".into(),
            created_at: 0,
            disabled_reason: None,
            last_delivery_at: None,
            last_delivery_status: None,
            failing_since: None,
        }
    }

    #[test]
    fn events_read_as_all_a_list_or_a_count() {
        assert_eq!(WebhookView::from(hook(&["*"])).events_text, "All events");
        assert_eq!(
            WebhookView::from(hook(&["server.online", "relay.opened"])).events_text,
            "server.online, relay.opened"
        );
        assert_eq!(
            WebhookView::from(hook(&["a", "b", "c", "d", "e"])).events_text,
            "a, b and 3 more"
        );
    }

    #[test]
    fn health_says_disabled_failing_or_enabled() {
        let mut h = hook(&["*"]);
        assert_eq!(WebhookView::from(h.clone()).state, "enabled");
        assert_eq!(WebhookView::from(h.clone()).last_status, "none yet");
        h.failing_since = Some(10);
        h.last_delivery_at = Some(20);
        assert_eq!(WebhookView::from(h.clone()).state, "failing");
        assert_eq!(WebhookView::from(h.clone()).last_status, "no answer");
        h.last_delivery_status = Some(503);
        assert_eq!(WebhookView::from(h.clone()).last_status, "HTTP 503");
        h.enabled = false;
        assert_eq!(WebhookView::from(h).state, "disabled");
    }

    #[test]
    fn the_picker_offers_whole_hub_events_to_administrators_only() {
        let user = CreateFormView::new(false);
        assert!(user.choices.iter().all(|c| !c.hub_only));
        assert!(!user.choices.iter().any(|c| c.name == "user.created"));
        let admin = CreateFormView::new(true);
        assert_eq!(admin.choices.len(), EVENTS.len());
        assert!(admin.choices.iter().all(|c| !c.id.contains('.')));
    }
}
