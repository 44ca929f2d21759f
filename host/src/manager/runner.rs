//! Executes claimed jobs: a sync run, a webhook, a batch of MQTT messages. Every attempt
//! instantiates the plugin afresh; what the plugin's error means for the job (retry later,
//! dead-letter) is decided here, the when by the queue (`crate::jobs`).

use super::job::ConnectorJob;
use super::{Inner, Manager, alerts};
use crate::jobs::{self, Executor, JobKind, MessagesPayload, Outcome, RunningCall, WebhookPayload};
use crate::runtime::state::CURSOR_KEY;
use crate::runtime::{
    CallError, JobHost, JobSpec, LoadedPlugin, LogLevel, Message, PluginError, Quotas, SyncRequest, WebhookRequest,
};
use crate::store::StoreError;
use crate::store::connectors::ConnectorRecord;
use crate::store::jobs::ClaimedJob;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Instant;

impl Executor for Manager {
    fn execute(&self, job: ClaimedJob) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let inner = &self.inner;
            let connector = match inner.db.connector(&job.connector_id).await {
                Ok(Some(connector)) => connector,
                Ok(None) => return abandon(inner, &job, "the connector was deleted before the job ran".into()).await,
                Err(e) => return Outcome::Retry(database_failed(e)),
            };
            if job.attempt > job.max_attempts {
                let error = format!(
                    "each of its {} attempts was cut off: the hub running it stopped, or lost the database \
                     long enough for its lease to lapse; retry it when the cause is fixed",
                    job.max_attempts
                );
                return abandon(inner, &job, error).await;
            }
            match JobKind::parse(&job.kind) {
                Some(JobKind::Sync) if !connector.enabled => {
                    let error = format!(
                        "cancelled: connector {:?} was disabled before the run started",
                        connector.name
                    );
                    abandon(inner, &job, error).await
                }
                Some(JobKind::Sync) => sync(inner, &connector, &job).await,
                Some(JobKind::Webhook) => webhook(inner, &connector, &job).await,
                Some(JobKind::Messages) => messages(inner, &connector, &job).await,
                None => Outcome::Failed(format!("unknown job kind {:?}", job.kind)),
            }
        })
    }
}

fn database_failed(error: StoreError) -> String {
    format!("the hub's database failed: {error}")
}

/// Gives up on a job before it reaches the plugin; a sync's run fails with it.
async fn abandon(inner: &Arc<Inner>, job: &ClaimedJob, error: String) -> Outcome {
    if let Some(run_id) = &job.run_id {
        finish_run(inner, &job.connector_id, run_id, Some(&error)).await;
    }
    Outcome::Failed(error)
}

async fn finish_run(inner: &Inner, connector_id: &str, run_id: &str, error: Option<&str>) {
    if let Err(store_error) = inner.db.finish_run(run_id, error).await {
        tracing::error!(run = %run_id, error = %store_error, "could not record the end of a run");
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
    egress: Vec<String>,
    /// The secrets the plugin may read: those its manifest declares, never the client
    /// secrets the host uses for its credentials.
    granted: Vec<String>,
    quotas: Quotas,
    running: RunningCall,
}

/// The connector's settings are read when its job is claimed, not when it was queued: a job
/// that starts after an upgrade uses the new version, one already running keeps its own.
async fn prepare(inner: &Arc<Inner>, connector: &ConnectorRecord, job: &ClaimedJob) -> Result<Prepared, Outcome> {
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
    let granted = Manager { inner: inner.clone() }
        .manifest_of(digest)
        .await
        .map_err(|e| Outcome::Failed(e.to_string()))?
        .secrets
        .clone();
    let quotas = inner.quotas_of(connector).map_err(Outcome::Failed)?;
    Ok(Prepared {
        plugin,
        egress: serde_json::from_str(&connector.egress).unwrap_or_default(),
        granted,
        quotas,
        running: inner.queue.running().start(&connector.id, &job.id),
    })
}

impl Prepared {
    fn host(&self, inner: &Arc<Inner>, connector: &ConnectorRecord, job: &ClaimedJob) -> Arc<ConnectorJob> {
        Arc::new(ConnectorJob::new(
            inner.clone(),
            connector.clone(),
            job.id.clone(),
            job.run_id.clone(),
            self.granted.clone(),
            self.quotas.clone(),
        ))
    }

    fn spec(&self, trace_id: String, run_deadline: Option<Instant>) -> JobSpec {
        JobSpec {
            egress: self.egress.clone(),
            trace_id,
            quotas: self.quotas.clone(),
            run_deadline,
            cancel: self.running.cancel.clone(),
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
    let outcome = match result {
        Ok(Ok(value)) => {
            inner.resolve_alerts(&connector.id, alerts::CREDENTIALS).await;
            return Ok(value);
        }
        Ok(Err(PluginError::Unavailable(reason))) => Outcome::Retry(format!("external system unavailable: {reason}")),
        Ok(Err(PluginError::Unauthorized(reason))) => {
            let message = host.scrub(&format!("unauthorized: {reason}"));
            inner
                .raise_alert(&connector.id, host.run_id(), alerts::CREDENTIALS, message.clone())
                .await;
            Outcome::Failed(message)
        }
        Ok(Err(PluginError::InvalidInput(reason))) => Outcome::Failed(format!("invalid input: {reason}")),
        Ok(Err(PluginError::Config(reason))) => Outcome::Failed(format!("configuration error: {reason}")),
        Ok(Err(PluginError::Unsupported(reason))) => Outcome::Failed(format!("unsupported: {reason}")),
        // A cancelled event job keeps its data: it is queued again like any retry.
        Err(CallError::Cancelled(reason)) if host.run_id().is_none() => Outcome::Retry(format!("cancelled: {reason}")),
        Err(call_error) => Outcome::Failed(call_error.to_string()),
    };
    Err(match outcome {
        Outcome::Retry(error) => Outcome::Retry(host.scrub(&error)),
        Outcome::Failed(error) => Outcome::Failed(host.scrub(&error)),
        Outcome::Succeeded => Outcome::Succeeded,
    })
}

/// One attempt of a sync run; the run records every attempt and its end.
async fn sync(inner: &Arc<Inner>, connector: &ConnectorRecord, job: &ClaimedJob) -> Outcome {
    let run_id = job.run_id.as_deref().expect("sync jobs name their run");
    let outcome = sync_attempt(inner, connector, job, run_id).await;
    match &outcome {
        Outcome::Succeeded => finish_run(inner, &connector.id, run_id, None).await,
        Outcome::Retry(_) if job.attempt < job.max_attempts => {}
        Outcome::Retry(error) => {
            let error = format!("failed after {} attempts; last error: {error}", job.max_attempts);
            finish_run(inner, &connector.id, run_id, Some(&error)).await;
            return Outcome::Failed(error);
        }
        Outcome::Failed(error) => finish_run(inner, &connector.id, run_id, Some(error)).await,
    }
    outcome
}

async fn sync_attempt(inner: &Arc<Inner>, connector: &ConnectorRecord, job: &ClaimedJob, run_id: &str) -> Outcome {
    let prepared = match prepare(inner, connector, job).await {
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
    let Some(run_deadline) = run_deadline(inner, run.started_at.as_deref()) else {
        let limit = inner.runtime.limits().run_deadline_secs;
        return Outcome::Failed(format!(
            "sync run exceeded its wall-clock deadline of {limit} s over all its attempts (limits.run_deadline_secs)"
        ));
    };
    let host = prepared.host(inner, connector, job);
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
            host.clone(),
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
fn run_deadline(inner: &Inner, started_at: Option<&str>) -> Option<Instant> {
    let limit = inner.runtime.limits().run_deadline();
    let started = started_at
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(chrono::Utc::now);
    let spent = (chrono::Utc::now() - started).to_std().unwrap_or_default();
    limit.checked_sub(spent).map(|left| Instant::now() + left)
}

/// One attempt at a job carrying an event (a webhook, a batch of messages): open its
/// payload, hand it to the plugin with `call`, judge the answer (`handled` for what the
/// plugin returned), log why it failed.
async fn event_attempt<P: serde::de::DeserializeOwned, T>(
    inner: &Arc<Inner>,
    connector: &ConnectorRecord,
    job: &ClaimedJob,
    call: impl AsyncFnOnce(&Prepared, JobSpec, Arc<ConnectorJob>, P) -> Result<Result<T, PluginError>, CallError>,
    handled: impl FnOnce(&ConnectorJob, T) -> Outcome,
) -> Outcome {
    let payload: P = match jobs::open_payload(&inner.keys.cipher(), &job.id, &job.payload) {
        Ok(payload) => payload,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let prepared = match prepare(inner, connector, job).await {
        Ok(prepared) => prepared,
        Err(outcome) => return outcome,
    };
    let host = prepared.host(inner, connector, job);
    let trace_id = hex::encode(crate::crypto::random_bytes::<16>());
    let result = call(&prepared, prepared.spec(trace_id, None), host.clone(), payload).await;
    let outcome = match judge(inner, connector, &host, result).await {
        Ok(value) => handled(&host, value),
        Err(outcome) => outcome,
    };
    if let Outcome::Retry(error) | Outcome::Failed(error) = &outcome {
        let message = format!("{} job {} attempt {}: {error}", job.kind, job.id, job.attempt);
        host.log(LogLevel::Warn, message, vec![], false);
    }
    host.flush_logs().await;
    outcome
}

/// One attempt at an inbound webhook. The sender had its `202` when the webhook was stored,
/// so the plugin's answer only tells whether it was handled: 5xx means try again later,
/// 4xx that it never will be.
async fn webhook(inner: &Arc<Inner>, connector: &ConnectorRecord, job: &ClaimedJob) -> Outcome {
    let call = async |prepared: &Prepared, spec, host: Arc<ConnectorJob>, payload: WebhookPayload| {
        let request = WebhookRequest {
            id: payload.id,
            headers: payload.headers,
            body: payload.body,
            config: connector.config.clone(),
        };
        inner
            .runtime
            .handle_webhook(&prepared.plugin, spec, host, request)
            .await
    };
    event_attempt(inner, connector, job, call, |host, response| {
        if response.status < 400 {
            return Outcome::Succeeded;
        }
        let detail = String::from_utf8_lossy(&response.body[..response.body.len().min(512)]).into_owned();
        let error = host.scrub(&format!("the plugin answered {}: {detail}", response.status));
        if response.status >= 500 {
            Outcome::Retry(error)
        } else {
            Outcome::Failed(error)
        }
    })
    .await
}

/// One attempt at a batch of MQTT messages.
async fn messages(inner: &Arc<Inner>, connector: &ConnectorRecord, job: &ClaimedJob) -> Outcome {
    let call = async |prepared: &Prepared, spec, host: Arc<ConnectorJob>, payload: MessagesPayload| {
        let batch = payload
            .messages
            .into_iter()
            .map(|m| Message {
                topic: m.topic,
                payload: m.payload,
            })
            .collect();
        let config = connector.config.clone();
        inner
            .runtime
            .handle_messages(&prepared.plugin, spec, host, batch, config)
            .await
    };
    event_attempt(inner, connector, job, call, |_, ()| Outcome::Succeeded).await
}
