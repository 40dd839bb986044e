//! Media requests over HTTP (SPEC O): thin handlers over `crate::domain::requests`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::requests::{self, Created, RequestView, SearchResult};
use crate::http::error::ApiResult;
use crate::http::extract::{
    AdminUser, ClientInfo, CurrentUser, Json, MaybeJson, Path, QueryPairs, Ready,
};

/// A list of requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    /// How many `requests` holds.
    pub count: usize,
    /// Newest first.
    pub requests: Vec<RequestView>,
}

fn listing(rows: &[crate::store::RequestRow]) -> RequestList {
    RequestList {
        count: rows.len(),
        requests: rows.iter().map(requests::view).collect(),
    }
}

/// `{"request": R}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneRequest {
    pub request: RequestView,
}

/// Answer of a new request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestCreated {
    /// `Request created successfully.`
    pub message: &'static str,
    pub request: RequestView,
}

/// The 409 of a repeated request: the error body plus the existing request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestExists {
    /// `request_exists`.
    pub code: &'static str,
    /// `Conflict`.
    pub error: &'static str,
    pub message: &'static str,
    pub request: RequestView,
}

/// Answer of an approval or a denial.
#[derive(Debug, Serialize, ToSchema)]
pub struct Decided {
    pub message: &'static str,
    pub request_id: i64,
}

/// Search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    #[serde(serialize_with = "super::sorted_keys")]
    pub results: Vec<SearchResult>,
}

/// Body of `POST /api/v1/me/requests` (read field by field: each bad field has its own code).
#[derive(Debug, ToSchema)]
pub struct NewRequestBody {
    /// `movie` or `series`.
    #[schema(rename = "type")]
    pub kind: String,
    /// 1 to 2147483647.
    pub tmdb_id: i64,
    /// At most 500 characters, no control characters.
    pub title: String,
    /// An http(s) URL of at most 2048 characters.
    pub poster_url: Option<String>,
    /// Series only, 0–1000.
    pub season: Option<i64>,
    /// With a season, 1–100000.
    pub episode: Option<i64>,
}

/// Optional body of a denial.
#[derive(Debug, ToSchema)]
pub struct DenyBody {
    /// At most 1000 characters.
    pub reason: Option<String>,
}

/// `POST /api/v1/me/requests` → 201 `{"request","message"}`; 409 `request_exists` with the
/// existing request.
#[utoipa::path(
    post,
    path = "/api/v1/me/requests",
    tag = "requests",
    summary = "Request a movie or a series (SPEC O)",
    description = "With `requests.auto_approve` the request is approved at once, best effort. \
        Also served as `POST /api/v1/me/requests/`.",
    request_body(
        content = NewRequestBody,
        example = json!({"type": "series", "tmdb_id": 1396, "title": "Breaking Bad",
            "poster_url": "https://image.tmdb.org/t/p/w500/poster.jpg", "season": 1})
    ),
    responses(
        (status = 201, description = "Created", body = RequestCreated,
        links(
            ("get" = (operation_id = "requests_get", parameters(("id" = "$response.body#/request/id")))),
            ("delete" = (operation_id = "requests_delete", parameters(("id" = "$response.body#/request/id")))),
            ("approve" = (operation_id = "requests_approve", parameters(("id" = "$response.body#/request/id")))),
            ("deny" = (operation_id = "requests_deny", parameters(("id" = "$response.body#/request/id"))))
        )),
        (status = 400, description = "`invalid_body`, `invalid_type`, `invalid_tmdb_id`, \
            `missing_title`, `invalid_title`, `invalid_poster_url`, `invalid_season` or \
            `invalid_episode`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 409, description = "`request_exists`, with the existing request",
            body = RequestExists),
        (status = 429, description = "`request_limit_reached`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearerAuth" = []))
)]
pub async fn create(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Response> {
    Ok(
        match requests::create(&core, &user.user, &client, body.as_ref()).await? {
            Created::New(row) => (
                StatusCode::CREATED,
                axum::Json(RequestCreated {
                    message: "Request created successfully.",
                    request: requests::view(&row),
                }),
            )
                .into_response(),
            Created::Exists(row) => (
                StatusCode::CONFLICT,
                axum::Json(RequestExists {
                    code: "request_exists",
                    error: "Conflict",
                    message: "You have already requested this",
                    request: requests::view(&row),
                }),
            )
                .into_response(),
        },
    )
}

/// `GET /api/v1/me/requests[?status=]` → `{"requests","count"}` of the caller.
#[utoipa::path(
    get,
    path = "/api/v1/me/requests",
    tag = "requests",
    summary = "The caller's requests",
    description = "Also served as `GET /api/v1/me/requests/`.",
    params(("status" = Option<String>, Query,
        description = "`pending`, `approved`, `available` or `rejected`")),
    responses(
        (status = 200, description = "Newest first", body = RequestList),
        (status = 400, description = "`invalid_status`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn mine(
    Ready(core): Ready,
    user: CurrentUser,
    query: QueryPairs,
) -> ApiResult<Json<RequestList>> {
    let rows = requests::mine(&core, &user.user.id, query.get("status")).await?;
    Ok(Json(listing(&rows)))
}

/// `GET /api/v1/me/requests/search?type=&q=` → `{"results"}`.
#[utoipa::path(
    get,
    path = "/api/v1/me/requests/search",
    tag = "requests",
    summary = "Search Radarr (movies) or Sonarr (series) for something to request",
    params(
        ("type" = String, Query, description = "`movie` or `series`"),
        ("q" = String, Query, description = "What to look for")
    ),
    responses(
        (status = 200, description = "Results with their request status", body = SearchResults),
        (status = 400, description = "`invalid_type` or `missing_query`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 409, description = "`arr_not_configured`", body = ErrorBody),
        (status = 502, description = "`arr_failed`: the *arr answered with an error or not at all",
            body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn search(
    Ready(core): Ready,
    _: CurrentUser,
    query: QueryPairs,
) -> ApiResult<Json<SearchResults>> {
    let results = requests::search(&core, query.get("type"), query.get("q")).await?;
    Ok(Json(SearchResults { results }))
}

/// `GET /api/v1/me/requests/{id}` → `{"request"}`.
#[utoipa::path(
    get,
    path = "/api/v1/me/requests/{id}",
    tag = "requests",
    summary = "One request of the caller (admins: any)",
    params(("id" = String, Path, description = "Request id (a positive integer)")),
    responses(
        (status = 200, description = "The request", body = OneRequest),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`not_request_owner`", body = ErrorBody),
        (status = 404, description = "`request_not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn get(
    Ready(core): Ready,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OneRequest>> {
    let row = requests::get(&core, &user.user, &id).await?;
    Ok(Json(OneRequest {
        request: requests::view(&row),
    }))
}

/// `DELETE /api/v1/me/requests/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/me/requests/{id}",
    tag = "requests",
    summary = "Delete a request of the caller (admins: any), whatever its status",
    params(("id" = String, Path, description = "Request id (a positive integer)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`not_request_owner`", body = ErrorBody),
        (status = 404, description = "`request_not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
pub async fn delete(
    Ready(core): Ready,
    user: CurrentUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    requests::delete(&core, &user.user, &client, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/admin/requests[?status=]` (default `pending`; `all`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/requests",
    tag = "requests",
    summary = "Every user's requests (default: the pending ones)",
    params(("status" = Option<String>, Query,
        description = "`pending` (default), `approved`, `available`, `rejected` or `all`")),
    responses(
        (status = 200, description = "Newest first", body = RequestList),
        (status = 400, description = "`invalid_status`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn all(
    Ready(core): Ready,
    _: AdminUser,
    query: QueryPairs,
) -> ApiResult<Json<RequestList>> {
    let rows = requests::all(&core, query.get("status")).await?;
    Ok(Json(listing(&rows)))
}

/// `POST /api/v1/admin/requests/{id}/approve` → 200 `{"message","request_id"}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/requests/{id}/approve",
    tag = "requests",
    summary = "Approve a pending request: it is added to Radarr or Sonarr",
    params(("id" = String, Path, description = "Request id (a positive integer)")),
    responses(
        (status = 200, description = "`Request approved successfully.`", body = Decided),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`request_not_found`", body = ErrorBody),
        (status = 409, description = "`request_not_pending` or `arr_not_configured`",
            body = ErrorBody),
        (status = 502, description = "`arr_failed` (the request stays pending)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn approve(
    Ready(core): Ready,
    admin: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Decided>> {
    let row = requests::approve(&core, &admin.0.user, &client, &id).await?;
    Ok(Json(Decided {
        message: "Request approved successfully.",
        request_id: row.id,
    }))
}

/// `POST /api/v1/admin/requests/{id}/deny` `{"reason"?}` → 200 `{"message","request_id"}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/requests/{id}/deny",
    tag = "requests",
    summary = "Deny a pending request",
    params(("id" = String, Path, description = "Request id (a positive integer)")),
    request_body(
        content = Option<DenyBody>,
        description = "Optional",
        example = json!({"reason": "Already in the library in 4K"})
    ),
    responses(
        (status = 200, description = "`Request denied successfully.`", body = Decided),
        (status = 400, description = "`invalid_reason`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`request_not_found`", body = ErrorBody),
        (status = 409, description = "`request_not_pending`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn deny(
    Ready(core): Ready,
    admin: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<Decided>> {
    let reason = body.as_ref().and_then(|b| b.get("reason"));
    let row = requests::deny(&core, &admin.0.user, &client, &id, reason).await?;
    Ok(Json(Decided {
        message: "Request denied successfully.",
        request_id: row.id,
    }))
}
