//! Runs and jobs as users start them: a run of a connector (manual, scheduled), a job for a
//! webhook or MQTT batch, a dead job retried, a reject reprocessed. Every one goes through
//! the durable queue and is audited; `runner.rs` executes what this queues.

use super::manifests::Manifests;
use super::{ManagerError, Reprocessed};
use crate::audit::{Auditor, Event};
use crate::crypto::KeyRing;
use crate::jobs::{JobKind, Queue};
use crate::pipeline::{BatchSource, Pipeline};
use crate::runtime::Quotas;
use crate::store::connectors::ConnectorRecord;
use crate::store::jobs::{JobRecord, NewJob};
use crate::store::runs::RunRecord;
use crate::store::{self, Db, StoreError, Timestamp};
use hub_registry::CreatePolicy;
use serde::Serialize;
use std::sync::Arc;
use tracing::Instrument;

pub struct Runs {
    db: Db,
    keys: Arc<KeyRing>,
    audit: Auditor,
    pub(super) queue: Arc<Queue>,
    pub(super) pipeline: Pipeline,
    /// `[quotas]`: what a connector gets unless it overrides some.
    quotas: Quotas,
    manifests: Manifests,
}

impl Runs {
    pub(super) fn new(
        db: Db,
        keys: Arc<KeyRing>,
        audit: Auditor,
        queue: Arc<Queue>,
        pipeline: Pipeline,
        quotas: Quotas,
        manifests: Manifests,
    ) -> Self {
        Self {
            db,
            keys,
            audit,
            queue,
            pipeline,
            quotas,
            manifests,
        }
    }

    /// Queues a run of an enabled connector; it waits for a slot when the connector is at
    /// its concurrency limit.
    pub async fn request(&self, id: &str, trigger: &str, actor: &str) -> Result<RunRecord, ManagerError> {
        let connector = super::stored_connector(&self.db, id).await?;
        if !connector.enabled {
            return Err(ManagerError::Conflict(format!(
                "connector {:?} is disabled; enable it (POST /api/v1/connectors/{id}/enable) before running it",
                connector.name
            )));
        }
        let run = self.start(&connector, trigger, actor, None).await?;
        Ok(run.expect("a run without a fire key is always created"))
    }

    /// Queues the run of a schedule's fire time; `None` when another hub fired it.
    pub(crate) async fn start_scheduled(
        &self,
        connector: &ConnectorRecord,
        fire_key: &str,
    ) -> Result<Option<RunRecord>, ManagerError> {
        self.start(connector, "cron", "scheduler", Some(fire_key)).await
    }

    /// Queues a run as a durable job; `None` when `fire_key` was taken (another hub fired
    /// this schedule tick). The run's trace starts in the span that queues it (a child of
    /// the API request or cron fire), and its trace id is that trace's.
    async fn start(
        &self,
        connector: &ConnectorRecord,
        trigger: &str,
        actor: &str,
        fire_key: Option<&str>,
    ) -> Result<Option<RunRecord>, ManagerError> {
        let span = tracing::debug_span!("run.queue", connector = %connector.name, trigger);
        self.queue_run(connector, trigger, actor, fire_key)
            .instrument(span)
            .await
    }

    async fn queue_run(
        &self,
        connector: &ConnectorRecord,
        trigger: &str,
        actor: &str,
        fire_key: Option<&str>,
    ) -> Result<Option<RunRecord>, ManagerError> {
        let run_id = uuid::Uuid::now_v7().to_string();
        let job = self.new_job(connector, JobKind::Sync, None, Some(run_id.clone()), &());
        let trace_id = match job.traceparent.as_deref().and_then(crate::telemetry::context::trace_id) {
            Some(trace_id) => trace_id,
            None => hex::encode(crate::crypto::random_bytes::<16>()),
        };
        // The run and its audit entry commit together: a run is never accepted unaudited.
        let mut tx = self.db.begin().await?;
        if !store::jobs::enqueue_run(&mut tx, &job, trigger, &trace_id, fire_key).await? {
            return Ok(None);
        }
        let event = Event::new(actor, "connector.run", &connector.id)
            .details(serde_json::json!({ "run": run_id, "trigger": trigger, "job": job.id }));
        self.audit.record_in(&mut tx, &event).await?;
        tx.commit().await?;
        self.queue.notify_sync();
        let run = self.db.run(&run_id).await?.expect("run just created");
        Ok(Some(run))
    }

    /// A job for `connector` with its payload sealed, due now.
    pub(crate) fn new_job(
        &self,
        connector: &ConnectorRecord,
        kind: JobKind,
        dedup_key: Option<String>,
        run_id: Option<String>,
        payload: &impl Serialize,
    ) -> NewJob {
        let mut job = self.new_hub_job(kind, dedup_key, payload);
        job.connector_id = connector.id.clone();
        job.run_id = run_id;
        job.max_attempts = connector.max_attempts;
        job
    }

    /// A job of the hub's own, for no connector (an alert about a webhook subscription):
    /// its `connector_id` is empty; three attempts unless the caller sets more.
    pub(crate) fn new_hub_job(&self, kind: JobKind, dedup_key: Option<String>, payload: &impl Serialize) -> NewJob {
        let id = uuid::Uuid::now_v7().to_string();
        let cipher = self.keys.cipher();
        NewJob {
            payload: crate::jobs::seal_payload(&cipher, &id, payload),
            key_version: cipher.active_version() as i64,
            id,
            connector_id: String::new(),
            kind: kind.as_str(),
            dedup_key,
            run_id: None,
            max_attempts: 3,
            run_after: Timestamp::now(),
            traceparent: crate::telemetry::context::current_traceparent(),
        }
    }

    /// Queues a dead job again with a fresh set of attempts; a sync's run opens again.
    pub async fn retry_job(&self, id: &str, actor: &str) -> Result<JobRecord, ManagerError> {
        let Some(job) = self.db.requeue_dead_job(id).await? else {
            return Err(match self.db.job(id).await? {
                Some(job) => {
                    ManagerError::Conflict(format!("job {id:?} is {}; only dead jobs are retried", job.status))
                }
                None => ManagerError::NotFound {
                    what: "job",
                    id: id.into(),
                },
            });
        };
        match &job.run_id {
            Some(run_id) => {
                self.db.reopen_run(run_id).await?;
                self.queue.notify_sync();
            }
            None => self.queue.notify_work(),
        }
        self.audit
            .record(
                Event::new(actor, "job.retry", id)
                    .details(serde_json::json!({ "kind": job.kind, "connector": job.connector_id })),
            )
            .await;
        Ok(job)
    }

    /// Runs a rejected row through the pipeline again, as its connector emitted it: it is
    /// stored when what made it fail has changed (the person it names is now known, the rules
    /// changed), else rejected again with the current reason. Either way the old reject goes.
    pub async fn reprocess_reject(&self, id: &str, actor: &str) -> Result<Reprocessed, ManagerError> {
        let reject = self.db.reject(id).await?.ok_or_else(|| ManagerError::NotFound {
            what: "reject",
            id: id.into(),
        })?;
        let record = crate::pipeline::open_record(&self.keys.cipher(), "rejects", &reject.id, &reject.record)?;
        let reprocessed = self.ingest_as(&reject.connector_id, record).await?;
        self.db.delete_reject(&reject.id).await?;
        self.audit
            .record(Event::new(actor, "reject.reprocess", id).details(serde_json::json!({
                "connector": reject.connector_id, "outcome": reprocessed.outcome,
            })))
            .await;
        Ok(reprocessed)
    }

    /// Runs one record through the pipeline as connector `connector_id` emitted it, under its
    /// quotas and creation policy (the hub's defaults when the connector is gone).
    pub(crate) async fn ingest_as(
        &self,
        connector_id: &str,
        record: crate::model::CanonicalRecord,
    ) -> Result<Reprocessed, ManagerError> {
        let (quotas, creates) = match self.db.connector(connector_id).await? {
            Some(connector) => (
                self.quotas_of(&connector).map_err(ManagerError::invalid)?,
                self.creates_of(&connector).await?,
            ),
            None => (self.quotas.clone(), CreatePolicy::default()),
        };
        let source = BatchSource {
            connector_id,
            run_id: None,
            quotas: &quotas,
            creates,
        };
        let outcome = self.pipeline.ingest(source, vec![record]).await?;
        let counts = outcome.counts;
        Ok(match outcome.rejected.into_iter().next() {
            Some((_, reason)) => Reprocessed {
                outcome: "rejected",
                reason: Some(reason),
            },
            None => Reprocessed {
                outcome: if counts.created > 0 {
                    "created"
                } else if counts.updated > 0 {
                    "updated"
                } else if counts.held > 0 {
                    "held"
                } else {
                    "unchanged"
                },
                reason: None,
            },
        })
    }

    /// The quotas `connector` runs under: the hub's, with its overrides over them.
    pub(crate) fn quotas_of(&self, connector: &ConnectorRecord) -> Result<Quotas, String> {
        let overrides = serde_json::from_str(&connector.quotas).unwrap_or_else(|_| serde_json::json!({}));
        self.quotas.with_overrides(&overrides)
    }

    /// Whether `connector`'s records may create practitioners: its own setting, else its
    /// plugin manifest's `creates_practitioners`.
    pub(crate) async fn creates_of(&self, connector: &ConnectorRecord) -> Result<CreatePolicy, ManagerError> {
        match connector.creates_practitioners.as_deref() {
            Some(policy) => policy.parse().map_err(|e: String| {
                ManagerError::from(StoreError::Corrupt {
                    what: "connector creation policy",
                    detail: e,
                })
            }),
            None => Ok(self
                .manifests
                .get(&connector.plugin_digest)
                .await?
                .creates_practitioners),
        }
    }

    /// Refuses quota overrides that name no quota or are not positive whole numbers.
    pub(super) fn check_quotas(&self, overrides: &serde_json::Value) -> Result<(), ManagerError> {
        self.quotas
            .with_overrides(overrides)
            .map(drop)
            .map_err(ManagerError::invalid)
    }
}
