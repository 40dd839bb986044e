//! Personal access tokens (`mcp_tokens`): only the SHA-256 of a token is stored.

use super::{Store, StoreResult, dispatch};

/// A `mcp_tokens` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub name: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub session_epoch: i64,
    pub expires_at: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<i64>,
}

/// The columns of [`TokenRow`], for `concat!`.
macro_rules! columns {
    () => {
        "id, token_hash, user_id, name, scopes, session_epoch, expires_at, created_at, \
         last_used_at, last_used_ip, revoked_at"
    };
}

impl Store {
    /// Inserts a token.
    ///
    /// # Errors
    /// `Conflict("token_hash")` on a (astronomically unlikely) hash collision; database failures.
    pub async fn insert_token(&self, row: &TokenRow) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO mcp_tokens (id, token_hash, user_id, name, scopes, session_epoch, \
                 expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&row.id)
            .bind(&row.token_hash)
            .bind(&row.user_id)
            .bind(&row.name)
            .bind(&row.scopes)
            .bind(row.session_epoch)
            .bind(row.expires_at)
            .bind(row.created_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The token with this hash, revoked or not.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRow>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM mcp_tokens WHERE token_hash = $1"
        );
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, TokenRow>(sql)
                .bind(token_hash)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The user's tokens that are not revoked, newest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn tokens_of(&self, user_id: &str) -> StoreResult<Vec<TokenRow>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM mcp_tokens WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at DESC, id"
        );
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, TokenRow>(sql)
                .bind(user_id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// How many live (not revoked, not expired) tokens the user holds.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn live_token_count(&self, user_id: &str, now: i64) -> StoreResult<i64> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM mcp_tokens WHERE user_id = $1 AND revoked_at IS NULL \
                 AND expires_at > $2",
            )
            .bind(user_id)
            .bind(now)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Revokes the user's token `id`; false when the user has no such live token.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn revoke_token(&self, user_id: &str, id: &str, now: i64) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            let done = sqlx::query(
                "UPDATE mcp_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 \
                 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Records a use of the token (time and client address).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn touch_token(&self, id: &str, now: i64, ip: &str) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query("UPDATE mcp_tokens SET last_used_at = $2, last_used_ip = $3 WHERE id = $1")
                .bind(id)
                .bind(now)
                .bind(ip)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
