//! Executes one run: waits for a concurrency slot, instantiates the plugin afresh for every
//! attempt, retries while the external system is unavailable, records the outcome.

use super::job::ConnectorJob;
use super::{Inner, alerts};
use crate::runtime::state::CURSOR_KEY;
use crate::runtime::{JobHost, JobSpec, LogLevel, PluginError, SyncRequest};
use crate::store::connectors::ConnectorRecord;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The connector's settings are read when the run gets its slot, not when it was queued:
/// a run that starts after an upgrade uses the new version, one already running keeps the
/// version it loaded.
pub async fn execute(inner: Arc<Inner>, slot: Arc<Semaphore>, connector_id: String, run_id: String, trace_id: String) {
    let _permit = slot.acquire_owned().await.expect("connector slots are never closed");
    let error = match inner.db.connector(&connector_id).await {
        Ok(Some(connector)) => attempts(&inner, &connector, &run_id, &trace_id).await.err(),
        Ok(None) => Some("the connector was deleted before the run started".to_string()),
        Err(e) => Some(format!("the hub's database failed: {e}")),
    };
    if let Err(store_error) = inner.db.finish_run(&run_id, error.as_deref()).await {
        tracing::error!(run = %run_id, error = %store_error, "could not record the end of a run");
    }
    match &error {
        None => tracing::info!(connector = %connector_id, run = %run_id, "run succeeded"),
        Some(error) => tracing::warn!(connector = %connector_id, run = %run_id, %error, "run failed"),
    }
}

/// Runs attempts until one succeeds, a non-retryable error occurs, or attempts run out;
/// `Err` is the run's error message.
async fn attempts(inner: &Arc<Inner>, connector: &ConnectorRecord, run_id: &str, trace_id: &str) -> Result<(), String> {
    let store_error = |e: crate::store::StoreError| format!("the hub's database failed: {e}");
    let component = inner
        .db
        .plugin_component(&connector.plugin_digest)
        .await
        .map_err(store_error)?;
    let plugin = inner
        .runtime
        .load(&connector.plugin_digest, &component)
        .await
        .map_err(|e| e.to_string())?;
    let egress: Vec<String> = serde_json::from_str(&connector.egress).unwrap_or_default();
    // The plugin may read only the secrets its manifest declares, never the client secrets
    // the host uses for its credentials.
    let granted = super::Manager { inner: inner.clone() }
        .manifest_of(&connector.plugin_digest)
        .await
        .map_err(|e| e.to_string())?
        .secrets;
    let max = connector.max_attempts.max(1) as u32;
    for attempt in 1..=max {
        inner
            .db
            .start_attempt(run_id, &connector.plugin_digest)
            .await
            .map_err(store_error)?;
        let cursor = inner
            .db
            .state_get(&connector.id, CURSOR_KEY)
            .await
            .map_err(store_error)?;
        let job = Arc::new(ConnectorJob::new(
            inner.clone(),
            connector.clone(),
            run_id.to_string(),
            granted.clone(),
        ));
        let spec = JobSpec {
            egress: egress.clone(),
            trace_id: trace_id.to_string(),
        };
        let request = SyncRequest {
            run_id: run_id.to_string(),
            cursor,
            config: connector.config.clone(),
        };
        let outcome = inner.runtime.sync(&plugin, spec, job.clone(), request).await;
        let result = match outcome {
            Ok(Ok(summary)) => {
                job.log(
                    LogLevel::Info,
                    format!(
                        "sync finished: {} pages, {} records",
                        summary.pages, summary.records_emitted
                    ),
                    vec![],
                    false,
                );
                Ok(())
            }
            Ok(Err(PluginError::Unavailable(reason))) if attempt < max => {
                let delay = inner.retry.delay(attempt);
                job.log(
                    LogLevel::Warn,
                    format!(
                        "attempt {attempt} of {max} failed, external system unavailable: {reason}; retrying in {:.1} s",
                        delay.as_secs_f64()
                    ),
                    vec![],
                    false,
                );
                job.flush_logs().await;
                tokio::time::sleep(delay).await;
                continue;
            }
            Ok(Err(PluginError::Unavailable(reason))) => Err(format!(
                "external system unavailable after {max} attempts; last error: {reason}"
            )),
            Ok(Err(PluginError::Unauthorized(reason))) => {
                let message = job.scrub(&format!("unauthorized: {reason}"));
                inner
                    .raise_alert(&connector.id, run_id, alerts::CREDENTIALS, message.clone())
                    .await;
                Err(message)
            }
            Ok(Err(PluginError::InvalidInput(reason))) => Err(format!("invalid input: {reason}")),
            Ok(Err(PluginError::Config(reason))) => Err(format!("configuration error: {reason}")),
            Ok(Err(PluginError::Unsupported(reason))) => Err(format!("unsupported: {reason}")),
            Err(call_error) => Err(call_error.to_string()),
        };
        let result = result.map_err(|error| job.scrub(&error));
        match &result {
            Ok(()) => inner.resolve_alerts(&connector.id, alerts::CREDENTIALS).await,
            Err(error) => job.log(LogLevel::Error, format!("run failed: {error}"), vec![], false),
        }
        job.flush_logs().await;
        return result;
    }
    unreachable!("the last attempt always returns")
}
