//! The hub's Ed25519 signing key (SPEC C.4, F.2, F.4): persisted in the data dir, published in
//! the JWKS, rotated with a 24 h overlap during which the previous key still verifies.
//!
//! Key file: `-----BEGIN ED25519 PRIVATE KEY-----` / base64 of the 64-byte libsodium secret key
//! (seed ‖ public) / `-----END ED25519 PRIVATE KEY-----`, mode 0600. Previous key sidecar:
//! `<keyfile>.previous.json` = `{"kid","public" (standard base64),"expiresAt"}`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{now_unix, random_bytes};
use crate::config::write_private_file;
use phlix_common::{decode_key_file, encode_key_file};

/// File name of the hub key inside the data dir.
pub const KEY_FILE: &str = "hub-ed25519.key";
/// How long the previous key keeps verifying after a rotation.
pub const ROTATION_OVERLAP_SECS: i64 = 24 * 3600;

/// `kid` of a public key: unpadded base64url of its SHA-256.
#[must_use]
pub fn kid_of(public: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(public))
}

/// A public key the hub accepts signatures from.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: String,
    pub key: VerifyingKey,
    /// Unix time after which it no longer verifies (`None` for the current key).
    pub expires_at: Option<i64>,
}

impl PublicKey {
    /// The JWK of this key as published in the JWKS.
    #[must_use]
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(self.key.as_bytes()),
            kid: self.kid.clone(),
            key_use: "sig".into(),
            alg: "EdDSA".into(),
        }
    }
}

/// One entry of `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub key_use: String,
    pub alg: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct PreviousKeyFile {
    kid: String,
    public: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
}

/// The current signing key and, inside its overlap window, the previous public key.
#[derive(Clone)]
pub struct KeyRing {
    signing: SigningKey,
    current: PublicKey,
    previous: Option<PublicKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kid", &self.current.kid)
            .field("previous", &self.previous.as_ref().map(|p| &p.kid))
            .finish_non_exhaustive()
    }
}

fn previous_path(key_path: &Path) -> PathBuf {
    let mut name = key_path.as_os_str().to_owned();
    name.push(".previous.json");
    PathBuf::from(name)
}

impl KeyRing {
    /// Loads the key from `data_dir`, generating and persisting one on first start.
    ///
    /// # Errors
    /// An unreadable or corrupt key file (never silently replaced: tokens depend on it).
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        let signing = match std::fs::read_to_string(&path) {
            Ok(text) => decode_key_file(&text)
                .with_context(|| format!("reading hub key {}", path.display()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let signing = SigningKey::from_bytes(&random_bytes::<32>());
                write_private_file(&path, encode_key_file(&signing).as_bytes())?;
                tracing::info!(path = %path.display(), kid = %kid_of(signing.verifying_key().as_bytes()), "generated the hub signing key");
                signing
            }
            Err(err) => {
                return Err(err).with_context(|| format!("reading hub key {}", path.display()));
            }
        };
        let previous = match std::fs::read_to_string(previous_path(&path)) {
            Ok(text) => {
                let file: PreviousKeyFile =
                    serde_json::from_str(&text).context("reading the previous-key sidecar")?;
                let bytes: [u8; 32] = STANDARD
                    .decode(&file.public)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .context("previous key is not 32 bytes of base64")?;
                let key = VerifyingKey::from_bytes(&bytes)
                    .context("previous key is not a valid Ed25519 point")?;
                Some(PublicKey {
                    kid: file.kid,
                    key,
                    expires_at: Some(file.expires_at),
                })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).context("reading the previous-key sidecar"),
        };
        let current = PublicKey {
            kid: kid_of(signing.verifying_key().as_bytes()),
            key: signing.verifying_key(),
            expires_at: None,
        };
        Ok(Self {
            signing,
            current,
            previous,
        })
    }

    /// Replaces the key in `data_dir` with a new one; the old public key keeps verifying for
    /// [`ROTATION_OVERLAP_SECS`]. Returns `(old kid, new kid)`.
    ///
    /// # Errors
    /// When the key files cannot be read or written.
    pub fn rotate(data_dir: &Path) -> anyhow::Result<(String, String)> {
        let old = Self::load_or_create(data_dir)?;
        let path = data_dir.join(KEY_FILE);
        let sidecar = PreviousKeyFile {
            kid: old.current.kid.clone(),
            public: STANDARD.encode(old.current.key.as_bytes()),
            expires_at: now_unix() + ROTATION_OVERLAP_SECS,
        };
        write_private_file(
            &previous_path(&path),
            serde_json::to_string_pretty(&sidecar)?.as_bytes(),
        )?;
        let signing = SigningKey::from_bytes(&random_bytes::<32>());
        write_private_file(&path, encode_key_file(&signing).as_bytes())?;
        Ok((old.current.kid, kid_of(signing.verifying_key().as_bytes())))
    }

    /// The key new tokens are signed with.
    #[must_use]
    pub fn current(&self) -> &PublicKey {
        &self.current
    }

    /// Keys that verify now: the current one, plus the previous one inside its overlap.
    #[must_use]
    pub fn verifying_keys(&self, now: i64) -> Vec<&PublicKey> {
        std::iter::once(&self.current)
            .chain(
                self.previous
                    .iter()
                    .filter(|p| p.expires_at.is_some_and(|exp| exp > now)),
            )
            .collect()
    }

    /// The verifying key with this `kid`, if it verifies now.
    #[must_use]
    pub fn key_for(&self, kid: &str, now: i64) -> Option<&PublicKey> {
        self.verifying_keys(now).into_iter().find(|k| k.kid == kid)
    }

    /// Signs `message` with the current key.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// The hub's key ring as the running hub sees it: reloaded when `phlix-hub rotate-key` rewrites
/// the key files, so a rotation needs no restart.
#[derive(Debug, Clone)]
pub struct KeyStore {
    data_dir: PathBuf,
    ring: tokio::sync::watch::Sender<std::sync::Arc<KeyRing>>,
    fingerprint: std::sync::Arc<std::sync::Mutex<String>>,
}

fn fingerprint(data_dir: &Path) -> String {
    let path = data_dir.join(KEY_FILE);
    let key = std::fs::read_to_string(&path).unwrap_or_default();
    let previous = std::fs::read_to_string(previous_path(&path)).unwrap_or_default();
    hex::encode(Sha256::digest(format!("{key}\0{previous}")))
}

impl KeyStore {
    /// Loads (or creates) the key ring of `data_dir`.
    ///
    /// # Errors
    /// See [`KeyRing::load_or_create`].
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let ring = KeyRing::load_or_create(data_dir)?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            ring: tokio::sync::watch::Sender::new(std::sync::Arc::new(ring)),
            fingerprint: std::sync::Arc::new(std::sync::Mutex::new(fingerprint(data_dir))),
        })
    }

    /// The key ring in force.
    #[must_use]
    pub fn current(&self) -> std::sync::Arc<KeyRing> {
        self.ring.borrow().clone()
    }

    /// Reloads the ring when the key files changed on disk; a broken file keeps the old ring.
    pub fn reload_if_changed(&self) {
        let now = fingerprint(&self.data_dir);
        let mut seen = self
            .fingerprint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *seen == now {
            return;
        }
        match KeyRing::load_or_create(&self.data_dir) {
            Ok(ring) => {
                tracing::info!(kid = %ring.current().kid, "hub signing key reloaded");
                self.ring.send_replace(std::sync::Arc::new(ring));
                *seen = now;
            }
            Err(err) => tracing::error!(
                error = format!("{err:#}"),
                "key files changed but cannot be loaded; keeping the old key"
            ),
        }
    }
}
