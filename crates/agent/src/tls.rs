//! TLS towards `https://` and `wss://` hubs: one rustls client configuration, shared by the
//! HTTP calls (reqwest) and the WebSocket connections (`crate::ws`), that trusts the
//! platform's roots, Mozilla's roots (webpki-roots, for hosts without a CA bundle) and the
//! private CA of `--ca-file` / `PHLIX_CA_FILE`. [`explain`] turns a refused certificate into
//! one sentence naming the host and the reason.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// The agent's TLS client configuration (cheap to clone).
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
}

impl TlsClient {
    /// Platform roots + webpki roots + the PEM certificates of `ca_file`.
    ///
    /// # Errors
    /// An unreadable `ca_file`, or one without a usable PEM certificate.
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(platform_roots = added, "TLS roots loaded");
        if let Some(path) = ca_file {
            let text = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            let certs = CertificateDer::pem_slice_iter(&text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| {
                    anyhow!("{} is not a PEM certificate file ({err})", path.display())
                })?;
            if certs.is_empty() {
                bail!("{} holds no PEM CERTIFICATE block", path.display());
            }
            for cert in certs {
                roots.add(cert).map_err(|err| {
                    anyhow!("{} holds an unusable CA certificate: {err}", path.display())
                })?;
            }
        }
        let config = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS 1.2/1.3")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// An HTTP client over this configuration.
    ///
    /// # Errors
    /// When reqwest cannot build the client.
    pub fn http(&self, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("phlix-agent/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured((*self.config).clone())
            .build()?)
    }

    /// The rustls configuration (for `wss://` WebSocket connections, [`crate::ws`]).
    #[must_use]
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

/// The host of `scheme://host[:port]/…`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority, |(host, _)| host.trim_start_matches('['));
    }
    authority.split(':').next().unwrap_or_default()
}

/// `cause` itself as a rustls error (io::Error hides its inner error from `source()`, so it
/// is opened by hand).
fn as_rustls<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause = cause;
    // reqwest nests io::Errors (Other around InvalidData around the rustls error).
    for _ in 0..8 {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = cause.downcast_ref::<std::io::Error>()?.get_ref()?;
        cause = inner;
    }
    None
}

/// The TLS problem somewhere in `err`'s chain, in words (`None` when it is not a TLS one).
#[must_use]
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(current) = cause {
        if let Some(tls) = as_rustls(current) {
            return Some(reason(tls));
        }
        cause = current.source();
    }
    None
}

/// Why the certificate of a host was refused, in words.
fn reason(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "its certificate is signed by a CA this agent does not trust (for a private CA, pass --ca-file or set PHLIX_CA_FILE)".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "its certificate has expired".into(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "its certificate is not valid for this host name".into(),
        rustls::Error::InvalidCertificate(other) => {
            format!("its certificate was refused ({other:?})")
        }
        other => format!("the TLS handshake failed ({other})"),
    }
}

/// `err` with a first line naming the host of `url` and the reason when the failure is a TLS
/// one; `err` unchanged otherwise.
#[must_use]
pub fn explain(err: anyhow::Error, url: &str) -> anyhow::Error {
    match err.chain().find_map(as_rustls) {
        Some(cause) => {
            let text = format!("TLS: cannot trust {}: {}", host_of(url), reason(cause));
            err.context(text)
        }
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_reasons() {
        assert_eq!(host_of("wss://hub.example.com:8802"), "hub.example.com");
        assert_eq!(host_of("https://[::1]:8800/x"), "::1");
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let err = explain(
            anyhow::Error::new(io).context("connecting"),
            "wss://h.example:1",
        );
        let text = format!("{err:#}");
        assert!(
            text.starts_with("TLS: cannot trust h.example: its certificate is signed by a CA"),
            "{text}"
        );
        let plain = explain(anyhow!("refused"), "wss://h.example:1");
        assert_eq!(plain.to_string(), "refused");
    }

    #[test]
    fn bad_ca_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let err = TlsClient::new(Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("cannot read the CA file"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        let err = TlsClient::new(Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("no PEM CERTIFICATE"), "{err}");
        assert!(TlsClient::new(None).is_ok());
    }
}
