//! Accounts over HTTP (SPEC E "Auth", F.1): register, login, refresh, logout, me.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use phlix_proto::auth::{AuthResponse, LoginRequest, MeResponse, RefreshRequest, RegisterRequest};
use tracing::instrument;

use super::error::{ApiError, ApiResult};
use super::extract::{ClientInfo, CurrentUser, Json, OptionalJson, REFRESH_COOKIE, Ready};
use crate::accounts::{self, RegisterError};
use crate::auth::now_unix;
use crate::auth::session::TokenKind;
use crate::settings::{ACCESS_TTL, REFRESH_TTL};
use crate::state::Core;
use crate::store::{AuditEntry, UserRow};

/// Failed logins allowed per IP and window (SPEC B.6: login 5 / 900 s).
pub const LOGIN_MAX_FAILURES: i64 = 5;
/// Length of the login rate-limit window.
pub const LOGIN_WINDOW_SECS: i64 = 900;

/// Mints an access/refresh pair with the TTLs in force now.
pub(crate) async fn issue_tokens(core: &Core, user: &UserRow) -> ApiResult<AuthResponse> {
    let access_ttl = ACCESS_TTL.get(&core.store).await?;
    let refresh_ttl = REFRESH_TTL.get(&core.store).await?;
    let (access_token, claims) = core
        .sessions
        .mint(TokenKind::Access, &user.id, access_ttl)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let (refresh_token, _) = core
        .sessions
        .mint(TokenKind::Refresh, &user.id, refresh_ttl)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(AuthResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: access_ttl,
        user: accounts::user_dto(user),
        claims,
    })
}

pub(crate) fn audit_entry(
    event: &str,
    client: &ClientInfo,
    user_id: Option<&str>,
    success: bool,
    reason: Option<&str>,
) -> AuditEntry {
    tracing::info!(target: "audit", event, user_id, success, reason, ip = %client.ip, "audit");
    AuditEntry {
        event: event.to_owned(),
        user_id: user_id.map(str::to_owned),
        resource: Some("auth".into()),
        action: event.rsplit('.').next().map(str::to_owned),
        success,
        reason: reason.map(str::to_owned),
        ip_address: Some(client.ip.clone()),
        user_agent: client.user_agent.clone(),
        context_json: None,
        created_at: now_unix(),
    }
}

/// `POST /api/v1/auth/register` (alias `/signup`) → 201 `AuthResponse`.
#[instrument(skip_all)]
pub async fn register(
    Ready(core): Ready,
    client: ClientInfo,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<Response> {
    let user = create_account(&core, &client, &request).await?;
    let body = issue_tokens(&core, &user).await?;
    Ok(with_session_cookies(&core, StatusCode::CREATED, body).await)
}

/// An `AuthResponse` with the session cookies a browser client (SPEC F.1: SSR/SPA) keeps:
/// the same `phlix_hub_token` / `phlix_hub_refresh` the login form sets.
async fn with_session_cookies(core: &Core, status: StatusCode, body: AuthResponse) -> Response {
    let mut headers = HeaderMap::new();
    crate::web::session::set_session_cookies(&mut headers, core, &body).await;
    (status, headers, Json(body)).into_response()
}

/// Validates and creates an account (the first one becomes admin) with its audit row; shared
/// by the JSON API and the sign-up form.
///
/// # Errors
/// 400 on invalid fields, 409 when the username or e-mail is taken.
pub(crate) async fn create_account(
    core: &Core,
    client: &ClientInfo,
    request: &RegisterRequest,
) -> ApiResult<UserRow> {
    let registration = accounts::validate(request).map_err(|message| ApiError::Validation {
        code: "invalid_request",
        message,
    })?;
    let user = accounts::register(&core.store, &core.passwords, registration, false)
        .await
        .map_err(|err| match err {
            RegisterError::Store(err) => ApiError::from(err),
            RegisterError::Hash(err) => ApiError::Internal(err),
        })?;
    core.store
        .audit(&audit_entry(
            "auth.register",
            client,
            Some(&user.id),
            true,
            None,
        ))
        .await?;
    tracing::info!(user_id = %user.id, is_admin = user.is_admin, "user registered");
    Ok(user)
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

/// Checks a login (username or e-mail) and password, with the per-IP failure limit and the
/// audit rows; shared by the JSON API and the login form.
///
/// # Errors
/// 400 when a field is empty, 401 on bad credentials, 429 while the IP is locked out.
pub(crate) async fn authenticate(
    core: &Core,
    client: &ClientInfo,
    login: &str,
    password: String,
) -> ApiResult<UserRow> {
    let rate_key = format!("login:ip:{}", client.ip);
    let now = now_unix();
    if let Some(retry_after) = core
        .store
        .rate_limit_retry_after(&rate_key, LOGIN_MAX_FAILURES, now)
        .await?
    {
        return Err(ApiError::RateLimited {
            retry_after: u64::try_from(retry_after).unwrap_or(1).max(1),
        });
    }
    let login = login.trim();
    if login.is_empty() {
        return Err(ApiError::Validation {
            code: "invalid_request",
            message: "username or email is required".into(),
        });
    }
    if password.is_empty() {
        return Err(ApiError::Validation {
            code: "invalid_request",
            message: "password is required".into(),
        });
    }
    if login.len() > 255 || password.len() > accounts::PASSWORD_MAX {
        return Err(ApiError::InvalidCredentials);
    }
    let user = core.store.user_by_login(login).await?;
    let verified = core
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await
        .map_err(ApiError::Internal)?;
    match user {
        Some(user) if verified => {
            core.store
                .audit(&audit_entry(
                    "auth.login.success",
                    client,
                    Some(&user.id),
                    true,
                    None,
                ))
                .await?;
            Ok(user)
        }
        user => {
            core.store
                .record_rate_limit_failure(&rate_key, LOGIN_WINDOW_SECS, now)
                .await?;
            let reason = if user.is_some() {
                "wrong_password"
            } else {
                "unknown_user"
            };
            let mut entry = audit_entry(
                "auth.login.failure",
                client,
                user.as_ref().map(|u| u.id.as_str()),
                false,
                Some(reason),
            );
            entry.context_json = serde_json::to_string(&serde_json::json!({ "login": login })).ok();
            core.store.audit(&entry).await?;
            Err(ApiError::InvalidCredentials)
        }
    }
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
    let token = presented_refresh(request, &jar).ok_or_else(|| ApiError::Validation {
        code: "auth.refresh_token_required",
        message: "refresh_token is required".into(),
    })?;
    let body = rotate_refresh(&core, &token).await?;
    Ok(with_session_cookies(&core, StatusCode::OK, body).await)
}

/// Spends a refresh token: verifies it, revokes its `jti` (so it works exactly once) and
/// mints a new access and refresh pair. Shared by the API and the pages' session renewal.
///
/// # Errors
/// 401 `auth.invalid_refresh_token` for a forged, expired, revoked or orphaned token.
pub(crate) async fn rotate_refresh(core: &Core, token: &str) -> ApiResult<AuthResponse> {
    let claims = core
        .sessions
        .verify(token, TokenKind::Refresh)
        .map_err(|_| ApiError::InvalidRefreshToken)?;
    let jti = claims.jti.as_deref().ok_or(ApiError::InvalidRefreshToken)?;
    let user = core
        .store
        .user_by_id(&claims.sub)
        .await?
        .ok_or(ApiError::InvalidRefreshToken)?;
    if !core
        .store
        .revoke_refresh(jti, &user.id, claims.exp, now_unix())
        .await?
    {
        tracing::warn!(user_id = %user.id, "refresh token presented again after rotation or logout");
        return Err(ApiError::InvalidRefreshToken);
    }
    issue_tokens(core, &user).await
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
    crate::web::session::clear_session_cookies(&mut headers, &core.config);
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// Ends a session: revokes the presented refresh token (if it is one) and writes the
/// `auth.logout` audit row. Shared by the API and the sign-out button.
///
/// # Errors
/// Database failures only.
pub(crate) async fn end_session(
    core: &Core,
    client: &ClientInfo,
    refresh: Option<String>,
) -> ApiResult<()> {
    let mut user_id = None;
    if let Some(token) = refresh
        && let Ok(claims) = core.sessions.verify(&token, TokenKind::Refresh)
        && let Some(jti) = claims.jti.as_deref()
    {
        core.store
            .revoke_refresh(jti, &claims.sub, claims.exp, now_unix())
            .await?;
        user_id = Some(claims.sub.clone());
    }
    core.store
        .audit(&audit_entry(
            "auth.logout",
            client,
            user_id.as_deref(),
            true,
            None,
        ))
        .await?;
    Ok(())
}

/// `GET /api/v1/me` (alias `/api/v1/auth/me`) → the user, the token's claims and the user's
/// servers.
#[instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn me(Ready(core): Ready, current: CurrentUser) -> ApiResult<Json<MeResponse>> {
    let servers = core
        .store
        .servers_of_user(&current.user.id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(crate::store::ServerRow::into_info)
        .collect();
    Ok(Json(MeResponse {
        user: accounts::user_dto(&current.user),
        claims: current.claims,
        servers,
    }))
}
