//! The page handlers. Each one checks its input like its JSON twin (it calls the same
//! function) and answers a page: errors re-render the form with a message and the status the
//! API would use.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::session::{CsrfForm, Viewer, Visitor, safe_next};
use super::{assets, html, sparkline};
use crate::auth::now_unix;
use crate::domain::Core;
use crate::domain::DomainError;
use crate::http::cookies::{REFRESH_COOKIE, clear_session_cookies, set_session_cookies};
use crate::http::extract::{ClientInfo, Path};
use crate::store::{HeartbeatRow, ServerRow, UserRow};

/// Heartbeats the detail page charts.
pub const CHART_POINTS: i64 = 60;
/// Heartbeats the detail page lists.
pub const HISTORY_ROWS: usize = 15;
/// Relay sessions the detail page lists.
pub const SESSION_ROWS: i64 = 10;

/// What every page's frame needs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub username: Option<String>,
    pub is_admin: bool,
    pub csrf: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    pub version: String,
    /// The page follows `/api/v1/me/events`.
    pub live: bool,
}

impl Layout {
    fn new(
        title: impl Into<String>,
        user: Option<&UserRow>,
        csrf: &str,
        nav: &'static str,
    ) -> Self {
        Self {
            title: title.into(),
            username: user.map(|u| u.username.clone()),
            is_admin: user.is_some_and(|u| u.is_admin),
            csrf: csrf.to_owned(),
            nav,
            version: assets::VERSION.clone(),
            live: false,
        }
    }

    fn for_viewer(title: impl Into<String>, viewer: &Viewer, nav: &'static str) -> Self {
        Self::new(title, Some(&viewer.user), &viewer.csrf, nav)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

/// A standalone error page (no session needed).
#[must_use]
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::new(title, None, "", ""),
        status: status.as_u16(),
        message: message.to_owned(),
    };
    html(status, page.render())
}

/// An error page inside the signed-in frame.
fn viewer_error(viewer: &Viewer, status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::for_viewer(title, viewer, ""),
        status: status.as_u16(),
        message: message.to_owned(),
    };
    html(status, page.render())
}

/// The page for an API error that is not a form message: status and a human sentence.
fn api_error_page(viewer: &Viewer, err: &DomainError) -> Response {
    let (status, body) = err.parts();
    if status.is_server_error() {
        tracing::error!(error = %err, "page failed");
    }
    let message = match err {
        DomainError::NotFound(_) => "There is no such server.".to_owned(),
        DomainError::Forbidden(_) => "This server belongs to another account.".to_owned(),
        DomainError::Unavailable(_) => {
            "The hub cannot reach its database right now. Try again in a moment.".to_owned()
        }
        _ => body
            .message
            .unwrap_or_else(|| "Something went wrong. Try again in a moment.".to_owned()),
    };
    viewer_error(viewer, status, &body.error, &message)
}

/// `YYYY-MM-DDTHH:MM:SSZ` and `YYYY-MM-DD HH:MM UTC` of a unix time.
fn when(unix: i64) -> (String, String) {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(unix) else {
        return (String::new(), "unknown".to_owned());
    };
    let iso = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    (iso, text)
}

/// `1.5 GiB` style sizes.
#[must_use]
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `3 d 4 h` style durations.
fn human_duration(seconds: i64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// A server as the pages show it.
#[derive(Debug, Clone)]
pub struct ServerView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub version: String,
    pub last_seen_iso: String,
    pub last_seen_text: String,
    pub relay_active: bool,
    pub library_count: i64,
    pub subdomain: Option<String>,
    pub proxy_policy: String,
    pub enrolled_text: String,
    pub hostnames: Vec<String>,
}

impl From<ServerRow> for ServerView {
    fn from(row: ServerRow) -> Self {
        let (last_seen_iso, last_seen_text) = row
            .last_seen_at
            .map_or_else(|| (String::new(), "never".to_owned()), when);
        Self {
            enrolled_text: when(row.enrolled_at).1,
            hostnames: serde_json::from_str(&row.hostname_candidates_json).unwrap_or_default(),
            id: row.id,
            name: row.server_name,
            status: row.status,
            version: row.version,
            last_seen_iso,
            last_seen_text,
            relay_active: row.relay_active,
            library_count: row.library_count,
            subdomain: row.subdomain,
            proxy_policy: row.proxy_policy,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-up, login, logout

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
    pub signed_out: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    login: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    next: String,
    username: String,
    email: String,
    error: Option<String>,
}

/// A visitor who is signed in already goes straight to `next` from the login and sign-up
/// pages.
fn already_signed_in(visitor: &Visitor, next: &str) -> Option<Response> {
    visitor.user.as_ref().map(|_| crate::http::found(next))
}

/// `GET /app/login[?next=…]`; a signed-in visitor goes straight on.
pub async fn login_page(
    visitor: Visitor,
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if let Some(redirect) = already_signed_in(&visitor, &next) {
        return redirect;
    }
    let page = LoginPage {
        layout: Layout::new("Sign in", None, &visitor.csrf, "login"),
        next,
        login: String::new(),
        error: None,
        notice: query.signed_out.map(|_| "You are signed out.".to_owned()),
    };
    html(StatusCode::OK, page.render())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub password: String,
    pub next: Option<String>,
}

/// Signs the user in: both session cookies, then 303 to `next`.
async fn start_session(core: &Core, user: &UserRow, next: &str) -> Response {
    let tokens = match crate::domain::accounts::issue_tokens(core, user).await {
        Ok(tokens) => tokens,
        Err(err) => return error_page(err.parts().0, "Sign-in failed", "Try again in a moment."),
    };
    let mut response = Redirect::to(next).into_response();
    set_session_cookies(response.headers_mut(), core, &tokens).await;
    response
}

/// `POST /app/login` (and the PHP hub's `POST /login`).
pub async fn login(
    visitor: Visitor,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    match crate::domain::accounts::authenticate(&visitor.core, &client, &form.login, form.password)
        .await
    {
        Ok(user) => start_session(&visitor.core, &user, &next).await,
        Err(err) => {
            let (status, _) = err.parts();
            let message = match &err {
                DomainError::InvalidCredentials => "Wrong username or password.".to_owned(),
                DomainError::RateLimited { retry_after } => format!(
                    "Too many failed sign-ins from this address. Try again in {} minutes.",
                    retry_after.div_ceil(60)
                ),
                DomainError::Invalid { message, .. } => capitalise(message),
                _ => "The hub could not check your password right now. Try again in a moment."
                    .to_owned(),
            };
            let page = LoginPage {
                layout: Layout::new("Sign in", None, &visitor.csrf, "login"),
                next,
                login: form.login,
                error: Some(message),
                notice: None,
            };
            let mut response = html(status, page.render());
            if let DomainError::RateLimited { retry_after } = err
                && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// `GET /app/signup`.
pub async fn signup_page(
    visitor: Visitor,
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if let Some(redirect) = already_signed_in(&visitor, &next) {
        return redirect;
    }
    let page = SignupPage {
        layout: Layout::new("Create an account", None, &visitor.csrf, "signup"),
        next,
        username: String::new(),
        email: String::new(),
        error: None,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Debug, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    pub next: Option<String>,
}

/// `POST /app/signup` (and `POST /signup`): creates the account and signs in.
pub async fn signup(
    visitor: Visitor,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<SignupForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let request = phlix_proto::auth::RegisterRequest {
        username: Some(form.username.trim().to_owned()),
        email: Some(form.email.trim().to_owned()),
        password: Some(form.password),
        display_name: None,
    };
    match crate::domain::accounts::create_account(&visitor.core, &client, &request).await {
        Ok(user) => start_session(&visitor.core, &user, &next).await,
        Err(err) => {
            let (status, _) = err.parts();
            let message = match &err {
                DomainError::Invalid { message, .. } => capitalise(message),
                DomainError::Conflict { code, .. } if *code == "auth.username_taken" => {
                    "This username is taken; choose another.".to_owned()
                }
                DomainError::Conflict { code, .. } if *code == "auth.email_taken" => {
                    "An account with this e-mail address exists already. Sign in instead."
                        .to_owned()
                }
                _ => {
                    "The account could not be created right now. Try again in a moment.".to_owned()
                }
            };
            let page = SignupPage {
                layout: Layout::new("Create an account", None, &visitor.csrf, "signup"),
                next,
                username: form.username,
                email: form.email,
                error: Some(message),
            };
            html(status, page.render())
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EmptyForm {}

/// `POST /app/logout` (and `POST /logout`): revokes the refresh token, clears the cookies.
pub async fn logout(
    visitor: Visitor,
    client: ClientInfo,
    jar: axum_extra::extract::CookieJar,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
    let refresh = jar.get(REFRESH_COOKIE).map(|c| c.value().to_owned());
    if let Err(err) = crate::domain::accounts::end_session(&visitor.core, &client, refresh).await {
        tracing::warn!(error = %err, "could not revoke the refresh token at logout");
    }
    let mut response = Redirect::to("/app/login?signed_out=1").into_response();
    clear_session_cookies(response.headers_mut(), &visitor.core.config);
    response
}

// ---------------------------------------------------------------------------------------------
// Servers

#[derive(Template)]
#[template(path = "servers.html")]
struct ServersPage {
    layout: Layout,
    servers: Vec<ServerView>,
    public_url: String,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ServersQuery {
    pub removed: Option<String>,
}

/// `GET /app/servers`: the user's servers, kept current by the page script.
pub async fn servers(
    viewer: Viewer,
    axum::extract::Query(query): axum::extract::Query<ServersQuery>,
) -> Response {
    let rows = match viewer.core.store.servers_of_user(&viewer.user.id).await {
        Ok(rows) => rows,
        Err(err) => return api_error_page(&viewer, &err.into()),
    };
    let mut layout = Layout::for_viewer("Servers", &viewer, "servers");
    layout.live = true;
    let page = ServersPage {
        layout,
        servers: rows.into_iter().map(ServerView::from).collect(),
        public_url: viewer.core.config.public_url.clone(),
        notice: query
            .removed
            .map(|name| format!("{name} was removed from your account.")),
    };
    html(StatusCode::OK, page.render())
}

#[derive(Template)]
#[template(path = "claim.html")]
struct ClaimPage {
    layout: Layout,
    code: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "claimed.html")]
struct ClaimedPage {
    layout: Layout,
    server: ServerView,
}

/// `GET /app/claim-server`.
pub async fn claim_page(viewer: Viewer) -> Response {
    let page = ClaimPage {
        layout: Layout::for_viewer("Claim a server", &viewer, "claim"),
        code: String::new(),
        error: None,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Debug, Deserialize)]
pub struct ClaimForm {
    #[serde(default)]
    pub code: String,
}

/// `POST /app/claim-server`: redeems the code (any case, with or without the dash).
pub async fn claim(
    viewer: Viewer,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<ClaimForm>,
) -> Response {
    let typed = form.code.trim().to_owned();
    let outcome = if typed.is_empty() {
        Err(DomainError::Unprocessable {
            code: "claim_code_required",
            message: String::new(),
        })
    } else {
        crate::domain::claims::redeem_code(&viewer.core, &viewer.user, client, &typed).await
    };
    let server_id = match outcome {
        Ok(server_id) => server_id,
        Err(err) => {
            let (status, body) = err.parts();
            let message = match body.error.as_str() {
                "CLAIM_CODE_NOT_FOUND" => format!(
                    "No server is waiting with the code “{typed}”. Check the code your server shows (8 letters and digits, like K7QX-M2P9)."
                ),
                "CLAIM_CODE_EXPIRED" => "This code has expired (codes last 10 minutes). Ask your server for a new one: run the pairing again.".to_owned(),
                "CLAIM_CODE_ALREADY_CLAIMED" => "This code has already been used to pair a server. Each code works once.".to_owned(),
                _ if body.code.as_deref() == Some("claim_code_required") => "Enter the code your server shows.".to_owned(),
                _ => "The code could not be checked right now. Try again in a moment.".to_owned(),
            };
            let page = ClaimPage {
                layout: Layout::for_viewer("Claim a server", &viewer, "claim"),
                code: typed,
                error: Some(message),
            };
            return html(status, page.render());
        }
    };
    match viewer.core.store.server_by_id(&server_id).await {
        Ok(Some(row)) => {
            let page = ClaimedPage {
                layout: Layout::for_viewer("Server paired", &viewer, "claim"),
                server: row.into(),
            };
            html(StatusCode::OK, page.render())
        }
        Ok(None) => Redirect::to("/app/servers").into_response(),
        Err(err) => api_error_page(&viewer, &err.into()),
    }
}

/// One heartbeat line of the detail page.
#[derive(Debug, Clone)]
pub struct HeartbeatLine {
    pub iso: String,
    pub text: String,
    pub version: String,
    pub uptime: String,
    pub sessions: i64,
    pub transcodes: i64,
    pub cpu: String,
    pub memory: String,
}

/// One relay session line of the detail page.
#[derive(Debug, Clone)]
pub struct SessionLine {
    pub opened: String,
    pub closed: String,
    pub node: String,
    pub traffic: String,
    pub reason: String,
}

/// A freshly minted relay token (shown once).
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: String,
    pub expires_text: String,
}

#[derive(Template)]
#[template(path = "server.html")]
struct ServerPage {
    layout: Layout,
    server: ServerView,
    libraries: Vec<String>,
    heartbeats: Vec<HeartbeatLine>,
    cpu_chart: Option<String>,
    memory_chart: Option<String>,
    memory_caption: String,
    cpu_caption: String,
    sessions: Vec<SessionLine>,
    token: Option<MintedToken>,
    notice: Option<String>,
    client_endpoint: String,
    proxy_base: String,
}

fn metric(metrics: Option<&Value>, key: &str) -> Option<f64> {
    metrics?.get(key)?.as_f64()
}

fn heartbeat_line(row: &HeartbeatRow) -> HeartbeatLine {
    let metrics: Option<Value> = row
        .host_metrics_json
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok());
    let (iso, text) = when(row.received_at);
    let memory = match (
        metric(metrics.as_ref(), "memUsedBytes"),
        metric(metrics.as_ref(), "memTotalBytes"),
    ) {
        (Some(used), Some(total)) if total > 0.0 => format!(
            "{} of {}",
            human_bytes(used as i64),
            human_bytes(total as i64)
        ),
        _ => "—".to_owned(),
    };
    HeartbeatLine {
        iso,
        text,
        version: row.version.clone(),
        uptime: human_duration(row.uptime_seconds),
        sessions: row.active_sessions,
        transcodes: row.active_transcodes,
        cpu: metric(metrics.as_ref(), "cpuPercent")
            .map_or_else(|| "—".to_owned(), |c| format!("{c:.1} %")),
        memory,
    }
}

/// Renders the detail page of a server the viewer owns.
async fn render_server(
    viewer: &Viewer,
    server: ServerRow,
    token: Option<MintedToken>,
    notice: Option<String>,
) -> Response {
    let core = &viewer.core;
    let server_id = server.id.clone();
    let loaded = async {
        let libraries = core.store.libraries_of_server(&server_id).await?;
        let recent = core
            .store
            .recent_heartbeats(&server_id, CHART_POINTS)
            .await?;
        let sessions = core
            .store
            .relay_sessions_of_server(&server_id, SESSION_ROWS)
            .await?;
        Ok::<_, crate::store::StoreError>((libraries, recent, sessions))
    }
    .await;
    let (libraries, recent, sessions) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => return api_error_page(viewer, &err.into()),
    };
    // Oldest first for the charts.
    let metrics: Vec<Value> = recent
        .iter()
        .rev()
        .filter_map(|h| h.host_metrics_json.as_deref())
        .filter_map(|m| serde_json::from_str(m).ok())
        .collect();
    let cpu: Vec<f64> = metrics
        .iter()
        .filter_map(|m| metric(Some(m), "cpuPercent"))
        .collect();
    let memory: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|m| {
            Some((
                metric(Some(m), "memUsedBytes")?,
                metric(Some(m), "memTotalBytes")?,
            ))
        })
        .filter(|(_, total)| *total > 0.0)
        .collect();
    let memory_percent: Vec<f64> = memory.iter().map(|(u, t)| u / t * 100.0).collect();
    let memory_caption = memory.last().map_or_else(String::new, |(used, total)| {
        format!(
            "{} of {}",
            human_bytes(*used as i64),
            human_bytes(*total as i64)
        )
    });
    let cpu_caption = cpu.last().map_or_else(String::new, |c| format!("{c:.1} %"));
    let page = ServerPage {
        layout: {
            let mut layout = Layout::for_viewer(server.server_name.clone(), viewer, "servers");
            layout.live = true;
            layout
        },
        client_endpoint: core.client_ws_endpoint(&server.id),
        proxy_base: format!("{}/", core.proxy_base(&server.id)),
        server: server.into(),
        libraries: libraries.into_iter().map(|l| l.library_name).collect(),
        heartbeats: recent
            .iter()
            .take(HISTORY_ROWS)
            .map(heartbeat_line)
            .collect(),
        cpu_chart: sparkline::render(&cpu, 100.0, "CPU", " %"),
        memory_chart: sparkline::render(&memory_percent, 100.0, "Memory in use", " %"),
        memory_caption,
        cpu_caption,
        sessions: sessions
            .into_iter()
            .map(|s| SessionLine {
                opened: when(s.opened_at).1,
                closed: s.closed_at.map_or_else(|| "open".to_owned(), |c| when(c).1),
                node: s.worker_node,
                traffic: format!(
                    "{} in, {} out",
                    human_bytes(s.bytes_in),
                    human_bytes(s.bytes_out)
                ),
                reason: s.close_reason.unwrap_or_default(),
            })
            .collect(),
        token,
        notice,
    };
    html(StatusCode::OK, page.render())
}

async fn viewer_server(viewer: &Viewer, server_id: &str) -> Result<ServerRow, Response> {
    crate::domain::servers::owned_server(&viewer.core, &viewer.user.id, server_id)
        .await
        .map_err(|err| api_error_page(viewer, &err))
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    pub saved: Option<String>,
}

/// `GET /app/servers/{id}`.
pub async fn server_detail(
    viewer: Viewer,
    Path(server_id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<DetailQuery>,
) -> Response {
    match viewer_server(&viewer, &server_id).await {
        Ok(server) => {
            let notice = query
                .saved
                .map(|_| "The proxy policy was saved.".to_owned());
            render_server(&viewer, server, None, notice).await
        }
        Err(response) => response,
    }
}

/// `POST /app/servers/{id}/relay-token`: mints a token and shows it once.
pub async fn mint_token(
    viewer: Viewer,
    client: ClientInfo,
    Path(server_id): Path<String>,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
    let server = match viewer_server(&viewer, &server_id).await {
        Ok(server) => server,
        Err(response) => return response,
    };
    match crate::domain::relay_tokens::mint_relay_token(
        &viewer.core,
        &viewer.user.id,
        &server_id,
        &client,
    )
    .await
    {
        Ok((token, expires_at)) => {
            let token = MintedToken {
                token,
                expires_text: when(expires_at).1,
            };
            render_server(&viewer, server, Some(token), None).await
        }
        Err(err) => api_error_page(&viewer, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    pub policy: String,
}

/// `POST /app/servers/{id}/proxy-policy`.
pub async fn set_policy(
    viewer: Viewer,
    Path(server_id): Path<String>,
    CsrfForm(form): CsrfForm<PolicyForm>,
) -> Response {
    if let Err(response) = viewer_server(&viewer, &server_id).await {
        return response;
    }
    if !matches!(form.policy.as_str(), "phlix" | "all") {
        return viewer_error(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid policy",
            "Choose either the Phlix allowlist or every path.",
        );
    }
    match viewer
        .core
        .store
        .set_proxy_policy(&server_id, &form.policy, now_unix())
        .await
        .inspect(|_| viewer.core.access.forget_server(&server_id))
    {
        Ok(_) => Redirect::to(&format!(
            "/app/servers/{}?saved=policy",
            crate::http::percent_encode(&server_id)
        ))
        .into_response(),
        Err(err) => api_error_page(&viewer, &err.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    /// The confirmation checkbox.
    pub confirm: Option<String>,
}

/// `POST /app/servers/{id}/remove`: needs the confirmation box ticked.
pub async fn remove_server(
    viewer: Viewer,
    Path(server_id): Path<String>,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Response {
    let server = match viewer_server(&viewer, &server_id).await {
        Ok(server) => server,
        Err(response) => return response,
    };
    if form.confirm.is_none() {
        return viewer_error(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not removed",
            "Tick the confirmation box to remove the server.",
        );
    }
    let deleted = viewer.core.store.delete_server(&server_id).await;
    viewer.core.access.forget_server(&server_id);
    match deleted {
        Ok(_) => {
            tracing::info!(user_id = %viewer.user.id, %server_id, "server removed by its owner");
            Redirect::to(&format!(
                "/app/servers?removed={}",
                crate::http::percent_encode(&server.server_name)
            ))
            .into_response()
        }
        Err(err) => api_error_page(&viewer, &err.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

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
    for setting in crate::domain::settings::ALL {
        let (label, help) = describe(setting.key);
        fields.push(SettingField {
            key: setting.key.to_owned(),
            label,
            help,
            value: setting.get(&core.store).await?.to_string(),
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

// ---------------------------------------------------------------------------------------------
// Others

/// `GET /app/invite/{token}`: invite links are not available on this hub yet.
pub async fn invite(viewer: Viewer, Path(_token): Path<String>) -> Response {
    viewer_error(
        &viewer,
        StatusCode::NOT_FOUND,
        "Invite not available",
        "This hub does not support invite links yet, so this link cannot be used. Ask the person who sent it to share the library with your account instead.",
    )
}

/// Any other `/app/…` path.
pub async fn not_found(viewer: Viewer) -> Response {
    viewer_error(
        &viewer,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(human_duration(59), "0 min");
        assert_eq!(human_duration(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(human_duration(2 * 86_400 + 3600), "2 d 1 h");
    }

    #[test]
    fn times_have_an_iso_and_a_readable_form() {
        let (iso, text) = when(1_700_000_000);
        assert_eq!(iso, "2023-11-14T22:13:20Z");
        assert_eq!(text, "2023-11-14 22:13 UTC");
    }
}
