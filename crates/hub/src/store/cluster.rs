//! The cluster's shared state (issue #19): the node registry (`hub_nodes`), which node holds
//! each server's tunnel (`relay_owners`), and PostgreSQL notifications between nodes.

use super::{Store, StoreResult, dispatch};

/// The node holding a server's tunnel, as another node sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OwnerRow {
    pub node: String,
    pub epoch: i64,
    pub cluster_url: String,
    /// The node is leaving (SIGTERM): its tunnels are about to move.
    pub draining: bool,
}

/// A node of the registry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    pub name: String,
    pub cluster_url: String,
    pub started_at: i64,
    pub last_seen_at: i64,
    pub draining_since: Option<i64>,
}

impl Store {
    /// Registers this process as node `name`; `false` when another process holds the name and
    /// was seen at or after `alive_after`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn register_node(
        &self,
        name: &str,
        instance: &str,
        cluster_url: &str,
        now: i64,
        alive_after: i64,
    ) -> StoreResult<bool> {
        let taken: Option<String> = dispatch!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO hub_nodes (name, instance, cluster_url, started_at, last_seen_at) \
                 VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, \
                   cluster_url = excluded.cluster_url, started_at = excluded.started_at, \
                   last_seen_at = excluded.last_seen_at, draining_since = NULL \
                 WHERE hub_nodes.last_seen_at < $5 OR hub_nodes.instance = excluded.instance \
                 RETURNING name",
            )
            .bind(name)
            .bind(instance)
            .bind(cluster_url)
            .bind(now)
            .bind(alive_after)
            .fetch_optional(pool)
            .await?
        });
        Ok(taken.is_some())
    }

    /// Marks node `name` (this process) alive now; `false` when the row is gone or another
    /// process took the name.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn touch_node(&self, name: &str, instance: &str, now: i64) -> StoreResult<bool> {
        dispatch!(self, |pool| {
            Ok(sqlx::query(
                "UPDATE hub_nodes SET last_seen_at = $3 WHERE name = $1 AND instance = $2",
            )
            .bind(name)
            .bind(instance)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                > 0)
        })
    }

    /// Marks node `name` as leaving.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn set_node_draining(&self, name: &str, instance: &str, now: i64) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE hub_nodes SET draining_since = $3 WHERE name = $1 AND instance = $2",
            )
            .bind(name)
            .bind(instance)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Removes node `name` (this process) from the registry, with the tunnels it still owns.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn remove_node(&self, name: &str, instance: &str) -> StoreResult<()> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query("DELETE FROM hub_nodes WHERE name = $1 AND instance = $2")
                .bind(name)
                .bind(instance)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone > 0 {
                sqlx::query("DELETE FROM relay_owners WHERE node = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The nodes seen at or after `alive_after`, by name.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn live_nodes(&self, alive_after: i64) -> StoreResult<Vec<NodeRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, NodeRow>(
                "SELECT name, cluster_url, started_at, last_seen_at, draining_since \
                 FROM hub_nodes WHERE last_seen_at >= $1 ORDER BY name",
            )
            .bind(alive_after)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Records `node` as the holder of `server_id`'s tunnel; returns the new epoch.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn claim_relay_owner(
        &self,
        server_id: &str,
        node: &str,
        now: i64,
    ) -> StoreResult<i64> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar(
                "INSERT INTO relay_owners (server_id, node, epoch, since) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (server_id) DO UPDATE SET node = excluded.node, \
                   epoch = relay_owners.epoch + 1, since = excluded.since \
                 RETURNING epoch",
            )
            .bind(server_id)
            .bind(node)
            .bind(now)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Gives up `node`'s ownership of `server_id`'s tunnel, if it is still that epoch's.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn release_relay_owner(
        &self,
        server_id: &str,
        node: &str,
        epoch: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "DELETE FROM relay_owners WHERE server_id = $1 AND node = $2 AND epoch = $3",
            )
            .bind(server_id)
            .bind(node)
            .bind(epoch)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The live node holding `server_id`'s tunnel (a node last seen before `alive_after` has
    /// lost its tunnels).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn relay_owner(
        &self,
        server_id: &str,
        alive_after: i64,
    ) -> StoreResult<Option<OwnerRow>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, OwnerRow>(
                "SELECT o.node, o.epoch, n.cluster_url, n.draining_since IS NOT NULL AS draining \
                 FROM relay_owners o JOIN hub_nodes n ON n.name = o.node \
                 WHERE o.server_id = $1 AND n.last_seen_at >= $2",
            )
            .bind(server_id)
            .bind(alive_after)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Forgets the tunnels of nodes last seen before `alive_after`: their ownership rows go and
    /// their open relay sessions close as `node_lost`. Returns the sessions closed.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn expire_dead_nodes(&self, alive_after: i64, now: i64) -> StoreResult<u64> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "DELETE FROM relay_owners WHERE node IN \
                 (SELECT name FROM hub_nodes WHERE last_seen_at < $1)",
            )
            .bind(alive_after)
            .execute(&mut *tx)
            .await?;
            let closed = sqlx::query(
                "UPDATE relay_sessions SET closed_at = $2, close_reason = 'node_lost' \
                 WHERE closed_at IS NULL AND worker_node IN \
                 (SELECT name FROM hub_nodes WHERE last_seen_at < $1)",
            )
            .bind(alive_after)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(closed)
        })
    }

    /// Sends `payload` to every node listening on `channel` (PostgreSQL `NOTIFY`; a no-op on
    /// SQLite, which has one node).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn notify(&self, channel: &str, payload: &str) -> StoreResult<()> {
        if let Self::Postgres(pool) = self {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}

/// A PostgreSQL `LISTEN` on one channel, on its own connection.
pub struct Listener(sqlx::postgres::PgListener);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listener")
    }
}

impl Listener {
    /// The next notification's payload. After a lost connection sqlx reconnects and listens
    /// again; what was sent meanwhile is lost, so callers treat `Ok(None)` as "resynchronise".
    ///
    /// # Errors
    /// Database failures only.
    pub async fn recv(&mut self) -> StoreResult<Option<String>> {
        Ok(self
            .0
            .try_recv()
            .await?
            .map(|notification| notification.payload().to_owned()))
    }
}

/// A session-level PostgreSQL advisory lock held on its own connection: held while the
/// connection lives, so a node that dies loses it at once.
pub struct AdvisoryLock(sqlx::PgConnection);

impl std::fmt::Debug for AdvisoryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdvisoryLock")
    }
}

impl AdvisoryLock {
    /// Whether the lock's connection still answers (else the lock is gone).
    pub async fn alive(&mut self) -> bool {
        sqlx::query("SELECT 1").execute(&mut self.0).await.is_ok()
    }
}

impl Store {
    /// Listens on `channel` (PostgreSQL only; `None` on SQLite).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn listen(&self, channel: &str) -> StoreResult<Option<Listener>> {
        let Self::Postgres(pool) = self else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        Ok(Some(Listener(listener)))
    }

    /// Takes advisory lock `key` if no other session holds it (PostgreSQL only; `None` on
    /// SQLite and when it is held elsewhere).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn try_advisory_lock(&self, key: i64) -> StoreResult<Option<AdvisoryLock>> {
        let Self::Postgres(pool) = self else {
            return Ok(None);
        };
        let mut conn = pool.acquire().await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        // A pooled connection would go back to the pool (still holding the lock) when dropped:
        // detach it so dropping closes it and releases the lock.
        Ok(taken.then(|| AdvisoryLock(conn.detach())))
    }
}
