//! Runs: one per sync (or other job), with its counters, timing, trace id and error.

use super::Timestamp;
use super::{Backed, Backend, Db, StoreError, Tx, on, on_tx, trusted};
use sqlx::{FromRow, Row};

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct RunRecord {
    pub id: String,
    pub connector_id: String,
    #[sqlx(rename = "trigger_kind")]
    pub trigger: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub queued_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub trace_id: String,
    /// The plugin version the run used; set when an attempt starts.
    pub plugin_digest: Option<String>,
    pub records_received: i64,
    pub records_created: i64,
    pub records_updated: i64,
    pub records_unchanged: i64,
    pub records_rejected: i64,
    /// Records held for identity review (`/api/v1/identity/candidates`): neither stored nor
    /// rejected until someone decides.
    pub records_held: i64,
    pub error: Option<String>,
}

/// What one emitted batch added to a run's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub received: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    pub held: i64,
}

const COLUMNS: &str = "id, connector_id, trigger_kind, status, attempts, queued_at, started_at, finished_at, trace_id, \
     plugin_digest, records_received, records_created, records_updated, records_unchanged, records_rejected, records_held, error";

impl Db {
    /// Marks the start of an attempt with the plugin version it runs.
    pub async fn start_attempt(&self, id: &str, plugin_digest: &str) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(
                "UPDATE runs SET status = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, $2), \
                 plugin_digest = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(Timestamp::now())
            .bind(plugin_digest)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A failed run whose job an operator retries: queued again, its error cleared.
    pub async fn reopen_run(&self, id: &str) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query("UPDATE runs SET status = 'queued', finished_at = NULL, error = NULL WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// A run whose attempt failed waits, queued, for its retry.
    pub async fn requeue_run(&self, id: &str) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query("UPDATE runs SET status = 'queued' WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Refreshes the planner's statistics of the tables a sync fills. PostgreSQL's
    /// autovacuum does it about a minute after a table grows; until then a table loaded by a
    /// first sync has none, and the planner scanned all 272,000 search keys of 95,000 people
    /// for each FHIR name search (35 searches/s, p99 2.5 s at 50 clients; an index probe
    /// once analyzed: BENCHMARKS.md). SQLite keeps no statistics until asked, either.
    /// PostgreSQL's tables are vacuumed too: until their pages are marked all-visible, a
    /// count of a name word's keys read the heap (202 pages for 256 keys, 1.0 ms) where an
    /// index-only scan reads none.
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        const TABLES: &str = "practitioners, practitioner_strs, practitioner_sources, practitioner_search_keys, \
                              practitioner_roles, facilities";
        match self.pool() {
            Backed::Sqlite(pool) => {
                for table in TABLES.split(", ") {
                    sqlx::query(trusted(format!("ANALYZE {table}"))).execute(pool).await?;
                }
            }
            Backed::Postgres(pool) => {
                sqlx::query(trusted(format!("VACUUM (ANALYZE) {TABLES}")))
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!("SELECT {COLUMNS} FROM runs WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(RunRecord::from_row).transpose()?)
        })
    }

    /// Newest first; `before` is the cursor (a run id; run ids are time-ordered UUIDv7).
    pub async fn list_runs(
        &self,
        connector_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM runs WHERE connector_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            )))
            .bind(connector_id)
            .bind(before.unwrap_or("~"))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(RunRecord::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Those of `connector_ids` whose newest finished run failed: one query, one index
    /// probe per connector (a practitioner page names a few connectors; asking each was a
    /// round trip apiece).
    pub async fn failing_connectors(&self, connector_ids: &[&str]) -> Result<Vec<String>, StoreError> {
        if connector_ids.is_empty() {
            return Ok(Vec::new());
        }
        let last_status = |ids: &str| {
            format!(
                "SELECT c.id FROM connectors c WHERE c.id {ids} AND (SELECT r.status FROM runs r \
                 WHERE r.connector_id = c.id AND r.status IN ('succeeded', 'failed') ORDER BY r.id DESC LIMIT 1) = 'failed'"
            )
        };
        match self.pool() {
            Backed::Sqlite(pool) => {
                let ids = format!("IN ({})", Backend::Sqlite.list_placeholders(connector_ids.len(), 1));
                let mut query = sqlx::query_scalar(trusted(last_status(&ids)));
                for id in connector_ids {
                    query = query.bind(id);
                }
                Ok(query.fetch_all(pool).await?)
            }
            Backed::Postgres(pool) => Ok(sqlx::query_scalar(trusted(last_status("= ANY($1)")))
                .bind(connector_ids)
                .fetch_all(pool)
                .await?),
        }
    }

    /// The newest successful run of a connector.
    pub async fn last_success(&self, connector_id: &str) -> Result<Option<RunRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM runs WHERE connector_id = $1 AND status = 'succeeded' ORDER BY id DESC LIMIT 1"
            )))
            .bind(connector_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.as_ref().map(RunRecord::from_row).transpose()?)
        })
    }

    /// How many runs of a connector are in each status.
    pub async fn run_counts(&self, connector_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM runs WHERE connector_id = $1 GROUP BY status")
                .bind(connector_id)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
                .collect()
        })
    }

    /// The newest run of a connector.
    pub async fn last_run(&self, connector_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.list_runs(connector_id, None, 1).await?.into_iter().next())
    }

    /// What the health of the connectors `ids` is judged on, in three queries whatever their
    /// number (a connector list used to cost five queries a connector).
    pub async fn health_facts(&self, ids: &[String], window: i64) -> Result<Vec<HealthFacts>, StoreError> {
        on!(self.pool(), pool => {
            let mut facts: Vec<HealthFacts> = ids
                .iter()
                .map(|id| HealthFacts {
                    connector_id: id.clone(),
                    ..HealthFacts::default()
                })
                .collect();
            if ids.is_empty() {
                return Ok(facts);
            }
            let index: std::collections::HashMap<&str, usize> =
                ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
            // Placeholders in the order they appear (SQLite numbers `?` by position).
            let n = ids.len();
            let backend = self.backend();
            let (finished, window_at, latest, successes) = (
                backend.list_placeholders(n, 1),
                backend.list_placeholders(1, n + 1),
                backend.list_placeholders(n, n + 2),
                backend.list_placeholders(n, 2 * n + 2),
            );
            // The newest `window` finished runs of each, and the newest run and newest success
            // of each when they are older.
            let sql = format!(
                "SELECT {COLUMNS}, n FROM (SELECT r.*, ROW_NUMBER() OVER (PARTITION BY connector_id ORDER BY id DESC) AS n \
                   FROM runs r WHERE status IN ('succeeded', 'failed') AND connector_id IN ({finished})) f WHERE n <= {window_at} \
                 UNION ALL SELECT {COLUMNS}, 0 AS n FROM runs WHERE id IN ( \
                   SELECT MAX(id) FROM runs WHERE connector_id IN ({latest}) GROUP BY connector_id \
                   UNION SELECT MAX(id) FROM runs WHERE status = 'succeeded' AND connector_id IN ({successes}) \
                   GROUP BY connector_id)"
            );
            let mut query = sqlx::query(trusted(sql));
            for id in ids {
                query = query.bind(id);
            }
            query = query.bind(window);
            for id in ids.iter().chain(ids) {
                query = query.bind(id);
            }
            for row in query.fetch_all(pool).await? {
                let run = RunRecord::from_row(&row)?;
                let n: i64 = row.try_get("n")?;
                let f = &mut facts[index[run.connector_id.as_str()]];
                if f.last_run.as_ref().is_none_or(|last| last.id < run.id) {
                    f.last_run = Some(run.clone());
                }
                if run.status == "succeeded" && f.last_success.as_ref().is_none_or(|last| last.id < run.id) {
                    f.last_success = Some(run.clone());
                }
                if n > 0 {
                    f.finished.push(run);
                }
            }
            for f in &mut facts {
                f.finished.sort_by(|a, b| b.id.cmp(&a.id));
            }
            let counts = "SELECT connector_id, status, COUNT(*) AS n FROM runs WHERE connector_id IN ({ids}) \
                          GROUP BY connector_id, status";
            for (id, status, n) in self.rows_of_connectors::<(String, String, i64)>(counts, ids).await? {
                facts[index[id.as_str()]].counts.push((status, n));
            }
            let alerts = "SELECT connector_id, COUNT(*) AS n FROM alerts WHERE resolved_at IS NULL \
                          AND connector_id IN ({ids}) GROUP BY connector_id";
            for (id, n) in self.rows_of_connectors::<(String, i64)>(alerts, ids).await? {
                facts[index[id.as_str()]].open_alerts = n;
            }
            Ok(facts)
        })
    }
}

impl Db {
    /// The rows of `sql`, whose `{ids}` stands for the placeholders of `ids`, bound to them.
    async fn rows_of_connectors<T>(&self, sql: &str, ids: &[String]) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        on!(self.pool(), pool => {
            let sql = sql.replace("{ids}", &self.backend().list_placeholders(ids.len(), 1));
            let mut query = sqlx::query_as(trusted(sql));
            for id in ids {
                query = query.bind(id);
            }
            Ok(query.fetch_all(pool).await?)
        })
    }
}

/// A connector's runs and alerts as its health is judged on them.
#[derive(Clone, Debug, Default)]
pub struct HealthFacts {
    pub connector_id: String,
    /// The newest finished runs, newest first.
    pub finished: Vec<RunRecord>,
    pub last_run: Option<RunRecord>,
    pub last_success: Option<RunRecord>,
    /// Runs by status.
    pub counts: Vec<(String, i64)>,
    pub open_alerts: i64,
}

/// Adds a batch's counts to its run, inside the batch's transaction.
pub async fn add_counts(tx: &mut Tx, run_id: &str, counts: RunCounts) -> Result<(), StoreError> {
    on_tx!(tx, tx => {
        sqlx::query(
            "UPDATE runs SET records_received = records_received + $2, records_created = records_created + $3, \
             records_updated = records_updated + $4, records_unchanged = records_unchanged + $5, \
             records_rejected = records_rejected + $6, records_held = records_held + $7 WHERE id = $1",
        )
        .bind(run_id)
        .bind(counts.received)
        .bind(counts.created)
        .bind(counts.updated)
        .bind(counts.unchanged)
        .bind(counts.rejected)
        .bind(counts.held)
        .execute(tx)
        .await?;
        Ok(())
    })
}

/// Ends run `id` in `tx`, failed with `error` or else succeeded; the run as it ended, if
/// there is one.
pub async fn finish(tx: &mut Tx, id: &str, error: Option<&str>) -> Result<Option<RunRecord>, StoreError> {
    on_tx!(tx, tx => {
        let row = sqlx::query(trusted(format!(
            "UPDATE runs SET status = $2, finished_at = $3, error = $4 WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(if error.is_some() { "failed" } else { "succeeded" })
        .bind(Timestamp::now())
        .bind(error)
        .fetch_optional(tx)
        .await?;
        Ok(row.as_ref().map(RunRecord::from_row).transpose()?)
    })
}
