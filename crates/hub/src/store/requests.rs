//! Media requests (SPEC O): the `requests` table. Ids are integers like the PHP hub's.

use sha2::Digest as _;

use super::{BeginWrite, Store, StoreResult, dispatch};

/// A `requests` row with the requester's username.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RequestRow {
    pub id: i64,
    pub user_id: String,
    pub username: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub tmdb_id: i64,
    pub title: String,
    pub poster_url: Option<String>,
    pub season: Option<i32>,
    pub episode: Option<i32>,
    pub status: String,
    pub rejection_reason: Option<String>,
    pub arr_id: Option<i64>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new request holds.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub user_id: String,
    pub kind: String,
    pub tmdb_id: i64,
    pub title: String,
    pub poster_url: Option<String>,
    pub season: Option<i32>,
    pub episode: Option<i32>,
}

/// The outcome of [`Store::create_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestWrite {
    Created(Box<RequestRow>),
    /// The user has a pending, approved or available request for the same thing.
    Exists(Box<RequestRow>),
    /// The user made `limit` requests of this type since `since`; the oldest of them was
    /// created at `oldest`.
    Limited {
        oldest: i64,
    },
}

/// `SELECT <RequestRow columns> FROM requests r JOIN users u … <tail>`.
macro_rules! request_sql {
    ($($tail:expr),*) => {
        concat!(
            "SELECT r.id, r.user_id, u.username, r.type, r.tmdb_id, r.title, r.poster_url, \
                    r.season, r.episode, r.status, r.rejection_reason, r.arr_id, r.decided_by, \
                    r.decided_at, r.created_at, r.updated_at \
             FROM requests r JOIN users u ON u.id = r.user_id ",
            $($tail),*
        )
    };
}

/// The live request with the same key as `$1..$4` (user, type, tmdb id, season).
const LIVE_SAME: &str = request_sql!(
    "WHERE r.user_id = $1 AND r.type = $2 AND r.tmdb_id = $3 \
     AND COALESCE(r.season, -1) = COALESCE($4, -1) \
     AND r.status IN ('pending', 'approved', 'available') ORDER BY r.id LIMIT 1"
);

impl Store {
    /// Creates a pending request in one transaction after checking, in this order, a live
    /// request with the same key and the user's limit (`Some((limit, since))`: at most `limit`
    /// requests of this type created since `since`). The user's row is locked for the check,
    /// so concurrent requests of one user are counted one after the other.
    ///
    /// # Errors
    /// Database failures only; the refusals are in [`RequestWrite`].
    pub async fn create_request(
        &self,
        new: &NewRequest,
        limit: Option<(i64, i64)>,
        now: i64,
    ) -> StoreResult<RequestWrite> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // A row lock on PostgreSQL (SQLite's write transaction is exclusive already).
            sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                .bind(&new.user_id)
                .execute(&mut *tx)
                .await?;
            let existing = sqlx::query_as::<_, RequestRow>(LIVE_SAME)
                .bind(&new.user_id)
                .bind(&new.kind)
                .bind(new.tmdb_id)
                .bind(new.season)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                return Ok(RequestWrite::Exists(Box::new(row)));
            }
            if let Some((limit, since)) = limit {
                let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(created_at) FROM requests \
                     WHERE user_id = $1 AND type = $2 AND created_at > $3",
                )
                .bind(&new.user_id)
                .bind(&new.kind)
                .bind(since)
                .fetch_one(&mut *tx)
                .await?;
                if count >= limit {
                    return Ok(RequestWrite::Limited {
                        oldest: oldest.unwrap_or(now),
                    });
                }
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO requests (user_id, type, tmdb_id, title, poster_url, season, episode, \
                 status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8) RETURNING id",
            )
            .bind(&new.user_id)
            .bind(&new.kind)
            .bind(new.tmdb_id)
            .bind(&new.title)
            .bind(&new.poster_url)
            .bind(new.season)
            .bind(new.episode)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let row = sqlx::query_as::<_, RequestRow>(request_sql!("WHERE r.id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(RequestWrite::Created(Box::new(row)))
        })
    }

    /// One request by id.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn request_by_id(&self, id: i64) -> StoreResult<Option<RequestRow>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_as::<_, RequestRow>(request_sql!("WHERE r.id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// The requests of `user_id` (all of them when `None`), with `status` when given, newest
    /// first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn list_requests(
        &self,
        user_id: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RequestRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, RequestRow>(request_sql!(
                "WHERE ($1 IS NULL OR r.user_id = $1) AND ($2 IS NULL OR r.status = $2) \
                 ORDER BY r.created_at DESC, r.id DESC LIMIT $3"
            ))
            .bind(user_id)
            .bind(status)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The statuses of every request for `(type, tmdb_id)` among `tmdb_ids`, as
    /// `(tmdb_id, status)` pairs (for search results).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn request_statuses(
        &self,
        kind: &str,
        tmdb_ids: &[i64],
    ) -> StoreResult<Vec<(i64, String)>> {
        if tmdb_ids.is_empty() {
            return Ok(Vec::new());
        }
        // A bounded list (search results); one query with an IN list of bound parameters.
        let placeholders: Vec<String> =
            (0..tmdb_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT tmdb_id, status FROM requests WHERE type = $1 AND tmdb_id IN ({})",
            placeholders.join(", ")
        );
        dispatch!(self, |pool| {
            // Only numbered placeholders are formatted into the text; every value is bound.
            let mut query =
                sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql.clone())).bind(kind);
            for id in tmdb_ids {
                query = query.bind(*id);
            }
            Ok(query.fetch_all(pool).await?)
        })
    }

    /// Moves a pending request to `approved` (with the *arr's id) or `rejected` (with a
    /// reason); `false` when it was no longer pending.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn decide_request(
        &self,
        id: i64,
        status: &str,
        arr_id: Option<i64>,
        reason: Option<&str>,
        decided_by: &str,
        now: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE requests SET status = $2, arr_id = $3, rejection_reason = $4, \
                 decided_by = $5, decided_at = $6, updated_at = $6 \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(status)
            .bind(arr_id)
            .bind(reason)
            .bind(decided_by)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1)
        })
    }

    /// Marks an approved request available; `false` when it was not approved any more.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn mark_request_available(&self, id: i64, now: i64) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE requests SET status = 'available', available_at = $2, updated_at = $2 \
                 WHERE id = $1 AND status = 'approved'",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1)
        })
    }

    /// Deletes a request; `false` when it did not exist.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn delete_request(&self, id: i64) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query("DELETE FROM requests WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
                == 1)
        })
    }

    /// Runs `round` only if no other node runs the singleton `name` now: a transaction-scoped
    /// advisory lock on PostgreSQL (released when the round ends, even if this node dies),
    /// always on SQLite (one node). `None` when another node holds it.
    ///
    /// # Errors
    /// Database failures of taking the lock.
    pub async fn run_singleton<T, F>(&self, name: &str, round: F) -> StoreResult<Option<T>>
    where
        F: Future<Output = T>,
    {
        match self {
            Self::Sqlite(_) => Ok(Some(round.await)),
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let digest = sha2::Sha256::digest(name.as_bytes());
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                let key = i64::from_be_bytes(first);
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
                if !locked {
                    return Ok(None);
                }
                let out = round.await;
                tx.rollback().await?;
                Ok(Some(out))
            }
        }
    }
}
