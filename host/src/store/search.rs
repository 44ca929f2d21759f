//! Searches that the FHIR server makes of a table: conditions that must all hold, each
//! true when any of its alternatives is (FHIR: repeated parameters AND, comma-separated
//! values OR), paged by id. Each table says what its conditions mean in SQL ([`Filter`]);
//! this file makes the `WHERE` clause, binds its values on either engine and runs the page
//! and the count.

use super::{Db, StoreError, Timestamp, on, trusted};
use sqlx::{FromRow, Row};

/// A condition of a table's search, as SQL.
pub trait Filter {
    /// The condition, with each value it needs put through `bind` (which answers `$n`).
    fn clause(&self, bind: &mut dyn FnMut(Bind) -> String) -> String;
}

#[derive(Clone, Debug)]
pub struct Search<C> {
    pub all_of: Vec<Vec<C>>,
    /// Only rows with a greater id (the page cursor).
    pub after: Option<String>,
}

impl<C> Default for Search<C> {
    fn default() -> Self {
        Self {
            all_of: Vec::new(),
            after: None,
        }
    }
}

/// A value a condition compares with.
pub enum Bind {
    Text(String),
    Bytes(Vec<u8>),
    Time(Timestamp),
}

/// Times at or after `from` and before `until` (either open); `inside: false` asks for the
/// times outside that range.
#[derive(Clone, Copy, Debug)]
pub struct TimeRange {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub inside: bool,
}

impl TimeRange {
    pub fn clause(&self, column: &str, bind: &mut dyn FnMut(Bind) -> String) -> String {
        let mut range = Vec::new();
        if let Some(from) = self.from {
            range.push(format!("{column} >= {}", bind(Bind::Time(from))));
        }
        if let Some(until) = self.until {
            range.push(format!("{column} < {}", bind(Bind::Time(until))));
        }
        let range = if range.is_empty() {
            "TRUE".to_string()
        } else {
            range.join(" AND ")
        };
        if self.inside {
            format!("({range})")
        } else {
            format!("NOT ({range})")
        }
    }
}

/// Binds a search's values to `$query`, whichever engine's query it is.
macro_rules! bind_all {
    ($query:ident, $binds:expr) => {
        for bind in $binds {
            $query = match bind {
                Bind::Text(v) => $query.bind(v),
                Bind::Bytes(v) => $query.bind(v),
                Bind::Time(v) => $query.bind(v),
            };
        }
    };
}

impl<C: Filter> Search<C> {
    /// The `WHERE` clause (`$1`… in order) and its values; `paged` adds the cursor.
    fn sql(&self, paged: bool) -> (String, Vec<Bind>) {
        let mut binds = Vec::new();
        let mut bind = |value: Bind| {
            binds.push(value);
            format!("${}", binds.len())
        };
        let mut clauses: Vec<String> = (self.all_of.iter())
            .map(|any_of| {
                let alternatives: Vec<String> = any_of.iter().map(|c| c.clause(&mut bind)).collect();
                if alternatives.is_empty() {
                    "FALSE".to_string()
                } else {
                    format!("({})", alternatives.join(" OR "))
                }
            })
            .collect();
        if paged {
            clauses.push(format!(
                "id > {}",
                bind(Bind::Text(self.after.clone().unwrap_or_default()))
            ));
        }
        if clauses.is_empty() {
            clauses.push("TRUE".into());
        }
        (clauses.join(" AND "), binds)
    }
}

impl Db {
    /// `SELECT columns FROM table` where every condition of `search` holds, in id order after
    /// `search.after`, at most `limit`; and (when `count`) how many rows match in all, for
    /// the first page only: a client paging on has it already, and counting 95,000
    /// practitioners for every page cut the FHIR pages to 31/s on PostgreSQL (284/s without;
    /// BENCHMARKS.md). A first page that is not full is the total, uncounted.
    pub(crate) async fn search<C, T>(
        &self,
        table: &str,
        columns: &str,
        search: &Search<C>,
        limit: i64,
        count: bool,
    ) -> Result<(Vec<T>, Option<i64>), StoreError>
    where
        C: Filter,
        T: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let (filter, binds) = search.sql(false);
        let (page_filter, page_binds) = search.sql(true);
        let limit_at = page_binds.len() + 1;
        on!(self.pool(), pool => {
            let sql = format!("SELECT {columns} FROM {table} WHERE {page_filter} ORDER BY id LIMIT ${limit_at}");
            let mut query = sqlx::query(trusted(sql));
            bind_all!(query, page_binds);
            let rows = query.bind(limit).fetch_all(pool).await?;
            let rows = rows.iter().map(T::from_row).collect::<Result<_, _>>()?;
            let rows: Vec<T> = rows;
            if !count || search.after.is_some() {
                return Ok((rows, None));
            }
            if limit > 0 && (rows.len() as i64) < limit {
                let total = rows.len() as i64;
                return Ok((rows, Some(total)));
            }
            let mut query = sqlx::query(trusted(format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}")));
            bind_all!(query, binds);
            let total: i64 = query.fetch_one(pool).await?.try_get("n")?;
            Ok((rows, Some(total)))
        })
    }
}
