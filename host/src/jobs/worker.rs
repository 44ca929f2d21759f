//! The workers: claim due jobs, hand them to the executor, record what became of them.

use super::committer::{CommitError, Committer};
use super::running::Running;
use super::{JobKind, JobsConfig, RetryPolicy};
use crate::store::jobs::{ClaimedJob, JobFailure, NewJob};
use crate::store::{Backend, Db, Timestamp};
use chrono::Utc;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Failed for a reason that may pass: tried again after a delay while attempts remain.
    Retry(String),
    /// Cannot succeed as things are: dead-lettered at once.
    Failed(String),
}

/// Runs claimed jobs (the manager: it knows connectors and plugins).
pub trait Executor: Send + Sync + 'static {
    /// Runs jobs of one connector and kind together (events are handed to the plugin in one
    /// call); one outcome per job, in order.
    fn execute(&self, jobs: Vec<ClaimedJob>) -> BoxFuture<'_, Vec<Outcome>>;
}

/// This hub's side of the queue: its worker id, its workers and the lease keeper.
pub struct Queue {
    db: Db,
    /// Written into every claim, so leases and completions touch only this hub's jobs.
    worker_id: String,
    config: JobsConfig,
    retry: RetryPolicy,
    /// Woken when this hub queues a job, so its workers need not wait for the next poll.
    work: Notify,
    syncs: Notify,
    committer: Committer,
    running: Arc<Running>,
}

impl Queue {
    pub fn new(db: Db, config: JobsConfig, retry: RetryPolicy) -> Arc<Self> {
        Arc::new(Self {
            db,
            worker_id: uuid::Uuid::now_v7().to_string(),
            retry,
            work: Notify::new(),
            syncs: Notify::new(),
            committer: Committer::new(config.commit_batch),
            running: Arc::default(),
            config,
        })
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The plugin calls running on this hub.
    pub fn running(&self) -> &Arc<Running> {
        &self.running
    }

    /// Tells idle workers that jobs other than syncs were queued.
    pub fn notify_work(&self) {
        self.work.notify_one();
    }

    /// Tells idle sync workers that a sync was queued.
    pub fn notify_sync(&self) {
        self.syncs.notify_one();
    }

    /// Stores `job` with others queued at the same time (group commit) and wakes a worker;
    /// true once it is committed, false when its dedup key was stored before. Answers only
    /// after the commit, so a caller may acknowledge what the job carries.
    pub async fn store(&self, job: NewJob) -> Result<bool, CommitError> {
        let sync = job.kind == JobKind::Sync.as_str();
        let queued = self.committer.store(job).await?;
        if queued && sync {
            self.notify_sync();
        } else if queued {
            self.notify_work();
        }
        Ok(queued)
    }

    /// Starts the committers, the workers and the lease keeper; they run until aborted.
    pub fn start(self: &Arc<Self>, executor: Arc<dyn Executor>) -> Vec<JoinHandle<()>> {
        let committers = match self.db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => self.config.committers,
        };
        let mut tasks = self.committer.start(&self.db, committers);
        tasks.push(tokio::spawn(self.clone().keep_leases()));
        for _ in 0..self.config.workers.max(1) {
            tasks.push(tokio::spawn(self.clone().work_loop(executor.clone(), false)));
        }
        for _ in 0..self.config.sync_workers.max(1) {
            tasks.push(tokio::spawn(self.clone().work_loop(executor.clone(), true)));
        }
        tasks
    }

    /// Hands back the jobs this hub holds (on a clean stop), so another hub runs them now
    /// rather than after their lease lapses.
    pub async fn release(&self) {
        match self.db.release_jobs(&self.worker_id).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "jobs handed back to the queue"),
            Err(error) => tracing::warn!(%error, "could not hand back jobs; they run again when their lease lapses"),
        }
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.config.lease_secs.max(1))
    }

    fn lease_until(&self) -> Timestamp {
        Timestamp::from(Utc::now() + self.lease())
    }

    /// Renews this hub's leases every third of a lease, and stops calls whose connector was
    /// disabled or deleted on another hub. A failed renewal is tried again a few times
    /// before the next round: on SQLite a writer may hold the database for a moment.
    async fn keep_leases(self: Arc<Self>) {
        let every = self.lease() / 3;
        loop {
            tokio::time::sleep(every).await;
            let mut renewed = self.db.renew_leases(&self.worker_id, self.lease_until()).await;
            for pause in [50, 200, 800] {
                if renewed.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(pause)).await;
                renewed = self.db.renew_leases(&self.worker_id, self.lease_until()).await;
            }
            if let Err(error) = renewed {
                tracing::error!(%error, "could not renew job leases; other hubs may take over this hub's jobs");
            }
            match self.db.held_jobs_of_stopped_connectors(&self.worker_id).await {
                Ok(jobs) => {
                    for (job, reason) in jobs {
                        self.running.cancel_job(&job, &reason);
                    }
                }
                Err(error) => tracing::warn!(%error, "could not check for disabled connectors' running jobs"),
            }
        }
    }

    async fn claim(&self, syncs: bool) -> Vec<ClaimedJob> {
        let now = Timestamp::now();
        let claimed = if syncs {
            self.db
                .claim_sync(&self.worker_id, self.lease_until(), now)
                .await
                .map(|job| job.into_iter().collect())
        } else {
            self.db
                .claim_jobs(
                    &self.worker_id,
                    self.lease_until(),
                    now,
                    self.config.batch.max(1) as i64,
                )
                .await
        };
        claimed.unwrap_or_else(|error| {
            tracing::error!(%error, "claiming jobs failed");
            Vec::new()
        })
    }

    async fn work_loop(self: Arc<Self>, executor: Arc<dyn Executor>, syncs: bool) {
        let poll = Duration::from_millis(self.config.poll_ms.max(10));
        let wake = if syncs { &self.syncs } else { &self.work };
        loop {
            let jobs = self.claim(syncs).await;
            if jobs.is_empty() {
                // `notify_one` keeps a permit when no worker waits, so a job queued between
                // the claim and this wait still wakes one at once.
                let _ = tokio::time::timeout(poll, wake.notified()).await;
                continue;
            }
            for group in by_connector_and_kind(jobs) {
                self.run_group(&*executor, group).await;
            }
        }
    }

    /// Runs one group of jobs and records their outcomes, a statement per kind of outcome. A
    /// crash before that runs those jobs again, and the pipeline finds their records
    /// unchanged.
    async fn run_group(&self, executor: &dyn Executor, group: Vec<ClaimedJob>) {
        let facts: Vec<(String, i64, i64, String)> = group
            .iter()
            .map(|job| (job.id.clone(), job.attempt, job.max_attempts, job.kind.clone()))
            .collect();
        let started = std::time::Instant::now();
        let kind = group[0].kind.clone();
        let outcomes = executor.execute(group).await;
        let metrics = crate::metrics::metrics();
        metrics.jobs_ran(&kind, started.elapsed());
        let mut succeeded = Vec::with_capacity(facts.len());
        let mut retries = Vec::new();
        let mut dead = Vec::new();
        for ((id, attempt, max, kind), outcome) in facts.into_iter().zip(outcomes) {
            let ended = match &outcome {
                Outcome::Succeeded => "succeeded",
                Outcome::Retry(_) if attempt < max => "retried",
                Outcome::Retry(_) | Outcome::Failed(_) => "dead",
            };
            metrics.job_finished(&kind, ended, attempt);
            match outcome {
                Outcome::Succeeded => succeeded.push(id),
                Outcome::Retry(error) if attempt < max => {
                    let delay = self.retry.delay(attempt.max(1) as u32);
                    let run_after = Timestamp::from(Utc::now() + delay);
                    tracing::warn!(job = %id, %kind, attempt, max, %error, delay_ms = delay.as_millis() as u64, "job attempt failed; retrying");
                    retries.push(JobFailure {
                        id,
                        error,
                        run_after: Some(run_after),
                    });
                }
                Outcome::Retry(error) | Outcome::Failed(error) => {
                    tracing::warn!(job = %id, %kind, attempt, max, %error, "job dead-lettered");
                    dead.push(JobFailure {
                        id,
                        error,
                        run_after: None,
                    });
                }
            }
        }
        self.record(self.db.complete_jobs(&self.worker_id, &succeeded).await);
        self.record(self.db.fail_jobs(&self.worker_id, &retries).await);
        self.record(self.db.fail_jobs(&self.worker_id, &dead).await);
    }

    fn record(&self, result: Result<(), crate::store::StoreError>) {
        if let Err(error) = result {
            tracing::error!(%error, "could not record a job's outcome; it runs again when its lease lapses");
        }
    }
}

/// Claimed jobs grouped by connector and kind, in the order their first job was claimed;
/// syncs stay one to a group.
fn by_connector_and_kind(jobs: Vec<ClaimedJob>) -> Vec<Vec<ClaimedJob>> {
    let mut groups: Vec<Vec<ClaimedJob>> = Vec::new();
    for job in jobs {
        let together = job.kind != JobKind::Sync.as_str();
        match groups
            .iter_mut()
            .find(|g| together && g[0].connector_id == job.connector_id && g[0].kind == job.kind)
        {
            Some(group) => group.push(job),
            None => groups.push(vec![job]),
        }
    }
    groups
}
