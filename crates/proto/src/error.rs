//! The JSON error body (SPEC E.1, I.3 and J.7).

use serde::{Deserialize, Serialize};

/// Every error the hub answers with is this object.
///
/// The PHP hub mixes shapes (`error` + `code`, `error` + `message`, code in `error`); the
/// fields that a given endpoint leaves out are simply absent, never `null`, so clients that
/// read `error`, `code` or `message` see exactly what the PHP hub would send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// HTTP reason phrase (`"Bad Request"`) or, for some PHP-compatible endpoints, a code.
    pub error: String,
    /// Machine-readable code such as `auth.required` or `rate_limited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
