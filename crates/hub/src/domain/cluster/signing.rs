//! Node-to-node request signatures: HMAC-SHA256 over a request's identity, a time window and
//! single-use nonces.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::SIGNATURE_WINDOW;
use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// What a signed node-to-node request says about itself; every field is covered by the
/// signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub method: String,
    /// The request target on the cluster listener (path and query).
    pub target: String,
    pub node: String,
    pub time: i64,
    pub nonce: String,
    /// The client's address as the entry node saw it.
    pub client: String,
    /// `https` or `http`: how the client reached the entry node.
    pub proto: String,
    /// The user the entry node authenticated (HTTP over the relay), or empty.
    pub user: String,
    /// The path on the home server (HTTP over the relay), or empty.
    pub path: String,
}

impl Claims {
    fn signed_text(&self) -> String {
        [
            "phlix-cluster-v1",
            &self.method,
            &self.target,
            &self.node,
            &self.time.to_string(),
            &self.nonce,
            &self.client,
            &self.proto,
            &self.user,
            &self.path,
        ]
        .join("\n")
    }
}

/// The hex HMAC-SHA256 of `claims` under `secret`.
#[must_use]
pub fn sign(secret: &Secret, claims: &Claims) -> String {
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(secret.expose()) else {
        return String::new();
    };
    mac.update(claims.signed_text().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A fresh nonce for a signed request.
#[must_use]
pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Why a node-to-node request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadSignature,
    Expired,
    Replayed,
}

/// Checks signed node-to-node requests: the signature, the time window and that no nonce is
/// used twice within it.
#[derive(Debug)]
pub struct Verifier {
    secret: Secret,
    seen: Mutex<HashMap<String, i64>>,
}

impl Verifier {
    pub(super) fn new(secret: Secret) -> Self {
        Self {
            secret,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Accepts `claims` carrying `signature` at `now`.
    ///
    /// # Errors
    /// The refusal.
    pub fn check(&self, claims: &Claims, signature: &str, now: i64) -> Result<(), Refusal> {
        let Ok(given) = hex::decode(signature) else {
            return Err(Refusal::BadSignature);
        };
        let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(self.secret.expose()) else {
            return Err(Refusal::BadSignature);
        };
        mac.update(claims.signed_text().as_bytes());
        if mac.verify_slice(&given).is_err() {
            return Err(Refusal::BadSignature);
        }
        if (now - claims.time).abs() > SIGNATURE_WINDOW {
            return Err(Refusal::Expired);
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, at| now - *at <= SIGNATURE_WINDOW * 2);
        if seen.insert(claims.nonce.clone(), now).is_some() {
            return Err(Refusal::Replayed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(time: i64) -> Claims {
        Claims {
            method: "GET".into(),
            target: "/cluster/v1/relay/s1".into(),
            node: "a".into(),
            time,
            nonce: nonce(),
            client: "203.0.113.9".into(),
            proto: "https".into(),
            user: "u1".into(),
            path: "/api/v1/libraries".into(),
        }
    }

    #[test]
    fn signed_requests_verify_once_within_the_window() {
        let secret = Secret::from_bytes(vec![7; 32]);
        let verifier = Verifier::new(secret.clone());
        let good = claims(1000);
        let signature = sign(&secret, &good);
        assert_eq!(verifier.check(&good, &signature, 1010), Ok(()));
        assert_eq!(
            verifier.check(&good, &signature, 1011),
            Err(Refusal::Replayed)
        );
        let old = claims(1000);
        assert_eq!(
            verifier.check(&old, &sign(&secret, &old), 1031),
            Err(Refusal::Expired)
        );
        let mut forged = claims(1000);
        let signature = sign(&secret, &forged);
        forged.user = "admin".into();
        assert_eq!(
            verifier.check(&forged, &signature, 1000),
            Err(Refusal::BadSignature)
        );
        let other = Secret::from_bytes(vec![8; 32]);
        let theirs = claims(1000);
        assert_eq!(
            verifier.check(&theirs, &sign(&other, &theirs), 1000),
            Err(Refusal::BadSignature)
        );
    }
}
