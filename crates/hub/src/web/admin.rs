//! The admin console's pages (SPEC Q.5) over `crate::domain::{admin, console}`: the dashboard
//! with its 24 h charts and recent activity, the users (search, create, edit, disable/enable,
//! sign out, reset password, delete with a typed confirmation) and the audit log (filters,
//! pages, CSV download).

use std::collections::HashMap;

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Viewer};
use super::sparkline;
use crate::domain::{DomainError, admin, console};
use crate::http::extract::{ClientInfo, Path};
use crate::store::{AdminUserRow, StatsPoint};

/// What a member is told on these pages.
const ADMINS_ONLY: &str = "Only an administrator of this hub can open the admin console.";

/// One figure of the dashboard.
#[derive(Debug, Clone)]
pub struct Figure {
    pub label: &'static str,
    pub value: String,
    pub id: &'static str,
}

/// One chart of the dashboard.
#[derive(Debug, Clone)]
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    pub caption: String,
    pub svg: Option<String>,
}

/// An activity line.
#[derive(Debug, Clone)]
pub struct ActivityView {
    pub action: String,
    pub actor: String,
    pub target: String,
    pub created: String,
    pub success: bool,
}

#[derive(Template)]
#[template(path = "admin_dashboard.html")]
struct DashboardPage {
    layout: Layout,
    figures: Vec<Figure>,
    charts: Vec<Chart>,
    activity: Vec<ActivityView>,
}

/// Sums the per-minute points into `buckets` equal spans of the last 24 hours (a minute with
/// no row counts as 0; servers online takes the largest value of the span).
fn buckets(points: &[StatsPoint], now: i64, buckets: usize) -> [Vec<f64>; 3] {
    let span = 86_400 / i64::try_from(buckets).unwrap_or(96);
    let start = now - 86_400;
    let mut online = vec![0.0; buckets];
    let mut bytes = vec![0.0; buckets];
    let mut beats = vec![0.0; buckets];
    for point in points {
        // The window is [now - 24 h, now]: a point of the current minute sampled in the very
        // second `now` falls in the last span, not one past it.
        let offset = point.minute - start;
        if !(0..=86_400).contains(&offset) {
            continue;
        }
        let Ok(index) = usize::try_from(offset.min(86_399) / span) else {
            continue;
        };
        if index >= buckets {
            continue;
        }
        online[index] = f64::max(online[index], point.servers_online as f64);
        bytes[index] += point.relay_bytes as f64;
        beats[index] += point.heartbeats as f64;
    }
    // Heartbeats per minute within each span.
    let minutes = span as f64 / 60.0;
    for value in &mut beats {
        *value /= minutes;
    }
    [online, bytes, beats]
}

fn chart(
    id: &'static str,
    title: &'static str,
    values: &[f64],
    unit: &str,
    describe: impl Fn(f64) -> String,
) -> Chart {
    let max = values.iter().copied().fold(0.0, f64::max);
    let latest = values.last().copied().unwrap_or(0.0);
    Chart {
        id,
        title,
        caption: format!("now {}, peak {}", describe(latest), describe(max)),
        svg: sparkline::render_over(values, max.max(1.0), title, unit, "the last 24 hours"),
    }
}

/// `GET /app/admin`: the dashboard.
pub async fn dashboard(viewer: Viewer) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    let core = &viewer.core;
    let (summary, points, activity) = match (
        console::summary(core).await,
        console::last_day(core).await,
        console::activity(core, Some("20")).await,
    ) {
        (Ok(s), Ok(p), Ok(a)) => (s, p, a),
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
            return api_error_page(&viewer, &err);
        }
    };
    let figures = vec![
        Figure {
            id: "servers-online",
            label: "Servers online",
            value: format!("{} of {}", summary.servers_online, summary.servers_total),
        },
        Figure {
            id: "relay-sessions",
            label: "Open relay tunnels",
            value: summary.active_relay_sessions.to_string(),
        },
        Figure {
            id: "users",
            label: "Accounts",
            value: summary.user_count.to_string(),
        },
        Figure {
            id: "pending-requests",
            label: "Requests waiting",
            value: summary.pending_requests.to_string(),
        },
        Figure {
            id: "relay-today",
            label: "Relayed today",
            value: human_bytes(summary.relay_bytes_today),
        },
        Figure {
            id: "heartbeats",
            label: "Heartbeats last minute",
            value: summary.heartbeats_last_minute.to_string(),
        },
        Figure {
            id: "webhook-failures",
            label: "Webhook failures (24 h)",
            value: summary.webhook_failures_24h.to_string(),
        },
    ];
    let [online, bytes, beats] = buckets(&points, crate::auth::now_unix(), 96);
    let charts = vec![
        chart("chart-online", "Servers online", &online, "", |v| {
            format!("{v:.0}")
        }),
        chart(
            "chart-bytes",
            "Relay traffic per 15 minutes",
            &bytes,
            " B",
            |v| human_bytes(v as i64),
        ),
        chart(
            "chart-heartbeats",
            "Heartbeats per minute",
            &beats,
            "",
            |v| format!("{v:.1}"),
        ),
    ];
    let activity = activity
        .into_iter()
        .map(|a| ActivityView {
            action: a.action,
            actor: a.actor,
            target: a.target.unwrap_or_default(),
            created: a.created_at,
            success: a.success,
        })
        .collect();
    let page = DashboardPage {
        layout: Layout::for_viewer("Admin", &viewer, "admin"),
        figures,
        charts,
        activity,
    };
    html(StatusCode::OK, page.render())
}

/// A user row of the users page.
#[derive(Debug, Clone)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub last_login: String,
    pub servers: i64,
    pub created: String,
}

fn user_view(row: &AdminUserRow) -> UserView {
    UserView {
        id: row.id.clone(),
        username: row.username.clone(),
        email: row.email.clone(),
        is_admin: row.is_admin,
        disabled: row.disabled_at.is_some(),
        last_login: row
            .last_login_at
            .map_or_else(|| "never".to_owned(), |t| when(t).1),
        servers: row.server_count,
        created: when(row.created_at).1,
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserView>,
    query: String,
    total: i64,
    offset: i64,
    limit: i64,
    notice: Option<String>,
    error: Option<String>,
    form_username: String,
    form_email: String,
}

impl UsersPage {
    fn next_offset(&self) -> Option<i64> {
        (self.offset + self.limit < self.total).then_some(self.offset + self.limit)
    }

    fn previous_offset(&self) -> Option<i64> {
        (self.offset > 0).then(|| (self.offset - self.limit).max(0))
    }
}

fn notice_of(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "created" => "Account created.",
            "updated" => "Account saved.",
            "disabled" => "Account disabled: its sessions and relay channels ended.",
            "enabled" => "Account enabled. Its owner signs in again.",
            "signed-out" => "Every session of that account ended.",
            "deleted" => "Account deleted, with its servers, shares, invites and requests.",
            "admin" => "Administrator role changed.",
            _ => return None,
        }
        .to_owned(),
    )
}

struct UsersView<'a> {
    params: &'a HashMap<String, String>,
    status: StatusCode,
    error: Option<String>,
    form: (String, String),
}

async fn users_page(viewer: &Viewer, view: UsersView<'_>) -> Response {
    let query = view.params.get("q").cloned().unwrap_or_default();
    let listed = admin::list(
        &viewer.core,
        Some(&query),
        Some("50"),
        view.params.get("offset").map(String::as_str),
    )
    .await;
    let (rows, total, limit, offset) = match listed {
        Ok(listed) => listed,
        Err(err) => return api_error_page(viewer, &err),
    };
    let page = UsersPage {
        layout: Layout::for_viewer("Users", viewer, "admin-users"),
        users: rows.iter().map(user_view).collect(),
        query,
        total,
        offset,
        limit,
        notice: notice_of(view.params.get("done").map(String::as_str)),
        error: view.error,
        form_username: view.form.0,
        form_email: view.form.1,
    };
    html(view.status, page.render())
}

/// `GET /app/admin/users[?q=&offset=]`.
pub async fn users(viewer: Viewer, Query(params): Query<HashMap<String, String>>) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    users_page(
        &viewer,
        UsersView {
            params: &params,
            status: StatusCode::OK,
            error: None,
            form: (String::new(), String::new()),
        },
    )
    .await
}

/// `POST /app/admin/users`: a new account.
pub async fn create_user(
    viewer: Viewer,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    let body = json!({
        "username": form.get("username").cloned().unwrap_or_default(),
        "email": form.get("email").cloned().unwrap_or_default(),
        "password": form.get("password").cloned().unwrap_or_default(),
        "is_admin": form.get("is_admin").is_some_and(|v| v == "1"),
    });
    match admin::create(&viewer.core, &viewer.user, &client, Some(&body)).await {
        Ok(_) => Redirect::to("/app/admin/users?done=created").into_response(),
        Err(err) => {
            let (status, message) = refusal(&err);
            let params = HashMap::new();
            users_page(
                &viewer,
                UsersView {
                    params: &params,
                    status,
                    error: Some(message),
                    form: (
                        form.get("username").cloned().unwrap_or_default(),
                        form.get("email").cloned().unwrap_or_default(),
                    ),
                },
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    layout: Layout,
    user: UserView,
    is_self: bool,
    notice: Option<String>,
    error: Option<String>,
    password: Option<String>,
}

async fn user_page(
    viewer: &Viewer,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    password: Option<String>,
) -> Response {
    user_page_with(viewer, id, status, (None, error), password).await
}

async fn user_page_with(
    viewer: &Viewer,
    id: &str,
    status: StatusCode,
    (notice, error): (Option<String>, Option<String>),
    password: Option<String>,
) -> Response {
    match admin::get(&viewer.core, id).await {
        Ok(row) => {
            let page = UserPage {
                layout: Layout::for_viewer(format!("User {}", row.username), viewer, "admin-users"),
                is_self: row.id == viewer.user.id,
                user: user_view(&row),
                notice,
                error,
                password,
            };
            html(status, page.render())
        }
        Err(err) => {
            let (status, message) = refusal(&err);
            viewer_error(viewer, status, "No such user", &message)
        }
    }
}

/// `GET /app/admin/users/{id}`: one account, its edit form and actions.
pub async fn user(
    viewer: Viewer,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    let notice = notice_of(params.get("done").map(String::as_str));
    user_page_with(&viewer, &id, StatusCode::OK, (notice, None), None).await
}

/// `POST /app/admin/users/{id}/{action}`: edit, disable, enable, sign-out, reset-password,
/// set-admin, delete (the last needs the user name typed as confirmation).
pub async fn user_action(
    viewer: Viewer,
    client: ClientInfo,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    let (core, me) = (&viewer.core, &viewer.user);
    let back = |done: &str| {
        Redirect::to(&format!(
            "/app/admin/users/{}?done={done}",
            crate::http::percent_encode(&id)
        ))
        .into_response()
    };
    let result: Result<Response, DomainError> = match action.as_str() {
        "edit" => {
            let mut body = serde_json::Map::new();
            for field in ["username", "email", "password"] {
                if let Some(value) = form.get(field).filter(|v| !v.trim().is_empty()) {
                    body.insert(field.to_owned(), Value::String(value.clone()));
                }
            }
            admin::update(core, me, &client, &id, Some(&Value::Object(body)))
                .await
                .map(|()| back("updated"))
        }
        "disable" => admin::set_disabled(core, me, &client, &id, true)
            .await
            .map(|_| back("disabled")),
        "enable" => admin::set_disabled(core, me, &client, &id, false)
            .await
            .map(|_| back("enabled")),
        "sign-out" => admin::sign_out(core, me, &client, &id)
            .await
            .map(|()| back("signed-out")),
        "set-admin" => {
            let body = json!({"is_admin": form.get("is_admin").is_some_and(|v| v == "1")});
            admin::set_admin(core, me, &client, &id, Some(&body))
                .await
                .map(|()| back("admin"))
        }
        "reset-password" => match admin::reset_password(core, me, &client, &id).await {
            // Shown once, on this answer only.
            Ok(password) => {
                return user_page(&viewer, &id, StatusCode::OK, None, Some(password)).await;
            }
            Err(err) => Err(err),
        },
        "delete" => {
            let typed = form
                .get("confirm")
                .map(|c| c.trim().to_owned())
                .unwrap_or_default();
            match admin::get(core, &id).await {
                Ok(row) if typed != row.username => Err(DomainError::invalid(
                    "confirmation_mismatch",
                    format!(
                        "Type the user name \u{201c}{}\u{201d} to confirm the deletion",
                        row.username
                    ),
                )),
                Ok(_) => admin::delete(core, me, &client, &id)
                    .await
                    .map(|()| Redirect::to("/app/admin/users?done=deleted").into_response()),
                Err(err) => Err(err),
            }
        }
        _ => {
            return viewer_error(
                &viewer,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such action.",
            );
        }
    };
    match result {
        Ok(response) => response,
        Err(err) => {
            let (status, message) = refusal(&err);
            user_page(&viewer, &id, status, Some(message), None).await
        }
    }
}

/// An audit row of the audit page.
#[derive(Debug, Clone)]
pub struct AuditView {
    pub id: i64,
    pub event: String,
    pub action: String,
    pub actor: String,
    pub resource: String,
    pub success: bool,
    pub reason: String,
    pub ip: String,
    pub context: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    layout: Layout,
    rows: Vec<AuditView>,
    filters: Vec<(&'static str, &'static str, String)>,
    total: i64,
    offset: i64,
    limit: i64,
    query: String,
    error: Option<String>,
}

impl AuditPage {
    fn next_offset(&self) -> Option<i64> {
        (self.offset + self.limit < self.total).then_some(self.offset + self.limit)
    }

    fn previous_offset(&self) -> Option<i64> {
        (self.offset > 0).then(|| (self.offset - self.limit).max(0))
    }
}

const AUDIT_FILTERS: [(&str, &str); 7] = [
    ("event", "Event"),
    ("action", "Action"),
    ("resource", "Resource"),
    ("user_id", "User id"),
    ("success", "Outcome (1 = success, 0 = failure)"),
    ("from", "From (unix time)"),
    ("to", "To (unix time)"),
];

/// `GET /app/admin/audit[?filters&offset=]`.
pub async fn audit(viewer: Viewer, Query(params): Query<HashMap<String, String>>) -> Response {
    if let Some(refused) = admin_only(&viewer, ADMINS_ONLY) {
        return refused;
    }
    let filters: Vec<(&'static str, &'static str, String)> = AUDIT_FILTERS
        .iter()
        .map(|(k, label)| (*k, *label, params.get(*k).cloned().unwrap_or_default()))
        .collect();
    let query = serde_urlencoded::to_string(
        filters
            .iter()
            .filter(|(_, _, v)| !v.is_empty())
            .map(|(k, _, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    let result = async {
        let filter = console::audit_filter(|name| params.get(name).cloned())?;
        let (limit, offset) = admin::page(
            Some("50"),
            params.get("offset").map(String::as_str),
            50,
            200,
        )?;
        let (rows, total) = console::audit_page(&viewer.core, &filter, limit, offset).await?;
        Ok::<_, DomainError>((rows, total, limit, offset))
    }
    .await;
    let (rows, total, limit, offset, error, status) = match result {
        Ok((rows, total, limit, offset)) => (rows, total, limit, offset, None, StatusCode::OK),
        Err(err) => {
            let (status, message) = refusal(&err);
            (Vec::new(), 0, 50, 0, Some(message), status)
        }
    };
    let rows = rows
        .iter()
        .map(|row| AuditView {
            id: row.id,
            event: row.event.clone(),
            action: row.action.clone().unwrap_or_default(),
            actor: row
                .actor
                .clone()
                .or_else(|| row.user_id.clone())
                .unwrap_or_else(|| "system".into()),
            resource: row.resource.clone().unwrap_or_default(),
            success: row.success,
            reason: row.reason.clone().unwrap_or_default(),
            ip: row.ip_address.clone().unwrap_or_default(),
            context: row
                .context_json
                .clone()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect(),
            created: when(row.created_at).1,
        })
        .collect();
    let page = AuditPage {
        layout: Layout::for_viewer("Audit log", &viewer, "admin-audit"),
        rows,
        filters,
        total,
        offset,
        limit,
        query,
        error,
    };
    html(status, page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(minute: i64, online: i64) -> StatsPoint {
        StatsPoint {
            minute,
            servers_online: online,
            relay_bytes: 0,
            heartbeats: 0,
        }
    }

    #[test]
    fn a_point_of_the_current_second_lands_in_the_last_span() {
        let now = 1_799_999_940; // a whole minute
        let [online, _, _] = buckets(&[point(now, 3), point(now - 86_400, 1)], now, 96);
        assert_eq!(online[95], 3.0);
        assert_eq!(online[0], 1.0);
        let [online, _, _] = buckets(&[point(now + 60, 5), point(now - 86_401, 5)], now, 96);
        assert!(online.iter().all(|v| *v == 0.0), "outside the window");
    }
}
