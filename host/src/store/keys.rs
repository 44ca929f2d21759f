//! Wrapped keys by purpose (`data`, `blind-index`, `audit`) and version; the tables holding
//! sealed columns; and data key rotations with their progress.

use super::Timestamp;
use super::{Backend, Db, StoreError, on, trusted};
use sqlx::Row;

/// A key as stored: wrapped by the key-encryption key.
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub version: u32,
    pub wrapped: Vec<u8>,
    /// `active`, `retiring` (readable, being re-encrypted away) or `retired` (not loaded).
    pub status: String,
    pub created_at: Timestamp,
}

/// A table with columns sealed under the data keys. Every row records the lowest key version
/// among its sealed columns in `key_version`.
pub struct SealedTable {
    pub table: &'static str,
    /// The table name bound into each ciphertext's AAD: `table` itself, but for a table
    /// holding another's ciphertexts moved verbatim.
    pub aad_table: &'static str,
    /// SQL giving the row id bound into each ciphertext's AAD. With the guard (the first
    /// column) it finds the row again to re-encrypt it.
    pub row_id: &'static str,
    /// The sealed columns. The first is never NULL and is rewritten by every write of the
    /// row, so it guards re-encryption against overwriting a concurrent write.
    pub columns: &'static [&'static str],
}

/// The sealed columns of a practitioners row, and of its earlier versions.
const PRACTITIONER_COLUMNS: &[&str] = &[
    "details",
    "nik",
    "str_number",
    "full_name",
    "birth_place",
    "birth_date",
    "phone",
    "email",
];

pub const SEALED_TABLES: &[SealedTable] = &[
    SealedTable {
        table: "practitioners",
        aad_table: "practitioners",
        row_id: "id",
        columns: PRACTITIONER_COLUMNS,
    },
    // A practitioner's earlier versions: their row id is the practitioner's, shared by all
    // their versions, but each write seals `details` under a fresh nonce, so with it as the
    // guard a re-encryption updates exactly the version it read.
    SealedTable {
        table: "practitioner_versions",
        aad_table: "practitioners",
        row_id: "practitioner_id",
        columns: PRACTITIONER_COLUMNS,
    },
    SealedTable {
        table: "practitioner_strs",
        aad_table: "practitioner_strs",
        row_id: "id",
        columns: &["str_number"],
    },
    SealedTable {
        table: "practitioner_sources",
        aad_table: "practitioner_sources",
        row_id: "id",
        columns: &["record"],
    },
    SealedTable {
        table: "accounts",
        aad_table: "accounts",
        row_id: "id",
        columns: &["subject", "username", "email"],
    },
    SealedTable {
        table: "rejects",
        aad_table: "rejects",
        row_id: "id",
        columns: &["record"],
    },
    SealedTable {
        table: "identity_candidates",
        aad_table: "identity_candidates",
        row_id: "id",
        columns: &["record"],
    },
    SealedTable {
        table: "observations",
        aad_table: "observations",
        row_id: "id",
        columns: &["details"],
    },
    SealedTable {
        table: "subscriptions",
        aad_table: "subscriptions",
        row_id: "id",
        columns: &["secret", "previous_secret"],
    },
    SealedTable {
        table: "jobs",
        aad_table: "jobs",
        row_id: "id",
        columns: &["payload"],
    },
    SealedTable {
        table: "connector_secrets",
        aad_table: "connector_secrets",
        row_id: "connector_id || '/' || name",
        columns: &["value"],
    },
];

/// One row of a sealed table: its id and its sealed columns in `SealedTable::columns` order.
pub struct SealedRow {
    pub row_id: String,
    pub values: Vec<Option<Vec<u8>>>,
}

/// A row read for re-encryption and its columns sealed again under the new version.
pub type Resealed = (SealedRow, Vec<Option<Vec<u8>>>);

/// A data key rotation and how far its re-encryption has come.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct KeyRotation {
    pub id: String,
    /// The data key version every row is moved to.
    pub to_version: u32,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Rows under an older key when the rotation started (rows written during it by replicas
    /// not yet reloaded are added as they are found).
    pub total: i64,
    /// Rows re-encrypted so far.
    pub done: i64,
    pub error: Option<String>,
    pub requested_by: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

const ROTATION_COLUMNS: &str = "id, to_version, status, total, done, error, requested_by, started_at, finished_at";

impl Db {
    /// Every key of `purpose`, by version.
    pub async fn data_keys(&self, purpose: &str) -> Result<Vec<StoredKey>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT version, wrapped, status, created_at FROM data_keys WHERE purpose = $1 ORDER BY version",
            )
            .bind(purpose)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredKey {
                        version: r.try_get::<i64, _>("version")? as u32,
                        wrapped: r.try_get("wrapped")?,
                        status: r.try_get("status")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect()
        })
    }

    /// Stores a new key; false if that version exists already (another replica won the race).
    pub async fn insert_data_key(&self, purpose: &str, version: u32, wrapped: &[u8]) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query(
                "INSERT INTO data_keys (purpose, version, wrapped, status, created_at) VALUES ($1, $2, $3, 'active', $4) \
                 ON CONFLICT (purpose, version) DO NOTHING",
            )
            .bind(purpose)
            .bind(version as i64)
            .bind(wrapped)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Moves the keys of `purpose` below `version` from status `from` to `to`.
    pub async fn set_data_key_status(
        &self,
        purpose: &str,
        version: u32,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query("UPDATE data_keys SET status = $4 WHERE purpose = $1 AND version < $2 AND status = $3")
                .bind(purpose)
                .bind(version as i64)
                .bind(from)
                .bind(to)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// How many rows of `table` hold a column sealed under a version below `version`.
    pub async fn count_sealed_below(&self, table: &SealedTable, version: u32) -> Result<i64, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!(
                "SELECT COUNT(*) AS n FROM {} WHERE key_version < $1",
                table.table
            )))
            .bind(version as i64)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get("n")?)
        })
    }

    /// Up to `limit` rows of `table` with a column sealed under a version below `version`.
    pub async fn sealed_below(
        &self,
        table: &SealedTable,
        version: u32,
        limit: i64,
    ) -> Result<Vec<SealedRow>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {} AS row_id, {} FROM {} WHERE key_version < $1 LIMIT $2",
                table.row_id,
                table.columns.join(", "),
                table.table
            )))
            .bind(version as i64)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SealedRow {
                        row_id: r.try_get("row_id")?,
                        values: table
                            .columns
                            .iter()
                            .map(|c| r.try_get::<Option<Vec<u8>>, _>(*c))
                            .collect::<Result<_, _>>()?,
                    })
                })
                .collect()
        })
    }

    /// Writes re-sealed rows under `version`, all or none. A row rewritten since it was read
    /// (its guard column changed) is left alone: the new write is newer. Returns how many rows
    /// were updated.
    pub async fn reseal(&self, table: &SealedTable, version: u32, rows: &[Resealed]) -> Result<u64, StoreError> {
        on!(self.pool(), pool => {
            if rows.is_empty() {
                return Ok(0);
            }
            let (name, row_id, columns) = (table.table, table.row_id, table.columns);
            let guard = columns[0];
            match self.backend() {
                // One statement per batch: no network round trip per row.
                Backend::Postgres => {
                    // The CTE's column names differ from the table's, so those need no qualifying.
                    let sets: Vec<String> = columns.iter().map(|c| format!("{c} = v.new_{c}")).collect();
                    let names: Vec<String> = columns.iter().map(|c| format!("new_{c}")).collect();
                    let sql = format!(
                        "WITH v (row_id, guard, {}) AS (VALUES {}) UPDATE {name} SET {}, key_version = {version} \
                         FROM v WHERE {row_id} = v.row_id AND {guard} = v.guard",
                        names.join(", "),
                        self.backend().placeholders(rows.len(), columns.len() + 2, 1),
                        sets.join(", "),
                    );
                    let mut query = super::batch_write(sql);
                    for (old, sealed) in rows {
                        query = query.bind(&old.row_id).bind(old.values[0].clone());
                        for value in sealed {
                            query = query.bind(value.clone());
                        }
                    }
                    Ok(query.execute(pool).await?.rows_affected())
                }
                // In-process, so a statement per row costs no round trip; SQLite plans
                // `UPDATE … FROM (VALUES …)` as a scan of the whole table (measured 10x slower).
                Backend::Sqlite => {
                    let sets: Vec<String> = columns.iter().map(|c| format!("{c} = ?")).collect();
                    let sql = format!(
                        "UPDATE {name} SET {}, key_version = {version} WHERE {row_id} = ? AND {guard} = ?",
                        sets.join(", ")
                    );
                    let mut tx = pool.begin().await?;
                    let mut updated = 0;
                    for (old, sealed) in rows {
                        let mut query = sqlx::query(trusted(sql.clone()));
                        for value in sealed {
                            query = query.bind(value.clone());
                        }
                        let done = query
                            .bind(&old.row_id)
                            .bind(old.values[0].clone())
                            .execute(&mut *tx)
                            .await?;
                        updated += done.rows_affected();
                    }
                    tx.commit().await?;
                    Ok(updated)
                }
            }
        })
    }

    pub async fn insert_rotation(&self, rotation: &KeyRotation) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(trusted(format!(
                "INSERT INTO key_rotations ({ROTATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )))
            .bind(&rotation.id)
            .bind(rotation.to_version as i64)
            .bind(&rotation.status)
            .bind(rotation.total)
            .bind(rotation.done)
            .bind(&rotation.error)
            .bind(&rotation.requested_by)
            .bind(rotation.started_at)
            .bind(rotation.finished_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Saves progress and outcome of a rotation.
    pub async fn update_rotation(&self, rotation: &KeyRotation) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(
                "UPDATE key_rotations SET status = $2, total = $3, done = $4, error = $5, finished_at = $6 WHERE id = $1",
            )
            .bind(&rotation.id)
            .bind(&rotation.status)
            .bind(rotation.total)
            .bind(rotation.done)
            .bind(&rotation.error)
            .bind(rotation.finished_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The newest rotation, if any.
    pub async fn latest_rotation(&self) -> Result<Option<KeyRotation>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!(
                "SELECT {ROTATION_COLUMNS} FROM key_rotations ORDER BY started_at DESC, id DESC LIMIT 1"
            )))
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok(KeyRotation {
                    id: r.try_get("id")?,
                    to_version: r.try_get::<i64, _>("to_version")? as u32,
                    status: r.try_get("status")?,
                    total: r.try_get("total")?,
                    done: r.try_get("done")?,
                    error: r.try_get("error")?,
                    requested_by: r.try_get("requested_by")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                })
            })
            .transpose()
        })
    }
}
