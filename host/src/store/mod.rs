//! Storage: SQLite (embedded default) and PostgreSQL (production, shared by replicas) behind
//! one interface, each through its own typed sqlx driver ([`Backed`]). Most queries are
//! written once in the SQL both speak (`$n` parameters, `ON CONFLICT`, `RETURNING`) and
//! compiled once per engine by [`on!`]; SQL that differs lives in per-backend functions.
//! Migrations live in `migrations/<backend>/`.
//!
//! One file per table group. Writes on the emit path are batched: one multi-row statement per
//! table per batch, in one transaction.

pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod backups;
pub mod connectors;
pub mod events;
pub mod facilities;
pub mod gauges;
pub mod identity;
pub mod jobs;
pub mod keys;
pub mod logs;
pub mod observations;
pub mod plugins;
pub mod practitioners;
pub mod rejects;
pub mod review;
pub mod runs;
pub mod search;
pub mod secrets;
pub mod sessions;
pub mod sinks;
pub mod state;
pub mod subscriptions;
mod time;

pub use time::Timestamp;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor as _, Postgres, Sqlite};
use std::str::FromStr;
use std::time::Duration;

/// One value per engine: a pool, a transaction or a connection of the engine the hub runs on.
#[derive(Clone)]
pub enum Backed<S, P> {
    Sqlite(S),
    Postgres(P),
}

pub type Pool = Backed<SqlitePool, PgPool>;
/// A transaction on the hub's database; dropped without [`Tx::commit`], it rolls back.
pub type Tx = Backed<sqlx::Transaction<'static, Sqlite>, sqlx::Transaction<'static, Postgres>>;
/// A connection of the pool, for reads that need no transaction.
pub type Conn = Backed<sqlx::pool::PoolConnection<Sqlite>, sqlx::pool::PoolConnection<Postgres>>;

/// Where a statement can run: a [`Tx`] or a [`Conn`], as the engine's own connection.
pub(crate) trait Connection: Send {
    fn engine(&mut self) -> Backed<&mut sqlx::SqliteConnection, &mut sqlx::PgConnection>;
}

impl Connection for Tx {
    fn engine(&mut self) -> Backed<&mut sqlx::SqliteConnection, &mut sqlx::PgConnection> {
        match self {
            Backed::Sqlite(tx) => Backed::Sqlite(&mut **tx),
            Backed::Postgres(tx) => Backed::Postgres(&mut **tx),
        }
    }
}

impl Connection for Conn {
    fn engine(&mut self) -> Backed<&mut sqlx::SqliteConnection, &mut sqlx::PgConnection> {
        match self {
            Backed::Sqlite(conn) => Backed::Sqlite(&mut **conn),
            Backed::Postgres(conn) => Backed::Postgres(&mut **conn),
        }
    }
}

/// Evaluates `$body` with `$x` bound to the engine's own value inside a [`Backed`]. The body
/// is compiled once per engine, so every query in it is typed for that engine's driver (no
/// `sqlx::Any` boxing of each argument: it cost a fifth of a sync's CPU).
macro_rules! on {
    ($value:expr, $x:ident => $body:expr) => {
        match $value {
            $crate::store::Backed::Sqlite($x) => $body,
            $crate::store::Backed::Postgres($x) => $body,
        }
    };
}
pub(crate) use on;

/// [`on!`] for a transaction: `$x` is the engine's connection the transaction holds.
macro_rules! on_tx {
    ($tx:expr, $x:ident => $body:expr) => {
        match $tx {
            $crate::store::Backed::Sqlite(tx) => {
                let $x = &mut **tx;
                $body
            }
            $crate::store::Backed::Postgres(tx) => {
                let $x = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl<S, P> Backed<S, P> {
    pub fn backend(&self) -> Backend {
        match self {
            Backed::Sqlite(_) => Backend::Sqlite,
            Backed::Postgres(_) => Backend::Postgres,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        on!(self, tx => tx.commit().await?);
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("a concurrent writer changed the same records; the write was abandoned, try again")]
    Concurrent,
    /// A write made for several callers together failed; each gets the cause.
    #[error("{0}")]
    Grouped(std::sync::Arc<StoreError>),
    #[error("the hub is stopping; the write was not made")]
    Stopping,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the hub's database, migrated.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

impl Db {
    /// Connects to `url` (`sqlite://path/hub.db` or `postgres://...`) and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            // WAL lets readers work during writes; NORMAL sync is durable in WAL mode up to
            // the last checkpointed transaction on power loss.
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .acquire_timeout(Duration::from_secs(30))
                .max_connections(8)
                .connect_with(options)
                .await?;
            sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
            Backed::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .acquire_timeout(Duration::from_secs(30))
                .max_connections(16)
                // The hub's statements are short and batched; past `jit_above_cost` (a match of
                // a 1,000-row batch is) PostgreSQL compiled them with LLVM, loading it into
                // each connection first: 7 % of the server's CPU in a 100,000-person sync
                // (BENCHMARKS.md, 2026-12-03) for statements that run in milliseconds.
                .after_connect(|conn, _| Box::pin(async move { conn.execute("SET jit = off").await.map(drop) }))
                .connect(url)
                .await?;
            sqlx::migrate!("../migrations/postgres").run(&pool).await?;
            Backed::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// The pool's connections: `(open, idle, most it opens)`.
    pub fn pool_use(&self) -> (u32, usize, u32) {
        on!(self.pool(), pool => (pool.size(), pool.num_idle(), pool.options().get_max_connections()))
    }

    /// A connection of the pool, for reads that need no transaction.
    pub async fn acquire(&self) -> Result<Conn, StoreError> {
        Ok(match self.pool() {
            Backed::Sqlite(pool) => Backed::Sqlite(pool.acquire().await?),
            Backed::Postgres(pool) => Backed::Postgres(pool.acquire().await?),
        })
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self.pool() {
            Backed::Sqlite(pool) => Backed::Sqlite(pool.begin().await?),
            Backed::Postgres(pool) => Backed::Postgres(pool.begin().await?),
        })
    }

    /// A trivial query: is the database there?
    pub async fn ping(&self) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        on!(self.pool(), pool => pool.close().await);
    }
}

/// The rows of `select` (a query without a `WHERE`) whose `column` is one of `keys`, on
/// `conn`. PostgreSQL gets one array parameter (a list of 1,000 parameters was
/// re-planned on every call: 28-37 ms a query against 100,000 practitioners), its distinct
/// keys each looked up in a `LATERAL` subquery that `OFFSET 0` keeps from being flattened
/// into a join: one index probe per key, whatever the planner believes. Without statistics
/// (a table loaded faster than autovacuum analyzes it, as in a first sync), `= ANY($1)` on a
/// non-unique index, and the flattened join alike, were a sequential scan: 22 ms and 39 ms a
/// batch by the end of a 100,000-record sync, against 7 ms probing 500 keys.
/// SQLite, which has no arrays, gets lists of 1,000 `?`.
pub(crate) async fn select_where_in<T, K>(
    conn: &mut impl Connection,
    select: &str,
    column: &str,
    keys: &[K],
) -> Result<Vec<T>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
    K: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + sqlx::postgres::PgHasArrayType + Sync,
    for<'q> &'q [K]: sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
{
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    match conn.engine() {
        Backed::Sqlite(conn) => {
            let mut found = Vec::new();
            for chunk in keys.chunks(1000) {
                let mut query = sqlx::query_as(trusted(where_in(Backend::Sqlite, select, column, chunk.len())));
                for key in chunk {
                    query = query.bind(key);
                }
                found.extend(query.fetch_all(&mut *conn).await?);
            }
            Ok(found)
        }
        Backed::Postgres(conn) => Ok(
            sqlx::query_as(trusted(where_in(Backend::Postgres, select, column, keys.len())))
                .bind(keys)
                .fetch_all(&mut *conn)
                .await?,
        ),
    }
}

/// Inserts what [`select_where_in`] would find, by `insert` (`INSERT INTO t (columns)`), in
/// the transaction `tx`: one statement per 1,000 keys, no row through the hub.
pub(crate) async fn copy_where_in(
    tx: &mut Tx,
    insert: &str,
    select: &str,
    column: &str,
    keys: &[String],
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    match tx {
        Backed::Sqlite(tx) => {
            for chunk in keys.chunks(1000) {
                let sql = format!("{insert} {}", where_in(Backend::Sqlite, select, column, chunk.len()));
                let mut query = batch_write(sql);
                for key in chunk {
                    query = query.bind(key);
                }
                query.execute(&mut **tx).await?;
            }
        }
        Backed::Postgres(tx) => {
            let sql = format!("{insert} {}", where_in(Backend::Postgres, select, column, keys.len()));
            sqlx::query(trusted(sql)).bind(keys).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// `select` (a query without a `WHERE`) cut to the rows whose `column` is one of `count`
/// keys: on PostgreSQL the array `$1`, each key probed in a `LATERAL` subquery (see
/// [`select_where_in`]); on SQLite a list of `count` `?`.
fn where_in(backend: Backend, select: &str, column: &str, count: usize) -> String {
    match backend {
        Backend::Sqlite => format!(
            "{select} WHERE {column} IN ({})",
            Backend::Sqlite.list_placeholders(count, 1)
        ),
        Backend::Postgres => format!(
            "SELECT found.* FROM (SELECT DISTINCT key FROM unnest($1) AS keys (key)) keys \
             CROSS JOIN LATERAL ({select} WHERE {column} = keys.key OFFSET 0) found"
        ),
    }
}

/// Deletes the rows of `table` whose `column` is one of `keys`, in the transaction `tx`: one
/// array parameter on PostgreSQL, lists of 1,000 `?` on SQLite.
pub(crate) async fn delete_where_in(tx: &mut Tx, table: &str, column: &str, keys: &[String]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    match tx {
        Backed::Sqlite(tx) => {
            for chunk in keys.chunks(1000) {
                let sql = format!(
                    "DELETE FROM {table} WHERE {column} IN ({})",
                    Backend::Sqlite.list_placeholders(chunk.len(), 1)
                );
                let mut query = batch_write(sql);
                for key in chunk {
                    query = query.bind(key);
                }
                query.execute(&mut **tx).await?;
            }
        }
        Backed::Postgres(tx) => {
            sqlx::query(trusted(format!("DELETE FROM {table} WHERE {column} = ANY($1)")))
                .bind(keys)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// SQL assembled from this module's constants and generated placeholders only, never from
/// input, so it is safe to run as is (sqlx 0.9 asks for that to be asserted).
fn trusted(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

/// A multi-row write built with [`Backend::placeholders`]: its text varies with the batch
/// size, so it is not kept in the connection's statement cache, which would hold a compiled
/// copy per size (up to 100 per connection; on SQLite a 1,000-row upsert compiles to a large
/// program: the 100,000-person sync's peak RSS fell from 297 to 146 MiB without them).
fn batch_write<'q, DB: sqlx::Database + sqlx::database::HasStatementCache>(
    sql: String,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments> {
    sqlx::query(trusted(sql)).persistent(false)
}

impl Backend {
    /// `(..),(..)` placeholders for `rows` rows of `cols` columns, numbered from `start`.
    ///
    /// SQLite gets anonymous `?`: it resolves numbered parameters by name, one linear search
    /// each, which made a 1,000-row insert quadratic (2 s instead of 20 ms).
    pub fn placeholders(self, rows: usize, cols: usize, start: usize) -> String {
        let mut out = String::with_capacity(rows * cols * 5);
        for r in 0..rows {
            if r > 0 {
                out.push(',');
            }
            out.push('(');
            out.push_str(&self.list_placeholders(cols, start + r * cols));
            out.push(')');
        }
        out
    }

    /// A comma-separated list of `n` placeholders numbered from `start`. On SQLite they are plain `?`, numbered by
    /// position by sqlx, so a statement using them must use them for every parameter (a `$1`
    /// before them shifts every binding by one).
    pub fn list_placeholders(self, n: usize, start: usize) -> String {
        let mut out = String::with_capacity(n * 5);
        for i in start..start + n {
            if i > start {
                out.push(',');
            }
            match self {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    out.push('$');
                    out.push_str(&i.to_string());
                }
            }
        }
        out
    }
}

/// Page size bounds of every list endpoint.
pub fn clamp_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(50).clamp(1, 500)
}

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(Backend::Postgres.placeholders(2, 3, 1), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(Backend::Postgres.list_placeholders(3, 4), "$4,$5,$6");
        assert_eq!(Backend::Sqlite.placeholders(2, 2, 1), "(?,?),(?,?)");
    }
}
