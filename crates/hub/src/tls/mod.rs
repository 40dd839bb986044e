//! TLS of the hub's three listeners (issue #17): the certificate the handshakes present, where
//! it comes from (a PEM pair on disk, re-read when the files change or on SIGHUP; or ACME,
//! [`acme`]), and the rustls configurations of the API port (ALPN h2, http/1.1, and
//! acme-tls/1 while ACME is on) and of the two WebSocket ports (http/1.1).
//!
//! The certificate is chosen per handshake by [`Certs`], so a reload or a renewal changes what
//! new connections see without touching the open ones. Every SNI name, known or not (and no
//! SNI at all), is served the one configured certificate: clients that asked for another
//! name fail their own verification, which is the clearer error for them.
//!
//! Foundation layer: configuration in, certificates and counters out; the accept loop
//! (`http::conn`) drives the handshakes.

pub mod acme;
pub mod der;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use anyhow::{Context, anyhow, bail};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::config::edge::{Edge, TlsMode};

/// ALPN of the ACME TLS-ALPN-01 challenge (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// `/health` turns degraded when the certificate has less than this left.
pub const EXPIRY_WARNING_SECS: i64 = 7 * 86_400;

/// The crypto provider of every TLS configuration of the hub (aws-lc-rs, which the HTTP
/// client and JWT code already link).
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificate in use and its expiry.
#[derive(Debug, Clone)]
struct Current {
    key: Arc<CertifiedKey>,
    not_after: Option<i64>,
}

/// Picks the certificate of each handshake: the current one, or an ACME challenge
/// certificate when the client offers only `acme-tls/1` for a name being validated.
#[derive(Debug, Default)]
pub struct Certs {
    current: RwLock<Option<Current>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Certs {
    fn install(&self, key: Arc<CertifiedKey>) {
        let not_after = key.cert.first().and_then(|c| der::not_after(c));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Some(Current { key, not_after });
    }

    /// Expiry of the certificate in use (unix seconds), if any is.
    #[must_use]
    pub fn not_after(&self) -> Option<i64> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|c| c.not_after)
    }

    /// Whether a certificate is loaded.
    #[must_use]
    pub fn has_certificate(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn set_challenge(&self, name: &str, key: Option<Arc<CertifiedKey>>) {
        let mut challenges = self
            .challenges
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match key {
            Some(key) => challenges.insert(name.to_owned(), key),
            None => challenges.remove(name),
        };
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self
                .challenges
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&name)
                .cloned();
        }
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|c| Arc::clone(&c.key))
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct TlsStats {
    /// Certificates installed after start (file reloads, ACME issues and renewals).
    pub reloads: AtomicU64,
    /// Reloads refused (unreadable or mismatched files).
    pub reload_failures: AtomicU64,
    /// Handshakes that failed (garbage, plaintext, unknown CA at the client, timeouts).
    pub handshake_failures: AtomicU64,
    /// ACME attempts that failed.
    pub acme_failures: AtomicU64,
}

/// TLS of a running hub.
pub struct Tls {
    mode: TlsMode,
    edge: Edge,
    data_dir: PathBuf,
    certs: Arc<Certs>,
    api: TlsAcceptor,
    ws: TlsAcceptor,
    /// SIGHUP (or a test): reload the files now / renew the ACME certificate now.
    refresh: Notify,
    pub stats: TlsStats,
    /// The last ACME failure, for `/health` while no certificate could be obtained.
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("not_after", &self.certs.not_after())
            .finish_non_exhaustive()
    }
}

/// Reads and checks a PEM pair: the chain must parse, the key must load and belong to the
/// first certificate. Errors name the files, never their contents.
///
/// # Errors
/// Unreadable files, no certificate, no key, an unsupported key, a key of another certificate.
pub fn load_pair(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?;
    let key_pem =
        std::fs::read(key).with_context(|| format!("cannot read the TLS key {}", key.display()))?;
    pair_from_pem(
        &cert_pem,
        &key_pem,
        &cert.display().to_string(),
        &key.display().to_string(),
    )
}

/// [`load_pair`] over PEM text already in memory (`*_name` label the errors).
///
/// # Errors
/// As [`load_pair`].
pub fn pair_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow!("{cert_name} is not a PEM certificate chain ({err})"))?;
    if chain.is_empty() {
        bail!("{cert_name} holds no PEM CERTIFICATE block");
    }
    // The error of the PEM reader names the problem, not the key material.
    let private = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|err| anyhow!("{key_name} holds no PEM private key ({err})"))?;
    match CertifiedKey::from_der(chain, private, &provider()) {
        Ok(key) => Ok(Arc::new(key)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(anyhow!(
            "the TLS key {key_name} does not belong to the certificate {cert_name} (mismatched pair)"
        )),
        Err(err) => Err(anyhow!("cannot use {cert_name} with {key_name}: {err}")),
    }
}

/// The hub's own provider for its listeners: aws-lc-rs with the AES-128-GCM suites first
/// (and chosen by the hub, not the client). Every relayed byte is decrypted and encrypted
/// once per TLS leg, so the cipher is most of TLS's cost; AES-128-GCM does ten AES rounds to
/// AES-256's fourteen, at the security level Mozilla's intermediate profile and most of the web
/// use (BENCHMARKS.md "TLS against plain" has the effect).
fn listener_provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let rank = |suite: &rustls::SupportedCipherSuite| {
        use rustls::CipherSuite as S;
        match suite.suite() {
            S::TLS13_AES_128_GCM_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
            _ => 1,
        }
    };
    // Stable: TLS 1.3 suites stay before TLS 1.2 ones within each rank.
    provider.cipher_suites.sort_by_key(rank);
    Arc::new(provider)
}

fn acceptor(certs: &Arc<Certs>, alpn: &[&[u8]]) -> anyhow::Result<TlsAcceptor> {
    let mut config = rustls::ServerConfig::builder_with_provider(listener_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS 1.2/1.3 with aws-lc-rs")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(certs) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.ignore_client_order = true;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Tls {
    /// TLS for `config`, or `None` when it is off. A certificate pair is loaded and checked
    /// now, so a missing, unreadable or mismatched pair stops the start with a clear error;
    /// under ACME a stored certificate is used until the first one is obtained.
    ///
    /// # Errors
    /// As [`load_pair`].
    pub fn new(config: &Config) -> anyhow::Result<Option<Arc<Self>>> {
        let certs = Arc::new(Certs::default());
        let api_alpn: &[&[u8]] = match &config.edge.tls {
            TlsMode::Off => return Ok(None),
            TlsMode::Files { cert, key } => {
                certs.install(load_pair(cert, key)?);
                &[b"h2", b"http/1.1"]
            }
            TlsMode::Acme(settings) => {
                match acme::load_stored(&config.data_dir, settings) {
                    Ok(Some(key)) => certs.install(key),
                    Ok(None) => {}
                    Err(err) => tracing::warn!(
                        error = format!("{err:#}"),
                        "ignoring the stored ACME certificate; a new one is requested"
                    ),
                }
                &[b"h2", b"http/1.1", ACME_TLS_ALPN]
            }
        };
        Ok(Some(Arc::new(Self {
            mode: config.edge.tls.clone(),
            edge: config.edge.clone(),
            data_dir: config.data_dir.clone(),
            api: acceptor(&certs, api_alpn)?,
            // WebSocket upgrades are HTTP/1.1 only.
            ws: acceptor(&certs, &[b"http/1.1"])?,
            certs,
            refresh: Notify::new(),
            stats: TlsStats::default(),
            last_error: Mutex::new(None),
        })))
    }

    /// The acceptor of the API port.
    #[must_use]
    pub fn api_acceptor(&self) -> TlsAcceptor {
        self.api.clone()
    }

    /// The acceptor of the tunnel and client ports.
    #[must_use]
    pub fn ws_acceptor(&self) -> TlsAcceptor {
        self.ws.clone()
    }

    /// The certificate selection.
    #[must_use]
    pub fn certs(&self) -> &Arc<Certs> {
        &self.certs
    }

    /// Reload the files (or renew the ACME certificate) now, as SIGHUP does.
    pub fn refresh_now(&self) {
        self.refresh.notify_one();
    }

    /// Whether certificates come from ACME.
    #[must_use]
    pub fn is_acme(&self) -> bool {
        matches!(self.mode, TlsMode::Acme(_))
    }

    /// A sentence for `/health` when TLS needs the operator: the certificate expires within
    /// 7 days (renewal failing, or files not replaced), or ACME has not obtained one yet and
    /// its last attempt failed.
    #[must_use]
    pub fn issue(&self, now: i64) -> Option<String> {
        if let Some(not_after) = self.certs.not_after() {
            let left = not_after - now;
            if left < EXPIRY_WARNING_SECS {
                let last = self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                return Some(match (left <= 0, last) {
                    (true, _) => "the TLS certificate has expired".to_owned(),
                    (false, Some(err)) => format!(
                        "the TLS certificate expires in {} h and its renewal fails: {err}",
                        left / 3600
                    ),
                    (false, None) => {
                        format!("the TLS certificate expires in {} h", left / 3600)
                    }
                });
            }
            return None;
        }
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        last.map(|err| format!("no TLS certificate yet: {err}"))
    }

    fn set_last_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    /// Keeps the certificate current until `shutdown`: polls the files (and reloads on
    /// SIGHUP), or runs the ACME client (SIGHUP forces a renewal).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let hup = Arc::clone(&self);
        let hup_shutdown = shutdown.clone();
        let hup_task = tokio::spawn(async move { hup.sighup_loop(hup_shutdown).await });
        match self.mode.clone() {
            TlsMode::Off => {}
            TlsMode::Files { cert, key } => self.watch_files(&cert, &key, &shutdown).await,
            TlsMode::Acme(settings) => acme::run(&self, &settings, &shutdown).await,
        }
        hup_task.abort();
    }

    #[cfg(unix)]
    async fn sighup_loop(&self, shutdown: CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; certificate files are still polled");
            return;
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP received: refreshing the TLS certificate");
                    self.refresh.notify_one();
                }
            }
        }
    }

    #[cfg(not(unix))]
    async fn sighup_loop(&self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
    }

    /// Reloads the pair when either file's size or modification time changes (or on
    /// [`Self::refresh_now`]). A pair that does not load (half-written, mismatched) is logged
    /// once per change and the current certificate stays.
    async fn watch_files(&self, cert: &Path, key: &Path, shutdown: &CancellationToken) {
        let stamp = |path: &Path| {
            std::fs::metadata(path)
                .ok()
                .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
        };
        let mut seen = (stamp(cert), stamp(key));
        loop {
            let forced = tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.edge.reload_poll) => false,
                () = self.refresh.notified() => true,
            };
            let now = (stamp(cert), stamp(key));
            if now == seen && !forced {
                continue;
            }
            seen = now;
            match load_pair(cert, key) {
                Ok(pair) => {
                    self.certs.install(pair);
                    self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        cert = %cert.display(),
                        not_after = self.certs.not_after(),
                        "TLS certificate reloaded"
                    );
                }
                Err(err) => {
                    self.stats.reload_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        error = format!("{err:#}"),
                        "TLS certificate not reloaded; the previous one stays in use"
                    );
                }
            }
        }
    }

    /// Where ACME keeps its account and certificate.
    fn acme_dir(&self) -> PathBuf {
        self.data_dir.join("acme")
    }
}
