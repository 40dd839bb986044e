//! Accounts, the first-admin election and refresh-token revocation.

use super::{BeginWrite, Store, StoreError, StoreResult, dispatch};

/// A `users` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set while an admin has disabled the account (SPEC Q.1).
    pub disabled_at: Option<i64>,
    /// Tokens of another session epoch are refused; raised by sign-out everywhere, a disable
    /// and a password reset.
    pub session_epoch: i64,
    pub last_login_at: Option<i64>,
}

/// What registration writes. `email` must already be normalised (lowercase).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    /// Make this user an admin whether or not it wins the first-user election.
    pub force_admin: bool,
    pub now: i64,
}

impl Store {
    /// Inserts a user. The first user ever registered becomes admin: every registration tries
    /// to take the single `auth_signup_guard` row inside its own transaction, and the primary
    /// key lets exactly one of them win, however many sign up at once.
    ///
    /// # Errors
    /// `Conflict("username" | "email")` when either is taken.
    pub async fn create_user(&self, user: &NewUser) -> StoreResult<UserRow> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO users (id, username, email, password_hash, display_name, is_admin, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(&user.display_name)
            .bind(user.force_admin)
            .bind(user.now)
            .execute(&mut *tx)
            .await?;
            let elected = sqlx::query(
                "INSERT INTO auth_signup_guard (guard_key, user_id, elected_at) VALUES ('first_admin', $1, $2) \
                 ON CONFLICT (guard_key) DO NOTHING",
            )
            .bind(&user.id)
            .bind(user.now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if elected && !user.force_admin {
                sqlx::query("UPDATE users SET is_admin = TRUE WHERE id = $1")
                    .bind(&user.id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        self.user_by_id(&user.id)
            .await?
            .ok_or(StoreError::Other(sqlx::Error::RowNotFound))
    }

    /// Looks a user up by id.
    ///
    /// # Errors
    /// Database failures only; an unknown id is `Ok(None)`.
    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, UserRow>(
                "SELECT id, username, email, password_hash, display_name, is_admin, created_at, updated_at, \
                 disabled_at, session_epoch, last_login_at FROM users WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Looks a user up by user name (case-insensitive) or e-mail address.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, UserRow>(
                "SELECT id, username, email, password_hash, display_name, is_admin, created_at, updated_at, \
                 disabled_at, session_epoch, last_login_at \
                 FROM users WHERE lower(username) = lower($1) OR email = lower($1) \
                 ORDER BY (email = lower($1)) DESC LIMIT 1",
            )
            .bind(login)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Number of users, for the CLI and the admin summary.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn count_users(&self) -> StoreResult<i64> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await?)
        })
    }

    /// Revokes a refresh token id. Returns `false` when it was already revoked, which makes
    /// rotation race-free: of two concurrent refreshes with one token only one gets `true`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn revoke_refresh(
        &self,
        jti: &str,
        user_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            let done = sqlx::query(
                "INSERT INTO auth_revoked_refresh_tokens (jti, user_id, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(user_id)
            .bind(expires_at)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Whether a refresh token id has been revoked.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn is_refresh_revoked(&self, jti: &str) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM auth_revoked_refresh_tokens WHERE jti = $1",
            )
            .bind(jti)
            .fetch_one(pool)
            .await?
                > 0)
        })
    }

    /// Deletes revocations of tokens that have expired anyway.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn prune_revoked_refresh(&self, now: i64) -> StoreResult<u64> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query("DELETE FROM auth_revoked_refresh_tokens WHERE expires_at < $1")
                    .bind(now)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            )
        })
    }
}
