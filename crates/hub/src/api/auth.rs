//! Accounts over HTTP (SPEC E "Auth", F.1): register, login, refresh, logout, me. The rules
//! are in [`crate::domain::accounts`].

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use phlix_proto::auth::{AuthResponse, LoginRequest, MeResponse, RefreshRequest, RegisterRequest};
use tracing::instrument;

use crate::domain::accounts::{
    self, authenticate, create_account, end_session, issue_tokens, rotate_refresh,
};
use crate::domain::{Core, DomainError};
use crate::http::cookies::{REFRESH_COOKIE, clear_session_cookies, set_session_cookies};
use crate::http::error::ApiResult;
use crate::http::extract::{AdminUser, ClientInfo, CurrentUser, Json, OptionalJson, Path, Ready};

/// `POST /api/v1/auth/register` (alias `/signup`) → 201 `AuthResponse`.
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
#[instrument(skip_all, fields(admin_id = %admin.0.user.id, user_id = %user_id))]
pub async fn unlock(
    Ready(core): Ready,
    admin: AdminUser,
    client: ClientInfo,
    Path(user_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let was_locked = accounts::unlock(&core, &admin.0.user.id, &client, &user_id).await?;
    Ok(Json(
        serde_json::json!({"user_id": user_id, "was_locked": was_locked}),
    ))
}
