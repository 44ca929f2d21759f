//! Wrapped data keys, by purpose (`data`, `blind-index`) and version.

use super::{Db, StoreError};
use sqlx::Row;

impl Db {
    /// `(version, wrapped key, status)` of every key of `purpose`.
    pub async fn data_keys(&self, purpose: &str) -> Result<Vec<(i64, Vec<u8>, String)>, StoreError> {
        let rows = sqlx::query("SELECT version, wrapped, status FROM data_keys WHERE purpose = $1 ORDER BY version")
            .bind(purpose)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("version")?, r.try_get("wrapped")?, r.try_get("status")?)))
            .collect()
    }

    /// Stores a new key; false if that version exists already (another replica won the race).
    pub async fn insert_data_key(&self, purpose: &str, version: i64, wrapped: &[u8]) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO data_keys (purpose, version, wrapped, status, created_at) VALUES ($1, $2, $3, 'active', $4) \
             ON CONFLICT (purpose, version) DO NOTHING",
        )
        .bind(purpose)
        .bind(version)
        .bind(wrapped)
        .bind(super::now())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
