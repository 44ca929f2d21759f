//! Connector secrets of the local backend, encrypted under the data keys (never stored or
//! returned in clear).

use super::{Db, StoreError};
use sqlx::Row;

impl Db {
    /// Sets (or rotates) a secret; `sealed` is the ciphertext. Returns the new version.
    pub async fn put_secret(&self, connector_id: &str, name: &str, sealed: &[u8]) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO connector_secrets (connector_id, name, version, value, updated_at) VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (connector_id, name) DO UPDATE SET version = connector_secrets.version + 1, \
             value = excluded.value, updated_at = excluded.updated_at RETURNING version",
        )
        .bind(connector_id)
        .bind(name)
        .bind(sealed)
        .bind(super::now())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("version")?)
    }

    /// The sealed value of a secret.
    pub async fn secret(&self, connector_id: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT value FROM connector_secrets WHERE connector_id = $1 AND name = $2")
            .bind(connector_id)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Names, versions and times of a connector's secrets, by name.
    pub async fn list_secrets(&self, connector_id: &str) -> Result<Vec<SecretInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, updated_at FROM connector_secrets WHERE connector_id = $1 ORDER BY name",
        )
        .bind(connector_id)
        .fetch_all(self.pool())
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
    }

    /// Deletes a secret; false when there was none.
    pub async fn delete_secret(&self, connector_id: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM connector_secrets WHERE connector_id = $1 AND name = $2")
            .bind(connector_id)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// What the API may say about a secret: never its value.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct SecretInfo {
    pub name: String,
    /// 1 when set, +1 on every change.
    pub version: i64,
    pub updated_at: String,
}
