//! Credentials: Argon2id password hashes, HS256 user session tokens and random secrets.

pub mod enrollment;
pub mod keys;
pub mod password;
pub mod session;

use rand::Rng;

/// `N` bytes from the operating system's CSPRNG (through `rand`'s thread-local generator).
#[must_use]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Current unix time in seconds.
#[must_use]
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
