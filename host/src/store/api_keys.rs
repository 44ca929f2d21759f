//! API keys, stored as SHA-256 hashes only.

use super::{Db, StoreError};
use sqlx::Row;

/// Name of the bootstrap admin key (from `HUB_ADMIN_KEY`, or generated on first start).
pub const BOOTSTRAP: &str = "bootstrap-admin";

impl Db {
    /// Role of the live key with this hash.
    pub async fn api_key_role(&self, key_hash: &[u8]) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(key_hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("role")).transpose()?)
    }

    pub async fn bootstrap_key_exists(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT id FROM api_keys WHERE name = $1 AND revoked_at IS NULL")
            .bind(BOOTSTRAP)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Makes `key_hash` the one live bootstrap admin key.
    pub async fn set_bootstrap_key(&self, key_hash: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM api_keys WHERE name = $1")
            .bind(BOOTSTRAP)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO api_keys (id, name, role, key_hash, created_at) VALUES ($1, $2, 'admin', $3, $4)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(BOOTSTRAP)
            .bind(key_hash)
            .bind(super::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
