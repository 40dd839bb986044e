//! Accounts over HTTP (SPEC E "Auth", F.1): register, login, refresh, logout, me. The rules
//! are in [`crate::domain::accounts`].

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use phlix_proto::ErrorBody;
use phlix_proto::auth::{AuthResponse, LoginRequest, MeResponse, RefreshRequest, RegisterRequest};
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;

use crate::domain::accounts::{
    self, authenticate, create_account, end_session, issue_tokens, rotate_refresh,
};
use crate::domain::{Core, DomainError};
use crate::http::cookies::{REFRESH_COOKIE, clear_session_cookies, set_session_cookies};
use crate::http::error::ApiResult;
use crate::http::extract::{AdminUser, ClientInfo, CurrentUser, Json, OptionalJson, Path, Ready};

/// `POST /api/v1/auth/register` (alias `/signup`) → 201 `AuthResponse`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    summary = "Create an account and sign in",
    description = "The first account of a hub becomes its admin. Rules: `username` 3–50 \
        characters of letters, digits, `.`, `_`, `-` (trimmed); `email` a plausible address; \
        `password` at least 8 characters and at most 1024 bytes. Also served as \
        `POST /api/v1/auth/signup`.",
    request_body(
        content = RegisterRequest,
        example = json!({"username": "alice", "email": "alice@example.com",
            "password": "correct horse battery", "display_name": "Alice"})
    ),
    responses(
        (status = 201, description = "Signed in; the `phlix_hub_token` and `phlix_hub_refresh` \
            cookies are set too", body = AuthResponse,
            headers(("Set-Cookie" = String, description = "The two session cookies"))),
        (status = 400, description = "`invalid_json` (not a JSON object of this shape) or \
            `invalid_request` (a field is missing or breaks a rule)", body = ErrorBody),
        (status = 403, description = "`signups_disabled`", body = ErrorBody),
        (status = 409, description = "`auth.username_taken` or `auth.email_taken`", body = ErrorBody),
    )
)]
#[instrument(skip_all)]
pub async fn register(
    Ready(core): Ready,
    client: ClientInfo,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<Response> {
    let user = create_account(&core, &client, &request, None).await?;
    let body = issue_tokens(&core, &user).await?;
    Ok(with_session_cookies(&core, StatusCode::CREATED, body).await)
}

/// An `AuthResponse` with the session cookies a browser client (SPEC F.1: SSR/SPA) keeps:
/// the same `phlix_hub_token` / `phlix_hub_refresh` the login form sets.
async fn with_session_cookies(core: &Core, status: StatusCode, body: AuthResponse) -> Response {
    let mut headers = HeaderMap::new();
    set_session_cookies(&mut headers, core, &body).await;
    (status, headers, Json(body)).into_response()
}

/// `POST /api/v1/auth/login` → 200 `AuthResponse`; 401 on bad credentials; 429 after
/// [`LOGIN_MAX_FAILURES`] failures from one IP within [`LOGIN_WINDOW_SECS`].
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    summary = "Sign in with a user name or e-mail address and a password",
    description = "`username` may hold the user name or the e-mail address; `email` is read \
        when `username` is absent. Five failures from one address within 15 minutes answer 429 \
        `rate_limited`; ten failures on one account lock it (429 `auth.account_locked`) for \
        addresses it never signed in from.",
    request_body(
        content = LoginRequest,
        example = json!({"username": "alice", "password": "correct horse battery"})
    ),
    responses(
        (status = 200, description = "Signed in; the session cookies are set too",
            body = AuthResponse,
            headers(("Set-Cookie" = String, description = "The two session cookies"))),
        (status = 400, description = "`invalid_json` or `invalid_request` (login or password \
            missing)", body = ErrorBody),
        (status = 401, description = "Wrong login or password (no code), or \
            `account_disabled`", body = ErrorBody),
        (status = 429, description = "`rate_limited` or `auth.account_locked`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[instrument(skip_all, fields(ip = %client.ip))]
pub async fn login(
    Ready(core): Ready,
    client: ClientInfo,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Response> {
    let login = request.username.or(request.email).unwrap_or_default();
    let user = authenticate(&core, &client, &login, request.password.unwrap_or_default()).await?;
    let body = issue_tokens(&core, &user).await?;
    Ok(with_session_cookies(&core, StatusCode::OK, body).await)
}

/// The refresh token of a request: the JSON body's `refresh_token`, else the cookie.
fn presented_refresh(request: RefreshRequest, jar: &CookieJar) -> Option<String> {
    request.refresh_token.filter(|t| !t.is_empty()).or_else(|| {
        jar.get(REFRESH_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|t| !t.is_empty())
    })
}

/// `POST /api/v1/auth/refresh` → a brand-new access and refresh pair. The presented refresh
/// token is revoked in the same step, so each refresh token works exactly once.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    summary = "Trade a refresh token for a new access and refresh pair",
    description = "The refresh token comes from the body or, when the body is empty, from the \
        `phlix_hub_refresh` cookie. Each refresh token works once.",
    request_body(
        content = Option<RefreshRequest>,
        description = "Optional: an empty body uses the `phlix_hub_refresh` cookie",
        example = json!({"refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2ln"})
    ),
    responses(
        (status = 200, description = "A new pair; the session cookies are set too",
            body = AuthResponse,
            headers(("Set-Cookie" = String, description = "The two session cookies"))),
        (status = 400, description = "`invalid_json` (a body that is not a JSON object of this \
            shape) or `auth.refresh_token_required`",
            body = ErrorBody),
        (status = 401, description = "`auth.invalid_refresh_token` (forged, expired, revoked \
            or used) or `account_disabled`", body = ErrorBody),
    )
)]
#[instrument(skip_all)]
pub async fn refresh(
    Ready(core): Ready,
    jar: CookieJar,
    OptionalJson(request): OptionalJson<RefreshRequest>,
) -> ApiResult<Response> {
    let token = presented_refresh(request, &jar).ok_or_else(|| {
        DomainError::invalid("auth.refresh_token_required", "refresh_token is required")
    })?;
    let body = rotate_refresh(&core, &token).await?;
    Ok(with_session_cookies(&core, StatusCode::OK, body).await)
}

/// `POST /api/v1/auth/logout` → 204 and cleared cookies; the presented refresh token (body or
/// cookie) is revoked. Always 204: logging out twice is not an error.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    summary = "Sign out: revoke the refresh token and clear the session cookies",
    request_body(
        content = Option<RefreshRequest>,
        description = "Optional: an empty body uses the `phlix_hub_refresh` cookie",
        example = json!({"refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2ln"})
    ),
    responses(
        (status = 204, description = "Signed out (also when the token was unknown or already \
            revoked)", headers(("Set-Cookie" = String, description = "Expired session cookies"))),
        (status = 400, description = "`invalid_json`: a body that is not a JSON object of this \
            shape", body = ErrorBody),
    )
)]
#[instrument(skip_all)]
pub async fn logout(
    Ready(core): Ready,
    client: ClientInfo,
    jar: CookieJar,
    OptionalJson(request): OptionalJson<RefreshRequest>,
) -> ApiResult<Response> {
    end_session(&core, &client, presented_refresh(request, &jar)).await?;
    let mut headers = HeaderMap::new();
    clear_session_cookies(&mut headers, &core.config);
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// `GET /api/v1/me` (alias `/api/v1/auth/me`) → the user, the token's claims and the user's
/// servers.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "auth",
    summary = "The signed-in user, the token's claims and the user's servers",
    description = "Also served as `GET /api/v1/auth/me`.",
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 401, description = "`auth.required`, `auth.invalid_token`, \
            `auth.user_not_found` or `account_disabled`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
#[instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn me(Ready(core): Ready, current: CurrentUser) -> ApiResult<Json<MeResponse>> {
    let servers = crate::domain::servers::list_owned(&core, &current.user.id)
        .await?
        .into_iter()
        .map(crate::store::ServerRow::into_info)
        .collect();
    Ok(Json(MeResponse {
        user: accounts::user_dto(&current.user),
        claims: current.claims,
        servers,
    }))
}

/// `POST /api/v1/admin/users/{id}/unlock` → 200 `{"user_id","was_locked"}`: an admin lifts the
/// sign-in lock of an account (and its failure count).
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/unlock",
    tag = "admin",
    summary = "Lift the sign-in lock of an account",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The lock (if any) is lifted", body = Unlocked),
        (status = 401, description = "Not signed in (`auth.*`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user.not_found`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
#[instrument(skip_all, fields(admin_id = %admin.0.user.id, user_id = %user_id))]
pub async fn unlock(
    Ready(core): Ready,
    admin: AdminUser,
    client: ClientInfo,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Unlocked>> {
    let was_locked = accounts::unlock(&core, &admin.0.user.id, &client, &user_id).await?;
    Ok(Json(Unlocked {
        user_id,
        was_locked,
    }))
}

/// Answer of `POST /api/v1/admin/users/{id}/unlock`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unlocked {
    pub user_id: String,
    /// Whether the account was locked.
    pub was_locked: bool,
}
