//! Device observations: one row per device, LOINC code and time; the subject and components
//! sealed in `details`.

use super::Timestamp;
use super::search::{Bind, Filter, Search, TimeRange};
use super::{Backed, Backend, Db, StoreError, Tx, on, trusted};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use sqlx::{PgConnection, SqliteConnection};

/// An observation as stored.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct ObservationRecord {
    pub id: String,
    pub connector_id: String,
    pub device_id: String,
    /// LOINC code.
    pub code: String,
    pub value: Option<f64>,
    /// UCUM unit.
    pub unit: Option<String>,
    pub effective_at: Timestamp,
    #[serde(skip)]
    pub key_version: i64,
    /// Sealed: subject and components.
    #[serde(skip)]
    pub details: Vec<u8>,
    /// The subject's blind key (`crypto::BlindIndexer::subject`), when it has one.
    #[serde(skip)]
    pub subject_key: Option<Vec<u8>>,
    pub source_system: String,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, connector_id, device_id, code, value, unit, effective_at, key_version, details, subject_key, \
     source_system, created_at";
const COLUMN_COUNT: usize = 12;
/// Hubs sharing a database prepare and drop partitions one at a time under this advisory lock.
const PARTITIONS_LOCK: &str = "SELECT pg_advisory_xact_lock(7264002)";

/// A condition of an observation search (`search::Search`).
#[derive(Clone, Debug)]
pub enum Condition {
    Id(String),
    /// LOINC code.
    Code(String),
    Device(String),
    EffectiveAt(TimeRange),
    /// The subject's blind key.
    SubjectKey(Vec<u8>),
}

impl Filter for Condition {
    fn clause(&self, bind: &mut dyn FnMut(Bind) -> String) -> String {
        match self {
            Condition::Id(id) => format!("id = {}", bind(Bind::Text(id.clone()))),
            Condition::Code(code) => format!("code = {}", bind(Bind::Text(code.clone()))),
            Condition::Device(device) => format!("device_id = {}", bind(Bind::Text(device.clone()))),
            Condition::EffectiveAt(range) => range.clause("effective_at", bind),
            Condition::SubjectKey(key) => format!("subject_key = {}", bind(Bind::Bytes(key.clone()))),
        }
    }
}

/// Partitions of `observations` on PostgreSQL are named by month: `observations_2026_11`.
const PARTITION_PREFIX: &str = "observations_";

impl Db {
    /// The observations every condition of `search` holds for, in id (arrival) order after
    /// `search.after`, and (when `count`) how many there are in all.
    pub async fn search_observations(
        &self,
        search: &Search<Condition>,
        limit: i64,
        count: bool,
    ) -> Result<(Vec<ObservationRecord>, Option<i64>), StoreError> {
        self.search("observations", COLUMNS, search, limit, count).await
    }

    /// Up to `limit` ids on the list `observations_to_key` keeps (migration 0023).
    pub async fn observations_to_key(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_scalar("SELECT id FROM observations_to_key ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await?)
        })
    }

    /// The observations with these ids (those still stored).
    pub async fn observations_by_id(&self, ids: &[String]) -> Result<Vec<ObservationRecord>, StoreError> {
        let mut tx = self.begin().await?;
        super::select_where_in(&mut tx, &format!("SELECT {COLUMNS} FROM observations"), "id", ids).await
    }

    /// Newest first, optionally of one device and code; `before` is an observation id.
    pub async fn list_observations(
        &self,
        device_id: Option<&str>,
        code: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ObservationRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM observations WHERE ($1 = '' OR device_id = $1) AND ($2 = '' OR code = $2) \
             AND id < $3 ORDER BY id DESC LIMIT $4"
        );
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(sql))
                .bind(device_id.unwrap_or(""))
                .bind(code.unwrap_or(""))
                .bind(before.unwrap_or("~"))
                .bind(limit)
                .fetch_all(pool)
                .await?)
        })
    }

    /// On PostgreSQL, creates the partitions of the month of `now` and the `ahead` months
    /// after it, where missing; returns the names created. A month whose rows sit in the
    /// default partition already is left there (they stay stored and listed). Nothing to do
    /// on SQLite.
    pub async fn prepare_observation_partitions(
        &self,
        now: DateTime<Utc>,
        ahead: u32,
    ) -> Result<Vec<String>, StoreError> {
        let Backed::Postgres(pool) = self.pool() else {
            return Ok(Vec::new());
        };
        let mut tx = pool.begin().await?;
        sqlx::query(PARTITIONS_LOCK).execute(&mut *tx).await?;
        let existing = partitions(&mut tx).await?;
        let mut created = Vec::new();
        for offset in 0..=ahead {
            let Some(start) = month_start(now, offset) else {
                continue;
            };
            let name = format!("{PARTITION_PREFIX}{}", start.format("%Y_%m"));
            if existing.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let end = month_start(start, 1).expect("the month after a valid month");
            let in_default: (bool,) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM observations_default WHERE effective_at >= $1 AND effective_at < $2)",
            )
            .bind(start)
            .bind(end)
            .fetch_one(&mut *tx)
            .await?;
            if in_default.0 {
                tracing::warn!(partition = %name, "observations of this month are in the default partition; \
                    they stay there and its partition is not created");
                continue;
            }
            sqlx::query(trusted(format!(
                "CREATE TABLE {name} PARTITION OF observations FOR VALUES FROM ('{}') TO ('{}')",
                Timestamp::from(start),
                Timestamp::from(end)
            )))
            .execute(&mut *tx)
            .await?;
            created.push(name);
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Deletes observations whose time is before `cutoff`: on PostgreSQL by dropping each
    /// month's partition once its last instant is before `cutoff` (a month is kept whole
    /// until then) and deleting from the default partition; on SQLite row by row. Returns
    /// how many rows went.
    pub async fn delete_observations_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = Timestamp::from(cutoff);
        match self.pool() {
            Backed::Sqlite(pool) => Ok(sqlx::query("DELETE FROM observations WHERE effective_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected()),
            Backed::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(PARTITIONS_LOCK).execute(&mut *tx).await?;
                let mut deleted = 0;
                for (name, start) in partitions(&mut tx).await? {
                    let end = month_start(start, 1).expect("the month after a valid month");
                    if end <= cutoff.as_datetime() {
                        let (rows,): (i64,) = sqlx::query_as(trusted(format!("SELECT COUNT(*) FROM {name}")))
                            .fetch_one(&mut *tx)
                            .await?;
                        sqlx::query(trusted(format!("DROP TABLE {name}")))
                            .execute(&mut *tx)
                            .await?;
                        deleted += rows as u64;
                    }
                }
                deleted += sqlx::query("DELETE FROM observations_default WHERE effective_at < $1")
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(deleted)
            }
        }
    }
}

/// The monthly partitions of `observations` with the month each holds, by their names.
async fn partitions(tx: &mut sqlx::PgConnection) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'observations'::regclass",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(names
        .into_iter()
        .filter_map(|(name,)| {
            let month = name.strip_prefix(PARTITION_PREFIX)?;
            let start = NaiveDate::parse_from_str(&format!("{month}_01"), "%Y_%m_%d").ok()?;
            Some((name, start.and_hms_opt(0, 0, 0)?.and_utc()))
        })
        .collect())
}

/// The first instant of the month `offset` months after the one `t` is in (UTC).
fn month_start(t: DateTime<Utc>, offset: u32) -> Option<DateTime<Utc>> {
    let first = NaiveDate::from_ymd_opt(t.year(), t.month(), 1)?;
    Some(
        first
            .checked_add_months(Months::new(offset))?
            .and_hms_opt(0, 0, 0)?
            .and_utc(),
    )
}

/// Inserts observations; one already stored (same device, code and time) is skipped.
/// Returns how many were inserted.
pub async fn insert(tx: &mut Tx, rows: &[ObservationRecord]) -> Result<u64, StoreError> {
    match tx {
        Backed::Sqlite(tx) => insert_sqlite(tx, rows).await,
        Backed::Postgres(tx) => insert_postgres(tx, rows).await,
    }
}

const INSERT_TAIL: &str = " ON CONFLICT (device_id, code, effective_at) DO NOTHING";

/// SQLite: one statement per 1,000 rows.
async fn insert_sqlite(tx: &mut SqliteConnection, rows: &[ObservationRecord]) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in rows.chunks(1000) {
        let sql = format!(
            "INSERT INTO observations ({COLUMNS}) VALUES {}{INSERT_TAIL}",
            Backend::Sqlite.placeholders(chunk.len(), COLUMN_COUNT, 1)
        );
        let mut query = super::batch_write(sql);
        for o in chunk {
            query = query
                .bind(&o.id)
                .bind(&o.connector_id)
                .bind(&o.device_id)
                .bind(&o.code)
                .bind(o.value)
                .bind(&o.unit)
                .bind(o.effective_at)
                .bind(o.key_version)
                .bind(&o.details)
                .bind(&o.subject_key)
                .bind(&o.source_system)
                .bind(o.created_at);
        }
        inserted += query.execute(&mut *tx).await?.rows_affected();
    }
    Ok(inserted)
}

/// PostgreSQL: one array per column (see `practitioners::upsert`); the server routes each
/// row to its month's partition.
async fn insert_postgres(tx: &mut PgConnection, rows: &[ObservationRecord]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let text = |f: fn(&ObservationRecord) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    Ok(sqlx::query(trusted(format!(
        "INSERT INTO observations ({COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::text[], \
         $3::text[], $4::text[], $5::float8[], $6::text[], $7::timestamptz[], $8::int8[], $9::bytea[], $10::bytea[], \
         $11::text[], $12::timestamptz[]) AS o ({COLUMNS}){INSERT_TAIL}"
    )))
    .bind(text(|o| &o.id))
    .bind(text(|o| &o.connector_id))
    .bind(text(|o| &o.device_id))
    .bind(text(|o| &o.code))
    .bind(rows.iter().map(|o| o.value).collect::<Vec<_>>())
    .bind(rows.iter().map(|o| o.unit.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|o| o.effective_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|o| o.key_version).collect::<Vec<_>>())
    .bind(rows.iter().map(|o| o.details.as_slice()).collect::<Vec<_>>())
    .bind(rows.iter().map(|o| o.subject_key.as_deref()).collect::<Vec<_>>())
    .bind(text(|o| &o.source_system))
    .bind(rows.iter().map(|o| o.created_at).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// Sets each `(observation id, subject key)` and takes the `done` ids off the list
/// `observations_to_key`, in `tx`.
pub async fn set_subject_keys(tx: &mut Tx, keys: &[(String, Vec<u8>)], done: &[String]) -> Result<(), StoreError> {
    if !keys.is_empty() {
        match &mut *tx {
            Backed::Sqlite(tx) => {
                let sql = format!(
                    "UPDATE observations SET subject_key = v.column2 FROM (VALUES {}) AS v WHERE observations.id = v.column1",
                    Backend::Sqlite.placeholders(keys.len(), 2, 1)
                );
                let mut query = super::batch_write(sql);
                for (id, key) in keys {
                    query = query.bind(id).bind(key);
                }
                query.execute(&mut **tx).await?;
            }
            Backed::Postgres(tx) => {
                sqlx::query(
                    "UPDATE observations o SET subject_key = v.subject_key \
                     FROM UNNEST($1::text[], $2::bytea[]) AS v(id, subject_key) WHERE o.id = v.id",
                )
                .bind(keys.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
                .bind(keys.iter().map(|(_, key)| key.as_slice()).collect::<Vec<_>>())
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    super::delete_where_in(tx, "observations_to_key", "id", done).await
}
