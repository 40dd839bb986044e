//! The server list and the server detail page (relay token, proxy policy, sharing, removal).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::layout::*;
use super::session::{CsrfForm, Viewer};
use super::shares::{
    IncomingLine, InviteFormView, ShareFormView, SharingNotice, SharingSection, incoming_lines,
    sharing_section,
};
use super::{html, sparkline};
use crate::domain::DomainError;
use crate::domain::servers::{self, ServerOverview};
use crate::http::extract::{ClientInfo, Path};
use crate::store::HeartbeatRow;

#[derive(Template)]
#[template(path = "servers.html")]
struct ServersPage {
    layout: Layout,
    servers: Vec<ServerView>,
    /// Libraries other accounts share with the viewer.
    incoming: Vec<IncomingLine>,
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
    let (rows, incoming) = match tokio::try_join!(
        servers::list_owned(&viewer.core, &viewer.user.id),
        incoming_lines(&viewer)
    ) {
        Ok(both) => both,
        Err(err) => return api_error_page(&viewer, &err),
    };
    let mut layout = Layout::for_viewer("Servers", &viewer, "servers");
    layout.live = true;
    let page = ServersPage {
        layout,
        servers: rows.into_iter().map(ServerView::from).collect(),
        incoming,
        public_url: viewer.core.config.public_url.clone(),
        notice: query
            .removed
            .map(|name| format!("{name} was removed from your account.")),
    };
    html(StatusCode::OK, page.render())
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
    sharing: SharingSection,
}

/// What a detail page shows beyond the server itself: a token minted this once, a notice, the
/// sharing forms as they were sent (with their messages), and the page's status.
#[derive(Debug, Clone)]
pub(super) struct DetailExtras {
    pub token: Option<MintedToken>,
    pub notice: Option<String>,
    pub sharing_notice: SharingNotice,
    pub share_form: Option<ShareFormView>,
    pub invite_form: Option<InviteFormView>,
    pub status: StatusCode,
}

impl Default for DetailExtras {
    fn default() -> Self {
        Self {
            token: None,
            notice: None,
            sharing_notice: SharingNotice::default(),
            share_form: None,
            invite_form: None,
            status: StatusCode::OK,
        }
    }
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
pub(super) async fn render_server(
    viewer: &Viewer,
    server_id: &str,
    extras: DetailExtras,
) -> Response {
    let core = &viewer.core;
    let overview =
        match servers::overview(core, &viewer.user.id, server_id, CHART_POINTS, SESSION_ROWS).await
        {
            Ok(overview) => overview,
            Err(err) => return api_error_page(viewer, &err),
        };
    let ServerOverview {
        server,
        libraries,
        recent_heartbeats: recent,
        relay_sessions: sessions,
    } = overview;
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
    let sharing = match sharing_section(
        viewer,
        &server.id,
        &server.server_name,
        server.collaborator_relay,
        extras.share_form,
        extras.invite_form,
        &extras.sharing_notice,
    )
    .await
    {
        Ok(sharing) => sharing,
        Err(err) => return api_error_page(viewer, &err),
    };
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
        token: extras.token,
        notice: extras.notice,
        sharing,
    };
    html(extras.status, page.render())
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    /// What was just saved: `policy`, or a sharing action (`shared`, `permission`,
    /// `share-revoked`, `invite-revoked`, `sharing-policy`).
    pub saved: Option<String>,
    /// The share `saved=shared` made.
    pub share: Option<String>,
}

/// `GET /app/servers/{id}`.
pub async fn server_detail(
    viewer: Viewer,
    Path(server_id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<DetailQuery>,
) -> Response {
    let notice = (query.saved.as_deref() == Some("policy"))
        .then(|| "The proxy policy was saved.".to_owned());
    let extras = DetailExtras {
        notice,
        sharing_notice: SharingNotice {
            saved: query.saved,
            share: query.share,
        },
        ..DetailExtras::default()
    };
    render_server(&viewer, &server_id, extras).await
}

/// `POST /app/servers/{id}/relay-token`: mints a token and shows it once.
pub async fn mint_token(
    viewer: Viewer,
    client: ClientInfo,
    Path(server_id): Path<String>,
    CsrfForm(EmptyForm {}): CsrfForm<EmptyForm>,
) -> Response {
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
            let extras = DetailExtras {
                token: Some(token),
                ..DetailExtras::default()
            };
            render_server(&viewer, &server_id, extras).await
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
    match servers::set_proxy_policy(&viewer.core, &viewer.user.id, &server_id, &form.policy).await {
        Ok(()) => Redirect::to(&format!(
            "/app/servers/{}?saved=policy",
            crate::http::percent_encode(&server_id)
        ))
        .into_response(),
        Err(DomainError::Invalid { .. }) => viewer_error(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid policy",
            "Choose either the Phlix allowlist or every path.",
        ),
        Err(err) => api_error_page(&viewer, &err),
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
    client: crate::http::extract::ClientInfo,
    Path(server_id): Path<String>,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Response {
    if form.confirm.is_none() {
        // Still 404 / 403 for a server that is not the viewer's.
        if let Err(err) = servers::owned_server(&viewer.core, &viewer.user.id, &server_id).await {
            return api_error_page(&viewer, &err);
        }
        return viewer_error(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not removed",
            "Tick the confirmation box to remove the server.",
        );
    }
    match servers::remove_owned(&viewer.core, &viewer.user.id, &server_id, &client).await {
        Ok(server) => Redirect::to(&format!(
            "/app/servers?removed={}",
            crate::http::percent_encode(&server.server_name)
        ))
        .into_response(),
        Err(err) => api_error_page(&viewer, &err),
    }
}
