//! The one error type every HTTP handler returns, and its exhaustive mapping to a status and a
//! JSON body (SPEC E.1, I.3, J.7). Causes go to the log; clients get stable codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;

use crate::domain::{ClaimFailure, DomainError};
use crate::store::StoreError;

/// An error answer of the API: a refusal of the domain, or one of the HTTP layer itself
/// (unreadable body, missing credentials, wrong method, start-up).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain rule refused the action, or the store failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
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
    /// 4xx of the HTTP layer (J.7 shape) with its own status and code.
    #[error("{message}")]
    Invalid {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// 405: the path exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413: the body exceeds the endpoint's limit.
    #[error("body too large")]
    PayloadTooLarge,
    /// 401 of the enrollment gate: always `ENROLLMENT_TOKEN_EXPIRED` (SPEC I.7).
    #[error("enrollment token refused")]
    EnrollmentExpired,
    /// 401 `{"error":"UNAUTHORIZED","message"}` of the controller-checked server routes.
    #[error("{0}")]
    ServerUnauthorized(&'static str),
    /// 503 while the hub is still starting.
    #[error("hub is starting ({step})")]
    Starting { step: &'static str },
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::Domain(err.into())
    }
}

impl ApiError {
    /// 404 with a code.
    #[must_use]
    pub fn not_found(code: &'static str) -> Self {
        Self::Domain(DomainError::NotFound(code))
    }

    /// 403 with a code.
    #[must_use]
    pub fn forbidden(code: &'static str) -> Self {
        Self::Domain(DomainError::Forbidden(code))
    }

    /// 500: a bug; the cause is logged, never sent.
    #[must_use]
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Domain(DomainError::Internal(cause.into()))
    }
}

fn body(error: &str, code: Option<&str>, message: Option<String>) -> ErrorBody {
    ErrorBody {
        error: error.to_owned(),
        code: code.map(str::to_owned),
        message,
    }
}

/// Status and body of a domain refusal (SPEC E.1, I.3, J.7, C.2).
fn domain_parts(err: &DomainError) -> (StatusCode, ErrorBody) {
    type E = DomainError;
    match err {
        E::Invalid { code, message } => (
            StatusCode::BAD_REQUEST,
            body("Bad Request", Some(code), Some(message.clone())),
        ),
        E::Unprocessable { code, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            body("Unprocessable Entity", Some(code), Some(message.clone())),
        ),
        E::AccountDisabled => (
            StatusCode::UNAUTHORIZED,
            body(
                "Unauthorized",
                Some("account_disabled"),
                Some("This account has been disabled by an administrator".into()),
            ),
        ),
        E::Validation { summary, .. } => (
            StatusCode::BAD_REQUEST,
            body(summary, Some("validation_failed"), None),
        ),
        E::Php {
            status,
            error,
            code,
        } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
            body(error, Some(code), None),
        ),
        E::InvalidCredentials => (
            StatusCode::UNAUTHORIZED,
            body(
                "Unauthorized",
                None,
                Some("Invalid username or password".into()),
            ),
        ),
        E::InvalidRefreshToken => (
            StatusCode::UNAUTHORIZED,
            body(
                "Unauthorized",
                Some("auth.invalid_refresh_token"),
                Some("The refresh token is invalid, expired or revoked".into()),
            ),
        ),
        E::Forbidden(code) => (StatusCode::FORBIDDEN, body("Forbidden", Some(code), None)),
        E::NotFound(code) => (StatusCode::NOT_FOUND, body("Not Found", Some(code), None)),
        E::Denied { code, message } => (
            StatusCode::FORBIDDEN,
            body("Forbidden", Some(code), Some(message.clone())),
        ),
        E::Missing { code, message } => (
            StatusCode::NOT_FOUND,
            body("Not Found", Some(code), Some(message.clone())),
        ),
        E::Gone { code, message } => (
            StatusCode::GONE,
            body("Gone", Some(code), Some(message.clone())),
        ),
        E::Conflict { code, message } => (
            StatusCode::CONFLICT,
            body("Conflict", Some(code), Some(message.clone())),
        ),
        E::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            body(
                "Too Many Requests",
                Some("rate_limited"),
                Some(format!(
                    "Too many attempts; try again in {retry_after} seconds"
                )),
            ),
        ),
        E::LimitReached { code, message, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            body("Too Many Requests", Some(code), Some(message.clone())),
        ),
        E::Upstream { code, message } => (
            StatusCode::BAD_GATEWAY,
            body("Bad Gateway", Some(code), Some(message.clone())),
        ),
        E::AccountLocked { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            body(
                "Too Many Requests",
                Some("auth.account_locked"),
                Some(format!(
                    "Too many failed sign-ins for this account; try again in {retry_after} seconds, or sign in from a device you have used before"
                )),
            ),
        ),
        E::QuotaExceeded { streams, .. } => (
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
        E::ProtocolUnsupported => (
            StatusCode::BAD_REQUEST,
            body(
                "HUB_PROTOCOL_UNSUPPORTED",
                None,
                Some("Accept-Phlix-Protocol: v1 required".into()),
            ),
        ),
        E::BadRequest(message) => (
            StatusCode::BAD_REQUEST,
            body("Bad Request", None, Some(message.clone())),
        ),
        E::ServerKeyInvalid(message) => (
            StatusCode::BAD_REQUEST,
            body("SERVER_KEY_INVALID", None, Some(message.clone())),
        ),
        E::Claim(failure) => {
            let (status, code, message) = match failure {
                ClaimFailure::Unknown => (
                    StatusCode::NOT_FOUND,
                    "CLAIM_CODE_NOT_FOUND",
                    "No pending claim with this code.",
                ),
                ClaimFailure::Expired => (
                    StatusCode::GONE,
                    "CLAIM_CODE_EXPIRED",
                    "This claim code has expired; ask the server for a new one.",
                ),
                ClaimFailure::AlreadyClaimed => (
                    StatusCode::CONFLICT,
                    "CLAIM_CODE_ALREADY_CLAIMED",
                    "This claim code has already been redeemed.",
                ),
            };
            (status, body(code, None, Some(message.to_owned())))
        }
        E::ServerIdMismatch => (
            StatusCode::FORBIDDEN,
            body(
                "AUTHORIZATION_FAILED",
                None,
                Some("Server ID mismatch".into()),
            ),
        ),
        E::ServerNotFound => (
            StatusCode::NOT_FOUND,
            body("SERVER_NOT_FOUND", None, Some("Server not found".into())),
        ),
        E::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            body(
                "Service Unavailable",
                Some("store.unavailable"),
                Some("The database is unreachable".into()),
            ),
        ),
        E::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            body("Internal Server Error", None, Some("internal error".into())),
        ),
    }
}

impl ApiError {
    /// Status and body of this error.
    #[must_use]
    pub fn parts(&self) -> (StatusCode, ErrorBody) {
        match self {
            Self::Domain(err) => domain_parts(err),
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
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(
                    "Payload Too Large",
                    Some("body_too_large"),
                    Some("The request body exceeds the limit".into()),
                ),
            ),
            Self::EnrollmentExpired => (
                StatusCode::UNAUTHORIZED,
                body("Unauthorized", Some("ENROLLMENT_TOKEN_EXPIRED"), None),
            ),
            Self::ServerUnauthorized(message) => (
                StatusCode::UNAUTHORIZED,
                body("UNAUTHORIZED", None, Some((*message).to_owned())),
            ),
            Self::Starting { step } => (
                StatusCode::SERVICE_UNAVAILABLE,
                body(
                    "Service Unavailable",
                    Some("hub.starting"),
                    Some(format!("The hub is starting ({step})")),
                ),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Domain(DomainError::Internal(cause)) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            Self::Domain(DomainError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "database unavailable")
            }
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let (status, body) = self.parts();
        if let Self::Domain(DomainError::Validation { field_errors, .. }) = &self {
            let fields: serde_json::Map<String, serde_json::Value> = field_errors
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let mut value = serde_json::to_value(&body).unwrap_or_default();
            value["field_errors"] = serde_json::Value::Object(fields);
            return (status, axum::Json(value)).into_response();
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::Domain(
            DomainError::RateLimited { retry_after }
            | DomainError::AccountLocked { retry_after }
            | DomainError::LimitReached { retry_after, .. }
            | DomainError::QuotaExceeded { retry_after, .. },
        ) = self
        {
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
    ApiError::not_found("not_found")
}

/// 405 for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Turns a panic inside a handler into the JSON 500 instead of a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
}

impl IntoResponse for DomainError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl DomainError {
    /// The status and body this refusal answers with (the pages take the status and the
    /// message from here too).
    #[must_use]
    pub fn parts(&self) -> (StatusCode, ErrorBody) {
        domain_parts(self)
    }
}
