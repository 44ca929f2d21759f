//! Connector secrets of the local backend, encrypted under the data keys (never stored or
//! returned in clear).

use super::Timestamp;
use super::{Db, StoreError, on};
use crate::secrets::SecretInfo;
use sqlx::Row;

impl Db {
    /// Sets (or rotates) a secret; `sealed` is the ciphertext under data key `key_version`.
    pub async fn put_secret(
        &self,
        connector_id: &str,
        name: &str,
        sealed: &[u8],
        key_version: u32,
    ) -> Result<SecretInfo, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(
                "INSERT INTO connector_secrets (connector_id, name, version, value, updated_at, key_version) \
                 VALUES ($1, $2, 1, $3, $4, $5) \
                 ON CONFLICT (connector_id, name) DO UPDATE SET version = connector_secrets.version + 1, \
                 value = excluded.value, updated_at = excluded.updated_at, key_version = excluded.key_version \
                 RETURNING version, updated_at",
            )
            .bind(connector_id)
            .bind(name)
            .bind(sealed)
            .bind(Timestamp::now())
            .bind(key_version as i64)
            .fetch_one(pool)
            .await?;
            Ok(SecretInfo {
                name: name.to_string(),
                version: row.try_get("version")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
    }

    /// The sealed value of a secret.
    pub async fn secret(&self, connector_id: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT value FROM connector_secrets WHERE connector_id = $1 AND name = $2")
                .bind(connector_id)
                .bind(name)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.try_get("value")).transpose()?)
        })
    }

    /// Names, versions and times of a connector's secrets, by name.
    pub async fn list_secrets(&self, connector_id: &str) -> Result<Vec<SecretInfo>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT name, version, updated_at FROM connector_secrets WHERE connector_id = $1 ORDER BY name",
            )
            .bind(connector_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SecretInfo {
                        name: r.try_get("name")?,
                        version: r.try_get("version")?,
                        updated_at: r.try_get("updated_at")?,
                    })
                })
                .collect()
        })
    }

    /// Deletes a secret; false when there was none.
    pub async fn delete_secret(&self, connector_id: &str, name: &str) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query("DELETE FROM connector_secrets WHERE connector_id = $1 AND name = $2")
                .bind(connector_id)
                .bind(name)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
