//! `phlix-agent`: the home side of phlix-hub.
//!
//! This build only carries the command-line skeleton; pairing, heartbeats and the tunnel land
//! with the agent issue (see SPEC K).

use clap::Parser;

/// The home side of phlix-hub: pairs a home server with a hub, sends heartbeats and keeps the
/// reverse tunnel so that the hub can reach a local service (for example a Jellyfin on
/// 127.0.0.1:8096) without an open port.
///
/// This build contains no subcommands yet: `pair`, `run`, `connect` and `status` arrive with the
/// agent release described in the hub's README.
#[derive(Debug, Parser)]
#[command(name = "phlix-agent", version, about, long_about)]
struct Cli {}

fn main() {
    let Cli {} = Cli::parse();
    eprintln!("phlix-agent: no command yet in this build; see `phlix-agent --help`");
    std::process::exit(2);
}
