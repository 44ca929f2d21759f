//! Durable jobs: the queue every trigger goes through (see `crate::jobs`).
//!
//! Claims are single statements: on PostgreSQL the candidate rows are picked with
//! `FOR UPDATE SKIP LOCKED`, so replicas never claim the same row and never wait on each
//! other; SQLite has one writer, so its statement is atomic as it is.

use super::Timestamp;
use super::{Backed, Backend, Db, StoreError, Tx, on, on_tx, trusted};
use sqlx::{FromRow, Row};

/// A job as the API shows it (never its payload).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct JobRecord {
    pub id: String,
    pub connector_id: String,
    /// `sync`, `webhook`, `messages`, `alert` or `deliver`.
    pub kind: String,
    /// The webhook-id of a webhook job.
    pub dedup_key: Option<String>,
    /// The run a sync job executes.
    pub run_id: Option<String>,
    /// `queued`, `running`, `succeeded` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// When it may run (next): later than `created_at` while it waits out a retry delay.
    pub run_after: Timestamp,
    /// The last attempt's error.
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// A job to queue; `payload` is sealed already.
pub struct NewJob {
    pub id: String,
    pub connector_id: String,
    pub kind: &'static str,
    pub dedup_key: Option<String>,
    pub run_id: Option<String>,
    pub payload: Vec<u8>,
    pub key_version: i64,
    pub max_attempts: i64,
    pub run_after: Timestamp,
    /// The W3C `traceparent` of the span that queued it: its run continues that trace.
    pub traceparent: Option<String>,
}

/// A failed attempt of a job: queued again after `run_after`, or dead-lettered without one.
#[derive(Clone, Debug)]
pub struct JobFailure {
    pub id: String,
    pub error: String,
    pub run_after: Option<Timestamp>,
}

/// A job a worker holds.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: String,
    pub connector_id: String,
    pub kind: String,
    pub run_id: Option<String>,
    pub payload: Vec<u8>,
    /// This attempt's number, from 1.
    #[sqlx(rename = "attempts")]
    pub attempt: i64,
    pub max_attempts: i64,
    /// The trace it was queued in.
    pub traceparent: Option<String>,
}

const COLUMNS: &str = "id, connector_id, kind, dedup_key, run_id, status, attempts, max_attempts, run_after, error, \
     created_at, finished_at";
const CLAIMED: &str = "id, connector_id, kind, run_id, payload, attempts, max_attempts, traceparent";
const INSERT_COLUMNS: usize = 12;

/// Claimable rows of `jobs` (as `alias`, with the claiming worker in `$2` and the current
/// time in `$3`): queued and due, or running under a lease that lapsed because another
/// worker died. A lease of the claiming worker itself that lapsed (it could not renew for a
/// while) is not taken over: that worker is alive and still running the job.
fn claimable(alias: &str) -> String {
    format!(
        "(({alias}status = 'queued' AND {alias}run_after <= $3) \
         OR ({alias}status = 'running' AND {alias}lease_until < $3 AND {alias}worker <> $2))"
    )
}

impl Db {
    /// Queues jobs in one statement; a job whose `dedup_key` is queued already for its
    /// connector and kind is skipped. Returns the ids inserted.
    pub async fn enqueue_jobs(&self, jobs: &[NewJob]) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin().await?;
        let inserted = insert(&mut tx, jobs).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Claims up to `limit` due jobs other than syncs for `worker`, leased until `lease_until`.
    /// Events of a disabled connector wait, queued, until it is enabled again: they carry data
    /// (webhooks, messages) that must not be lost. Alert deliveries go out regardless.
    pub async fn claim_jobs(
        &self,
        worker: &str,
        lease_until: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        on!(self.pool(), pool => {
            let lock = match self.backend() {
                Backend::Postgres => "FOR UPDATE SKIP LOCKED",
                Backend::Sqlite => "",
            };
            let rows = sqlx::query(trusted(format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = $1, worker = $2 \
                 WHERE id IN (SELECT id FROM jobs j WHERE kind <> 'sync' AND {} \
                   AND (kind = 'alert' OR NOT EXISTS (SELECT 1 FROM connectors c WHERE c.id = j.connector_id AND NOT c.enabled)) \
                   ORDER BY run_after LIMIT $4 {lock}) \
                 RETURNING {CLAIMED}",
                claimable("")
            )))
            .bind(lease_until)
            .bind(worker)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(ClaimedJob::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Claims one due sync job of a connector running fewer syncs than its `concurrency`.
    ///
    /// On PostgreSQL sync claims take one transaction-scoped advisory lock, so the count of
    /// running syncs they read cannot be stale (two replicas claiming at once would both see
    /// a free slot); syncs are claimed a few times a minute, so the lock costs nothing.
    pub async fn claim_sync(
        &self,
        worker: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        on!(self.pool(), pool => {
            let mut tx = pool.begin().await?;
            if self.backend() == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(7264001)")
                    .execute(&mut *tx)
                    .await?;
            }
            let row = sqlx::query(trusted(format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = $1, worker = $2 \
                 WHERE id = (SELECT j.id FROM jobs j JOIN connectors c ON c.id = j.connector_id \
                   WHERE j.kind = 'sync' AND {} \
                   AND (SELECT COUNT(*) FROM jobs r WHERE r.connector_id = j.connector_id AND r.kind = 'sync' \
                        AND r.status = 'running' AND r.lease_until >= $3) < c.concurrency \
                   ORDER BY j.run_after LIMIT 1) \
                 RETURNING {CLAIMED}",
                claimable("j.")
            )))
            .bind(lease_until)
            .bind(worker)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(row.as_ref().map(ClaimedJob::from_row).transpose()?)
        })
    }

    /// Extends the lease of every job `worker` holds.
    pub async fn renew_leases(&self, worker: &str, lease_until: Timestamp) -> Result<u64, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE worker = $2 AND status = 'running'")
                .bind(lease_until)
                .bind(worker)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// Jobs `worker` holds whose connector was disabled or deleted since, each with why it
    /// should stop.
    pub async fn held_jobs_of_stopped_connectors(&self, worker: &str) -> Result<Vec<(String, String)>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT j.id, j.connector_id, c.name FROM jobs j LEFT JOIN connectors c ON c.id = j.connector_id \
                 WHERE j.worker = $1 AND j.status = 'running' AND (c.id IS NULL OR NOT c.enabled)",
            )
            .bind(worker)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let name: Option<String> = row.try_get("name")?;
                    let reason = match name {
                        Some(name) => format!("connector {name:?} was disabled while the job ran"),
                        None => "the connector was deleted while the job ran".to_string(),
                    };
                    Ok((row.try_get("id")?, reason))
                })
                .collect()
        })
    }

    /// Marks jobs `worker` holds as succeeded, in one statement.
    pub async fn complete_jobs(&self, worker: &str, ids: &[String]) -> Result<(), StoreError> {
        const DONE: &str = "UPDATE jobs SET status = 'succeeded', lease_until = NULL, error = NULL";
        match self.pool() {
            // One array parameter: planned once, whatever the batch (see `select_where_in`).
            Backed::Postgres(pool) => {
                sqlx::query(trusted(format!(
                    "{DONE}, finished_at = $1 WHERE status = 'running' AND worker = $2 AND id = ANY($3)"
                )))
                .bind(Timestamp::now())
                .bind(worker)
                .bind(ids)
                .execute(pool)
                .await?;
            }
            Backed::Sqlite(pool) => {
                for chunk in ids.chunks(500) {
                    // Plain `?` throughout: SQLite numbers them by position (see `placeholders`).
                    let sql = format!(
                        "{DONE}, finished_at = ? WHERE status = 'running' AND worker = ? AND id IN ({})",
                        Backend::Sqlite.list_placeholders(chunk.len(), 3)
                    );
                    let mut query = sqlx::query(trusted(sql)).bind(Timestamp::now()).bind(worker);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    query.execute(pool).await?;
                }
            }
        }
        Ok(())
    }

    /// Records failed attempts of jobs `worker` holds, in one statement per 300 jobs: a job
    /// with a `run_after` is queued again until then, keeping its error; one without is
    /// dead-lettered (its last attempt failed, or it cannot succeed).
    pub async fn fail_jobs(&self, worker: &str, failures: &[JobFailure]) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            for chunk in failures.chunks(300) {
                let backend = self.backend();
                let values = backend.placeholders(chunk.len(), 3, 1);
                let now = backend.list_placeholders(1, chunk.len() * 3 + 1);
                let worker_param = backend.list_placeholders(1, chunk.len() * 3 + 2);
                let sql = format!(
                    "WITH failed (id, error, run_after) AS (VALUES {values}) \
                     UPDATE jobs SET status = CASE WHEN failed.run_after IS NULL THEN 'dead' ELSE 'queued' END, \
                       run_after = COALESCE(failed.run_after, jobs.run_after), error = failed.error, \
                       finished_at = CASE WHEN failed.run_after IS NULL THEN {now} ELSE NULL END, lease_until = NULL, \
                       worker = CASE WHEN failed.run_after IS NULL THEN jobs.worker ELSE NULL END \
                     FROM failed WHERE jobs.id = failed.id AND jobs.worker = {worker_param} AND jobs.status = 'running'"
                );
                let mut query = super::batch_write(sql);
                for failure in chunk {
                    query = query.bind(&failure.id).bind(&failure.error).bind(failure.run_after);
                }
                query.bind(Timestamp::now()).bind(worker).execute(pool).await?;
            }
            Ok(())
        })
    }

    /// Hands back the jobs a stopping worker holds, without counting the interrupted attempt.
    pub async fn release_jobs(&self, worker: &str) -> Result<u64, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query(
                "UPDATE jobs SET status = 'queued', attempts = attempts - 1, lease_until = NULL, worker = NULL \
                 WHERE worker = $1 AND status = 'running'",
            )
            .bind(worker)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// On SQLite, where one hub owns the database, jobs left running at start belong to a
    /// hub that died: they are queued again at once instead of after their lease lapses
    /// (the attempt they were on counts).
    pub async fn requeue_orphaned_jobs(&self) -> Result<u64, StoreError> {
        on!(self.pool(), pool => {
            if self.backend() != Backend::Sqlite {
                return Ok(0);
            }
            let done = sqlx::query(
                "UPDATE jobs SET status = 'queued', lease_until = NULL, worker = NULL WHERE status = 'running'",
            )
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// Queues a dead job again with a fresh set of attempts; `None` when it is not dead.
    pub async fn requeue_dead_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!(
                "UPDATE jobs SET status = 'queued', attempts = 0, run_after = $2, finished_at = NULL, worker = NULL \
                 WHERE id = $1 AND status = 'dead' RETURNING {COLUMNS}"
            )))
            .bind(id)
            .bind(Timestamp::now())
            .fetch_optional(pool)
            .await?;
            Ok(row.as_ref().map(JobRecord::from_row).transpose()?)
        })
    }

    /// The job of `connector_id` and `kind` queued under `dedup_key`, whatever its status.
    pub async fn job_by_dedup(
        &self,
        connector_id: &str,
        kind: &str,
        dedup_key: &str,
    ) -> Result<Option<JobRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM jobs WHERE connector_id = $1 AND kind = $2 AND dedup_key = $3"
            )))
            .bind(connector_id)
            .bind(kind)
            .bind(dedup_key)
            .fetch_optional(pool)
            .await?;
            Ok(row.as_ref().map(JobRecord::from_row).transpose()?)
        })
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(JobRecord::from_row).transpose()?)
        })
    }

    /// Newest first, optionally of one status, connector and kind; `before` is a job id.
    pub async fn list_jobs(
        &self,
        filter: &JobFilter<'_>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JobRecord>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM jobs WHERE ($1 = '' OR status = $1) AND ($2 = '' OR connector_id = $2) \
                 AND ($3 = '' OR kind = $3) AND id < $4 ORDER BY id DESC LIMIT $5"
            )))
            .bind(filter.status.unwrap_or(""))
            .bind(filter.connector_id.unwrap_or(""))
            .bind(filter.kind.unwrap_or(""))
            .bind(before.unwrap_or("~"))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(JobRecord::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// How many jobs are in each status (all connectors).
    pub async fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
                .collect()
        })
    }
}

/// Which jobs to list.
#[derive(Default)]
pub struct JobFilter<'a> {
    pub status: Option<&'a str>,
    pub connector_id: Option<&'a str>,
    pub kind: Option<&'a str>,
}

/// Inserts jobs in the caller's transaction, one statement per chunk; returns the ids
/// inserted (duplicates skipped).
pub async fn insert(tx: &mut Tx, jobs: &[NewJob]) -> Result<Vec<String>, StoreError> {
    let backend = tx.backend();
    on_tx!(tx, conn => {
        let mut inserted = Vec::with_capacity(jobs.len());
        let now = Timestamp::now();
        for chunk in jobs.chunks(500) {
            let sql = format!(
                "INSERT INTO jobs (id, connector_id, kind, dedup_key, run_id, payload, key_version, status, max_attempts, \
                 run_after, created_at, traceparent) VALUES {} ON CONFLICT (connector_id, kind, dedup_key) DO NOTHING RETURNING id",
                backend.placeholders(chunk.len(), INSERT_COLUMNS, 1)
            );
            let mut query = super::batch_write(sql);
            for job in chunk {
                query = query
                    .bind(&job.id)
                    .bind(&job.connector_id)
                    .bind(job.kind)
                    .bind(&job.dedup_key)
                    .bind(&job.run_id)
                    .bind(&job.payload)
                    .bind(job.key_version)
                    .bind("queued")
                    .bind(job.max_attempts)
                    .bind(job.run_after)
                    .bind(now)
                    .bind(&job.traceparent);
            }
            for row in query.fetch_all(&mut *conn).await? {
                inserted.push(row.try_get("id")?);
            }
        }
        Ok(inserted)
    })
}

/// Queues a sync job and the run it executes, in the caller's transaction; false when the
/// run's fire key was taken (another hub fired this schedule tick) and nothing was queued.
pub async fn enqueue_run(
    tx: &mut Tx,
    job: &NewJob,
    trigger: &str,
    trace_id: &str,
    fire_key: Option<&str>,
) -> Result<bool, StoreError> {
    let run_id = job.run_id.as_deref().expect("a sync job has a run");
    let created = on_tx!(tx, tx => {
        sqlx::query(
            "INSERT INTO runs (id, connector_id, trigger_kind, status, attempts, queued_at, trace_id, fire_key) \
             VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6) ON CONFLICT (connector_id, fire_key) DO NOTHING",
        )
        .bind(run_id)
        .bind(&job.connector_id)
        .bind(trigger)
        .bind(Timestamp::now())
        .bind(trace_id)
        .bind(fire_key)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    }) > 0;
    if created {
        insert(tx, std::slice::from_ref(job)).await?;
    }
    Ok(created)
}
