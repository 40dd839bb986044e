//! Account and session types (SPEC E "Auth" and F.1).

use serde::{Deserialize, Serialize};

use crate::server::ServerInfo;

/// `POST /api/v1/auth/register` (and its `signup` alias).
///
/// Every field is optional at the type level so that a missing field produces the hub's own
/// `"<field> is required"` message instead of a generic deserialisation error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/v1/auth/login`: `username` may hold a user name or an e-mail address; `email` is
/// read when `username` is absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /api/v1/auth/refresh` and `POST /api/v1/auth/logout`; the token may instead come from
/// the `phlix_hub_refresh` cookie.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A `users` row as the API shows it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub is_admin: bool,
    /// `YYYY-MM-DD HH:MM:SS`, UTC (the PHP hub's DATETIME text).
    pub created_at: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub updated_at: String,
}

/// The claims of a user session token (HS256), in `JwtClaims::toPayload()` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// `access` or `refresh`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Refresh tokens only: 32 lowercase hex characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    #[serde(rename = "serverId", default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// The user's session epoch when the token was minted (ours): an admin's "sign out
    /// everywhere", a disable or a password reset raise the user's epoch, and tokens of an
    /// older epoch are refused. Absent (0) until the user's first such event.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sv: i64,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// Answer to register, login and refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `"Bearer"`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: i64,
    pub user: User,
    /// Claims of the access token.
    pub claims: SessionClaims,
}

/// `GET /api/v1/me` (and `/api/v1/auth/me`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeResponse {
    pub user: User,
    pub claims: SessionClaims,
    pub servers: Vec<ServerInfo>,
}
