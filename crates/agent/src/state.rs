//! The agent's data dir: its Ed25519 key and `hub-enrollment.json` (SPEC C.3, K), both mode 0600.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// File name of the agent's key inside the data dir.
pub const KEY_FILE: &str = "agent-ed25519.key";
/// File name of the enrollment (the same name the Phlix server uses).
pub const ENROLLMENT_FILE: &str = "hub-enrollment.json";

/// What pairing stores (SPEC C.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub enrollment_jwt: String,
    pub hub_jwks_url: String,
    pub server_id: String,
    pub hub_base_url: String,
    /// Unix seconds.
    pub enrolled_at: i64,
}

/// File name of the live state `run` keeps for `status`.
pub const RUN_STATE_FILE: &str = "agent-state.json";

/// What `run` reports about itself (for `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// `connecting`, `connected` or `disconnected`.
    pub tunnel: String,
    /// Unix seconds of the last tunnel state change.
    pub tunnel_since: i64,
    pub last_heartbeat_at: Option<i64>,
    /// HTTP status of the last heartbeat, or `unreachable`.
    pub last_heartbeat_result: Option<String>,
    pub upstream: String,
    pub pid: u32,
}

/// The agent's data directory.
#[derive(Debug, Clone)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// Opens (creating, mode 0700) the directory.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if !path.is_dir() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(path)
                .with_context(|| format!("creating the data dir {}", path.display()))?;
        }
        Ok(Self(path.to_path_buf()))
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The agent's key, generated and stored (0600) on first use.
    ///
    /// # Errors
    /// An unreadable or corrupt key file (never silently replaced).
    pub fn signing_key(&self) -> anyhow::Result<SigningKey> {
        let path = self.0.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => phlix_common::decode_key_file(&text)
                .with_context(|| format!("reading the agent key {}", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                rand::rng().fill_bytes(&mut seed);
                let key = SigningKey::from_bytes(&seed);
                write_private(&path, phlix_common::encode_key_file(&key).as_bytes())?;
                Ok(key)
            }
            Err(err) => {
                Err(err).with_context(|| format!("reading the agent key {}", path.display()))
            }
        }
    }

    /// The stored enrollment, if paired.
    ///
    /// # Errors
    /// A file that exists but is not a valid enrollment.
    pub fn enrollment(&self) -> anyhow::Result<Option<Enrollment>> {
        let path = self.0.join(ENROLLMENT_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
                format!("{} is corrupted; pair again with --force", path.display())
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The state the running agent last wrote, if any.
    #[must_use]
    pub fn run_state(&self) -> Option<RunState> {
        std::fs::read_to_string(self.0.join(RUN_STATE_FILE))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
    }

    /// Records the running agent's state.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save_run_state(&self, state: &RunState) -> anyhow::Result<()> {
        write_private(
            &self.0.join(RUN_STATE_FILE),
            serde_json::to_string_pretty(state)?.as_bytes(),
        )
    }

    /// Stores the enrollment (0600, atomically).
    ///
    /// # Errors
    /// I/O errors.
    pub fn save_enrollment(&self, enrollment: &Enrollment) -> anyhow::Result<()> {
        write_private(
            &self.0.join(ENROLLMENT_FILE),
            serde_json::to_string_pretty(enrollment)?.as_bytes(),
        )
    }
}

/// The public key as the single JWK of a claim request (SPEC C.1).
#[must_use]
pub fn public_jwk(key: &SigningKey) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
    })
}

/// The `exp` claim of a JWT, without verifying it (for status display).
#[must_use]
pub fn jwt_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    phlix_common::write_private_file(path, contents)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_with_mode_0600_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("a")).unwrap();
        let key = data.signing_key().unwrap();
        assert_eq!(
            data.signing_key().unwrap().as_bytes(),
            key.as_bytes(),
            "same key on reload"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(data.path().join(ENROLLMENT_FILE), "{oops").unwrap();
        assert!(format!("{:#}", data.enrollment().unwrap_err()).contains("corrupted"));
        std::fs::write(data.path().join(KEY_FILE), "garbage").unwrap();
        assert!(data.signing_key().is_err());
    }

    #[test]
    fn jwt_expiry_reads_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":1234}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.s")), Some(1234));
        assert_eq!(jwt_expiry("nope"), None);
    }
}
