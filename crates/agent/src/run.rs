//! `phlix-agent run` (SPEC K): heartbeats every minute, one reverse tunnel kept open with the
//! Phlix back-off (each connection is `crate::tunnel`); what arrives through it is answered by
//! [`crate::upstream`].

use std::time::Duration;

use anyhow::bail;
use rand::RngExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Sampler;
use crate::state::{DataDir, Enrollment, RunState};
use crate::tls::TlsClient;
use crate::tunnel::Ended;
use crate::upstream::Upstream;

/// Shared view of the running agent, written to `agent-state.json` for `status`.
#[derive(Clone)]
pub(crate) struct Reporter {
    data: DataDir,
    state: std::sync::Arc<std::sync::Mutex<RunState>>,
}

impl Reporter {
    fn update(&self, change: impl FnOnce(&mut RunState)) {
        let snapshot = {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            change(&mut state);
            state.clone()
        };
        if let Err(err) = self.data.save_run_state(&snapshot) {
            tracing::debug!(error = format!("{err:#}"), "cannot write agent-state.json");
        }
    }

    pub(crate) fn tunnel(&self, state: &str) {
        self.update(|s| {
            s.tunnel = state.to_owned();
            s.tunnel_since = now();
        });
    }
}

/// What `run` needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `HOST:PORT` of the local service.
    pub upstream: String,
    /// Heartbeat interval (60 s).
    pub heartbeat_interval: Duration,
    /// Base of the reconnect back-off (5 s): `min(base·2ⁿ, 300 s) × (1 ± 0.3)`.
    pub reconnect_base: Duration,
    /// Tunnel URL override (`PHLIX_RELAY_HUB_WS_URL`); otherwise asked from the hub.
    pub tunnel_url: Option<String>,
    /// A private CA to trust besides the platform's and Mozilla's roots (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// Renew the enrollment once it is this old (6 days, SPEC C.5).
const RENEW_AFTER_SECS: i64 = 518_400;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn http_client(tls: &TlsClient) -> anyhow::Result<reqwest::Client> {
    tls.http(Duration::from_secs(30))
}

/// Runs until `shutdown` is cancelled.
///
/// # Errors
/// Not paired, or an unusable data dir; network trouble is retried, never fatal.
pub async fn run(
    data: DataDir,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(enrollment) = data.enrollment()? else {
        bail!("not paired: run `phlix-agent pair --hub URL` first");
    };
    let tls = TlsClient::new(options.ca_file.as_deref())?;
    // Fails here, not silently in the heartbeat task, when reqwest cannot use it.
    http_client(&tls)?;
    tracing::info!(hub = %enrollment.hub_base_url, server_id = %enrollment.server_id, upstream = %options.upstream, "phlix-agent running");
    let (enrollment_tx, enrollment_rx) = watch::channel(enrollment);
    let reporter = Reporter {
        data: data.clone(),
        state: std::sync::Arc::new(std::sync::Mutex::new(RunState {
            upstream: options.upstream.clone(),
            pid: std::process::id(),
            ..RunState::default()
        })),
    };
    reporter.tunnel("connecting");
    let heartbeats = tokio::spawn(heartbeat_loop(
        data.clone(),
        options.clone(),
        enrollment_tx,
        reporter.clone(),
        tls.clone(),
        shutdown.clone(),
    ));
    tunnel_loop(&options, enrollment_rx, &reporter, &tls, &shutdown).await;
    let _ = heartbeats.await;
    reporter.tunnel("stopped");
    tracing::info!("phlix-agent stopped");
    Ok(())
}

fn heartbeat_body(enrollment: &Enrollment, started: i64, sampler: &mut Sampler) -> Value {
    json!({
        "serverId": enrollment.server_id,
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": now(),
        "uptimeSeconds": now() - started,
        "activeSessions": 0,
        "activeTranscodes": 0,
        "hostnameCandidates": [],
        "hostMetrics": sampler.sample(),
    })
}

async fn heartbeat_loop(
    data: DataDir,
    options: RunOptions,
    enrollment: watch::Sender<Enrollment>,
    reporter: Reporter,
    tls: TlsClient,
    shutdown: CancellationToken,
) {
    let Ok(http) = http_client(&tls) else { return };
    let mut sampler = Sampler::default();
    let started = now();
    loop {
        let current = enrollment.borrow().clone();
        if now() - current.enrolled_at >= RENEW_AFTER_SECS {
            renew(&http, &data, &current, &enrollment).await;
        }
        let body = heartbeat_body(&current, started, &mut sampler);
        let url = format!(
            "{}/api/v1/servers/{}/heartbeat",
            current.hub_base_url, current.server_id
        );
        let result = http
            .post(&url)
            .header("Accept-Phlix-Protocol", "v1")
            .bearer_auth(&current.enrollment_jwt)
            .json(&body)
            .send()
            .await;
        let outcome = match &result {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "unreachable".to_owned(),
        };
        reporter.update(|s| {
            s.last_heartbeat_at = Some(now());
            s.last_heartbeat_result = Some(outcome);
        });
        match result {
            Ok(response) if response.status().is_success() => tracing::debug!("heartbeat sent"),
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                tracing::warn!(%status, body = %text, "heartbeat refused");
            }
            Err(err) => {
                let error = crate::tls::certificate_problem(&err).map_or_else(
                    || err.to_string(),
                    |problem| format!("TLS: cannot trust {}: {problem}", current.hub_base_url),
                );
                tracing::warn!(%error, "heartbeat failed; the hub is unreachable");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(options.heartbeat_interval) => {}
        }
    }
}

async fn renew(
    http: &reqwest::Client,
    data: &DataDir,
    current: &Enrollment,
    enrollment: &watch::Sender<Enrollment>,
) {
    let url = format!(
        "{}/api/v1/servers/{}/renew",
        current.hub_base_url, current.server_id
    );
    let answer = http
        .post(&url)
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(&current.enrollment_jwt)
        .json(&json!({}))
        .send()
        .await;
    let token = match answer {
        Ok(response) if response.status().is_success() => {
            response.json::<Value>().await.ok().and_then(|v| {
                v.get("enrollment_jwt")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        }
        Ok(response) => {
            tracing::warn!(status = %response.status(), "enrollment renewal refused");
            None
        }
        Err(err) => {
            tracing::warn!(error = %err, "enrollment renewal failed");
            None
        }
    };
    if let Some(token) = token {
        let renewed = Enrollment {
            enrollment_jwt: token,
            enrolled_at: now(),
            ..current.clone()
        };
        match data.save_enrollment(&renewed) {
            Ok(()) => tracing::info!("enrollment renewed"),
            Err(err) => tracing::error!(
                error = format!("{err:#}"),
                "cannot store the renewed enrollment"
            ),
        }
        enrollment.send_replace(renewed);
    }
}

/// The tunnel URL: the override, else the hub's signpost (`X-WS-Endpoint`), else
/// `ws://<hub host>:8802`.
async fn tunnel_url(options: &RunOptions, enrollment: &Enrollment, tls: &TlsClient) -> String {
    if let Some(url) = &options.tunnel_url {
        return url.clone();
    }
    if let Ok(http) = http_client(tls) {
        let url = format!(
            "{}/api/v1/servers/{}/relay",
            enrollment.hub_base_url, enrollment.server_id
        );
        if let Ok(response) = http
            .post(&url)
            .bearer_auth(&enrollment.enrollment_jwt)
            .send()
            .await
            && let Some(endpoint) = response
                .headers()
                .get("x-ws-endpoint")
                .and_then(|v| v.to_str().ok())
        {
            return endpoint.to_owned();
        }
    }
    let rest = enrollment
        .hub_base_url
        .split_once("://")
        .map_or(enrollment.hub_base_url.as_str(), |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("localhost");
    let scheme = if enrollment.hub_base_url.starts_with("https://") {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{host}:8802")
}

/// `min(base·2ⁿ, 300 s) × (1 ± 0.3)` (SPEC B.3).
#[must_use]
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempts.min(16)));
    let capped = exp.min(Duration::from_secs(300));
    let jitter = rand::rng().random_range(0.7..=1.3);
    capped.mul_f64(jitter)
}

async fn tunnel_loop(
    options: &RunOptions,
    enrollment: watch::Receiver<Enrollment>,
    reporter: &Reporter,
    tls: &TlsClient,
    shutdown: &CancellationToken,
) {
    let mut attempts: u32 = 0;
    let upstream = match Upstream::new(&options.upstream) {
        Ok(upstream) => upstream,
        Err(err) => {
            tracing::error!(
                error = format!("{err:#}"),
                "cannot build the upstream HTTP client"
            );
            return;
        }
    };
    loop {
        let current = enrollment.borrow().clone();
        let url = tunnel_url(options, &current, tls).await;
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = crate::tunnel::session(&url, &current, &upstream, reporter, tls, shutdown) => outcome,
        };
        reporter.tunnel("disconnected");
        let hub_left = matches!(outcome, Ok(Ended::HubLeft));
        match outcome {
            Ok(Ended::Closed | Ended::HubLeft) => {
                attempts = 0;
                tracing::info!("tunnel closed");
            }
            Ok(Ended::Refused) => tracing::warn!("tunnel refused or closed before HELLO_ACK"),
            Err(err) => tracing::warn!(error = format!("{err:#}"), "tunnel failed"),
        }
        if shutdown.is_cancelled() {
            return;
        }
        let delay = if hub_left {
            // Spread the reconnects of many agents over a moment, not a back-off.
            Duration::from_millis(rand::rng().random_range(0..=500))
        } else {
            attempts += 1;
            backoff(options.reconnect_base, attempts)
        };
        tracing::info!(retry_in_ms = delay.as_millis(), "reconnecting");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_caps_at_300_s_and_jitters_30_percent() {
        let base = Duration::from_secs(5);
        for _ in 0..100 {
            let first = backoff(base, 1).as_secs_f64();
            assert!((7.0..=13.0).contains(&first), "{first}");
            let late = backoff(base, 20).as_secs_f64();
            assert!((210.0..=390.0).contains(&late), "{late}");
        }
    }
}
