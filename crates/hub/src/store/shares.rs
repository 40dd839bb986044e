//! Library shares (SPEC M) and invite links (SPEC N). A share is active while `revoked_at` is
//! null and `expires_at` is null or in the future; every query here takes `now` for that.

use super::{BeginWrite, Store, StoreResult, dispatch};

/// A `library_shares` row with the collaborator's display name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ShareRow {
    pub id: String,
    pub owner_user_id: String,
    pub collaborator_user_id: String,
    pub server_id: String,
    pub library_id: String,
    pub library_name: String,
    pub permission_level: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The collaborator's display name, else username.
    pub collaborator_name: Option<String>,
}

/// A share as its collaborator sees it, with the owner and the server.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IncomingShareRow {
    pub share_id: String,
    pub owner_user_id: String,
    pub owner_name: String,
    pub server_id: String,
    pub server_name: String,
    pub library_id: String,
    pub library_name: String,
    pub permission_level: String,
    pub hostname_candidates_json: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub collaborator_relay: bool,
    pub relay_active: bool,
}

/// An `invite_links` row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InviteRow {
    pub id: String,
    pub owner_user_id: String,
    pub server_id: String,
    pub library_id: Option<String>,
    pub permission: String,
    pub max_uses: i64,
    pub use_count: i64,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// What a share write is asked to do.
#[derive(Debug, Clone)]
pub struct NewShare {
    pub id: String,
    pub owner_user_id: String,
    pub collaborator_user_id: String,
    pub server_id: String,
    pub library_id: String,
    pub library_name: String,
    pub permission_level: String,
    pub granted_by: String,
    pub expires_at: Option<i64>,
}

/// The outcome of [`Store::write_share`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareWrite {
    /// Created, or a revoked/expired share with the same key re-activated in place.
    Written(Box<ShareRow>),
    /// An active share with the same (owner, collaborator, library) exists.
    Exists,
    /// The server has `cap` distinct active collaborators already.
    CapReached,
    /// The invite link the write was to use has no use left (or expired) by now.
    InviteUnavailable,
}

/// `SELECT <ShareRow columns> FROM library_shares s JOIN users u … <tail>`.
macro_rules! share_sql {
    ($($tail:expr),*) => {
        concat!(
            "SELECT s.id, s.owner_user_id, s.collaborator_user_id, s.server_id, s.library_id, \
                    s.library_name, s.permission_level, s.created_at, s.expires_at, s.revoked_at, \
                    COALESCE(u.display_name, u.username) AS collaborator_name \
             FROM library_shares s JOIN users u ON u.id = s.collaborator_user_id ",
            $($tail),*
        )
    };
}

/// `SELECT <InviteRow columns> FROM invite_links <tail>`.
macro_rules! invite_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, owner_user_id, server_id, library_id, permission, max_uses, use_count, \
                    expires_at, created_at FROM invite_links ",
            $tail
        )
    };
}

/// `AND <alias>` is active at `$now_param`.
macro_rules! active {
    ($alias:literal, $now:literal) => {
        concat!(
            " ",
            $alias,
            ".revoked_at IS NULL AND (",
            $alias,
            ".expires_at IS NULL OR ",
            $alias,
            ".expires_at > ",
            $now,
            ") "
        )
    };
}

impl Store {
    /// Creates or re-activates a share in one transaction, after checking (in this order) the
    /// invite's remaining use when `invite_id` is given (taken in the same transaction), an
    /// active share with the same key, and the server's collaborator cap (`cap` 0 = none; a
    /// collaborator already on the server does not count twice).
    ///
    /// # Errors
    /// Database failures only; the refusals are in [`ShareWrite`].
    pub async fn write_share(
        &self,
        share: &NewShare,
        cap: i64,
        invite_id: Option<&str>,
        now: i64,
    ) -> StoreResult<ShareWrite> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // Serialises share writes per server on PostgreSQL (SQLite writes are serial
            // already), so the collaborator cap holds under concurrency.
            sqlx::query("UPDATE servers SET updated_at = updated_at WHERE id = $1")
                .bind(&share.server_id)
                .execute(&mut *tx)
                .await?;
            if let Some(invite_id) = invite_id {
                let taken = sqlx::query(
                    "UPDATE invite_links SET use_count = use_count + 1 \
                     WHERE id = $1 AND use_count < max_uses AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(invite_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken == 0 {
                    tx.rollback().await?;
                    return Ok(ShareWrite::InviteUnavailable);
                }
            }
            let existing: Option<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
                "SELECT id, revoked_at, expires_at FROM library_shares \
                 WHERE owner_user_id = $1 AND collaborator_user_id = $2 AND library_id = $3",
            )
            .bind(&share.owner_user_id)
            .bind(&share.collaborator_user_id)
            .bind(&share.library_id)
            .fetch_optional(&mut *tx)
            .await?;
            let active = |revoked: Option<i64>, expires: Option<i64>| {
                revoked.is_none() && expires.is_none_or(|e| e > now)
            };
            if let Some((_, revoked, expires)) = &existing
                && active(*revoked, *expires)
            {
                tx.rollback().await?;
                return Ok(ShareWrite::Exists);
            }
            if cap > 0 {
                let (others, present): (i64, i64) = sqlx::query_as(concat!(
                    "SELECT COUNT(DISTINCT CASE WHEN s.collaborator_user_id <> $2 THEN s.collaborator_user_id END), \
                            COUNT(CASE WHEN s.collaborator_user_id = $2 THEN 1 END) \
                     FROM library_shares s WHERE s.server_id = $1 AND",
                    active!("s", "$3")
                ))
                .bind(&share.server_id)
                .bind(&share.collaborator_user_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                if present == 0 && others >= cap {
                    tx.rollback().await?;
                    return Ok(ShareWrite::CapReached);
                }
            }
            let id = match existing {
                Some((id, _, _)) => {
                    sqlx::query(
                        "UPDATE library_shares SET server_id = $2, library_name = $3, permission_level = $4, \
                         granted_by = $5, created_at = $6, expires_at = $7, revoked_at = NULL WHERE id = $1",
                    )
                    .bind(&id)
                    .bind(&share.server_id)
                    .bind(&share.library_name)
                    .bind(&share.permission_level)
                    .bind(&share.granted_by)
                    .bind(now)
                    .bind(share.expires_at)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
                None => {
                    sqlx::query(
                        "INSERT INTO library_shares (id, owner_user_id, collaborator_user_id, server_id, library_id, \
                         library_name, permission_level, granted_by, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(&share.id)
                    .bind(&share.owner_user_id)
                    .bind(&share.collaborator_user_id)
                    .bind(&share.server_id)
                    .bind(&share.library_id)
                    .bind(&share.library_name)
                    .bind(&share.permission_level)
                    .bind(&share.granted_by)
                    .bind(now)
                    .bind(share.expires_at)
                    .execute(&mut *tx)
                    .await?;
                    share.id.clone()
                }
            };
            let row = sqlx::query_as::<_, ShareRow>(share_sql!("WHERE s.id = $1"))
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(ShareWrite::Written(Box::new(row)))
        })
    }

    /// One share by id, whatever its state.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn share_by_id(&self, id: &str) -> StoreResult<Option<ShareRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, ShareRow>(share_sql!("WHERE s.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Revokes a share (soft delete); a revoked share stays revoked at its first time.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn revoke_share(&self, id: &str, now: i64) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE library_shares SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1)
        })
    }

    /// Sets a share's permission.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn set_share_permission(&self, id: &str, permission: &str) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query("UPDATE library_shares SET permission_level = $2 WHERE id = $1")
                .bind(id)
                .bind(permission)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The active shares `owner` has given, newest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn outgoing_shares(&self, owner: &str, now: i64) -> StoreResult<Vec<ShareRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, ShareRow>(share_sql!(
                "WHERE s.owner_user_id = $1 AND",
                active!("s", "$2"),
                "ORDER BY s.created_at DESC, s.id"
            ))
            .bind(owner)
            .bind(now)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The active shares `collaborator` has received, newest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn incoming_shares(
        &self,
        collaborator: &str,
        now: i64,
    ) -> StoreResult<Vec<IncomingShareRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, IncomingShareRow>(concat!(
                "SELECT s.id AS share_id, s.owner_user_id, COALESCE(o.display_name, o.username) AS owner_name, \
                        s.server_id, v.server_name, s.library_id, s.library_name, s.permission_level, \
                        v.hostname_candidates_json, s.expires_at, s.created_at, v.collaborator_relay, \
                        EXISTS (SELECT 1 FROM relay_sessions r WHERE r.server_id = v.id AND r.closed_at IS NULL) AS relay_active \
                 FROM library_shares s JOIN users o ON o.id = s.owner_user_id JOIN servers v ON v.id = s.server_id \
                 WHERE s.collaborator_user_id = $1 AND",
                active!("s", "$2"),
                "ORDER BY s.created_at DESC, s.id"
            ))
            .bind(collaborator)
            .bind(now)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Whether `user_id` holds an active share on `server_id`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn is_collaborator(
        &self,
        server_id: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar::<_, i64>(concat!(
                "SELECT COUNT(*) FROM library_shares s WHERE s.server_id = $1 AND s.collaborator_user_id = $2 AND",
                active!("s", "$3")
            ))
            .bind(server_id)
            .bind(user_id)
            .bind(now)
            .fetch_one(pool)
            .await?
                > 0)
        })
    }

    /// The servers shared with `user_id` (active shares), for its event stream.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn servers_shared_with(&self, user_id: &str, now: i64) -> StoreResult<Vec<String>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar::<_, String>(concat!(
                "SELECT DISTINCT s.server_id FROM library_shares s WHERE s.collaborator_user_id = $1 AND",
                active!("s", "$2")
            ))
            .bind(user_id)
            .bind(now)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Sets the owner's switch for collaborators through the relay (SPEC M.1).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn set_collaborator_relay(
        &self,
        server_id: &str,
        on: bool,
        now: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE servers SET collaborator_relay = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(server_id)
            .bind(on)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Stores a new invite link.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn insert_invite(&self, invite: &InviteRow, token_hash: &str) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO invite_links (id, owner_user_id, server_id, library_id, permission, token_hash, \
                 max_uses, use_count, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&invite.id)
            .bind(&invite.owner_user_id)
            .bind(&invite.server_id)
            .bind(&invite.library_id)
            .bind(&invite.permission)
            .bind(token_hash)
            .bind(invite.max_uses)
            .bind(invite.use_count)
            .bind(invite.expires_at)
            .bind(invite.created_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The invite link whose token hashes to `token_hash`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn invite_by_hash(&self, token_hash: &str) -> StoreResult<Option<InviteRow>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_as::<_, InviteRow>(invite_sql!("WHERE token_hash = $1"))
                    .bind(token_hash)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// One invite link by id.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn invite_by_id(&self, id: &str) -> StoreResult<Option<InviteRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, InviteRow>(invite_sql!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Every invite link of `owner`, newest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn invites_of(&self, owner: &str) -> StoreResult<Vec<InviteRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, InviteRow>(invite_sql!(
                "WHERE owner_user_id = $1 ORDER BY created_at DESC, id"
            ))
            .bind(owner)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Revokes an invite link: no use left (`max_uses = use_count`); the row stays listed.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn exhaust_invite(&self, id: &str) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query("UPDATE invite_links SET max_uses = use_count WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The user with this (normalised, lowercase) e-mail address.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn user_id_by_email(&self, email: &str) -> StoreResult<Option<String>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_scalar::<_, String>("SELECT id FROM users WHERE email = lower($1)")
                    .bind(email)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }
}
