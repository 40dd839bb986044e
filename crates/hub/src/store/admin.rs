//! The admin console's queries (SPEC Q): the user list, guarded changes of admins, disabling,
//! sessions, and the dashboard's figures.

use super::{BeginWrite, Store, StoreResult, dispatch};

/// A user as the admin console lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminUserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
    pub last_login_at: Option<i64>,
    pub server_count: i64,
}

/// The outcome of a change that may lower the number of active admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    Done,
    NotFound,
    /// It would leave no enabled admin.
    LastAdmin,
}

/// What a guarded change does to its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardedAction {
    Delete,
    SetAdmin(bool),
    SetDisabled(bool),
}

macro_rules! admin_user_sql {
    ($($tail:expr),*) => {
        concat!(
            "SELECT u.id, u.username, u.email, u.display_name, u.is_admin, u.created_at, \
                    u.updated_at, u.disabled_at, u.last_login_at, \
                    (SELECT COUNT(*) FROM servers s WHERE s.user_id = u.id) AS server_count \
             FROM users u ",
            $($tail),*
        )
    };
}

/// `%text%` for `LIKE … ESCAPE '\'`, with the wildcards of `text` escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Users whose user name or e-mail contains `query` (all when `None`), by user name, with
    /// the total count of matches.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn list_users(
        &self,
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AdminUserRow>, i64)> {
        let pattern = query.map(contains_pattern);
        dispatch!(self, |pool| {
            let rows = sqlx::query_as::<_, AdminUserRow>(admin_user_sql!(
                "WHERE ($1 IS NULL OR lower(u.username) LIKE $1 ESCAPE '\\' OR u.email LIKE $1 ESCAPE '\\') \
                 ORDER BY lower(u.username), u.id LIMIT $2 OFFSET $3"
            ))
            .bind(&pattern)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users u \
                 WHERE ($1 IS NULL OR lower(u.username) LIKE $1 ESCAPE '\\' OR u.email LIKE $1 ESCAPE '\\')",
            )
            .bind(&pattern)
            .fetch_one(pool)
            .await?;
            Ok((rows, total))
        })
    }

    /// One user as the admin console shows it.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn admin_user(&self, id: &str) -> StoreResult<Option<AdminUserRow>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_as::<_, AdminUserRow>(admin_user_sql!("WHERE u.id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// Changes a user's name, e-mail and/or password hash (`None` keeps it). A new password
    /// ends the user's sessions (a new session epoch).
    ///
    /// # Errors
    /// `Conflict("username" | "email")` when taken.
    pub async fn update_user(
        &self,
        id: &str,
        username: Option<&str>,
        email: Option<&str>,
        password_hash: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE users SET username = COALESCE($2, username), email = COALESCE($3, email), \
                 password_hash = COALESCE($4, password_hash), \
                 session_epoch = CASE WHEN $4 IS NULL THEN session_epoch ELSE session_epoch + 1 END, \
                 updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(username)
            .bind(email)
            .bind(password_hash)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1)
        })
    }

    /// Ends every session of a user: their session epoch goes up, so every token minted before
    /// is refused.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn end_sessions(&self, id: &str, now: i64) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE users SET session_epoch = session_epoch + 1, updated_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1)
        })
    }

    /// Records a successful sign-in.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn touch_login(&self, id: &str, now: i64) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes, (de)promotes or (en|dis)ables a user in one transaction that first takes the
    /// admin guard row, so concurrent changes run one after the other and the last enabled
    /// admin cannot be removed, demoted or disabled.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn guarded_user_change(
        &self,
        id: &str,
        action: GuardedAction,
        now: i64,
    ) -> StoreResult<AdminChange> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE admin_guard SET changed_at = $1 WHERE id = 1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let target: Option<(bool, Option<i64>)> =
                sqlx::query_as("SELECT is_admin, disabled_at FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((is_admin, disabled_at)) = target else {
                return Ok(AdminChange::NotFound);
            };
            let removes_an_admin = is_admin
                && disabled_at.is_none()
                && matches!(
                    action,
                    GuardedAction::Delete
                        | GuardedAction::SetAdmin(false)
                        | GuardedAction::SetDisabled(true)
                );
            if removes_an_admin {
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users WHERE is_admin AND disabled_at IS NULL AND id <> $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if others == 0 {
                    return Ok(AdminChange::LastAdmin);
                }
            }
            match action {
                GuardedAction::Delete => {
                    sqlx::query("DELETE FROM users WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                GuardedAction::SetAdmin(admin) => {
                    sqlx::query("UPDATE users SET is_admin = $2, updated_at = $3 WHERE id = $1")
                        .bind(id)
                        .bind(admin)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                GuardedAction::SetDisabled(disabled) => {
                    // Disabling also ends every session; enabling keeps them ended.
                    sqlx::query(
                        "UPDATE users SET disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, $3) ELSE NULL END, \
                         session_epoch = CASE WHEN $2 THEN session_epoch + 1 ELSE session_epoch END, \
                         updated_at = $3 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(disabled)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(AdminChange::Done)
        })
    }

    /// Deletes every client relay token of a user (account disabled).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn revoke_relay_tokens_of(&self, user_id: &str) -> StoreResult<u64> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query("DELETE FROM client_relay_tokens WHERE user_id = $1")
                    .bind(user_id)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            )
        })
    }

    /// The ids of a user's servers.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn server_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_scalar::<_, String>("SELECT id FROM servers WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_all(pool)
                    .await?,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_wildcards_in_the_search_text_are_escaped() {
        assert_eq!(contains_pattern("Ann"), "%ann%");
        assert_eq!(contains_pattern("50%_x\\"), "%50\\%\\_x\\\\%");
        assert_eq!(contains_pattern("' OR 1=1 --"), "%' or 1=1 --%");
    }
}
