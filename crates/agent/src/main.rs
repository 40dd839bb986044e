//! `phlix-agent` binary: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use phlix_agent::pair::{PairOptions, pair};
use phlix_agent::state::{DataDir, jwt_expiry};

/// The home side of phlix-hub: pairs a home server with a hub so that the hub can reach a
/// local service (for example a Jellyfin on 127.0.0.1:8096) without an open port.
///
/// This release has `pair` and `status`; `run` (heartbeats and the tunnel) and `connect`
/// come with the next release.
#[derive(Debug, Parser)]
#[command(name = "phlix-agent", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct DataArgs {
    /// Where the agent keeps its key and enrollment.
    #[arg(
        long,
        env = "PHLIX_AGENT_DATA_DIR",
        default_value = "./phlix-agent-data"
    )]
    data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pair with a hub: shows a claim code to redeem in the hub's web UI and waits for it.
    Pair {
        /// The hub's public URL, e.g. https://hub.example.com.
        #[arg(long, env = "PHLIX_HUB_URL")]
        hub: String,
        /// Name of this server in the hub [default: the host name].
        #[arg(long)]
        name: Option<String>,
        /// Pair again even if this agent is already paired.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show the enrollment: hub, server id, token expiry.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "phlix-agent".to_owned())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Pair {
            hub,
            name,
            force,
            data,
        } => {
            let data = DataDir::open(&data.data_dir)?;
            if let Some(existing) = data.enrollment()?
                && !force
            {
                println!(
                    "already paired with {} as server {}; use --force to pair again",
                    existing.hub_base_url, existing.server_id
                );
                return Ok(());
            }
            let name = name.unwrap_or_else(host_name);
            let options = PairOptions {
                hub,
                name,
                poll_interval: Duration::from_secs(2),
            };
            let enrollment = pair(&data, &options).await?;
            println!(
                "paired: server {} on {}",
                enrollment.server_id, enrollment.hub_base_url
            );
            println!(
                "enrollment stored in {}",
                data.path()
                    .join(phlix_agent::state::ENROLLMENT_FILE)
                    .display()
            );
            Ok(())
        }
        Command::Status { json, data } => {
            let data = DataDir::open(&data.data_dir)?;
            let Some(enrollment) = data.enrollment()? else {
                if json {
                    println!("{}", serde_json::json!({"paired": false}));
                } else {
                    println!("not paired: run `phlix-agent pair --hub URL`");
                }
                return Ok(());
            };
            let expires_at = jwt_expiry(&enrollment.enrollment_jwt);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "paired": true, "hub": enrollment.hub_base_url, "server_id": enrollment.server_id,
                        "enrolled_at": enrollment.enrolled_at, "token_expires_at": expires_at,
                    })
                );
            } else {
                println!("hub:        {}", enrollment.hub_base_url);
                println!("server id:  {}", enrollment.server_id);
                println!("enrolled:   {} (unix)", enrollment.enrolled_at);
                match expires_at {
                    Some(exp) => println!("token:      expires {exp} (unix)"),
                    None => println!("token:      unreadable — pair again with --force"),
                }
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("phlix-agent: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("phlix-agent: {err:#}");
            ExitCode::FAILURE
        }
    }
}
