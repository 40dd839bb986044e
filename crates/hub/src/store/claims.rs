//! Pairing claims (`server_claims`, SPEC C): created by a server, redeemed by a user, collected
//! once by the server's poll.

use super::{BeginWrite, Store, StoreError, StoreResult, dispatch};

/// A `server_claims` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimRow {
    pub id: String,
    pub claim_code: String,
    pub server_name: String,
    pub version: String,
    pub hostname_candidates_json: String,
    pub protocol_version: String,
    pub public_key_jwk: String,
    pub public_key_x: String,
    pub status: String,
    pub expires_at: i64,
    pub created_at: i64,
}

/// What a redemption found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The claim is now paired with this new server.
    Paired {
        server_id: String,
    },
    NotFound,
    Expired,
    AlreadyClaimed,
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    Pending,
    /// Redeemed: the row is gone now (one-shot); mint the enrollment for this server.
    Claimed {
        server_id: String,
    },
    Expired,
}

impl Store {
    /// The pending, unexpired claim of a public key, if any.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn pending_claim_for_key(
        &self,
        public_key_x: &str,
        now: i64,
    ) -> StoreResult<Option<ClaimRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, ClaimRow>(
                "SELECT id, claim_code, server_name, version, hostname_candidates_json, protocol_version, \
                 public_key_jwk, public_key_x, status, expires_at, created_at FROM server_claims \
                 WHERE public_key_x = $1 AND status = 'pending' AND expires_at > $2 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(public_key_x)
            .bind(now)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Inserts a new claim.
    ///
    /// # Errors
    /// `Conflict("claim_code")` when the code is taken (the caller draws another).
    pub async fn insert_claim(&self, claim: &ClaimRow) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO server_claims (id, claim_code, server_name, version, hostname_candidates_json, protocol_version, \
                 public_key_jwk, public_key_x, status, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)",
            )
            .bind(&claim.id)
            .bind(&claim.claim_code)
            .bind(&claim.server_name)
            .bind(&claim.version)
            .bind(&claim.hostname_candidates_json)
            .bind(&claim.protocol_version)
            .bind(&claim.public_key_jwk)
            .bind(&claim.public_key_x)
            .bind(claim.expires_at)
            .bind(claim.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Redeems a claim code for `user_id` in one transaction: the claim flips to `paired` only
    /// if it is still pending and unexpired (so of concurrent redemptions exactly one wins), and
    /// the new `servers` row is inserted with it.
    ///
    /// # Errors
    /// Database failures only; the outcomes are in [`Redemption`].
    pub async fn redeem_claim(
        &self,
        claim_code: &str,
        user_id: &str,
        new_server_id: &str,
        now: i64,
    ) -> StoreResult<Redemption> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let won: Option<ClaimRow> = sqlx::query_as::<_, ClaimRow>(
                "UPDATE server_claims SET status = 'paired', user_id = $1, claimed_by = $1, claimed_at = $2, \
                 paired_at = $2, paired_server_id = $3 \
                 WHERE claim_code = $4 AND status = 'pending' AND expires_at > $2 \
                 RETURNING id, claim_code, server_name, version, hostname_candidates_json, protocol_version, \
                 public_key_jwk, public_key_x, status, expires_at, created_at",
            )
            .bind(user_id)
            .bind(now)
            .bind(new_server_id)
            .bind(claim_code)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(claim) = won else {
                let found: Option<(String, i64)> = sqlx::query_as(
                    "SELECT status, expires_at FROM server_claims WHERE claim_code = $1",
                )
                .bind(claim_code)
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                return Ok(match found {
                    None => Redemption::NotFound,
                    Some((status, _)) if status == "paired" => Redemption::AlreadyClaimed,
                    Some(_) => Redemption::Expired,
                });
            };
            sqlx::query(
                "INSERT INTO servers (id, user_id, server_name, version, public_key_jwk, hostname_candidates_json, status, \
                 last_seen_at, enrolled_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'online', $7, $7, $7, $7)",
            )
            .bind(new_server_id)
            .bind(user_id)
            .bind(&claim.server_name)
            .bind(&claim.version)
            .bind(&claim.public_key_jwk)
            .bind(&claim.hostname_candidates_json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Redemption::Paired {
                server_id: new_server_id.to_owned(),
            })
        })
    }

    /// The server's poll: pending, claimed (and the row deleted, so it answers once), or
    /// expired (unknown id, already collected, or past its expiry).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn poll_claim(&self, claim_id: &str, now: i64) -> StoreResult<PollOutcome> {
        dispatch!(self, |pool| {
            let collected: Option<Option<String>> =
                sqlx::query_scalar("DELETE FROM server_claims WHERE id = $1 AND status = 'paired' RETURNING paired_server_id")
                    .bind(claim_id)
                    .fetch_optional(pool)
                    .await?;
            if let Some(server_id) = collected {
                return server_id
                    .map(|server_id| PollOutcome::Claimed { server_id })
                    .ok_or(StoreError::Other(sqlx::Error::RowNotFound));
            }
            let pending: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM server_claims WHERE id = $1 AND status = 'pending' AND expires_at > $2",
            )
            .bind(claim_id)
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok(if pending > 0 {
                PollOutcome::Pending
            } else {
                PollOutcome::Expired
            })
        })
    }

    /// Deletes claims that expired more than a day ago, and paired ones never collected.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn prune_claims(&self, now: i64) -> StoreResult<u64> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query("DELETE FROM server_claims WHERE expires_at < $1")
                    .bind(now - 86_400)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            )
        })
    }
}
