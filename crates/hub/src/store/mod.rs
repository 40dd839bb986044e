//! Persistence: one `Store` over SQLite (the embedded default) or PostgreSQL (production and
//! scale-out), chosen from the database URL.
//!
//! Both backends run the same SQL text (`$N` placeholders, `ON CONFLICT`, `RETURNING` are
//! portable between SQLite ≥ 3.35 and PostgreSQL); `dispatch!` expands one body once per driver
//! so each query is type-checked against both. Migrations are per dialect, embedded in the
//! binary and append-only (`migrations/{sqlite,postgres}`). Times are unix seconds everywhere.

mod admin;
mod audit;
mod claims;
mod cluster;
mod console;
mod heartbeats;
mod quotas;
mod ratelimit;
mod relay;
mod requests;
mod servers;
mod settings;
mod shares;
mod tokens;
mod users;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use admin::{AdminChange, AdminUserRow, GuardedAction};
pub use audit::AuditEntry;
pub use claims::{ClaimRow, PollOutcome, Redemption};
pub use cluster::{AdvisoryLock, Listener, NodeRow, OwnerRow};
pub use console::{AuditFilter, AuditRow, StatsPoint, Summary};
pub use heartbeats::{HeartbeatOutcome, HeartbeatRecord, library_hash};
pub use quotas::{Bandwidth, DEFAULT_THROTTLE_BPS, period_start};
mod url;
pub use relay::{RelayTokenGrant, SessionCounters};
pub use requests::{NewRequest, RequestRow, RequestWrite};
pub use servers::{HeartbeatRow, LibraryRow, RelaySessionRow, ServerRow, UserLibraryRow};
pub use shares::{IncomingShareRow, InviteRow, NewShare, ShareRow, ShareWrite};
pub use tokens::TokenRow;
pub use url::{DatabaseUrl, redact_url};
pub use users::{NewUser, UserRow};
pub use webhooks::{AttemptOutcome, AttemptRow, DeliveryRow, WebhookRow};

/// Expands `$body` once for each backend with `$pool` bound to that backend's pool.
macro_rules! dispatch {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use dispatch;

/// How long a request waits for a database connection before it is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the storage layer, already classified for the HTTP mapping.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the payload names the column (`username`, `email`, …).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database cannot be reached right now (connection refused, pool timed out, …).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug or a corrupt database.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
                Self::Conflict(conflicting_column(&text))
            }
            _ => Self::Other(err),
        }
    }
}

/// Names the column behind a unique violation from the constraint name (PostgreSQL) or the
/// message (`UNIQUE constraint failed: users.email`, SQLite).
fn conflicting_column(text: &str) -> &'static str {
    // Index names of the migrations (PostgreSQL reports them) and column names (SQLite).
    const NEEDLES: [(&str, &str); 7] = [
        ("username", "username"),
        ("email", "email"),
        ("subdomain", "subdomain"),
        ("claim_code", "claim_code"),
        ("server_claims_code", "claim_code"),
        ("token_hash", "token_hash"),
        ("client_relay_tokens_hash", "token_hash"),
    ];
    NEEDLES
        .into_iter()
        .find(|(needle, _)| text.contains(needle))
        .map_or("record", |(_, column)| column)
}

/// Result alias of the storage layer.
pub type StoreResult<T> = Result<T, StoreError>;

/// Opens write transactions the way each backend needs: SQLite takes the write lock up front
/// (`BEGIN IMMEDIATE`) so that concurrent writers queue on the busy timeout instead of failing
/// with `SQLITE_BUSY` when a read lock cannot be upgraded.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error>> + Send
    {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>> + Send
    {
        self.begin()
    }
}

/// The hub's database: a connection pool of one backend.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Connects to the database named by `url` (creating the SQLite file if needed). Does not
    /// migrate.
    ///
    /// # Errors
    /// When the database cannot be opened or reached.
    pub async fn connect(url: &DatabaseUrl) -> StoreResult<Self> {
        match url {
            DatabaseUrl::Sqlite(url) => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(StoreError::Other)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                Ok(Self::Sqlite(pool))
            }
            DatabaseUrl::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    /// `sqlite` or `postgres`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Applies every embedded migration not yet applied.
    ///
    /// # Errors
    /// When a migration fails or the applied history does not match the embedded one.
    pub async fn migrate(&self) -> StoreResult<()> {
        let result = match self {
            Self::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Self::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        result.map_err(|err| StoreError::from(sqlx::Error::from(err)))
    }

    /// A cheap round trip, used by `/health`.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every connection (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        dispatch!(self, |pool| pool.close().await);
    }
}

#[cfg(test)]
mod tests {
    use super::conflicting_column;

    #[test]
    fn unique_violations_name_their_column() {
        assert_eq!(
            conflicting_column("UNIQUE constraint failed: users.email"),
            "email"
        );
        assert_eq!(
            conflicting_column("users_username_lower duplicate key"),
            "username"
        );
        assert_eq!(
            conflicting_column("server_claims_code duplicate key value"),
            "claim_code"
        );
        assert_eq!(
            conflicting_column("UNIQUE constraint failed: server_claims.claim_code"),
            "claim_code"
        );
        assert_eq!(
            conflicting_column("client_relay_tokens_hash duplicate"),
            "token_hash"
        );
        assert_eq!(conflicting_column("something else"), "record");
    }
}
