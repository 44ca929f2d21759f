//! Executes claimed jobs: a sync run, a webhook, a batch of MQTT messages, a batch of the
//! hub's events for an outbound connector. Every attempt
//! instantiates the plugin afresh; what the plugin's error means for the job (retry later,
//! dead-letter) is decided here, the when by the queue (`crate::jobs`).

use super::job::ConnectorJob;
use super::{Inner, Manager, alerts};
use crate::jobs::{self, DeliverPayload, Executor, JobKind, MessagesPayload, Outcome, RunningCall, WebhookPayload};
use crate::runtime::state::CURSOR_KEY;
use crate::runtime::{
    Backends, CallError, JobSpec, LoadedPlugin, LogLevel, LogSink, Message, PluginError, Quotas, SyncRequest,
    WebhookRequest,
};
use crate::store::connectors::ConnectorRecord;
use crate::store::jobs::ClaimedJob;
use crate::telemetry;
use futures::future::BoxFuture;
use hub_registry::CreatePolicy;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

impl Executor for Manager {
    fn execute(&self, jobs: Vec<ClaimedJob>) -> BoxFuture<'_, Vec<Outcome>> {
        Box::pin(async move {
            let inner = &self.inner;
            let Some(first) = jobs.first() else { return Vec::new() };
            // Alert deliveries need no plugin, and outlive a deleted connector.
            if JobKind::parse(&first.kind) == Some(JobKind::Alert) {
                return super::alert_delivery::deliver(inner, &jobs).await;
            }
            let connector = match inner.db.connector(&first.connector_id).await {
                Ok(Some(connector)) => connector,
                Ok(None) => {
                    let mut outcomes = Vec::with_capacity(jobs.len());
                    for job in &jobs {
                        outcomes.push(
                            abandon(inner, None, job, "the connector was deleted before the job ran".into()).await,
                        );
                    }
                    return outcomes;
                }
                Err(e) => {
                    return jobs
                        .iter()
                        .map(|_| Outcome::Retry(database_failed(e.to_string())))
                        .collect();
                }
            };
            // Jobs whose every attempt was cut off are settled here; the rest run together.
            let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(jobs.len());
            let mut runnable = Vec::with_capacity(jobs.len());
            for (at, job) in jobs.into_iter().enumerate() {
                if job.attempt > job.max_attempts {
                    let error = format!(
                        "each of its {} attempts was cut off: the hub running it stopped, or lost the database \
                         long enough for its lease to lapse; retry it when the cause is fixed",
                        job.max_attempts
                    );
                    outcomes.push(Some(abandon(inner, Some(&connector), &job, error).await));
                } else {
                    outcomes.push(None);
                    runnable.push((at, job));
                }
            }
            let (positions, runnable): (Vec<usize>, Vec<ClaimedJob>) = runnable.into_iter().unzip();
            let ran = match runnable.first().map(|job| JobKind::parse(&job.kind)) {
                None => Vec::new(),
                Some(Some(JobKind::Sync)) => {
                    let mut ran = Vec::with_capacity(runnable.len());
                    for job in &runnable {
                        ran.push(if connector.enabled {
                            sync(inner, &connector, job).await
                        } else {
                            let error = format!(
                                "cancelled: connector {:?} was disabled before the run started",
                                connector.name
                            );
                            abandon(inner, Some(&connector), job, error).await
                        });
                    }
                    ran
                }
                Some(Some(JobKind::Webhook)) => events(inner, &connector, &runnable, webhooks).await,
                Some(Some(JobKind::Messages)) => events(inner, &connector, &runnable, messages).await,
                Some(Some(JobKind::Deliver)) => events(inner, &connector, &runnable, deliver).await,
                Some(Some(JobKind::Alert)) => super::alert_delivery::deliver(inner, &runnable).await,
                Some(None) => runnable
                    .iter()
                    .map(|job| Outcome::Failed(format!("unknown job kind {:?}", job.kind)))
                    .collect(),
            };
            for (at, outcome) in positions.into_iter().zip(ran) {
                outcomes[at] = Some(outcome);
            }
            outcomes.into_iter().map(|o| o.expect("every job judged")).collect()
        })
    }
}

fn database_failed(error: impl std::fmt::Display) -> String {
    format!("the hub's database failed: {error}")
}

/// Gives up on a job before it reaches the plugin; a sync's run fails with it. `connector`
/// is `None` when it was deleted.
async fn abandon(inner: &Arc<Inner>, connector: Option<&ConnectorRecord>, job: &ClaimedJob, error: String) -> Outcome {
    if let Some(run_id) = &job.run_id {
        finish_run(inner, connector, &job.connector_id, run_id, Some(&error)).await;
    }
    Outcome::Failed(error)
}

/// Records a run must create or update for the tables' statistics to be refreshed when it
/// ends, in the background (an ANALYZE of the 100,000-person tables took 1.9 s); smaller
/// runs are left to autovacuum, as they change the tables' shape little.
const BULK_WRITE: i64 = 10_000;

async fn finish_run(
    inner: &Inner,
    connector: Option<&ConnectorRecord>,
    connector_id: &str,
    run_id: &str,
    error: Option<&str>,
) {
    // The run's end and its event, together.
    let ended = async {
        let mut tx = inner.db.begin().await?;
        let run = crate::store::runs::finish(&mut tx, run_id, error).await?;
        if let Some(run) = &run {
            crate::store::events::insert(&mut tx, &[crate::events::run_finished(run)]).await?;
        }
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(run)
    };
    match ended.await {
        Ok(None) => tracing::debug!(run = %run_id, "the run to end is no longer stored (its connector was deleted)"),
        Ok(Some(run)) => {
            if let Some(connector) = connector {
                let took = (run.started_at).and_then(|t| (chrono::Utc::now() - t.as_datetime()).to_std().ok());
                crate::metrics::metrics().run_finished(&connector.name, error.is_none(), took);
            }
            if run.records_created + run.records_updated >= BULK_WRITE {
                let db = inner.db.clone();
                tokio::spawn(async move {
                    if let Err(store_error) = db.refresh_statistics().await {
                        tracing::warn!(error = %store_error, "could not refresh the database's statistics after a large run");
                    }
                });
            }
        }
        Err(store_error) => {
            tracing::error!(run = %run_id, error = %store_error, "could not record the end of a run");
        }
    }
    match error {
        None => tracing::info!(connector = %connector_id, run = %run_id, "run succeeded"),
        Some(error) => tracing::warn!(connector = %connector_id, run = %run_id, %error, "run failed"),
    }
}

/// What a call into a plugin needs: the compiled plugin, the connector's grants and quotas,
/// and its registration among the calls running here (dropped when the call ends).
struct Prepared {
    plugin: Arc<LoadedPlugin>,
    /// The plugin's name, for metrics.
    plugin_name: String,
    egress: Vec<String>,
    /// The secrets the plugin may read: those its manifest declares, never the client
    /// secrets the host uses for its credentials.
    granted: Vec<String>,
    quotas: Quotas,
    creates: CreatePolicy,
    running: RunningCall,
}

/// The connector's settings are read when its job is claimed, not when it was queued: a job
/// that starts after an upgrade uses the new version, one already running keeps its own.
async fn prepare(inner: &Arc<Inner>, connector: &ConnectorRecord, jobs: &[ClaimedJob]) -> Result<Prepared, Outcome> {
    let digest = &connector.plugin_digest;
    let plugin = match inner.runtime.loaded(digest) {
        Some(plugin) => plugin,
        None => {
            let component = inner
                .db
                .plugin_component(digest)
                .await
                .map_err(|e| Outcome::Retry(database_failed(e)))?;
            inner
                .runtime
                .load(digest, &component)
                .await
                .map_err(|e| Outcome::Failed(e.to_string()))?
        }
    };
    let manifest = Manager { inner: inner.clone() }
        .manifest_of(digest)
        .await
        .map_err(|e| Outcome::Failed(e.to_string()))?;
    let quotas = inner.runs.quotas_of(connector).map_err(Outcome::Failed)?;
    let creates = inner
        .runs
        .creates_of(connector)
        .await
        .map_err(|e| Outcome::Failed(e.to_string()))?;
    Ok(Prepared {
        plugin,
        plugin_name: manifest.name.clone(),
        granted: manifest.secrets.clone(),
        egress: serde_json::from_str(&connector.egress).unwrap_or_default(),
        quotas,
        creates,
        running: inner.runs.queue.running().start(&connector.id, &job_ids(jobs)),
    })
}

impl Prepared {
    fn host(&self, inner: &Arc<Inner>, connector: &ConnectorRecord, jobs: &[ClaimedJob]) -> Arc<ConnectorJob> {
        Arc::new(ConnectorJob::new(
            inner.clone(),
            connector.clone(),
            job_ids(jobs),
            jobs[0].run_id.clone(),
            self.granted.clone(),
            self.quotas.clone(),
            self.creates,
        ))
    }

    fn spec(&self, trace_id: String, run_deadline: Option<Instant>) -> JobSpec {
        JobSpec {
            plugin: self.plugin_name.clone(),
            egress: self.egress.clone(),
            trace_id,
            quotas: self.quotas.clone(),
            run_deadline,
            cancel: self.running.cancel.clone(),
            transport: Default::default(),
        }
    }
}

/// What a plugin's answer means for its job. A refused credential raises an alert; errors
/// are scrubbed of the secrets and tokens the attempt was handed.
async fn judge<T>(
    inner: &Inner,
    connector: &ConnectorRecord,
    host: &ConnectorJob,
    result: Result<Result<T, PluginError>, CallError>,
) -> Result<T, Outcome> {
    if let Some(failure) = host.store_failure() {
        return Err(Outcome::Retry(host.scrub(&format!(
            "the hub could not store a batch the plugin emitted ({failure}); the job will be retried"
        ))));
    }
    match result {
        Ok(Ok(value)) => {
            inner.resolve_alerts(connector, alerts::CREDENTIALS).await;
            Ok(value)
        }
        Ok(Err(error)) => Err(plugin_failure(inner, connector, host, error).await),
        // A cancelled event job keeps its data: it is queued again like any retry.
        Err(CallError::Cancelled(reason)) if host.run_id().is_none() => {
            Err(Outcome::Retry(host.scrub(&format!("cancelled: {reason}"))))
        }
        Err(call_error) => Err(Outcome::Failed(host.scrub(&call_error.to_string()))),
    }
}

/// What an error the plugin answered means for its job.
async fn plugin_failure(
    inner: &Inner,
    connector: &ConnectorRecord,
    host: &ConnectorJob,
    error: PluginError,
) -> Outcome {
    let message = host.scrub(&format!("{}: {}", error.kind(), error.reason()));
    match error {
        PluginError::Unavailable(_) => Outcome::Retry(message),
        PluginError::Unauthorized(_) => {
            inner
                .raise_alert(
                    alerts::AlertSubject::Connector(connector),
                    host.run_id(),
                    alerts::CREDENTIALS,
                    message.clone(),
                )
                .await;
            Outcome::Failed(message)
        }
        PluginError::InvalidInput(_) | PluginError::Config(_) | PluginError::Unsupported(_) => Outcome::Failed(message),
    }
}

/// One attempt of a sync run; the run records every attempt and its end.
async fn sync(inner: &Arc<Inner>, connector: &ConnectorRecord, job: &ClaimedJob) -> Outcome {
    let run_id = job.run_id.as_deref().expect("sync jobs name their run");
    let span = job_span(connector, std::slice::from_ref(job));
    let outcome = sync_attempt(inner, connector, job, run_id).instrument(span).await;
    match &outcome {
        Outcome::Succeeded => finish_run(inner, Some(connector), &connector.id, run_id, None).await,
        Outcome::Retry(_) if job.attempt < job.max_attempts => {}
        Outcome::Retry(error) => {
            let error = format!("failed after {} attempts; last error: {error}", job.max_attempts);
            finish_run(inner, Some(connector), &connector.id, run_id, Some(&error)).await;
            return Outcome::Failed(error);
        }
        Outcome::Failed(error) => finish_run(inner, Some(connector), &connector.id, run_id, Some(error)).await,
    }
    outcome
}

async fn sync_attempt(inner: &Arc<Inner>, connector: &ConnectorRecord, job: &ClaimedJob, run_id: &str) -> Outcome {
    let prepared = match prepare(inner, connector, std::slice::from_ref(job)).await {
        Ok(prepared) => prepared,
        Err(outcome) => return outcome,
    };
    let db = &inner.db;
    let started = db.start_attempt(run_id, &connector.plugin_digest).await;
    let cursor = db.state_get(&connector.id, CURSOR_KEY).await;
    let run = db.run(run_id).await;
    let (cursor, run) = match (started, cursor, run) {
        (Ok(()), Ok(cursor), Ok(Some(run))) => (cursor, run),
        (Ok(()), Ok(_), Ok(None)) => return Outcome::Failed(format!("run {run_id} is gone")),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return Outcome::Retry(database_failed(e)),
    };
    let Some(run_deadline) = run_deadline(inner, run.started_at) else {
        let limit = inner.runtime.limits().run_deadline_secs;
        return Outcome::Failed(format!(
            "sync run exceeded its wall-clock deadline of {limit} s over all its attempts (limits.run_deadline_secs)"
        ));
    };
    let host = prepared.host(inner, connector, std::slice::from_ref(job));
    let request = SyncRequest {
        run_id: run_id.to_string(),
        cursor,
        config: connector.config.clone(),
    };
    let result = inner
        .runtime
        .sync(
            &prepared.plugin,
            prepared.spec(run.trace_id, Some(run_deadline)),
            Backends::of(host.clone()),
            request,
        )
        .await;
    let outcome = match judge(inner, connector, &host, result).await {
        Ok(summary) => {
            let message = format!(
                "sync finished: {} pages, {} records",
                summary.pages, summary.records_emitted
            );
            host.log(LogLevel::Info, message, vec![], false);
            Outcome::Succeeded
        }
        Err(Outcome::Retry(error)) if job.attempt < job.max_attempts => {
            let message = format!(
                "attempt {} of {} failed, {error}; retrying after a backoff",
                job.attempt, job.max_attempts
            );
            host.log(LogLevel::Warn, message, vec![], false);
            if let Err(e) = db.requeue_run(run_id).await {
                tracing::error!(run = %run_id, error = %e, "could not mark a run as waiting for its retry");
            }
            Outcome::Retry(error)
        }
        Err(outcome) => {
            if let Outcome::Retry(error) | Outcome::Failed(error) = &outcome {
                host.log(LogLevel::Error, format!("run failed: {error}"), vec![], false);
            }
            outcome
        }
    };
    host.flush_logs().await;
    outcome
}

/// When a run that started at `started_at` must end (`limits.run_deadline_secs` after its
/// first attempt); `None` when that is past already.
fn run_deadline(inner: &Inner, started_at: Option<crate::store::Timestamp>) -> Option<Instant> {
    let limit = inner.runtime.limits().run_deadline();
    let started = started_at.map_or_else(chrono::Utc::now, |t| t.as_datetime());
    let spent = (chrono::Utc::now() - started).to_std().unwrap_or_default();
    limit.checked_sub(spent).map(|left| Instant::now() + left)
}

/// A call handing the events of some jobs to the plugin: one outcome per job, or one for
/// the call as a whole.
type EventCall = for<'a> fn(
    &'a Arc<Inner>,
    &'a ConnectorRecord,
    &'a Prepared,
    Arc<ConnectorJob>,
    &'a [ClaimedJob],
) -> BoxFuture<'a, Result<Vec<Outcome>, Outcome>>;

/// One attempt at jobs carrying events of one connector (webhooks, or batches of MQTT
/// messages), handed to the plugin in one call; one outcome per job, in order. When the
/// call as a whole fails for good (a trap, a deadline, an error for a whole batch of
/// messages), the jobs are tried again one by one at once, so a poisoned event fails only
/// its own job; a failure that may pass (`Retry`) is left to the queue's backoff.
async fn events(inner: &Arc<Inner>, connector: &ConnectorRecord, jobs: &[ClaimedJob], call: EventCall) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut rest = jobs;
    while !rest.is_empty() {
        let mut bytes = 0;
        let take = rest
            .iter()
            .take_while(|job| {
                bytes += job.payload.len();
                bytes <= EVENT_BYTES_PER_CALL
            })
            .count()
            .max(1);
        let (chunk, next) = rest.split_at(take);
        outcomes.extend(events_call(inner, connector, chunk, call).await);
        rest = next;
    }
    outcomes
}

/// Most payload bytes handed to a plugin in one call, so that what the events carry fits in
/// its memory (`limits.memory_mib`, 256 by default) with room to decode it; a larger event
/// goes alone.
const EVENT_BYTES_PER_CALL: usize = 4 << 20;

async fn events_call(
    inner: &Arc<Inner>,
    connector: &ConnectorRecord,
    jobs: &[ClaimedJob],
    call: EventCall,
) -> Vec<Outcome> {
    match events_attempt(inner, connector, jobs, call).await {
        Ok(outcomes) => outcomes,
        Err(Outcome::Failed(_)) if jobs.len() > 1 => {
            let mut alone = Vec::with_capacity(jobs.len());
            for job in jobs {
                let outcome = match events_attempt(inner, connector, std::slice::from_ref(job), call).await {
                    Ok(mut outcomes) => outcomes.pop().expect("one outcome per job"),
                    Err(outcome) => outcome,
                };
                alone.push(outcome);
            }
            alone
        }
        Err(outcome) => jobs.iter().map(|_| outcome.clone()).collect(),
    }
}

async fn events_attempt(
    inner: &Arc<Inner>,
    connector: &ConnectorRecord,
    jobs: &[ClaimedJob],
    call: EventCall,
) -> Result<Vec<Outcome>, Outcome> {
    events_attempt_traced(inner, connector, jobs, call)
        .instrument(job_span(connector, jobs))
        .await
}

/// The span of an attempt at `jobs`: it continues the trace the first was queued in (the
/// run's, the webhook request's, the MQTT batch's) and links the others'.
fn job_span(connector: &ConnectorRecord, jobs: &[ClaimedJob]) -> tracing::Span {
    let first = &jobs[0];
    let span = tracing::debug_span!(
        "job",
        job.kind = %first.kind,
        job.attempt = first.attempt,
        jobs = jobs.len(),
        connector = %connector.name,
        run = first.run_id.as_deref().unwrap_or_default(),
    );
    if let Some(traceparent) = &first.traceparent {
        telemetry::context::continue_trace(&span, traceparent);
    }
    for traceparent in jobs[1..].iter().filter_map(|job| job.traceparent.as_deref()) {
        telemetry::context::link(&span, traceparent);
    }
    span
}

async fn events_attempt_traced(
    inner: &Arc<Inner>,
    connector: &ConnectorRecord,
    jobs: &[ClaimedJob],
    call: EventCall,
) -> Result<Vec<Outcome>, Outcome> {
    let prepared = prepare(inner, connector, jobs).await?;
    let host = prepared.host(inner, connector, jobs);
    let result = call(inner, connector, &prepared, host.clone(), jobs).await;
    let failed = |job: &ClaimedJob, error: &str| {
        let message = format!("{} job {} attempt {}: {error}", job.kind, job.id, job.attempt);
        host.log(LogLevel::Warn, message, vec![], false);
    };
    match &result {
        Ok(outcomes) => {
            for (job, outcome) in jobs.iter().zip(outcomes) {
                if let Outcome::Retry(error) | Outcome::Failed(error) = outcome {
                    failed(job, error);
                }
            }
        }
        Err(Outcome::Retry(error) | Outcome::Failed(error)) => jobs.iter().for_each(|job| failed(job, error)),
        Err(Outcome::Succeeded) => {}
    }
    host.flush_logs().await;
    result
}

/// Opens a job's sealed payload.
fn payload<P: serde::de::DeserializeOwned>(inner: &Inner, job: &ClaimedJob) -> Result<P, String> {
    jobs::open_payload(&inner.keys.cipher(), &job.id, &job.payload).map_err(|e| e.to_string())
}

/// Inbound webhooks, handed over together. The senders had their `202` when the webhooks were
/// stored, so the plugin's answers only tell whether each was handled: 5xx or `unavailable`
/// means try again later, any other error or 4xx that it never will be.
fn webhooks<'a>(
    inner: &'a Arc<Inner>,
    connector: &'a ConnectorRecord,
    prepared: &'a Prepared,
    host: Arc<ConnectorJob>,
    jobs: &'a [ClaimedJob],
) -> BoxFuture<'a, Result<Vec<Outcome>, Outcome>> {
    Box::pin(async move {
        let mut unopened: Vec<Option<Outcome>> = Vec::with_capacity(jobs.len());
        let mut requests = Vec::with_capacity(jobs.len());
        for job in jobs {
            match payload::<WebhookPayload>(inner, job) {
                Ok(payload) => {
                    unopened.push(None);
                    requests.push(WebhookRequest {
                        id: payload.id,
                        headers: payload.headers,
                        body: payload.body,
                        config: connector.config.clone(),
                    });
                }
                Err(error) => unopened.push(Some(Outcome::Failed(error))),
            }
        }
        let sent = requests.len();
        let result = inner
            .runtime
            .handle_webhooks(
                &prepared.plugin,
                prepared.spec(trace_id(), None),
                Backends::of(host.clone()),
                requests,
            )
            .await;
        let answers = judge(inner, connector, &host, result.map(Ok)).await?;
        if answers.len() != sent {
            return Err(Outcome::Failed(format!(
                "the plugin answered {} of the {sent} webhooks handed to it; it must answer each",
                answers.len()
            )));
        }
        let mut answers = answers.into_iter();
        let mut outcomes = Vec::with_capacity(jobs.len());
        for unopened in unopened {
            let outcome = match unopened {
                Some(outcome) => outcome,
                None => match answers.next().expect("counted above") {
                    Ok(response) if response.status < 400 => Outcome::Succeeded,
                    Ok(response) => {
                        let detail =
                            String::from_utf8_lossy(&response.body[..response.body.len().min(512)]).into_owned();
                        let error = host.scrub(&format!("the plugin answered {}: {detail}", response.status));
                        if response.status >= 500 {
                            Outcome::Retry(error)
                        } else {
                            Outcome::Failed(error)
                        }
                    }
                    Err(error) => plugin_failure(inner, connector, &host, error).await,
                },
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    })
}

/// Batches of MQTT messages, concatenated into one `handle-messages` call.
fn messages<'a>(
    inner: &'a Arc<Inner>,
    connector: &'a ConnectorRecord,
    prepared: &'a Prepared,
    host: Arc<ConnectorJob>,
    jobs: &'a [ClaimedJob],
) -> BoxFuture<'a, Result<Vec<Outcome>, Outcome>> {
    Box::pin(async move {
        let mut batch = Vec::new();
        for job in jobs {
            // One unreadable payload fails the call; the jobs are then tried one by one.
            let payload: MessagesPayload = payload(inner, job).map_err(Outcome::Failed)?;
            batch.extend(payload.messages.into_iter().map(|m| Message {
                topic: m.topic,
                payload: m.payload,
            }));
        }
        let result = inner
            .runtime
            .handle_messages(
                &prepared.plugin,
                prepared.spec(trace_id(), None),
                Backends::of(host.clone()),
                batch,
                connector.config.clone(),
            )
            .await;
        judge(inner, connector, &host, result).await?;
        Ok(jobs.iter().map(|_| Outcome::Succeeded).collect())
    })
}

/// Batches of the hub's events for an outbound connector (`events::outbound`), one
/// `deliver` call each, oldest first; each delivered moves the connector's sink past it.
fn deliver<'a>(
    inner: &'a Arc<Inner>,
    connector: &'a ConnectorRecord,
    prepared: &'a Prepared,
    host: Arc<ConnectorJob>,
    jobs: &'a [ClaimedJob],
) -> BoxFuture<'a, Result<Vec<Outcome>, Outcome>> {
    Box::pin(async move {
        let sink = crate::store::sinks::connector_sink(&connector.id);
        for job in jobs {
            let batch: DeliverPayload = payload(inner, job).map_err(Outcome::Failed)?;
            let events = (inner.db.events_between(batch.after, batch.through).await)
                .map_err(|e| Outcome::Retry(database_failed(e)))?;
            let result = inner
                .runtime
                .deliver(
                    &prepared.plugin,
                    prepared.spec(trace_id(), None),
                    Backends::of(host.clone()),
                    events.into_iter().map(crate::events::outbound::for_plugin).collect(),
                    connector.config.clone(),
                )
                .await;
            judge(inner, connector, &host, result).await?;
            (inner.db.finish_sink_batch(&sink, batch.after, batch.through).await)
                .map_err(|e| Outcome::Retry(database_failed(e)))?;
        }
        Ok(jobs.iter().map(|_| Outcome::Succeeded).collect())
    })
}

/// The trace id of a call that belongs to no run: its job span's, or a fresh one.
fn trace_id() -> String {
    telemetry::context::current_traceparent()
        .and_then(|traceparent| telemetry::context::trace_id(&traceparent))
        .unwrap_or_else(|| hex::encode(crate::crypto::random_bytes::<16>()))
}

fn job_ids(jobs: &[ClaimedJob]) -> Vec<String> {
    jobs.iter().map(|job| job.id.clone()).collect()
}
