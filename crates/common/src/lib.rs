//! Pieces the hub and the agent share and that are not wire types (those live in
//! `phlix-proto`): the Ed25519 key-file text format both write (the PHP hub's), atomic 0600
//! file writes, the `250ms` / `15s` / `2m` duration syntax of their flags, and the host name.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;

const PEM_BEGIN: &str = "-----BEGIN ED25519 PRIVATE KEY-----";
const PEM_END: &str = "-----END ED25519 PRIVATE KEY-----";

/// Why a key file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    #[error("not an ED25519 PRIVATE KEY file")]
    NotAKeyFile,
    #[error("the key body is not base64")]
    NotBase64,
    #[error("the key file is not a 64-byte seed ‖ public key")]
    BadLength,
}

/// The key-file text: the 64-byte libsodium secret key (seed ‖ public), base64, between
/// `-----BEGIN/END ED25519 PRIVATE KEY-----` lines.
#[must_use]
pub fn encode_key_file(key: &SigningKey) -> String {
    let mut secret = Vec::with_capacity(64);
    secret.extend_from_slice(key.as_bytes());
    secret.extend_from_slice(key.verifying_key().as_bytes());
    format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", STANDARD.encode(secret))
}

/// Reads a key file written by [`encode_key_file`] (or the PHP hub); the public half must match
/// the seed.
///
/// # Errors
/// [`KeyFileError`] for anything else.
pub fn decode_key_file(text: &str) -> Result<SigningKey, KeyFileError> {
    if !text.contains(PEM_BEGIN) || !text.contains(PEM_END) {
        return Err(KeyFileError::NotAKeyFile);
    }
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let bytes = STANDARD.decode(body).map_err(|_| KeyFileError::NotBase64)?;
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .ok_or(KeyFileError::BadLength)?;
    let key = SigningKey::from_bytes(&seed);
    if bytes.len() != 64 || bytes[32..] != key.verifying_key().as_bytes()[..] {
        return Err(KeyFileError::BadLength);
    }
    Ok(key)
}

/// Writes a file with mode 0600, atomically: a temp file beside it, synced, then renamed.
///
/// # Errors
/// Any I/O failure.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Parses `250ms`, `15s`, `2m` or a bare number of seconds.
///
/// # Errors
/// A message naming the accepted forms when the text is none of them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (use e.g. 500ms, 15s or 2m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value.saturating_mul(60))),
        _ => Err(format!("`{text}` has an unknown unit (use ms, s or m)")),
    }
}

/// This machine's host name (from `/etc/hostname`), or `fallback`.
#[must_use]
pub fn host_name(fallback: &str) -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

/// Percent-encodes every byte but the unreserved characters (RFC 3986), for a path segment or
/// a query value.
#[must_use]
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn key_files_round_trip_and_refuse_damage() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let text = encode_key_file(&key);
        assert!(text.starts_with(PEM_BEGIN));
        assert_eq!(decode_key_file(&text).unwrap().as_bytes(), key.as_bytes());
        assert_eq!(decode_key_file("hello"), Err(KeyFileError::NotAKeyFile));
        let garbage = format!("{PEM_BEGIN}\n!!!\n{PEM_END}\n");
        assert_eq!(decode_key_file(&garbage), Err(KeyFileError::NotBase64));
        let short = format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", STANDARD.encode([1u8; 40]));
        assert_eq!(decode_key_file(&short), Err(KeyFileError::BadLength));
        // A public half that does not belong to the seed.
        let mut mixed = [7u8; 64];
        mixed[32..].copy_from_slice(
            SigningKey::from_bytes(&[8u8; 32])
                .verifying_key()
                .as_bytes(),
        );
        let wrong = format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", STANDARD.encode(mixed));
        assert_eq!(decode_key_file(&wrong), Err(KeyFileError::BadLength));
    }

    #[test]
    fn private_files_are_0600_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private_file(&path, b"one").unwrap();
        write_private_file(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!dir.path().join("secret.tmp").exists());
    }
}
