//! The one error type every HTTP handler returns, and its exhaustive mapping to a status and a
//! JSON body (SPEC E.1, I.3, J.7). Causes go to the log; clients get stable codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;

use crate::store::StoreError;

/// An error answer of the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a field is missing or invalid.
    #[error("{message}")]
    Validation { code: &'static str, message: String },
    /// 400: the body is not the JSON the endpoint expects (syntax, types, content type).
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// 401 `auth.required`: no credentials at all.
    #[error("authentication required")]
    AuthRequired,
    /// 401 `auth.invalid_token`: the access token is forged, expired or not an access token.
    #[error("invalid access token")]
    InvalidToken,
    /// 401 `auth.user_not_found`: the token's user no longer exists.
    #[error("user of the token no longer exists")]
    UserNotFound,
    /// 401 with the PHP hub's login message.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// 401 `auth.invalid_refresh_token`: forged, expired, revoked or already rotated.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// 403 with a code.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404 with a code.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// 400 / 422 of a new endpoint (J.7 shape) with its own code.
    #[error("{message}")]
    Invalid {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// 405: the path exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the resource already exists.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: the body exceeds the endpoint's limit.
    #[error("body too large")]
    PayloadTooLarge,
    /// 429 with `Retry-After`.
    #[error("rate limited for {retry_after}s")]
    RateLimited { retry_after: u64 },
    /// 429: the user's relay quota (bytes or concurrent streams) is used up.
    #[error("relay quota exceeded")]
    QuotaExceeded { retry_after: u64, streams: bool },
    /// 400 `HUB_PROTOCOL_UNSUPPORTED`: `Accept-Phlix-Protocol: v1` missing, or another version.
    #[error("protocol v1 required")]
    ProtocolUnsupported,
    /// 400 with the PHP hub's `{"error":"Bad Request","message":…}` shape (no code).
    #[error("{0}")]
    BadRequest(String),
    /// 400 `SERVER_KEY_INVALID`: the server's JWK is not an Ed25519 public key.
    #[error("invalid server key: {0}")]
    ServerKeyInvalid(String),
    /// 500 `HUB_INTERNAL_ERROR` that the PHP hub answers for over-long claim fields (SPEC I.6);
    /// kept for byte compatibility, it is not a crash.
    #[error("{0}")]
    HubInternalQuirk(String),
    /// 404/409/410 of claim redemption, code in `error` (SPEC C.2).
    #[error("{code}")]
    Claim {
        status: StatusCode,
        code: &'static str,
        message: &'static str,
    },
    /// 401 of the enrollment gate: always `ENROLLMENT_TOKEN_EXPIRED` (SPEC I.7).
    #[error("enrollment token refused")]
    EnrollmentExpired,
    /// 401 `{"error":"UNAUTHORIZED","message"}` of the controller-checked server routes.
    #[error("{0}")]
    ServerUnauthorized(&'static str),
    /// 403 `AUTHORIZATION_FAILED`: the token's server is not the path's server.
    #[error("server id mismatch")]
    ServerIdMismatch,
    /// 404 `SERVER_NOT_FOUND` on server-facing routes.
    #[error("server not found")]
    ServerNotFound,
    /// 503 while the hub is still starting.
    #[error("hub is starting ({step})")]
    Starting { step: &'static str },
    /// 503 when the database cannot be reached.
    #[error("store unavailable: {0}")]
    StoreUnavailable(#[source] StoreError),
    /// 500: a bug. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(column) => Self::Conflict {
                code: conflict_code(column),
                message: format!("{column} is already taken"),
            },
            StoreError::Unavailable(_) => Self::StoreUnavailable(err),
            StoreError::Other(_) => Self::Internal(err.into()),
        }
    }
}

fn conflict_code(column: &str) -> &'static str {
    match column {
        "username" => "auth.username_taken",
        "email" => "auth.email_taken",
        _ => "conflict",
    }
}

fn body(error: &str, code: Option<&str>, message: Option<String>) -> ErrorBody {
    ErrorBody {
        error: error.to_owned(),
        code: code.map(str::to_owned),
        message,
    }
}

impl ApiError {
    /// Status and body of this error.
    #[must_use]
    pub fn parts(&self) -> (StatusCode, ErrorBody) {
        match self {
            Self::Validation { code, message } => (
                StatusCode::BAD_REQUEST,
                body("Bad Request", Some(code), Some(message.clone())),
            ),
            Self::MalformedBody(detail) => (
                StatusCode::BAD_REQUEST,
                body("Bad Request", Some("invalid_json"), Some(detail.clone())),
            ),
            Self::AuthRequired => (
                StatusCode::UNAUTHORIZED,
                body("Unauthorized", Some("auth.required"), None),
            ),
            Self::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                body("Unauthorized", Some("auth.invalid_token"), None),
            ),
            Self::UserNotFound => (
                StatusCode::UNAUTHORIZED,
                body("Unauthorized", Some("auth.user_not_found"), None),
            ),
            Self::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                body(
                    "Unauthorized",
                    None,
                    Some("Invalid username or password".into()),
                ),
            ),
            Self::InvalidRefreshToken => (
                StatusCode::UNAUTHORIZED,
                body(
                    "Unauthorized",
                    Some("auth.invalid_refresh_token"),
                    Some("The refresh token is invalid, expired or revoked".into()),
                ),
            ),
            Self::Forbidden(code) => (StatusCode::FORBIDDEN, body("Forbidden", Some(code), None)),
            Self::NotFound(code) => (StatusCode::NOT_FOUND, body("Not Found", Some(code), None)),
            Self::Invalid {
                status,
                code,
                message,
            } => (
                *status,
                body(
                    status.canonical_reason().unwrap_or("Bad Request"),
                    Some(code),
                    Some(message.clone()),
                ),
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                body("Method Not Allowed", Some("method_not_allowed"), None),
            ),
            Self::Conflict { code, message } => (
                StatusCode::CONFLICT,
                body("Conflict", Some(code), Some(message.clone())),
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(
                    "Payload Too Large",
                    Some("body_too_large"),
                    Some("The request body exceeds the limit".into()),
                ),
            ),
            Self::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                body(
                    "Too Many Requests",
                    Some("rate_limited"),
                    Some(format!(
                        "Too many attempts; try again in {retry_after} seconds"
                    )),
                ),
            ),
            Self::ProtocolUnsupported => (
                StatusCode::BAD_REQUEST,
                body(
                    "HUB_PROTOCOL_UNSUPPORTED",
                    None,
                    Some("Accept-Phlix-Protocol: v1 required".into()),
                ),
            ),
            Self::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                body("Bad Request", None, Some(message.clone())),
            ),
            Self::ServerKeyInvalid(message) => (
                StatusCode::BAD_REQUEST,
                body("SERVER_KEY_INVALID", None, Some(message.clone())),
            ),
            Self::HubInternalQuirk(message) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body("HUB_INTERNAL_ERROR", None, Some(message.clone())),
            ),
            Self::Claim {
                status,
                code,
                message,
            } => (*status, body(code, None, Some((*message).to_owned()))),
            Self::EnrollmentExpired => (
                StatusCode::UNAUTHORIZED,
                body("Unauthorized", Some("ENROLLMENT_TOKEN_EXPIRED"), None),
            ),
            Self::ServerUnauthorized(message) => (
                StatusCode::UNAUTHORIZED,
                body("UNAUTHORIZED", None, Some((*message).to_owned())),
            ),
            Self::ServerIdMismatch => (
                StatusCode::FORBIDDEN,
                body(
                    "AUTHORIZATION_FAILED",
                    None,
                    Some("Server ID mismatch".into()),
                ),
            ),
            Self::ServerNotFound => (
                StatusCode::NOT_FOUND,
                body("SERVER_NOT_FOUND", None, Some("Server not found".into())),
            ),
            Self::QuotaExceeded { streams, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                body(
                    "Too Many Requests",
                    Some(if *streams {
                        "relay.stream_limit"
                    } else {
                        "relay.quota_exceeded"
                    }),
                    Some(if *streams {
                        "Too many relay streams are open for this account".into()
                    } else {
                        "The monthly relay quota of this account is used up".into()
                    }),
                ),
            ),
            Self::Starting { step } => (
                StatusCode::SERVICE_UNAVAILABLE,
                body(
                    "Service Unavailable",
                    Some("hub.starting"),
                    Some(format!("The hub is starting ({step})")),
                ),
            ),
            Self::StoreUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                body(
                    "Service Unavailable",
                    Some("store.unavailable"),
                    Some("The database is unreachable".into()),
                ),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body("Internal Server Error", None, Some("internal error".into())),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            Self::StoreUnavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let (status, body) = self.parts();
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::RateLimited { retry_after } | Self::QuotaExceeded { retry_after, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// 404 for every path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("not_found")
}

/// 405 for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Turns a panic inside a handler into the JSON 500 instead of a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}
