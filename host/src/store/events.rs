//! The outbox (`events`): each change's event, written in the transaction of the change
//! (`crate::events` says what each event holds).

use super::Timestamp;
use super::{Backed, Backend, Db, StoreError, Tx, on, trusted};
use sqlx::{PgConnection, SqliteConnection};

/// An event as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredEvent {
    /// Its place in the outbox, set by the database (never written): events of one subject
    /// are delivered in this order.
    pub seq: i64,
    pub id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub connector_id: Option<String>,
    pub occurred_at: Timestamp,
    /// JSON.
    pub data: String,
}

const COLUMNS: &str = "id, type, subject, connector_id, occurred_at, data";
const COLUMN_COUNT: usize = 6;

/// The seq of the newest committed event (0 before the first), as SQL: on PostgreSQL the
/// counter row that hands seqs out (committed with its events), on SQLite the seq index.
pub fn last_seq_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "(SELECT COALESCE(MAX(seq), 0) FROM events)",
        Backend::Postgres => "(SELECT last FROM event_seq)",
    }
}

impl Db {
    /// The seq of the newest event (0 before the first): one row read. Where a new
    /// subscription starts; a sink compares it with its cursor to do nothing, not even renew
    /// its lease, while nothing is new.
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let sql = format!("SELECT {}", last_seq_sql(self.backend()));
        on!(self.pool(), pool => {
            Ok(sqlx::query_scalar(trusted(sql)).fetch_one(pool).await?)
        })
    }

    /// The seq that ends a batch of at most `limit` events after `after`; none when there is
    /// none. Read from the seq index alone: a batch handed to a job is `(after, end]`.
    pub async fn batch_end(&self, after: i64, limit: i64) -> Result<Option<i64>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_scalar(
                "SELECT MAX(seq) FROM (SELECT seq FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) AS batch",
            )
            .bind(after)
            .bind(limit)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Up to `limit` events after `after` (a seq), in order. Seqs become visible in order
    /// (migration 0024), so a reader that goes on from the last seq it saw misses none.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!(
                "SELECT seq, {COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
            )))
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The events with a seq in `(after, through]`, in order.
    pub async fn events_between(&self, after: i64, through: i64) -> Result<Vec<StoredEvent>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!(
                "SELECT seq, {COLUMNS} FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq"
            )))
            .bind(after)
            .bind(through)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Deletes the events whose id is below `floor` (`events::id_floor`: made before a
    /// time), by the id's index; how many went.
    pub async fn prune_events(&self, floor: &str) -> Result<u64, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query("DELETE FROM events WHERE id < $1").bind(floor).execute(pool).await?;
            Ok(done.rows_affected())
        })
    }
}

/// Appends `events` to the outbox in `tx`, in order. On PostgreSQL it takes the next seqs
/// from `event_seq`, which stays locked until `tx` ends: make it the transaction's last
/// statement, so the lock is held for the commit alone.
pub async fn insert(tx: &mut Tx, events: &[StoredEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    match tx {
        Backed::Sqlite(tx) => insert_sqlite(tx, events).await,
        Backed::Postgres(tx) => insert_postgres(tx, events).await,
    }
}

/// SQLite: one statement per 1,000 events; rows take their seq in the order listed.
async fn insert_sqlite(tx: &mut SqliteConnection, events: &[StoredEvent]) -> Result<(), StoreError> {
    for chunk in events.chunks(1000) {
        let sql = format!(
            "INSERT INTO events ({COLUMNS}) VALUES {}",
            Backend::Sqlite.placeholders(chunk.len(), COLUMN_COUNT, 1)
        );
        let mut query = super::batch_write(sql);
        for e in chunk {
            query = query
                .bind(&e.id)
                .bind(&e.kind)
                .bind(&e.subject)
                .bind(&e.connector_id)
                .bind(e.occurred_at)
                .bind(&e.data);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// PostgreSQL: one array per column, numbered in order after the seqs taken from
/// `event_seq` in the same statement.
async fn insert_postgres(tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), StoreError> {
    let text = |f: fn(&StoredEvent) -> &str| events.iter().map(f).collect::<Vec<_>>();
    sqlx::query(trusted(format!(
        "WITH taken AS (UPDATE event_seq SET last = last + $7 RETURNING last - $7 AS first) \
         INSERT INTO events (seq, {COLUMNS}) SELECT taken.first + e.n, {COLUMNS} FROM taken, \
         UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[]) \
         WITH ORDINALITY AS e ({COLUMNS}, n)"
    )))
    .bind(text(|e| &e.id))
    .bind(text(|e| &e.kind))
    .bind(text(|e| &e.subject))
    .bind(events.iter().map(|e| e.connector_id.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
    .bind(text(|e| &e.data))
    .bind(events.len() as i64)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
