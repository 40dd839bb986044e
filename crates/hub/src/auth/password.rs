//! Argon2id password hashing (OWASP parameters: m = 19 MiB, t = 2, p = 1).
//!
//! Hashing is deliberately slow, so it runs on the blocking pool behind a semaphore sized to
//! the CPU count: a login flood queues instead of starving the async runtime, and Argon2 never
//! holds more than CPUs × 19 MiB at once. The permit moves into the blocking task, so a caller
//! that goes away (a client hanging up mid-login) does not free it while Argon2 still runs.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Bounds concurrent Argon2 computations to the number of CPUs.
#[derive(Clone, Debug)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
}

impl Default for PasswordHasherPool {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self {
            permits: Arc::new(Semaphore::new(cpus)),
        }
    }
}

/// A hash of a random password, verified against when the user does not exist so that an
/// unknown user name takes as long as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_blocking(b"phlix-hub timing equaliser").ok());

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes on the current thread; use [`PasswordHasherPool::hash`] from async code.
///
/// # Errors
/// Only on an internal Argon2 or RNG failure.
pub fn hash_blocking(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    Ok(argon2().hash_password(password)?.to_string())
}

/// Verifies on the current thread. A malformed stored hash counts as a mismatch.
#[must_use]
pub fn verify_blocking(password: &[u8], stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| argon2().verify_password(password, &hash).is_ok())
}

impl PasswordHasherPool {
    /// Hashes a password to a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    ///
    /// # Errors
    /// When Argon2 fails or the blocking task is cancelled.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let permit = Arc::clone(&self.permits).acquire_owned().await?;
        let hash = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_blocking(password.as_bytes())
        })
        .await??;
        Ok(hash)
    }

    /// Checks a password against a stored hash, or against a dummy hash when `stored` is
    /// `None` (always false, same cost).
    ///
    /// # Errors
    /// When the blocking task is cancelled.
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let permit = Arc::clone(&self.permits).acquire_owned().await?;
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match stored {
                Some(stored) => verify_blocking(password.as_bytes(), &stored),
                // The first call also computes the dummy hash, under the same permit: one
                // Argon2 pass after the other, never two at once.
                None => {
                    if let Some(dummy) = DUMMY_HASH.as_deref() {
                        let _ = verify_blocking(password.as_bytes(), dummy);
                    }
                    false
                }
            }
        })
        .await?;
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = hash_blocking(b"correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking(b"correct horse", &hash));
        assert!(!verify_blocking(b"wrong horse", &hash));
        assert!(!verify_blocking(b"correct horse", "not a phc string"));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        assert_ne!(
            hash_blocking(b"pw12345678").unwrap(),
            hash_blocking(b"pw12345678").unwrap()
        );
    }
}
