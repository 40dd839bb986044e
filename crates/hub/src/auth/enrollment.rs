//! Enrollment JWTs (SPEC C.4): EdDSA compact JWS issued to a paired server and presented on
//! every server → hub call and in the tunnel HELLO.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use super::keys::KeyRing;
use super::session::ISSUER;

/// `aud` of enrollment tokens.
pub const AUDIENCE: &str = "server";

/// JOSE header of an enrollment token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Payload of an enrollment token, in the PHP hub's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub kid: String,
    pub hub_base_url: String,
    pub server_id: String,
}

/// Why an enrollment token was refused (all of them answer `ENROLLMENT_TOKEN_EXPIRED` on
/// HTTP; the distinction is for logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported header (alg/typ)")]
    BadHeader,
    #[error("unknown or retired signing key")]
    UnknownKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("wrong issuer or audience")]
    WrongIssuerOrAudience,
    #[error("token has expired")]
    Expired,
}

/// Mints an enrollment token for `server_id` living `ttl_secs`.
#[must_use]
pub fn mint(
    keys: &KeyRing,
    server_id: &str,
    hub_base_url: &str,
    ttl_secs: i64,
    now: i64,
) -> String {
    let kid = keys.current().kid.clone();
    let header = JoseHeader {
        alg: "EdDSA".into(),
        typ: Some("JWT".into()),
        kid: Some(kid.clone()),
    };
    let claims = EnrollmentClaims {
        iss: ISSUER.into(),
        sub: server_id.into(),
        aud: AUDIENCE.into(),
        exp: now + ttl_secs,
        iat: now,
        kid,
        hub_base_url: hub_base_url.into(),
        server_id: server_id.into(),
    };
    // Serialising these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(&claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = keys.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Verifies an enrollment token: `alg` EdDSA, `typ` JWT when present, `kid` naming a key that
/// verifies now (current, or previous inside the rotation overlap), a strict Ed25519
/// signature, `iss` phlix-hub, `aud` server and `exp >= now`.
///
/// # Errors
/// [`EnrollmentError`] saying why.
pub fn verify(keys: &KeyRing, token: &str, now: i64) -> Result<EnrollmentClaims, EnrollmentError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EnrollmentError::Malformed);
    };
    let header: JoseHeader = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(EnrollmentError::Malformed)?;
    if header.alg != "EdDSA" || header.typ.as_deref().is_some_and(|typ| typ != "JWT") {
        return Err(EnrollmentError::BadHeader);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.key_for(kid, now))
        .ok_or(EnrollmentError::UnknownKey)?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(EnrollmentError::Malformed)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    key.key
        .verify_strict(
            &token.as_bytes()[..signing_input_len],
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| EnrollmentError::BadSignature)?;
    let claims: EnrollmentClaims = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(EnrollmentError::Malformed)?;
    if claims.iss != ISSUER || claims.aud != AUDIENCE {
        return Err(EnrollmentError::WrongIssuerOrAudience);
    }
    if claims.exp < now {
        return Err(EnrollmentError::Expired);
    }
    Ok(claims)
}
