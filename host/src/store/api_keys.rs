//! API keys, stored as SHA-256 hashes only, with a role and extra permissions.

use super::Timestamp;
use super::{Db, StoreError, on, trusted};

/// Name of the bootstrap admin key (from `HUB_ADMIN_KEY`, or generated on first start).
pub const BOOTSTRAP: &str = "bootstrap-admin";

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub role: String,
    /// Grants beyond the role, e.g. `pii:read`.
    pub permissions: Vec<String>,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
    pub revoked_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, name, role, permissions, created_at, created_by, revoked_at";

/// A stored key's row; its permissions are JSON text.
#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    name: String,
    role: String,
    permissions: String,
    created_at: Timestamp,
    created_by: Option<String>,
    revoked_at: Option<Timestamp>,
}

impl TryFrom<ApiKeyRow> for ApiKeyRecord {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        Ok(ApiKeyRecord {
            permissions: serde_json::from_str(&row.permissions).map_err(|e| StoreError::Corrupt {
                what: "API key permissions",
                detail: e.to_string(),
            })?,
            id: row.id,
            name: row.name,
            role: row.role,
            created_at: row.created_at,
            created_by: row.created_by,
            revoked_at: row.revoked_at,
        })
    }
}

/// What revoking a key came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    Revoked,
    NotFound,
    /// Refused: it is the last live admin key.
    LastAdmin,
}

impl Db {
    /// The live key with this hash.
    pub async fn api_key_by_hash(&self, key_hash: &[u8]) -> Result<Option<ApiKeyRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query_as::<_, ApiKeyRow>(trusted(format!(
                "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
            )))
            .bind(key_hash)
            .fetch_optional(pool)
            .await?;
            row.map(ApiKeyRecord::try_from).transpose()
        })
    }

    pub async fn insert_api_key(&self, key: &ApiKeyRecord, key_hash: &[u8]) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(
                "INSERT INTO api_keys (id, name, role, key_hash, permissions, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.role)
            .bind(key_hash)
            .bind(serde_json::to_string(&key.permissions).expect("strings serialize"))
            .bind(key.created_at)
            .bind(&key.created_by)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Keys ordered by id, after `after`.
    pub async fn list_api_keys(&self, after: Option<&str>, limit: i64) -> Result<Vec<ApiKeyRecord>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query_as::<_, ApiKeyRow>(trusted(format!(
                "SELECT {COLUMNS} FROM api_keys WHERE id > $1 ORDER BY id LIMIT $2"
            )))
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(ApiKeyRecord::try_from).collect()
        })
    }

    /// Revokes a live key, unless it is the last live admin key: revoking that would lock
    /// every admin out.
    pub async fn revoke_api_key(&self, id: &str) -> Result<Revoked, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                 AND (role <> 'admin' OR (SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL) > 1)",
            )
            .bind(id)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
            if done.rows_affected() > 0 {
                return Ok(Revoked::Revoked);
            }
            let live = sqlx::query("SELECT role FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(match live {
                Some(_) => Revoked::LastAdmin,
                None => Revoked::NotFound,
            })
        })
    }

    pub async fn bootstrap_key_exists(&self) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT id FROM api_keys WHERE name = $1 AND revoked_at IS NULL")
                .bind(BOOTSTRAP)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Makes `key_hash` the one live bootstrap key: admin, with `pii:read`.
    pub async fn set_bootstrap_key(&self, key_hash: &[u8]) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM api_keys WHERE name = $1")
                .bind(BOOTSTRAP)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO api_keys (id, name, role, key_hash, permissions, created_at) \
                 VALUES ($1, $2, 'admin', $3, '[\"pii:read\"]', $4)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(BOOTSTRAP)
            .bind(key_hash)
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
