//! Webhook endpoints and the durable delivery outbox (SPEC P). A delivery is claimed with a
//! lease (`lease_until_ms`), so each due row is attempted by one worker at a time: on
//! PostgreSQL several nodes share the queue through `FOR UPDATE SKIP LOCKED`; on SQLite the
//! single writer serialises claims.

use super::{BeginWrite, Store, StoreResult, dispatch};

/// A `webhooks` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub url: String,
    pub events_json: String,
    pub enabled: bool,
    pub scope: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub last_delivery_at: Option<i64>,
    pub last_delivery_status: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A `webhook_deliveries` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub status: String,
    pub attempt_count: i64,
    pub next_attempt_ms: Option<i64>,
    pub created_ms: i64,
}

/// A `webhook_attempts` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub at_ms: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: String,
}

/// What an attempt did, to record it and move its delivery on.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub at_ms: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: String,
    /// `delivered`, `failed`, or `pending` with `next_attempt_ms`.
    pub status: &'static str,
    pub next_attempt_ms: Option<i64>,
}

macro_rules! webhook_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, name, url, events_json, enabled, scope, secret, previous_secret, \
                    previous_secret_until, disabled_reason, failing_since, last_delivery_at, \
                    last_delivery_status, created_at, updated_at FROM webhooks ",
            $tail
        )
    };
}

macro_rules! delivery_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, webhook_id, event_id, event_type, payload, status, attempt_count, \
                    next_attempt_ms, created_ms FROM webhook_deliveries ",
            $tail
        )
    };
}

impl Store {
    /// Stores a new endpoint.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn insert_webhook(&self, w: &WebhookRow) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO webhooks (id, user_id, name, url, events_json, enabled, scope, secret, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(&w.id)
            .bind(&w.user_id)
            .bind(&w.name)
            .bind(&w.url)
            .bind(&w.events_json)
            .bind(w.enabled)
            .bind(&w.scope)
            .bind(&w.secret)
            .bind(w.created_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// One endpoint by id.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn webhook_by_id(&self, id: &str) -> StoreResult<Option<WebhookRow>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_as::<_, WebhookRow>(webhook_sql!("WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// The endpoints of a user, oldest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn webhooks_of(&self, user_id: &str) -> StoreResult<Vec<WebhookRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, WebhookRow>(webhook_sql!(
                "WHERE user_id = $1 ORDER BY created_at, id"
            ))
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Every enabled endpoint (the fan-out matches events against them).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn enabled_webhooks(&self) -> StoreResult<Vec<WebhookRow>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_as::<_, WebhookRow>(webhook_sql!("WHERE enabled ORDER BY id"))
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    /// Writes an endpoint's editable fields.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn update_webhook(&self, w: &WebhookRow, now: i64) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE webhooks SET name = $2, url = $3, events_json = $4, enabled = $5, \
                 disabled_reason = $6, secret = $7, previous_secret = $8, previous_secret_until = $9, \
                 failing_since = $10, updated_at = $11 WHERE id = $1",
            )
            .bind(&w.id)
            .bind(&w.name)
            .bind(&w.url)
            .bind(&w.events_json)
            .bind(w.enabled)
            .bind(&w.disabled_reason)
            .bind(&w.secret)
            .bind(&w.previous_secret)
            .bind(w.previous_secret_until)
            .bind(w.failing_since)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Deletes an endpoint and, by cascade, its deliveries.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn delete_webhook(&self, id: &str) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query("DELETE FROM webhooks WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Writes pending deliveries (one per endpoint) of one event in one transaction.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn enqueue_deliveries(&self, rows: &[DeliveryRow]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            for d in rows {
                sqlx::query(
                    "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, payload, status, \
                     attempt_count, next_attempt_ms, created_ms) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7)",
                )
                .bind(&d.id)
                .bind(&d.webhook_id)
                .bind(&d.event_id)
                .bind(&d.event_type)
                .bind(&d.payload)
                .bind(d.next_attempt_ms)
                .bind(d.created_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Claims up to `limit` due deliveries for `lease_ms` (a crashed claimer's lease runs
    /// out and the row is claimed again).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn claim_deliveries(
        &self,
        node: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        match self {
            Self::Postgres(pool) => Ok(sqlx::query_as::<_, DeliveryRow>(
                "UPDATE webhook_deliveries SET lease_until_ms = $2, lease_owner = $4 WHERE id IN ( \
                   SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
                   AND (lease_until_ms IS NULL OR lease_until_ms <= $1) \
                   ORDER BY next_attempt_ms LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, webhook_id, event_id, event_type, payload, status, attempt_count, \
                   next_attempt_ms, created_ms",
            )
            .bind(now_ms)
            .bind(now_ms + lease_ms)
            .bind(limit)
            .bind(node)
            .fetch_all(pool)
            .await?),
            Self::Sqlite(pool) => {
                let mut tx = pool.begin_write().await?;
                let rows = sqlx::query_as::<_, DeliveryRow>(
                    "UPDATE webhook_deliveries SET lease_until_ms = $2, lease_owner = $4 WHERE id IN ( \
                       SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
                       AND (lease_until_ms IS NULL OR lease_until_ms <= $1) \
                       ORDER BY next_attempt_ms LIMIT $3) \
                     RETURNING id, webhook_id, event_id, event_type, payload, status, attempt_count, \
                       next_attempt_ms, created_ms",
                )
                .bind(now_ms)
                .bind(now_ms + lease_ms)
                .bind(limit)
                .bind(node)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows)
            }
        }
    }

    /// When the next pending delivery can be claimed (ms), if any: the earliest
    /// `next_attempt_ms`, or the end of its lease when later (the condition of
    /// [`Self::claim_deliveries`]). A read, so an idle worker waiting for it writes nothing.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn next_delivery_due(&self) -> StoreResult<Option<i64>> {
        dispatch!(self, |pool| {
            // Two parts so each uses an index: unleased rows by (status, next_attempt_ms), the
            // few leased ones by the partial index on lease_until_ms (migration 0010).
            Ok(sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MIN(due) FROM (\
                 SELECT MIN(next_attempt_ms) AS due FROM webhook_deliveries \
                 WHERE status = 'pending' AND lease_until_ms IS NULL \
                 UNION ALL \
                 SELECT MIN(CASE WHEN lease_until_ms > next_attempt_ms THEN lease_until_ms \
                 ELSE next_attempt_ms END) AS due FROM webhook_deliveries \
                 WHERE status = 'pending' AND lease_until_ms IS NOT NULL) AS due_times",
            )
            .fetch_one(pool)
            .await?)
        })
    }

    /// Takes a claimed delivery's lease again when its attempt starts (it may have waited
    /// for its endpoint's turn): extends it to `until_ms` if the claim is still the one `node`
    /// made, i.e. its lease still ends at `claimed_until_ms`. `false` when the lease ran out
    /// meanwhile and the delivery was claimed again (here or on another node): the attempt
    /// must then not be made, or it would be sent twice.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn renew_lease(
        &self,
        id: &str,
        node: &str,
        claimed_until_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE webhook_deliveries SET lease_until_ms = $4 WHERE id = $1 \
                 AND status = 'pending' AND lease_owner = $2 AND lease_until_ms = $3",
            )
            .bind(id)
            .bind(node)
            .bind(claimed_until_ms)
            .bind(until_ms)
            .execute(pool)
            .await?
            .rows_affected()
                == 1)
        })
    }

    /// Releases the leases `node` held when it stopped (a crash leaves them): its pending
    /// deliveries are due again at once. Returns how many.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE webhook_deliveries SET lease_until_ms = NULL, lease_owner = NULL \
                 WHERE lease_owner = $1 AND status = 'pending'",
            )
            .bind(node)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }

    /// Records an attempt and moves its delivery on, and the endpoint's last status.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn record_attempt(
        &self,
        delivery: &DeliveryRow,
        outcome: &AttemptOutcome,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, at_ms, status_code, duration_ms, error, response_excerpt) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&delivery.id)
            .bind(outcome.at_ms)
            .bind(outcome.status_code)
            .bind(outcome.duration_ms)
            .bind(&outcome.error)
            .bind(&outcome.response_excerpt)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $2, attempt_count = attempt_count + 1, \
                 next_attempt_ms = $3, lease_until_ms = NULL WHERE id = $1",
            )
            .bind(&delivery.id)
            .bind(outcome.status)
            .bind(outcome.next_attempt_ms)
            .execute(&mut *tx)
            .await?;
            let at = outcome.at_ms / 1000;
            sqlx::query(
                "UPDATE webhooks SET last_delivery_at = $2, last_delivery_status = $3, \
                 failing_since = CASE WHEN $4 THEN NULL ELSE COALESCE(failing_since, $2) END \
                 WHERE id = $1",
            )
            .bind(&delivery.webhook_id)
            .bind(at)
            .bind(outcome.status_code)
            .bind(outcome.status == "delivered")
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Disables an endpoint with a reason (a 410 answer, five days of failures).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn disable_webhook(&self, id: &str, reason: &str, now: i64) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE webhooks SET enabled = FALSE, disabled_reason = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(reason)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The deliveries of an endpoint, newest first, created before `before_ms`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn deliveries_of(
        &self,
        webhook_id: &str,
        before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, DeliveryRow>(delivery_sql!(
                "WHERE webhook_id = $1 AND created_ms < $2 ORDER BY created_ms DESC, id DESC LIMIT $3"
            ))
            .bind(webhook_id)
            .bind(before_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// One delivery by id.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn delivery_by_id(&self, id: &str) -> StoreResult<Option<DeliveryRow>> {
        dispatch!(self, |pool| {
            Ok(
                sqlx::query_as::<_, DeliveryRow>(delivery_sql!("WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// The attempts of these deliveries, oldest first.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn attempts_of(&self, delivery_ids: &[String]) -> StoreResult<Vec<AttemptRow>> {
        let mut all = Vec::new();
        for id in delivery_ids {
            let rows: Vec<AttemptRow> = dispatch!(self, |pool| {
                sqlx::query_as::<_, AttemptRow>(
                    "SELECT delivery_id, at_ms, status_code, duration_ms, error, response_excerpt \
                     FROM webhook_attempts WHERE delivery_id = $1 ORDER BY at_ms, id",
                )
                .bind(id)
                .fetch_all(pool)
                .await?
            });
            all.extend(rows);
        }
        Ok(all)
    }

    /// Puts a delivery back in the queue now (redeliver).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn requeue_delivery(&self, id: &str, now_ms: i64) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = $2, lease_until_ms = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Deliveries waiting, and the oldest one's creation time (for `/metrics`).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn delivery_queue(&self) -> StoreResult<(i64, Option<i64>)> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, (i64, Option<i64>)>(
                "SELECT COUNT(*), MIN(created_ms) FROM webhook_deliveries WHERE status = 'pending'",
            )
            .fetch_one(pool)
            .await?)
        })
    }
}
