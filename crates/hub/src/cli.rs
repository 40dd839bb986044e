//! The `phlix-hub` command line: `serve`, `migrate`, `user create`, `rotate-key`, `openapi`,
//! `version`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use phlix_proto::auth::RegisterRequest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::password::PasswordHasherPool;
use crate::config::{Config, ServeArgs};
use crate::server::{Bind, Listeners};
use crate::store::{Store, StoreError};

/// phlix-hub makes home servers behind NAT reachable from anywhere: they pair with the hub once,
/// send heartbeats and hold one outbound tunnel; the hub keeps the directory of users and servers.
///
/// Run `phlix-hub serve` with no configuration to start on SQLite in ./phlix-data.
#[derive(Debug, Parser)]
#[command(name = "phlix-hub", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: HTTP API (8800), tunnel listener (8802), client listener (8803).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit (`serve` also applies them at start).
    Migrate(StoreArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Replace the hub's Ed25519 signing key. Enrollment tokens signed by the old key keep
    /// verifying for 24 h (both keys are published in the JWKS meanwhile); a running hub picks
    /// the new key up within one reaper interval.
    RotateKey(KeyArgs),
    /// Print the OpenAPI 3.1 document of the HTTP API (the text `GET /api/openapi.json`
    /// serves) to standard output.
    Openapi,
    /// Print the version.
    Version,
}

/// Where the database is (same flags and variables as `serve`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory [env: HUB_DATA_DIR].
    #[arg(long, env = "HUB_DATA_DIR", default_value = "./phlix-data")]
    pub data_dir: PathBuf,
    /// Database URL [default: sqlite://<data-dir>/hub.db].
    #[arg(long, env = "HUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Where the keys are.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Data directory [env: HUB_DATA_DIR].
    #[arg(long, env = "HUB_DATA_DIR", default_value = "./phlix-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from --password-file, or from standard input
    /// (prompted when it is a terminal); it is never taken from a flag value.
    Create(UserCreateArgs),
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// User name: 3–50 letters, digits, '.', '_' or '-'.
    #[arg(long)]
    pub username: String,
    /// E-mail address.
    #[arg(long)]
    pub email: String,
    /// Make the user an admin (the first user of a hub always is).
    #[arg(long)]
    pub admin: bool,
    /// Read the password from this file (first line) instead of standard input.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// Runs a parsed command; returns the process exit code.
///
/// # Errors
/// Any failure, with a message meant for the operator.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => migrate(&args).await,
        Command::User(UserCommand::Create(args)) => create_user(args).await,
        Command::RotateKey(args) => {
            crate::config::create_private_dir(&args.data_dir)?;
            let (old, new) = crate::auth::keys::KeyRing::rotate(&args.data_dir)?;
            println!("rotated the hub signing key: {old} -> {new}");
            println!(
                "tokens signed by {old} keep verifying for 24 hours; running hubs reload the key by themselves"
            );
            Ok(())
        }
        Command::Openapi => {
            println!("{}", crate::openapi::json());
            Ok(())
        }
        Command::Version => {
            println!("phlix-hub {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    crate::telemetry::init(args.log_format, "HUB_LOG");
    let config = Config::load(&args)?;
    let http = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot bind the HTTP listener on {}", config.http_addr))?;
    let listeners = Listeners {
        http,
        tunnel: Bind::Addr(config.tunnel_addr),
        client: Bind::Addr(config.client_addr),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    crate::server::launch(config, listeners, shutdown).await
}

/// Cancels `token` on SIGTERM or SIGINT (Ctrl-C).
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
    token.cancel();
}

async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    crate::config::create_private_dir(&args.data_dir)?;
    let url = match &args.database_url {
        Some(url) => crate::config::DatabaseUrl::parse(url)?,
        None => crate::config::DatabaseUrl::Sqlite(format!(
            "sqlite://{}",
            args.data_dir.join("hub.db").display()
        )),
    };
    let store = Store::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {url:?}"))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

async fn migrate(args: &StoreArgs) -> anyhow::Result<()> {
    let store = open_store(args).await?;
    println!("database ({}) is up to date", store.backend());
    store.close().await;
    Ok(())
}

fn read_password(args: &UserCreateArgs) -> anyhow::Result<String> {
    let text = if let Some(path) = &args.password_file {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from standard input")?;
        text
    };
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

async fn create_user(args: UserCreateArgs) -> anyhow::Result<()> {
    let password = read_password(&args)?;
    let request = RegisterRequest {
        username: Some(args.username.clone()),
        email: Some(args.email.clone()),
        password: Some(password),
        display_name: None,
    };
    let registration = crate::domain::accounts::validate(&request).map_err(anyhow::Error::msg)?;
    let store = open_store(&args.store).await?;
    let result = crate::domain::accounts::register(
        &store,
        &PasswordHasherPool::default(),
        registration,
        args.admin,
    )
    .await;
    store.close().await;
    match result {
        Ok(user) => {
            println!(
                "created user {} ({}){}",
                user.username,
                user.id,
                if user.is_admin { " as admin" } else { "" }
            );
            Ok(())
        }
        Err(crate::domain::accounts::RegisterError::Store(StoreError::Conflict(column))) => {
            bail!("a user with this {column} already exists")
        }
        Err(err) => Err(err.into()),
    }
}
