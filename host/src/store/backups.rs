//! Backups taken by this hub or a replica: claimed, then finished (backup/).

use super::Timestamp;
use super::{Db, StoreError, on};
use sqlx::Row;

/// How a backup ended.
pub struct FinishedBackup<'a> {
    pub id: &'a str,
    pub file: Option<&'a str>,
    pub bytes: Option<i64>,
    pub sha256: Option<&'a str>,
    /// `None` when it succeeded.
    pub error: Option<&'a str>,
}

impl Db {
    /// Records a backup starting now; `false` when `fire_key` was already claimed (another
    /// hub on this database takes this scheduled backup).
    pub async fn claim_backup(&self, id: &str, fire_key: Option<&str>) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query(
                "INSERT INTO backups (id, fire_key, status, started_at) VALUES ($1, $2, 'running', $3) \
                 ON CONFLICT (fire_key) DO NOTHING",
            )
            .bind(id)
            .bind(fire_key)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn finish_backup(&self, backup: &FinishedBackup<'_>) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            let status = if backup.error.is_none() { "succeeded" } else { "failed" };
            sqlx::query(
                "UPDATE backups SET status = $2, finished_at = $3, file = $4, bytes = $5, sha256 = $6, error = $7 \
                 WHERE id = $1",
            )
            .bind(backup.id)
            .bind(status)
            .bind(Timestamp::now())
            .bind(backup.file)
            .bind(backup.bytes)
            .bind(backup.sha256)
            .bind(backup.error)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The latest scheduled fire time a backup was claimed for.
    pub async fn last_backup_fire(&self) -> Result<Option<String>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT MAX(fire_key) AS fire_key FROM backups")
                .fetch_one(pool)
                .await?;
            Ok(row.try_get("fire_key")?)
        })
    }

    /// The last migration applied: what a backup's schema is.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT MAX(version) AS version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(pool)
                .await?;
            Ok(row.try_get("version")?)
        })
    }
}
