//! Device observations: one row per device, LOINC code and time; the subject and components
//! sealed in `details`.

use super::{Backend, Db, StoreError, trusted};
use sqlx::Row;

/// An observation as stored.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ObservationRecord {
    pub id: String,
    pub connector_id: String,
    pub device_id: String,
    /// LOINC code.
    pub code: String,
    pub value: Option<f64>,
    /// UCUM unit.
    pub unit: Option<String>,
    pub effective_at: String,
    #[serde(skip)]
    pub key_version: i64,
    /// Sealed: subject and components.
    #[serde(skip)]
    pub details: Vec<u8>,
    pub source_system: String,
    pub created_at: String,
}

const COLUMNS: &str =
    "id, connector_id, device_id, code, value, unit, effective_at, key_version, details, source_system, created_at";
const COLUMN_COUNT: usize = 11;

fn from_row(r: &sqlx::any::AnyRow) -> Result<ObservationRecord, sqlx::Error> {
    Ok(ObservationRecord {
        id: r.try_get("id")?,
        connector_id: r.try_get("connector_id")?,
        device_id: r.try_get("device_id")?,
        code: r.try_get("code")?,
        value: r.try_get("value")?,
        unit: r.try_get("unit")?,
        effective_at: r.try_get("effective_at")?,
        key_version: r.try_get("key_version")?,
        details: r.try_get("details")?,
        source_system: r.try_get("source_system")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// Newest first, optionally of one device and code; `before` is an observation id.
    pub async fn list_observations(
        &self,
        device_id: Option<&str>,
        code: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ObservationRecord>, StoreError> {
        let rows = sqlx::query(trusted(format!(
            "SELECT {COLUMNS} FROM observations WHERE ($1 = '' OR device_id = $1) AND ($2 = '' OR code = $2) \
             AND id < $3 ORDER BY id DESC LIMIT $4"
        )))
        .bind(device_id.unwrap_or(""))
        .bind(code.unwrap_or(""))
        .bind(before.unwrap_or("~"))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }
}

/// Inserts observations in one statement per chunk; one already stored (same device, code
/// and time) is skipped. Returns how many were inserted.
pub async fn insert(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    rows: &[ObservationRecord],
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in rows.chunks(1000) {
        let sql = format!(
            "INSERT INTO observations ({COLUMNS}) VALUES {} ON CONFLICT (device_id, code, effective_at) DO NOTHING",
            backend.placeholders(chunk.len(), COLUMN_COUNT, 1)
        );
        let mut query = sqlx::query(trusted(sql));
        for o in chunk {
            query = query
                .bind(&o.id)
                .bind(&o.connector_id)
                .bind(&o.device_id)
                .bind(&o.code)
                .bind(o.value)
                .bind(&o.unit)
                .bind(&o.effective_at)
                .bind(o.key_version)
                .bind(&o.details)
                .bind(&o.source_system)
                .bind(&o.created_at);
        }
        inserted += query.execute(&mut *tx).await?.rows_affected();
    }
    Ok(inserted)
}
