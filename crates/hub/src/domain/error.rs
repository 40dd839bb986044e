//! The one error type of the domain layer: why an action was refused, in terms of the rules,
//! not of HTTP. `crate::http::error` maps each variant to a status and the SPEC's body.

use crate::store::StoreError;

/// Why a claim code cannot be redeemed (SPEC C.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimFailure {
    /// No pending claim with this code.
    Unknown,
    /// The code's ten minutes are over.
    Expired,
    /// Somebody redeemed it already.
    AlreadyClaimed,
}

/// A refused or failed domain action.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A field is missing or invalid (400 with a code).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Well-formed but against a rule (422 with a code).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// The account is disabled by an admin (401 `account_disabled`).
    #[error("account disabled")]
    AccountDisabled,
    /// The PHP hub's validation body: 400 `{"error":<summary>,"code":"validation_failed",
    /// "field_errors":{field: text}}`.
    #[error("{summary}")]
    Validation {
        summary: String,
        field_errors: Vec<(String, String)>,
    },
    /// A refusal with the PHP hub's own `error` text (`{"error":<text>,"code"}`) and status.
    #[error("{error}")]
    Php {
        status: u16,
        error: &'static str,
        code: &'static str,
    },
    /// Wrong login or password.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A refresh token that is forged, expired, revoked or already rotated.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// The caller may not do this (code says why).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The thing does not exist (or is not the caller's to see).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The caller may not do this, with the SPEC's message (403).
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// The thing does not exist, with the SPEC's message (404).
    #[error("{message}")]
    Missing { code: &'static str, message: String },
    /// The thing existed but is used up or expired (410).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// The thing exists already.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Too many attempts; try again in `retry_after` seconds.
    #[error("rate limited for {retry_after}s")]
    RateLimited { retry_after: u64 },
    /// The account is locked after too many failed sign-ins (from this address).
    #[error("account locked for {retry_after}s")]
    AccountLocked { retry_after: u64 },
    /// A per-user limit of the domain is reached (429 with a code and `Retry-After`).
    #[error("{message}")]
    LimitReached {
        code: &'static str,
        message: String,
        retry_after: u64,
    },
    /// A third-party service the action needs failed (502 with a code; the message names the
    /// service and its answer).
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    /// The user's relay quota (bytes or concurrent streams) is used up.
    #[error("relay quota exceeded")]
    QuotaExceeded { retry_after: u64, streams: bool },
    /// The PHP hub's codeless 400 (`{"error":"Bad Request","message"}`) of the server-facing
    /// routes.
    #[error("{0}")]
    BadRequest(String),
    /// `Accept-Phlix-Protocol: v1` (or `protocolVersion: "v1"`) missing, or another version.
    #[error("protocol v1 required")]
    ProtocolUnsupported,
    /// The server's JWK is not an Ed25519 public key.
    #[error("invalid server key: {0}")]
    ServerKeyInvalid(String),
    /// A claim code that cannot be redeemed.
    #[error("claim refused: {0:?}")]
    Claim(ClaimFailure),
    /// The enrollment token's server is not the server acted on.
    #[error("server id mismatch")]
    ServerIdMismatch,
    /// The server of a server-facing route does not exist.
    #[error("server not found")]
    ServerNotFound,
    /// The database cannot be reached.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// A bug or an unexpected failure; the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for DomainError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(column) => Self::Conflict {
                code: conflict_code(column),
                message: format!("{column} is already taken"),
            },
            StoreError::Unavailable(_) => Self::Unavailable(err),
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

impl DomainError {
    /// A 400 naming the offending field.
    #[must_use]
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// Result of a domain action.
pub type DomainResult<T> = Result<T, DomainError>;
