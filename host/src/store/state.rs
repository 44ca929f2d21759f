//! Durable per-connector key/value state (cursors, checkpoints).

use super::Timestamp;
use super::{Db, StoreError, on};
use sqlx::Row;

impl Db {
    pub async fn state_get(&self, connector_id: &str, key: &str) -> Result<Option<String>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT value FROM connector_state WHERE connector_id = $1 AND key = $2")
                .bind(connector_id)
                .bind(key)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.try_get("value")).transpose()?)
        })
    }

    /// Stores `value` under `key`; false, with nothing stored, when `key` is new and the
    /// connector holds `max_keys` keys already. One statement, so two writers cannot both
    /// take the last free key.
    pub async fn state_set(
        &self,
        connector_id: &str,
        key: &str,
        value: &str,
        max_keys: u32,
    ) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query(
                "INSERT INTO connector_state (connector_id, key, value, updated_at) SELECT $1, $2, $3, $4 \
                 WHERE EXISTS (SELECT 1 FROM connector_state WHERE connector_id = $1 AND key = $2) \
                    OR (SELECT COUNT(*) FROM connector_state WHERE connector_id = $1) < $5 \
                 ON CONFLICT (connector_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(connector_id)
            .bind(key)
            .bind(value)
            .bind(Timestamp::now())
            .bind(i64::from(max_keys))
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Removes `key`; whether it was there.
    pub async fn state_delete(&self, connector_id: &str, key: &str) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query("DELETE FROM connector_state WHERE connector_id = $1 AND key = $2")
                .bind(connector_id)
                .bind(key)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
