//! Rejected rows: kept with their reason; the row itself is sealed, since it may hold a NIK or
//! a name.

use super::Timestamp;
use super::{Db, StoreError, Tx, on, on_tx, trusted};
use sqlx::FromRow;

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct RejectRecord {
    pub id: String,
    pub connector_id: String,
    pub run_id: Option<String>,
    pub source_system: String,
    pub source_id: String,
    pub reason: String,
    #[serde(skip)]
    pub record: Vec<u8>,
    #[serde(skip)]
    pub key_version: i64,
    pub created_at: Timestamp,
}

/// Rejects of one connector for one reason.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RejectReason {
    pub connector_id: String,
    pub reason: String,
    pub count: i64,
    pub latest: Timestamp,
}

const COLUMNS: &str = "id, connector_id, run_id, source_system, source_id, reason, record, key_version, created_at";

impl Db {
    /// Newest first, before the cursor `before`; optionally one connector's, one reason's.
    pub async fn list_rejects(
        &self,
        connector_id: Option<&str>,
        reason: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RejectRecord>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM rejects WHERE ($1 = '' OR connector_id = $1) AND ($2 = '' OR reason = $2) \
                 AND id < $3 ORDER BY id DESC LIMIT $4"
            )))
            .bind(connector_id.unwrap_or(""))
            .bind(reason.unwrap_or(""))
            .bind(before.unwrap_or("~"))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(RejectRecord::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Rejects grouped by connector and reason, the largest groups first.
    pub async fn reject_reasons(&self, limit: i64) -> Result<Vec<RejectReason>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as::<_, RejectReason>(
                "SELECT connector_id, reason, COUNT(*) AS count, MAX(created_at) AS latest FROM rejects \
                 GROUP BY connector_id, reason ORDER BY count DESC, reason LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    pub async fn reject(&self, id: &str) -> Result<Option<RejectRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!("SELECT {COLUMNS} FROM rejects WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(RejectRecord::from_row).transpose()?)
        })
    }

    pub async fn delete_reject(&self, id: &str) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query("DELETE FROM rejects WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

/// Inserts rejects in one statement per chunk.
pub async fn insert(tx: &mut Tx, rows: &[RejectRecord]) -> Result<(), StoreError> {
    let backend = tx.backend();
    on_tx!(tx, tx => {
        for chunk in rows.chunks(1000) {
            let sql = format!(
                "INSERT INTO rejects ({COLUMNS}) VALUES {}",
                backend.placeholders(chunk.len(), 9, 1)
            );
            let mut query = super::batch_write(sql);
            for r in chunk {
                query = query
                    .bind(&r.id)
                    .bind(&r.connector_id)
                    .bind(&r.run_id)
                    .bind(&r.source_system)
                    .bind(&r.source_id)
                    .bind(&r.reason)
                    .bind(&r.record)
                    .bind(r.key_version)
                    .bind(r.created_at);
            }
            query.execute(&mut *tx).await?;
        }
        Ok(())
    })
}
