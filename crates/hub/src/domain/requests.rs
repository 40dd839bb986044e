//! Media requests (SPEC O): users ask for a film or a series, an administrator approves (the
//! hub adds it to Radarr or Sonarr through `crate::arr`) or denies, and the availability sync
//! marks approved requests available once the *arr has the files. Every action writes an audit
//! row (resource `requests`) and publishes its `request.*` event to the requester and to every
//! administrator's live stream.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::events::HubEvent;
use super::settings::{self, AUTO_APPROVE, MOVIE_LIMIT, SERIES_LIMIT};
use super::{ClientInfo, Core, DomainError, DomainResult, audit};
use crate::arr::{self, Arr, ArrError, Service};
use crate::auth::now_unix;
use crate::store::{NewRequest, RequestRow, RequestWrite, UserRow};

/// The window of the per-user limits.
pub const LIMIT_WINDOW_SECS: i64 = 7 * 86_400;
/// Longest title accepted.
pub const MAX_TITLE: usize = 500;
/// Most rows a list returns.
pub const LIST_LIMIT: i64 = 500;
/// Most search results shown.
pub const SEARCH_LIMIT: usize = 40;
/// The statuses of SPEC O.
pub const STATUSES: [&str; 4] = ["pending", "approved", "available", "rejected"];

/// The shared HTTP client of the *arr calls and what the sync knows about outages.
#[derive(Debug)]
pub struct Arrs {
    http: reqwest::Client,
    /// Services the last sync round could not reach (logged once per outage).
    down: Mutex<HashSet<Service>>,
}

impl Arrs {
    /// The client with the configured timeout.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(timeout: std::time::Duration) -> anyhow::Result<Self> {
        Ok(Self {
            http: arr::http_client(timeout)?,
            down: Mutex::default(),
        })
    }

    /// Records whether `service` answered; `true` when that changed.
    fn set_down(&self, service: Service, down: bool) -> bool {
        let mut set = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if down {
            set.insert(service)
        } else {
            set.remove(&service)
        }
    }
}

/// A request as every response shows it (SPEC O row, plus `username`). Fields in alphabetical
/// order: the bytes the `json!` object had.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    pub episode: Option<i32>,
    pub id: i64,
    pub poster_url: Option<String>,
    pub rejection_reason: Option<String>,
    pub season: Option<i32>,
    /// `pending`, `approved`, `available` or `rejected`.
    pub status: String,
    pub title: String,
    pub tmdb_id: i64,
    /// `movie` or `series`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub updated_at: String,
    pub user_id: String,
    pub username: String,
}

/// A request as every response shows it (SPEC O row, plus `username`).
#[must_use]
pub fn view(row: &RequestRow) -> RequestView {
    RequestView {
        created_at: super::accounts::format_datetime(row.created_at),
        episode: row.episode,
        id: row.id,
        poster_url: row.poster_url.clone(),
        rejection_reason: row.rejection_reason.clone(),
        season: row.season,
        status: row.status.clone(),
        title: row.title.clone(),
        tmdb_id: row.tmdb_id,
        kind: row.kind.clone(),
        updated_at: super::accounts::format_datetime(row.updated_at),
        user_id: row.user_id.clone(),
        username: row.username.clone(),
    }
}

fn service_of(kind: &str) -> Service {
    if kind == "series" {
        Service::Sonarr
    } else {
        Service::Radarr
    }
}

fn bad(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::invalid(code, message)
}

fn not_found() -> DomainError {
    DomainError::Missing {
        code: "request_not_found",
        message: "Request not found".into(),
    }
}

fn not_pending(row: &RequestRow) -> DomainError {
    DomainError::Conflict {
        code: "request_not_pending",
        message: format!("This request is {} already, not pending", row.status),
    }
}

/// A failed *arr call is a 502 `arr_failed` naming the service, its status and its text.
impl From<ArrError> for DomainError {
    fn from(err: ArrError) -> Self {
        Self::Upstream {
            code: "arr_failed",
            message: err.message,
        }
    }
}

/// The client of the *arr for `service`, if an admin enabled it and its API key is set.
///
/// # Errors
/// 409 `arr_not_configured` naming what is missing.
pub async fn configured(core: &Core, service: Service) -> DomainResult<Arr> {
    let key = service.key();
    let name = service.name();
    let env = match service {
        Service::Radarr => &core.config.radarr,
        Service::Sonarr => &core.config.sonarr,
    };
    let not_configured = |message: String| DomainError::Conflict {
        code: "arr_not_configured",
        message,
    };
    if !settings::flag(core, &format!("server.arr.{key}.enabled")).await? {
        return Err(not_configured(format!(
            "{name} is not configured — an admin can set it in Settings"
        )));
    }
    let Some(api_key) = &env.api_key else {
        return Err(not_configured(format!(
            "{name} has no API key — set HUB_{}_API_KEY (or HUB_{}_API_KEY_FILE) and restart the hub",
            key.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        )));
    };
    let url = settings::text(core, &format!("server.arr.{key}.url")).await?;
    let api_key = String::from_utf8_lossy(api_key.expose()).into_owned();
    Ok(Arr::new(service, &url, &api_key, core.arrs.http.clone()))
}

/// Writes the audit row of a request action (resource `requests`).
async fn record(
    core: &Core,
    client: &ClientInfo,
    event: &str,
    actor: Option<&str>,
    success: bool,
    reason: Option<&str>,
    row: &RequestRow,
) -> DomainResult<()> {
    let mut entry = audit::entry(event, client, actor, success, reason);
    entry.resource = Some("requests".into());
    entry.action = Some(
        match event {
            "request.created" => "request.create",
            "request.approved" => "request.approve",
            "request.denied" => "request.deny",
            "request.deleted" => "request.delete",
            other => other,
        }
        .to_owned(),
    );
    entry.context_json = Some(
        json!({"request_id": row.id, "type": row.kind, "tmdb_id": row.tmdb_id,
               "title": row.title, "requester": row.user_id})
        .to_string(),
    );
    core.store.audit(&entry).await?;
    Ok(())
}

/// Publishes a `request.*` event to the requester and every administrator.
fn publish(core: &Core, name: &'static str, row: &RequestRow) {
    core.events.publish(
        HubEvent::named(
            name,
            &row.user_id,
            "",
            serde_json::to_value(view(row)).unwrap_or_default(),
        )
        .to_admins(),
    );
}

/// An optional integer field: a JSON integer or a string of digits.
fn optional_int(body: &Value, field: &str) -> Result<Option<i64>, ()> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
        Some(Value::String(s)) if !s.trim().is_empty() => {
            s.trim().parse::<i64>().map(Some).map_err(|_| ())
        }
        Some(_) => Err(()),
    }
}

/// The result of [`create`].
#[derive(Debug, Clone)]
pub enum Created {
    /// The new request (approved already when `requests.auto_approve` is on and it worked).
    New(RequestRow),
    /// The caller has a live request for the same thing: 409 `request_exists` with it.
    Exists(RequestRow),
}

/// Checks a create body in SPEC O's order and gives the request to write.
///
/// # Errors
/// 400 with O's codes.
pub fn parse_new(user_id: &str, body: Option<&Value>) -> DomainResult<NewRequest> {
    let Some(body) = body.filter(|b| b.is_object()) else {
        return Err(bad("invalid_body", "Body must be a JSON object"));
    };
    let kind = match body.get("type").and_then(Value::as_str) {
        Some(kind @ ("movie" | "series")) => kind.to_owned(),
        _ => return Err(bad("invalid_type", "type must be \"movie\" or \"series\"")),
    };
    let tmdb_id = match optional_int(body, "tmdb_id") {
        Ok(Some(id)) if (1..=i64::from(i32::MAX)).contains(&id) => id,
        _ => return Err(bad("invalid_tmdb_id", "tmdb_id must be a positive integer")),
    };
    let title = body
        .get("title")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("missing_title", "title is required"))?;
    if title.chars().count() > MAX_TITLE {
        return Err(bad(
            "invalid_title",
            format!("title must be at most {MAX_TITLE} characters"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(bad(
            "invalid_title",
            "title must not contain control characters",
        ));
    }
    let poster_url = match body.get("poster_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url))
            if (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() <= 2048
                && !url.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            Some(url.clone())
        }
        Some(Value::String(url)) if url.is_empty() => None,
        Some(_) => {
            return Err(bad(
                "invalid_poster_url",
                "poster_url must be an http(s) URL of at most 2048 characters",
            ));
        }
    };
    let season = match optional_int(body, "season") {
        Ok(None) => None,
        Ok(Some(s)) if kind == "movie" => {
            let _ = s;
            return Err(bad("invalid_season", "season applies to series only"));
        }
        Ok(Some(s)) if (0..=1000).contains(&s) => i32::try_from(s).ok(),
        _ => {
            return Err(bad(
                "invalid_season",
                "season must be an integer from 0 to 1000",
            ));
        }
    };
    let episode = match optional_int(body, "episode") {
        Ok(None) => None,
        Ok(Some(_)) if season.is_none() => {
            return Err(bad("invalid_episode", "episode needs a season"));
        }
        Ok(Some(e)) if (1..=100_000).contains(&e) => i32::try_from(e).ok(),
        _ => {
            return Err(bad("invalid_episode", "episode must be a positive integer"));
        }
    };
    Ok(NewRequest {
        user_id: user_id.to_owned(),
        kind,
        tmdb_id,
        title: title.to_owned(),
        poster_url,
        season,
        episode,
    })
}

/// `POST /api/v1/me/requests` (SPEC O): a new pending request; with `requests.auto_approve`
/// it is approved at once, best effort (a failure leaves it pending).
///
/// # Errors
/// O's 400s, 429 `request_limit_reached`.
pub async fn create(
    core: &Core,
    user: &UserRow,
    client: &ClientInfo,
    body: Option<&Value>,
) -> DomainResult<Created> {
    let new = parse_new(&user.id, body)?;
    let now = now_unix();
    let limit_setting = if new.kind == "movie" {
        MOVIE_LIMIT
    } else {
        SERIES_LIMIT
    };
    let limit = if user.is_admin {
        0
    } else {
        limit_setting.get(&core.store).await?
    };
    let window = (limit > 0).then_some((limit, now - LIMIT_WINDOW_SECS));
    let row = match core.store.create_request(&new, window, now).await? {
        RequestWrite::Created(row) => *row,
        RequestWrite::Exists(row) => return Ok(Created::Exists(*row)),
        RequestWrite::Limited { oldest } => {
            let retry_after = u64::try_from(oldest + LIMIT_WINDOW_SECS - now)
                .unwrap_or(1)
                .max(1);
            let what = if new.kind == "movie" {
                "film"
            } else {
                "series"
            };
            return Err(DomainError::LimitReached {
                code: "request_limit_reached",
                message: format!(
                    "You have reached your limit of {limit} {what} requests per 7 days; try again in {} hours",
                    retry_after.div_ceil(3600)
                ),
                retry_after,
            });
        }
    };
    record(
        core,
        client,
        "request.created",
        Some(&user.id),
        true,
        None,
        &row,
    )
    .await?;
    publish(core, "request.created", &row);
    if settings::flag(core, AUTO_APPROVE).await? {
        match approve_row(core, &row, "auto", client).await {
            Ok(approved) => return Ok(Created::New(approved)),
            Err(err) => {
                tracing::warn!(request_id = row.id, error = %err, "auto-approval failed; the request stays pending");
            }
        }
    }
    Ok(Created::New(row))
}

fn parse_status(status: Option<&str>, allow_all: bool) -> DomainResult<Option<&str>> {
    match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some("all") if allow_all => Ok(None),
        Some(s) if STATUSES.contains(&s) => Ok(Some(s)),
        Some(_) => Err(bad(
            "invalid_status",
            if allow_all {
                "status must be pending, approved, available, rejected or all"
            } else {
                "status must be pending, approved, available or rejected"
            },
        )),
    }
}

/// The caller's requests, newest first, with `status` when given (SPEC O: `available` is the
/// caller's own too).
///
/// # Errors
/// 400 `invalid_status`.
pub async fn mine(
    core: &Core,
    user_id: &str,
    status: Option<&str>,
) -> DomainResult<Vec<RequestRow>> {
    let status = parse_status(status, false)?;
    Ok(core
        .store
        .list_requests(Some(user_id), status, LIST_LIMIT)
        .await?)
}

/// Every user's requests with `status` (default `pending`; `all`), newest first (admins).
///
/// # Errors
/// 400 `invalid_status`.
pub async fn all(core: &Core, status: Option<&str>) -> DomainResult<Vec<RequestRow>> {
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => Some("pending"),
        Some(s) => parse_status(Some(s), true)?,
    };
    Ok(core.store.list_requests(None, status, LIST_LIMIT).await?)
}

/// A request id from a path: anything but a positive integer is an unknown request.
fn parse_id(id: &str) -> DomainResult<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(not_found)
}

async fn load(core: &Core, id: &str) -> DomainResult<RequestRow> {
    core.store
        .request_by_id(parse_id(id)?)
        .await?
        .ok_or_else(not_found)
}

/// One request of the caller (admins may read any).
///
/// # Errors
/// 404 `request_not_found`, 403 `not_request_owner`.
pub async fn get(core: &Core, user: &UserRow, id: &str) -> DomainResult<RequestRow> {
    let row = load(core, id).await?;
    if row.user_id != user.id && !user.is_admin {
        return Err(DomainError::Denied {
            code: "not_request_owner",
            message: "You do not own this request".into(),
        });
    }
    Ok(row)
}

/// Deletes a request of the caller, whatever its status (admins may delete any).
///
/// # Errors
/// 404 `request_not_found`, 403 `not_request_owner`.
pub async fn delete(
    core: &Core,
    user: &UserRow,
    client: &ClientInfo,
    id: &str,
) -> DomainResult<()> {
    let row = get(core, user, id).await?;
    if core.store.delete_request(row.id).await? {
        record(
            core,
            client,
            "request.deleted",
            Some(&user.id),
            true,
            None,
            &row,
        )
        .await?;
    }
    Ok(())
}

/// Adds what `row` asks for to its *arr and gives the *arr's id.
async fn send_to_arr(core: &Core, row: &RequestRow) -> DomainResult<i64> {
    let service = service_of(&row.kind);
    let arr = configured(core, service).await?;
    let key = service.key();
    let profile_setting = settings::value(core, &format!("server.arr.{key}.quality_profile_id"))
        .await?
        .as_i64()
        .unwrap_or(0);
    let root_setting = settings::text(core, &format!("server.arr.{key}.root_folder")).await?;
    let id_of = |item: &Value| {
        item.get("id").and_then(Value::as_i64).ok_or_else(|| {
            DomainError::from(ArrError {
                service,
                status: Some(200),
                message: format!("{} answered without an id", service.name()),
                detail: None,
            })
        })
    };
    match service {
        Service::Radarr => {
            if let Some(existing) = arr.movie_by_tmdb(row.tmdb_id).await? {
                return id_of(&existing);
            }
            let lookup = arr.movie_lookup_tmdb(row.tmdb_id).await?;
            let profile = arr.pick_profile(profile_setting).await?;
            let root = arr.pick_root_folder(&root_setting).await?;
            match arr.add_movie(&lookup, row.tmdb_id, profile, &root).await {
                Ok(movie) => id_of(&movie),
                // Added by someone else between the check and the add.
                Err(err) if err.already_added() => match arr.movie_by_tmdb(row.tmdb_id).await? {
                    Some(movie) => id_of(&movie),
                    None => Err(err.into()),
                },
                Err(err) => Err(err.into()),
            }
        }
        Service::Sonarr => {
            let lookup = arr.series_lookup_tmdb(row.tmdb_id).await?;
            let tvdb_id = lookup
                .get("tvdbId")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            if let Some(existing) = arr.series_by_tvdb(tvdb_id).await? {
                return Ok(arr.monitor_existing_series(existing, row.season).await?);
            }
            let profile = arr.pick_profile(profile_setting).await?;
            let root = arr.pick_root_folder(&root_setting).await?;
            match arr.add_series(&lookup, row.season, profile, &root).await {
                Ok(series) => id_of(&series),
                Err(err) if err.already_added() => match arr.series_by_tvdb(tvdb_id).await? {
                    Some(existing) => Ok(arr.monitor_existing_series(existing, row.season).await?),
                    None => Err(err.into()),
                },
                Err(err) => Err(err.into()),
            }
        }
    }
}

/// Approves a pending request: sends it to its *arr, then records the decision.
async fn approve_row(
    core: &Core,
    row: &RequestRow,
    actor: &str,
    client: &ClientInfo,
) -> DomainResult<RequestRow> {
    if row.status != "pending" {
        return Err(not_pending(row));
    }
    let arr_id = match send_to_arr(core, row).await {
        Ok(id) => id,
        Err(err) => {
            let reason = err.to_string();
            record(
                core,
                client,
                "request.approved",
                Some(actor),
                false,
                Some(&reason),
                row,
            )
            .await?;
            return Err(err);
        }
    };
    decide(
        core,
        client,
        row,
        Decision {
            status: "approved",
            event: "request.approved",
            arr_id: Some(arr_id),
            reason: None,
            actor,
        },
    )
    .await
}

/// A decision on a pending request.
struct Decision<'a> {
    status: &'static str,
    event: &'static str,
    arr_id: Option<i64>,
    reason: Option<&'a str>,
    actor: &'a str,
}

/// Records a decision if the request is still pending (409 `request_not_pending` otherwise),
/// with its audit row and event.
async fn decide(
    core: &Core,
    client: &ClientInfo,
    row: &RequestRow,
    decision: Decision<'_>,
) -> DomainResult<RequestRow> {
    let reload = || async {
        core.store
            .request_by_id(row.id)
            .await?
            .ok_or_else(not_found)
    };
    if !core
        .store
        .decide_request(
            row.id,
            decision.status,
            decision.arr_id,
            decision.reason,
            decision.actor,
            now_unix(),
        )
        .await?
    {
        return Err(not_pending(&reload().await?));
    }
    let decided = reload().await?;
    record(
        core,
        client,
        decision.event,
        Some(decision.actor),
        true,
        decision.reason,
        &decided,
    )
    .await?;
    publish(core, decision.event, &decided);
    Ok(decided)
}

/// `POST /api/v1/admin/requests/{id}/approve`.
///
/// # Errors
/// 404 `request_not_found`, 409 `request_not_pending` / `arr_not_configured`, 502
/// `arr_failed` (the request stays pending).
pub async fn approve(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    id: &str,
) -> DomainResult<RequestRow> {
    let row = load(core, id).await?;
    approve_row(core, &row, &admin.id, client).await
}

/// `POST /api/v1/admin/requests/{id}/deny` with an optional reason.
///
/// # Errors
/// 404 `request_not_found`, 409 `request_not_pending`, 400 `invalid_reason`.
pub async fn deny(
    core: &Core,
    admin: &UserRow,
    client: &ClientInfo,
    id: &str,
    reason: Option<&Value>,
) -> DomainResult<RequestRow> {
    let reason = match reason {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() <= 1000 => {
            Some(text.trim().to_owned()).filter(|t| !t.is_empty())
        }
        Some(_) => {
            return Err(bad(
                "invalid_reason",
                "reason must be a string of at most 1000 characters",
            ));
        }
    };
    let row = load(core, id).await?;
    if row.status != "pending" {
        return Err(not_pending(&row));
    }
    decide(
        core,
        client,
        &row,
        Decision {
            status: "rejected",
            event: "request.denied",
            arr_id: None,
            reason: reason.as_deref(),
            actor: &admin.id,
        },
    )
    .await
}

/// One search result (SPEC O).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    pub tmdb_id: i64,
    pub title: String,
    pub year: Option<i64>,
    pub overview: Option<String>,
    pub poster_url: Option<String>,
    /// `available`, `requested` or `none`.
    pub status: &'static str,
    /// Season numbers of a series (for the per-season choice).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seasons: Vec<i64>,
}

/// `GET /api/v1/me/requests/search?type=&q=` through the *arr's lookup.
///
/// # Errors
/// 400 `invalid_type` / `missing_query`, 409 `arr_not_configured`, 502 `arr_failed`.
pub async fn search(
    core: &Core,
    kind: Option<&str>,
    query: Option<&str>,
) -> DomainResult<Vec<SearchResult>> {
    let kind = match kind {
        Some(kind @ ("movie" | "series")) => kind,
        _ => return Err(bad("invalid_type", "type must be \"movie\" or \"series\"")),
    };
    let query = query
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| bad("missing_query", "q is required"))?;
    if query.chars().count() > 200 {
        return Err(bad("invalid_query", "q must be at most 200 characters"));
    }
    let service = service_of(kind);
    let arr = configured(core, service).await?;
    let items = arr.lookup(query).await?;
    let mut results: Vec<(SearchResult, bool)> = items
        .iter()
        .filter_map(|item| {
            let tmdb_id = item
                .get("tmdbId")
                .and_then(Value::as_i64)
                .filter(|id| *id > 0)?;
            let title = item
                .get("title")
                .and_then(Value::as_str)?
                .chars()
                .take(MAX_TITLE)
                .collect();
            let seasons = item
                .get("seasons")
                .and_then(Value::as_array)
                .map(|s| {
                    s.iter()
                        .filter_map(|e| e.get("seasonNumber").and_then(Value::as_i64))
                        .collect()
                })
                .unwrap_or_default();
            let has_file = arr::is_available(service, item, None);
            Some((
                SearchResult {
                    tmdb_id,
                    title,
                    year: item.get("year").and_then(Value::as_i64).filter(|y| *y > 0),
                    overview: item
                        .get("overview")
                        .and_then(Value::as_str)
                        .map(|o| o.chars().take(600).collect()),
                    poster_url: arr::poster_url(item),
                    status: "none",
                    seasons,
                },
                has_file,
            ))
        })
        .take(SEARCH_LIMIT)
        .collect();
    let ids: Vec<i64> = results.iter().map(|(r, _)| r.tmdb_id).collect();
    let statuses = core.store.request_statuses(kind, &ids).await?;
    for (result, has_file) in &mut results {
        let mine: Vec<&str> = statuses
            .iter()
            .filter(|(id, _)| *id == result.tmdb_id)
            .map(|(_, s)| s.as_str())
            .collect();
        result.status = if *has_file || mine.contains(&"available") {
            "available"
        } else if mine.iter().any(|s| matches!(*s, "pending" | "approved")) {
            "requested"
        } else {
            "none"
        };
    }
    Ok(results.into_iter().map(|(r, _)| r).collect())
}

/// What one sync round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub checked: usize,
    pub available: usize,
}

/// One availability round (SPEC O): every approved request whose *arr is configured is
/// checked; those whose files are there become `available` (event `request.available`). An
/// *arr that does not answer ends its part of the round, logged once per outage.
///
/// # Errors
/// Database failures only.
pub async fn sync_round(core: &Core) -> DomainResult<SyncReport> {
    let approved = core
        .store
        .list_requests(None, Some("approved"), 10_000)
        .await?;
    let mut report = SyncReport::default();
    let system = ClientInfo {
        ip: "hub".into(),
        user_agent: Some("availability sync".into()),
    };
    for service in [Service::Radarr, Service::Sonarr] {
        let rows: Vec<&RequestRow> = approved
            .iter()
            .filter(|r| service_of(&r.kind) == service && r.arr_id.is_some())
            .collect();
        if rows.is_empty() {
            continue;
        }
        let Ok(arr) = configured(core, service).await else {
            continue;
        };
        for row in rows {
            let Some(arr_id) = row.arr_id else { continue };
            let item = match service {
                Service::Radarr => arr.movie(arr_id).await,
                Service::Sonarr => arr.series(arr_id).await,
            };
            let item = match item {
                Ok(item) => {
                    if core.arrs.set_down(service, false) {
                        tracing::info!(
                            service = service.name(),
                            "the *arr answers again; availability sync resumed"
                        );
                    }
                    item
                }
                Err(err)
                    if err
                        .status
                        .is_some_and(|s| (400..500).contains(&s) && s != 401 && s != 429) =>
                {
                    tracing::debug!(request_id = row.id, error = %err, "request's item not found in its *arr; skipped");
                    continue;
                }
                Err(err) => {
                    if core.arrs.set_down(service, true) {
                        tracing::warn!(service = service.name(), error = %err, "availability sync cannot reach the *arr; retrying every round");
                    }
                    break;
                }
            };
            report.checked += 1;
            if arr::is_available(service, &item, row.season)
                && core
                    .store
                    .mark_request_available(row.id, now_unix())
                    .await?
            {
                let Some(done) = core.store.request_by_id(row.id).await? else {
                    continue;
                };
                record(core, &system, "request.available", None, true, None, &done).await?;
                publish(core, "request.available", &done);
                report.available += 1;
            }
        }
    }
    Ok(report)
}

/// Runs [`sync_round`] every `arr_sync_interval`; with several nodes on PostgreSQL, one node
/// at a time (advisory lock).
pub async fn sync_loop(core: Core, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(core.config.arr_sync_interval) => {}
        }
        let round = core
            .store
            .run_singleton("phlix.arr_sync", sync_round(&core))
            .await;
        match round {
            Ok(Some(Ok(report))) if report.available > 0 => {
                tracing::info!(
                    checked = report.checked,
                    available = report.available,
                    "media requests became available"
                );
            }
            Ok(Some(Ok(_)) | None) => {}
            Ok(Some(Err(err))) => tracing::warn!(error = %err, "availability sync failed"),
            Err(err) => tracing::warn!(error = %err, "availability sync cannot take its lock"),
        }
    }
}
