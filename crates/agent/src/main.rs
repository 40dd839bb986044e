//! `phlix-agent` binary: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use phlix_agent::pair::{PairOptions, pair};
use phlix_agent::state::{DataDir, jwt_expiry};

// mimalloc: allocation and free were ~11 % of the agent's CPU per small relayed request under
// glibc's malloc (BENCHMARKS.md, "Relay hot path"); mimalloc has no background threads, so an
// idle agent stays idle.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The home side of phlix-hub: pairs a home server with a hub so that the hub can reach a
/// local service (for example a Jellyfin on 127.0.0.1:8096) without an open port.
///
/// Pair once (`pair`), then keep `run` going: it sends heartbeats and holds the tunnel through
/// which the hub reaches the upstream service. Elsewhere, `connect` turns a local port into
/// raw channels to that service.
#[derive(Debug, Parser)]
#[command(name = "phlix-agent", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads that carry the relay's traffic [default: one per CPU core]. With 1 the agent
    /// runs on one thread, at the least CPU per relayed request (no hand-offs between
    /// threads); more spread many busy streams over several cores.
    #[arg(
        long,
        global = true,
        env = "PHLIX_AGENT_THREADS",
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    threads: Option<u16>,
}

/// Trust for `https://` / `wss://` hubs.
#[derive(Debug, Args)]
struct TlsArgs {
    /// PEM certificate(s) of a private CA to trust besides the platform's and Mozilla's roots.
    #[arg(long, env = "PHLIX_CA_FILE")]
    ca_file: Option<PathBuf>,
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
        tls: TlsArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Send heartbeats and keep the tunnel to the hub, forwarding to a local upstream.
    Run {
        /// The local service, HOST:PORT (e.g. 127.0.0.1:8096 for a Jellyfin).
        #[arg(long, env = "PHLIX_AGENT_UPSTREAM")]
        upstream: String,
        /// Heartbeat interval.
        #[arg(long, default_value = "60s", value_parser = phlix_common::parse_duration)]
        heartbeat_interval: Duration,
        /// Base of the reconnect back-off (min(base·2ⁿ, 300 s) ± 30 %).
        #[arg(long, default_value = "5s", value_parser = phlix_common::parse_duration)]
        reconnect_base: Duration,
        /// Tunnel URL [default: asked from the hub, else ws://<hub host>:8802].
        #[arg(long, env = "PHLIX_RELAY_HUB_WS_URL")]
        tunnel_url: Option<String>,
        /// Log format [default: pretty on a terminal, json otherwise].
        #[arg(long, value_parser = ["json", "pretty"])]
        log_format: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Reach a paired server from here: every TCP connection to --listen becomes a raw channel
    /// to the server's upstream through the hub.
    Connect {
        /// The hub's public URL.
        #[arg(long, env = "PHLIX_HUB_URL")]
        hub: String,
        /// The server's id (see `GET /api/v1/me/servers`).
        #[arg(long)]
        server: String,
        /// A relay token minted with `POST /api/v1/me/servers/{id}/relay-token`.
        #[arg(
            long,
            env = "PHLIX_RELAY_TOKEN",
            conflicts_with = "user",
            required_unless_present = "user"
        )]
        token: Option<String>,
        /// Log in as this hub user instead (password from PHLIX_PASSWORD_FILE or a prompt);
        /// relay tokens are then minted and renewed automatically.
        #[arg(long)]
        user: Option<String>,
        /// Local address to listen on.
        #[arg(long, default_value = "127.0.0.1:8022")]
        listen: String,
        #[command(flatten)]
        tls: TlsArgs,
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

fn init_logs(format: Option<&str>) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHLIX_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = format.map_or(!std::io::stdout().is_terminal(), |f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

async fn cancel_on_signal(token: tokio_util::sync::CancellationToken) {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    token.cancel();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Pair {
            hub,
            name,
            force,
            tls,
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
            let name = name.unwrap_or_else(|| phlix_common::host_name("phlix-agent"));
            let options = PairOptions {
                hub,
                name,
                poll_interval: Duration::from_secs(2),
                ca_file: tls.ca_file,
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
        Command::Run {
            upstream,
            heartbeat_interval,
            reconnect_base,
            tunnel_url,
            log_format,
            tls,
            data,
        } => {
            init_logs(log_format.as_deref());
            let data = DataDir::open(&data.data_dir)?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            let options = phlix_agent::run::RunOptions {
                upstream,
                heartbeat_interval,
                reconnect_base,
                tunnel_url,
                ca_file: tls.ca_file,
            };
            phlix_agent::run::run(data, options, shutdown).await
        }
        Command::Connect {
            hub,
            server,
            token,
            user,
            listen,
            tls,
        } => {
            init_logs(None);
            let credentials = match (token, user) {
                (Some(token), _) => phlix_agent::connect::Credentials::Token(token),
                (None, Some(username)) => {
                    let password = match std::env::var("PHLIX_PASSWORD_FILE") {
                        Ok(path) => std::fs::read_to_string(&path)
                            .map_err(|err| {
                                anyhow::anyhow!("reading PHLIX_PASSWORD_FILE={path}: {err}")
                            })?
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                        Err(_) => rpassword::prompt_password(format!("Password for {username}: "))?,
                    };
                    phlix_agent::connect::Credentials::User { username, password }
                }
                (None, None) => anyhow::bail!("give --token or --user"),
            };
            let shutdown = tokio_util::sync::CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            let options = phlix_agent::connect::ConnectOptions {
                hub,
                server_id: server,
                credentials,
                listen,
                ca_file: tls.ca_file,
            };
            phlix_agent::connect::connect(options, shutdown).await
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
            let run = data.run_state();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "paired": true, "hub": enrollment.hub_base_url, "server_id": enrollment.server_id,
                        "enrolled_at": enrollment.enrolled_at, "token_expires_at": expires_at,
                        "tunnel": run.as_ref().map(|r| r.tunnel.clone()),
                        "tunnel_since": run.as_ref().map(|r| r.tunnel_since),
                        "last_heartbeat_at": run.as_ref().and_then(|r| r.last_heartbeat_at),
                        "last_heartbeat_result": run.as_ref().and_then(|r| r.last_heartbeat_result.clone()),
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
                match run {
                    Some(run) => {
                        println!(
                            "tunnel:     {} since {} (unix), upstream {}",
                            run.tunnel, run.tunnel_since, run.upstream
                        );
                        match (run.last_heartbeat_at, run.last_heartbeat_result) {
                            (Some(at), Some(result)) => {
                                println!("heartbeat:  {at} (unix), {result}")
                            }
                            _ => println!("heartbeat:  none yet"),
                        }
                    }
                    None => println!("tunnel:     `phlix-agent run` has not run here"),
                }
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = match cli.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = threads {
                builder.worker_threads(usize::from(threads));
            }
            builder
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("phlix-agent: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // With several threads the command runs as a task on the runtime's workers, not in
    // `block_on` on the main thread: there every frame the tunnel's reader handed to a worker,
    // and every answer it waited for, crossed between threads (a futex wake-up each way per
    // relayed request). With one thread the task runs right here.
    let outcome = runtime.block_on(async {
        tokio::spawn(run(cli))
            .await
            .unwrap_or_else(|err| Err(anyhow::anyhow!("the command stopped: {err}")))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("phlix-agent: {err:#}");
            ExitCode::FAILURE
        }
    }
}
