//! `phlix-agent pair` (SPEC K, C.1–C.3): ask the hub for a claim code, show it, poll every 2 s
//! until the owner redeems it, store the enrollment.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::state::{DataDir, Enrollment, public_jwk};

/// How often the claim is polled (SPEC K).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What `pair` needs.
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// Base URL of the hub, without a trailing slash.
    pub hub: String,
    /// Server name shown in the hub (1–255 bytes).
    pub name: String,
    pub poll_interval: Duration,
    /// A private CA to trust besides the platform's and Mozilla's roots (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// Why pairing stopped; each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("cannot reach the hub at {hub}: {reason}")]
    Unreachable { hub: String, reason: String },
    #[error("{hub} does not look like a phlix hub ({detail})")]
    NotAHub { hub: String, detail: String },
    #[error("the hub at {hub} does not speak the Phlix protocol v1 (is it too old or too new?)")]
    Incompatible { hub: String },
    #[error("the hub refused the claim request: {0}")]
    Refused(String),
    #[error("the claim code expired before it was redeemed; run `phlix-agent pair` again")]
    Expired,
}

fn client(ca_file: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    crate::tls::TlsClient::new(ca_file)?.http(Duration::from_secs(30))
}

/// Sends one Phlix request and decodes the JSON answer, mapping transport and protocol
/// failures to a [`PairError`].
async fn call(request: reqwest::RequestBuilder, hub: &str) -> Result<(u16, Value), PairError> {
    let response = request
        .header("Accept-Phlix-Protocol", "v1")
        .send()
        .await
        .map_err(|err| PairError::Unreachable {
            hub: hub.to_owned(),
            reason: crate::tls::certificate_problem(&err).unwrap_or_else(|| root_cause(&err)),
        })?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|err| PairError::Unreachable {
            hub: hub.to_owned(),
            reason: root_cause(&err),
        })?;
    let body: Value = serde_json::from_str(&text).map_err(|_| PairError::NotAHub {
        hub: hub.to_owned(),
        detail: format!("HTTP {status} with a non-JSON answer"),
    })?;
    if body.get("error").and_then(Value::as_str) == Some("HUB_PROTOCOL_UNSUPPORTED") {
        return Err(PairError::Incompatible {
            hub: hub.to_owned(),
        });
    }
    Ok((status, body))
}

fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Shows progress on stderr: a spinner with the remaining time on a terminal, nothing otherwise.
struct Progress {
    tty: bool,
    tick: usize,
}

impl Progress {
    fn update(&mut self, remaining: i64) {
        if !self.tty {
            return;
        }
        const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];
        self.tick += 1;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{} waiting for the code to be redeemed ({}:{:02} left) ",
            FRAMES[self.tick % FRAMES.len()],
            remaining.max(0) / 60,
            remaining.max(0) % 60
        );
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// Pairs this agent with a hub and stores the enrollment in `data`.
///
/// # Errors
/// [`PairError`] (wrapped) for anything the operator must act on; I/O errors for the data dir.
pub async fn pair(data: &DataDir, options: &PairOptions) -> anyhow::Result<Enrollment> {
    pair_with(data, options, |code, redeem_at, expires_in| {
        println!();
        println!("    Claim code:  {code}");
        println!();
        println!(
            "Redeem it at {redeem_at} within {} minutes.",
            (expires_in + 59) / 60
        );
        let _ = std::io::stdout().flush();
    })
    .await
}

/// [`pair`], handing the claim code (with where to redeem it and its lifetime in seconds) to
/// `show` instead of printing it — for programs and tests that drive the pairing themselves.
///
/// # Errors
/// As [`pair`].
pub async fn pair_with(
    data: &DataDir,
    options: &PairOptions,
    show: impl FnOnce(&str, &str, i64),
) -> anyhow::Result<Enrollment> {
    let key = data.signing_key()?;
    let hub = options.hub.trim_end_matches('/').to_owned();
    if !(hub.starts_with("http://") || hub.starts_with("https://")) {
        bail!("--hub must be an http:// or https:// URL (got `{hub}`)");
    }
    let http = client(options.ca_file.as_deref())?;
    let body = json!({
        "serverName": options.name,
        "version": env!("CARGO_PKG_VERSION"),
        "publicKeysJwk": public_jwk(&key),
        "hostnameCandidates": [],
        "protocolVersion": "v1",
    });
    let (status, claim) = call(
        http.post(format!("{hub}/api/v1/server-claims/new"))
            .json(&body),
        &hub,
    )
    .await?;
    if status != 200 {
        let message = claim
            .get("message")
            .or_else(|| claim.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(PairError::Refused(format!("HTTP {status}: {message}")).into());
    }
    let (Some(code), Some(claim_id), Some(mut expires_in)) = (
        claim.get("claimCode").and_then(Value::as_str),
        claim.get("claimId").and_then(Value::as_str),
        claim.get("expiresIn").and_then(Value::as_i64),
    ) else {
        return Err(PairError::NotAHub {
            hub,
            detail: "the claim answer lacks claimCode/claimId/expiresIn".into(),
        }
        .into());
    };
    let redeem_at = format!(
        "{}/app/claim-server",
        claim
            .get("hubBaseUrl")
            .and_then(Value::as_str)
            .unwrap_or(&hub)
    );
    show(code, &redeem_at, expires_in);

    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        tick: 0,
    };
    let poll_url = format!("{hub}/api/v1/server-claims/{claim_id}");
    let step = i64::try_from(options.poll_interval.as_secs())
        .unwrap_or(2)
        .max(1);
    let answer = loop {
        tokio::time::sleep(options.poll_interval).await;
        expires_in -= step;
        progress.update(expires_in);
        let (_, answer) = call(http.get(&poll_url), &hub).await?;
        match answer.get("status").and_then(Value::as_str) {
            Some("pending") => {}
            Some("claimed") => break answer,
            Some("expired") => {
                progress.finish();
                return Err(PairError::Expired.into());
            }
            _ => {
                progress.finish();
                return Err(PairError::NotAHub {
                    hub,
                    detail: format!("unexpected claim status answer {answer}"),
                }
                .into());
            }
        }
    };
    progress.finish();
    let field = |name: &str| {
        answer
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context(format!("the claim answer lacks {name}"))
    };
    let enrollment = Enrollment {
        enrollment_jwt: field("enrollment_jwt")?,
        hub_jwks_url: field("hub_jwks_url")?,
        server_id: field("server_id")?,
        hub_base_url: hub,
        enrolled_at: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    data.save_enrollment(&enrollment)?;
    Ok(enrollment)
}
