//! Logging: JSON lines or pretty output, filtered by `HUB_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `format` `None` picks pretty on a terminal, JSON otherwise.
pub fn init(format: Option<LogFormat>, filter_var: &str) {
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let filter = EnvFilter::try_from_env(filter_var).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// A short, stable stand-in for a secret identifier in logs (a claim id, say): 8 hex digits of
/// its SHA-256, enough to follow one through the log, useless to redeem it.
#[must_use]
pub fn short_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(secret.as_bytes())[..4])
}
