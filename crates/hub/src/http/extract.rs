//! Extractors that own validation and authentication and reject with [`ApiError`], so no
//! handler can answer a plain-text 4xx.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use phlix_proto::auth::SessionClaims;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cookies::ACCESS_COOKIE;
use super::error::ApiError;
use super::state::AppState;
use crate::auth::session::{TokenError, TokenKind};
pub use crate::domain::ClientInfo;
use crate::domain::tokens::{self, Grant};
use crate::domain::{Core, DomainError};
use crate::store::UserRow;

/// `axum::Json` with JSON rejections: a syntax or type error is 400, a missing or wrong
/// content type is 400, an oversized body is 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(_))
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::PayloadTooLarge
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::MalformedBody(
            "expected a JSON body with Content-Type: application/json".into(),
        ),
        other => ApiError::MalformedBody(other.body_text()),
    }
}

/// A JSON body that may be absent: an empty body gives `T::default()`; a present body must be
/// a JSON object valid for `T` whatever its content type says (cookie-only refresh and logout
/// calls send none). An array is refused too, although serde would read `[]` as a struct of
/// defaults.
#[derive(Debug, Clone, Default)]
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        let invalid =
            |err: serde_json::Error| ApiError::MalformedBody(format!("invalid JSON body: {err}"));
        match serde_json::from_slice(&bytes).map_err(invalid)? {
            value @ serde_json::Value::Object(_) => {
                serde_json::from_value(value).map(Self).map_err(invalid)
            }
            _ => Err(ApiError::MalformedBody(
                "invalid JSON body: expected a JSON object".into(),
            )),
        }
    }
}

/// The raw body (at most the route's limit) with JSON rejections: 413 `PAYLOAD_TOO_LARGE`
/// over the limit, 400 when it cannot be read.
#[derive(Debug, Clone, Default)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::MalformedBody(rejection.body_text())
                }
            })
    }
}

/// A body that may be JSON: `Some(value)` when it parses, `None` when it is empty or not JSON
/// (the sharing and webhook routes answer both with 400 `invalid_body` from the domain).
/// Over the limit it is still a 413.
#[derive(Debug, Clone, Default)]
pub struct MaybeJson(pub Option<serde_json::Value>);

impl<S: Send + Sync> FromRequest<S> for MaybeJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        Ok(Self(serde_json::from_slice(&bytes).ok()))
    }
}

/// The query string as `(name, value)` pairs, in order; 400 `invalid_query` when it is not
/// `application/x-www-form-urlencoded`.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The first value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(Self)
            .map_err(|_| ApiError::Invalid {
                status: axum::http::StatusCode::BAD_REQUEST,
                code: "invalid_query",
                message: "The query string is not valid".into(),
            })
    }
}

/// The ready hub (store, keys); 503 while the hub is still starting.
pub struct Ready(pub Core);

impl FromRequestParts<AppState> for Ready {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        ready_core(state).cloned().map(Self)
    }
}

/// The ready core, borrowed (the gates below and the relay's ingress need it only while they
/// run), or 503 `hub.starting`.
pub fn ready_core(state: &AppState) -> Result<&Core, ApiError> {
    state.core_ref().ok_or_else(|| ApiError::Starting {
        step: state.health().step(),
    })
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(client_of(parts))
    }
}

/// The client as the proxy rules see it (http::forwarded), for audit rows and limits.
pub fn client_of(parts: &Parts) -> ClientInfo {
    let ip = match parts.extensions.get::<crate::http::forwarded::ClientAddr>() {
        Some(client) => client.ip.to_string(),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string()),
    };
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(255).collect());
    ClientInfo { ip, user_agent }
}

/// The `user` gate (SPEC E.1): an access token from `Authorization: Bearer`, else from the
/// `phlix_hub_token` cookie — except for mutating methods under `/api/`, where cookies are
/// ignored as a CSRF defence.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: UserRow,
    /// The session token's claims; for a personal access token, claims describing it (`type`
    /// `pat`, its scopes, `exp` = when this request's authorization lapses).
    pub claims: SessionClaims,
    /// The personal access token that authenticated the request, if one did.
    pub token: Option<Grant>,
}

/// The bearer token of an `Authorization` header, if any.
#[must_use]
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Self::resolve(parts, ready_core(state)?, false).await
    }
}

/// The same gate as [`CurrentUser`], with the user row read through the access cache (at most
/// `access::TTL` old): for the relay's proxy route, where a database round trip per request
/// would dominate.
#[derive(Debug, Clone)]
pub struct CachedUser(pub CurrentUser);

impl FromRequestParts<AppState> for CachedUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        CurrentUser::resolve(parts, ready_core(state)?, true)
            .await
            .map(Self)
    }
}

impl CurrentUser {
    async fn resolve(parts: &Parts, core: &Core, cached: bool) -> Result<Self, ApiError> {
        let mutating = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        // Inside a nested router `parts.uri` has lost its `/api/v1` prefix: judge the path the
        // client sent, or a cookie would authorize a cross-site POST to every nested route.
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path(), |original| original.0.path());
        let cookie_allowed = !(mutating && path.starts_with("/api/"));
        let token = match bearer_token(parts) {
            Some(token) => token.to_owned(),
            None if cookie_allowed => CookieJar::from_headers(&parts.headers)
                .get(ACCESS_COOKIE)
                .map(|c| c.value().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(ApiError::AuthRequired)?,
            None => return Err(ApiError::AuthRequired),
        };
        if tokens::looks_like_token(&token) {
            return Self::from_personal_token(parts, core, &token, path).await;
        }
        let claims = if cached {
            core.access.access_claims(&core.sessions, &token)
        } else {
            core.sessions.verify(&token, TokenKind::Access)
        }
        .map_err(|_: TokenError| ApiError::InvalidToken)?;
        let user = if cached {
            core.access.user(&core.store, &claims.sub).await?
        } else {
            crate::domain::accounts::find_user(core, &claims.sub).await?
        };
        let user = user.ok_or(ApiError::UserNotFound)?;
        if user.disabled_at.is_some() {
            return Err(DomainError::AccountDisabled.into());
        }
        if claims.sv != user.session_epoch {
            return Err(ApiError::InvalidToken);
        }
        Ok(Self {
            user,
            claims,
            token: None,
        })
    }

    /// A personal access token (64 lowercase hex) in `Authorization: Bearer`: valid, and its
    /// scopes reach this route (`domain::tokens::required_scope`), else 401/403.
    async fn from_personal_token(
        parts: &Parts,
        core: &Core,
        token: &str,
        path: &str,
    ) -> Result<Self, ApiError> {
        let Some(needs) = tokens::required_scope(parts.method.as_str(), path) else {
            return Err(tokens::not_for_tokens().into());
        };
        let (user, grant) = tokens::authenticate(core, token, &client_of(parts))
            .await?
            .ok_or(ApiError::InvalidToken)?;
        if let tokens::Needs::Scope(scope) = needs {
            grant.require(scope)?;
        }
        let now = crate::auth::now_unix();
        let access_ttl = crate::domain::settings::ACCESS_TTL
            .get(&core.store)
            .await
            .map_err(DomainError::from)?;
        let claims = SessionClaims {
            iss: crate::auth::session::ISSUER.to_owned(),
            aud: crate::auth::session::AUDIENCE.to_owned(),
            sub: user.id.clone(),
            iat: now,
            exp: grant.expires_at.min(now + access_ttl),
            kind: "pat".to_owned(),
            jti: None,
            scope: grant
                .scopes
                .names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            server_id: None,
            sv: user.session_epoch,
        };
        Ok(Self {
            user,
            claims,
            token: Some(grant),
        })
    }
}

/// `axum::extract::Path` with a JSON 400 instead of a plain-text rejection.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| DomainError::invalid("invalid_path", rejection.body_text()).into())
    }
}

/// The protocol gate (SPEC I.4): `Accept-Phlix-Protocol` must be exactly `v1`.
#[derive(Debug, Clone, Copy)]
pub struct PhlixProtocol;

impl<S: Send + Sync> FromRequestParts<S> for PhlixProtocol {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get("accept-phlix-protocol") {
            Some(value) if value.as_bytes() == b"v1" => Ok(Self),
            _ => Err(DomainError::ProtocolUnsupported.into()),
        }
    }
}

/// The enrollment gate: a valid enrollment JWT in `Authorization: Bearer`. Any failure is the
/// PHP hub's `401 ENROLLMENT_TOKEN_EXPIRED`; callers compare `claims.server_id` with the path.
#[derive(Debug, Clone)]
pub struct EnrolledServer {
    pub claims: crate::auth::enrollment::EnrollmentClaims,
}

impl EnrolledServer {
    /// Verifies the bearer token of `parts`, if any.
    fn verify(parts: &Parts, core: &Core) -> Option<Self> {
        let token = bearer_token(parts)?;
        let keys = core.keys.current();
        match crate::auth::enrollment::verify(&keys, token, crate::auth::now_unix()) {
            Ok(claims) => Some(Self { claims }),
            Err(err) => {
                tracing::debug!(error = %err, "enrollment token refused");
                None
            }
        }
    }

    /// Refuses unless the token belongs to the server in the path (403 `AUTHORIZATION_FAILED`).
    ///
    /// # Errors
    /// [`DomainError::ServerIdMismatch`].
    pub fn require_server(&self, server_id: &str) -> Result<(), DomainError> {
        if self.claims.server_id == server_id {
            Ok(())
        } else {
            Err(DomainError::ServerIdMismatch)
        }
    }
}

impl FromRequestParts<AppState> for EnrolledServer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Self::verify(parts, ready_core(state)?).ok_or(ApiError::EnrollmentExpired)
    }
}

/// Like [`EnrolledServer`] but for the controller-checked routes (subdomain, relay signpost),
/// whose failure is `401 {"error":"UNAUTHORIZED","message":…}`.
#[derive(Debug, Clone)]
pub struct ServerBearer(pub EnrolledServer);

impl FromRequestParts<AppState> for ServerBearer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let core = ready_core(state)?;
        if bearer_token(parts).is_none() {
            return Err(ApiError::ServerUnauthorized("Missing enrollment token"));
        }
        EnrolledServer::verify(parts, core)
            .map(Self)
            .ok_or(ApiError::ServerUnauthorized(
                "Invalid or expired enrollment token",
            ))
    }
}

/// The admin gate: an authenticated user with `is_admin` (403 otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.user.is_admin {
            return Ok(Self(user));
        }
        // SPEC E.1: 403 `auth.not_admin` and a `permission_denied` audit row.
        if let Some(core) = state.core() {
            let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
            let path = parts
                .extensions
                .get::<OriginalUri>()
                .map_or_else(|| parts.uri.path().to_owned(), |o| o.0.path().to_owned());
            if let Err(err) =
                crate::domain::admin::permission_denied(&core, &user.user, &client, &path).await
            {
                tracing::warn!(error = %err, "cannot write the permission_denied audit row");
            }
        }
        Err(ApiError::forbidden("auth.not_admin"))
    }
}
