//! HS256 user session tokens (SPEC F.1): access and refresh JWTs.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use phlix_proto::auth::SessionClaims;

use super::{now_unix, random_bytes};
use crate::config::Secret;

/// `iss` of every hub token.
pub const ISSUER: &str = "phlix-hub";
/// `aud` of user session tokens.
pub const AUDIENCE: &str = "hub";

/// Which of the two session tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

/// Why a presented token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed or its signature does not verify")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("token is a {0} token where another kind was expected")]
    WrongKind(String),
}

/// Signs and verifies session tokens with the hub's HS256 secret.
#[derive(Clone)]
pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

impl SessionKeys {
    /// Keys from the configured secret.
    #[must_use]
    pub fn new(secret: &Secret) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
        }
    }

    /// Mints a token of `kind` for `user_id` living `ttl_secs`, in the user's session epoch
    /// `epoch`. Refresh tokens get a fresh `jti` (32 lowercase hex characters).
    ///
    /// # Errors
    /// Only when signing fails, which HS256 never does for a valid key.
    pub fn mint(
        &self,
        kind: TokenKind,
        user_id: &str,
        ttl_secs: i64,
        epoch: i64,
    ) -> Result<(String, SessionClaims), jsonwebtoken::errors::Error> {
        let iat = now_unix();
        let claims = SessionClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user_id.to_owned(),
            iat,
            exp: iat + ttl_secs,
            kind: kind.as_str().to_owned(),
            jti: (kind == TokenKind::Refresh).then(|| hex::encode(random_bytes::<16>())),
            scope: Vec::new(),
            server_id: None,
            sv: epoch,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims))
    }

    /// Verifies signature, `iss`, `aud`, `exp` (a token whose `exp` equals now is still
    /// valid) and the token kind.
    ///
    /// # Errors
    /// [`TokenError`] saying why the token is refused.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<SessionClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        if claims.kind != kind.as_str() {
            return Err(TokenError::WrongKind(claims.kind));
        }
        if kind == TokenKind::Refresh && claims.jti.as_deref().is_none_or(str::is_empty) {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &[u8]) -> SessionKeys {
        SessionKeys::new(&crate::config::Secret::from_bytes(secret.to_vec()))
    }

    #[test]
    fn access_tokens_round_trip_with_the_spec_claims() {
        let keys = keys(&[7u8; 32]);
        let (token, claims) = keys.mint(TokenKind::Access, "u-1", 3600, 0).unwrap();
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(claims.jti.is_none());
        let back = keys.verify(&token, TokenKind::Access).unwrap();
        assert_eq!(back, claims);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
    }

    #[test]
    fn refresh_tokens_carry_a_hex_jti_and_are_not_access_tokens() {
        let keys = keys(&[9u8; 32]);
        let (token, claims) = keys.mint(TokenKind::Refresh, "u-2", 60, 0).unwrap();
        let jti = claims.jti.unwrap();
        assert_eq!(jti.len(), 32);
        assert!(
            jti.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(
            keys.verify(&token, TokenKind::Access),
            Err(TokenError::WrongKind("refresh".into()))
        );
    }

    #[test]
    fn forged_and_expired_tokens_are_refused() {
        let (token, _) = keys(&[1u8; 32])
            .mint(TokenKind::Access, "u", 60, 0)
            .unwrap();
        assert_eq!(
            keys(&[2u8; 32]).verify(&token, TokenKind::Access),
            Err(TokenError::Invalid)
        );
        let (old, _) = keys(&[1u8; 32])
            .mint(TokenKind::Access, "u", -5, 0)
            .unwrap();
        assert_eq!(
            keys(&[1u8; 32]).verify(&old, TokenKind::Access),
            Err(TokenError::Expired)
        );
        assert_eq!(
            keys(&[1u8; 32]).verify("not.a.jwt", TokenKind::Access),
            Err(TokenError::Invalid)
        );
    }
}
