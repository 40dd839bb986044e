//! Pairing a `phlix-agent` data dir through the claim flow (SPEC C), as its owner would: the
//! agent library asks for a claim code and polls, and `redeem` is the owner redeeming the code
//! in the hub (each suite calls the hub its own way: through a balancer, over TLS, …).

use std::path::PathBuf;
use std::time::Duration;

use phlix_agent::state::{DataDir, Enrollment};

/// Pairs a new data dir with the hub at `base` under the server name `name`, trusting
/// `ca_file`; `redeem` gets the claim code and must redeem it (asserting its own answer).
/// Returns the data dir, the temporary directory holding it and the enrollment.
pub async fn pair_through_claim(
    base: &str,
    name: &str,
    ca_file: Option<PathBuf>,
    redeem: impl AsyncFnOnce(String),
) -> (DataDir, tempfile::TempDir, Enrollment) {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(dir.path()).unwrap();
    let options = phlix_agent::pair::PairOptions {
        hub: base.to_owned(),
        name: name.into(),
        poll_interval: Duration::from_millis(200),
        ca_file,
    };
    let (code_tx, code_rx) = tokio::sync::oneshot::channel();
    let pairing = tokio::spawn({
        let data = data.clone();
        async move {
            phlix_agent::pair::pair_with(&data, &options, |code, _, _| {
                let _ = code_tx.send(code.to_owned());
            })
            .await
        }
    });
    redeem(code_rx.await.unwrap()).await;
    let enrollment = pairing.await.unwrap().unwrap();
    (data, dir, enrollment)
}
