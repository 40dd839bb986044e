//! Certificates from an ACME CA (RFC 8555) through instant-acme: the account key and the
//! certificate live in `<data-dir>/acme/` (mode 0600); the challenge is TLS-ALPN-01 (RFC 8737)
//! answered on the API port by [`super::Certs`], so no port 80 is needed. The certificate is
//! renewed once it has less than `renew_before` (30 days) left; a failed attempt is logged,
//! counted, retried with back-off, and the old certificate keeps being served meanwhile.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Tls, load_pair, pair_from_pem, provider};
use crate::config::edge::AcmeSettings;
use crate::config::write_private_file;

const ACCOUNT_FILE: &str = "account.json";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";
/// Which names and CA the stored certificate was issued for.
const META_FILE: &str = "certificate.json";

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct StoredMeta {
    directory: String,
    domains: Vec<String>,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The certificate stored by an earlier run, when it was issued for these names by this CA.
///
/// # Errors
/// Stored files that do not load.
pub fn load_stored(
    data_dir: &Path,
    settings: &AcmeSettings,
) -> anyhow::Result<Option<Arc<CertifiedKey>>> {
    let dir = data_dir.join("acme");
    let Ok(meta) = std::fs::read_to_string(dir.join(META_FILE)) else {
        return Ok(None);
    };
    let wanted = StoredMeta {
        directory: settings.directory.clone(),
        domains: settings.domains.clone(),
    };
    if serde_json::from_str::<StoredMeta>(&meta).ok().as_ref() != Some(&wanted) {
        tracing::info!("the stored ACME certificate is for other names or another CA");
        return Ok(None);
    }
    load_pair(&dir.join(CERT_FILE), &dir.join(KEY_FILE)).map(Some)
}

/// Obtains the certificate when there is none or it is due, then sleeps until the next
/// check; [`Tls::refresh_now`] (SIGHUP) forces a renewal.
pub(super) async fn run(tls: &Tls, settings: &AcmeSettings, shutdown: &CancellationToken) {
    let edge = &tls.edge;
    let renew_before = i64::try_from(edge.renew_before.as_secs()).unwrap_or(i64::MAX);
    let mut account: Option<Account> = None;
    let mut retry = edge.acme_retry;
    let mut forced = false;
    loop {
        let due_at = tls
            .certs
            .not_after()
            .map_or(i64::MIN, |not_after| not_after.saturating_sub(renew_before));
        let wait = if forced || now_unix() >= due_at {
            match obtain(tls, settings, &mut account).await {
                Ok(()) => {
                    retry = edge.acme_retry;
                    tls.set_last_error(None);
                    continue_after(tls, renew_before, edge.acme_check)
                }
                Err(err) => {
                    tls.stats.acme_failures.fetch_add(1, Ordering::Relaxed);
                    let text = format!("{err:#}");
                    tracing::error!(
                        error = %text,
                        retry_in_s = retry.as_secs(),
                        has_certificate = tls.certs.has_certificate(),
                        "ACME certificate request failed; the current certificate stays in use"
                    );
                    tls.set_last_error(Some(text));
                    // A lost connection may have left the account unusable: log in again.
                    account = None;
                    let wait = retry;
                    retry = (retry * 2).min(edge.acme_check.max(edge.acme_retry));
                    wait
                }
            }
        } else {
            continue_after(tls, renew_before, edge.acme_check)
        };
        forced = tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => false,
            () = tls.refresh.notified() => true,
        };
    }
}

/// Time until the certificate is due for renewal, at most `check`.
fn continue_after(tls: &Tls, renew_before: i64, check: Duration) -> Duration {
    let due_at = tls
        .certs
        .not_after()
        .map_or(0, |not_after| not_after.saturating_sub(renew_before));
    let left = u64::try_from(due_at - now_unix()).unwrap_or(0);
    Duration::from_secs(left)
        .min(check)
        .max(Duration::from_secs(1))
}

/// The account: the stored one for this directory, else a new one (stored 0600).
async fn open_account(dir: &Path, settings: &AcmeSettings) -> anyhow::Result<Account> {
    let builder = || match &settings.ca_file {
        Some(path) => Account::builder_with_root(path).with_context(|| {
            format!(
                "cannot use --acme-ca-file {} as the ACME CA root",
                path.display()
            )
        }),
        None => Account::builder().context("cannot build the ACME HTTP client"),
    };
    let path = dir.join(ACCOUNT_FILE);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(stored) = serde_json::from_str::<StoredAccount>(&text)
        && stored.directory == settings.directory
    {
        return builder()?
            .from_credentials(stored.credentials)
            .await
            .with_context(|| format!("cannot reach the ACME directory {}", settings.directory));
    }
    let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await
        .with_context(|| {
            format!(
                "cannot create an account at the ACME directory {}",
                settings.directory
            )
        })?;
    let stored = StoredAccount {
        directory: settings.directory.clone(),
        credentials,
    };
    write_private_file(&path, serde_json::to_string(&stored)?.as_bytes())?;
    tracing::info!(directory = %settings.directory, "ACME account created");
    Ok(account)
}

/// The self-signed certificate that answers a TLS-ALPN-01 challenge for `name`.
fn challenge_certificate(name: &str, digest: &[u8]) -> anyhow::Result<Arc<CertifiedKey>> {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `from_der`: its key check parses the certificate with webpki, which refuses the
    // critical acmeIdentifier extension this certificate exists for.
    let signer = provider().key_provider.load_private_key(private)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// One order: challenges published, order finalised, certificate stored and installed.
async fn obtain(
    tls: &Tls,
    settings: &AcmeSettings,
    account: &mut Option<Account>,
) -> anyhow::Result<()> {
    let dir = tls.acme_dir();
    crate::config::create_private_dir(&dir)?;
    let account = match account {
        Some(account) => account,
        None => account.insert(open_account(&dir, settings).await?),
    };
    tracing::info!(domains = ?settings.domains, "requesting a certificate from the ACME CA");
    let identifiers: Vec<Identifier> = settings
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .context("the ACME CA refused the order")?;
    let mut published = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.context("reading an ACME authorization")?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => bail!("an ACME authorization is {other:?}"),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| anyhow!("the ACME CA offers no tls-alpn-01 challenge"))?;
            let name = challenge.identifier().to_string().to_ascii_lowercase();
            let key = challenge_certificate(&name, challenge.key_authorization().digest().as_ref())
                .context("making the TLS-ALPN-01 challenge certificate")?;
            tls.certs.set_challenge(&name, Some(key));
            published.push(name);
            challenge
                .set_ready()
                .await
                .context("the ACME CA refused the challenge")?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(120));
        let status = order.poll_ready(&retries).await.context("ACME order")?;
        if status != OrderStatus::Ready {
            bail!("the ACME order ended {status:?} (is the API port reachable as port 443?)");
        }
        let key_pem = order
            .finalize()
            .await
            .context("finalising the ACME order")?;
        let chain_pem = order
            .poll_certificate(&retries)
            .await
            .context("downloading the certificate")?;
        Ok((chain_pem, key_pem))
    }
    .await;
    for name in &published {
        tls.certs.set_challenge(name, None);
    }
    let (chain_pem, key_pem) = result?;
    let pair = pair_from_pem(
        chain_pem.as_bytes(),
        key_pem.as_bytes(),
        "the ACME certificate",
        "its key",
    )?;
    write_private_file(&dir.join(KEY_FILE), key_pem.as_bytes())?;
    write_private_file(&dir.join(CERT_FILE), chain_pem.as_bytes())?;
    let meta = StoredMeta {
        directory: settings.directory.clone(),
        domains: settings.domains.clone(),
    };
    write_private_file(
        &dir.join(META_FILE),
        serde_json::to_string(&meta)?.as_bytes(),
    )?;
    tls.certs.install(pair);
    tls.stats.reloads.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        domains = ?settings.domains,
        not_after = tls.certs.not_after(),
        "ACME certificate installed"
    );
    Ok(())
}
