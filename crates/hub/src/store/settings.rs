//! Hub settings (`hub_settings`, SPEC H.3): typed values stored as text.

use super::{BeginWrite, Store, StoreResult, dispatch};

impl Store {
    /// The stored value of a setting, if an admin has set it.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_scalar::<_, String>(
                "SELECT setting_value FROM hub_settings WHERE setting_key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Sets (inserts or replaces) a setting.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn put_setting(
        &self,
        key: &str,
        value: &str,
        value_type: &str,
        now: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO hub_settings (setting_key, setting_value, value_type, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (setting_key) DO UPDATE SET \
                 setting_value = excluded.setting_value, value_type = excluded.value_type, updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(value)
            .bind(value_type)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every stored setting as `(key, text)`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn all_settings(&self) -> StoreResult<Vec<(String, String)>> {
        dispatch!(self, |pool| {
            Ok(sqlx::query_as::<_, (String, String)>(
                "SELECT setting_key, setting_value FROM hub_settings ORDER BY setting_key",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Writes `(key, Some(text), type)` and removes `(key, None, _)` overrides, all in one
    /// transaction.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn write_settings(
        &self,
        writes: &[(&str, Option<String>, &str)],
        now: i64,
    ) -> StoreResult<()> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            for (key, value, value_type) in writes {
                match value {
                    Some(value) => {
                        sqlx::query(
                            "INSERT INTO hub_settings (setting_key, setting_value, value_type, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (setting_key) DO UPDATE SET \
                             setting_value = excluded.setting_value, value_type = excluded.value_type, updated_at = excluded.updated_at",
                        )
                        .bind(*key)
                        .bind(value)
                        .bind(*value_type)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM hub_settings WHERE setting_key = $1")
                            .bind(*key)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
