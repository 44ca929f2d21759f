//! What the host does behind a plugin's imports during one run of one connector.

use super::Inner;
use super::alerts::{AlertSubject, REJECT_RATE, REJECT_SHARE_LIMIT, REJECT_WINDOW_ROWS};
use super::credentials::CredentialSpec;
use crate::audit::{Event, Outcome};
use crate::model::CanonicalRecord;
use crate::pipeline::{BatchOutcome, BatchSource, Lane, Storing};
use crate::runtime::{
    EmitOutcome, LogLevel, LogSink, PluginError, Quotas, RecordSink, RejectedRow, SecretSource, StateStore, TokenSource,
};
use crate::secrets::SecretError;
use crate::store::logs::LogLine;
use crate::store::{self, StoreError, connectors::ConnectorRecord};
use futures::future::BoxFuture;
use hub_registry::CreatePolicy;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tracing::Instrument;

pub struct ConnectorJob {
    inner: Arc<Inner>,
    connector: ConnectorRecord,
    credentials: BTreeMap<String, CredentialSpec>,
    /// The durable jobs this is an attempt of: one sync, or events of one connector handed
    /// to the plugin together.
    job_ids: Vec<String>,
    /// The run, for a sync.
    run_id: Option<String>,
    /// Secret names the plugin may read (its manifest's `secrets`).
    granted_secrets: Vec<String>,
    /// The connector's quotas.
    quotas: Quotas,
    /// Whether its records may create practitioners.
    creates: CreatePolicy,
    /// Its batches being stored.
    lane: Lane,
    logs: Mutex<Vec<LogLine>>,
    /// Secret values and bearer tokens handed out in this job: scrubbed from everything it
    /// logs and from its error, should a plugin try to leak them.
    revealed: Mutex<Vec<String>>,
    /// Why the hub could not store a batch this job emitted, if it could not: the job's
    /// error then says the hub failed, whatever the plugin made of it.
    store_failure: Mutex<Option<String>>,
}

/// What a scrubbed value is replaced with.
const REDACTED: &str = "[redacted]";
/// Shorter values are not scrubbed: they would match ordinary text.
const SCRUB_MIN_LEN: usize = 6;
/// Rows stored per transaction: an emit of thousands of records becomes several short
/// transactions, so no plugin holds the database (SQLite's single writer above all) for
/// long. 500 rows take ~50-100 ms here (BENCHMARKS.md, sync).
const ROWS_PER_TRANSACTION: usize = 500;

impl ConnectorJob {
    pub fn new(
        inner: Arc<Inner>,
        connector: ConnectorRecord,
        job_ids: Vec<String>,
        run_id: Option<String>,
        granted_secrets: Vec<String>,
        quotas: Quotas,
        creates: CreatePolicy,
    ) -> Self {
        let credentials = serde_json::from_str(&connector.credentials).unwrap_or_default();
        Self {
            inner,
            connector,
            credentials,
            job_ids,
            run_id,
            granted_secrets,
            quotas,
            creates,
            lane: Lane::default(),
            logs: Mutex::default(),
            revealed: Mutex::default(),
            store_failure: Mutex::default(),
        }
    }

    /// The run this job executes, for a sync.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// Why the hub could not store a batch of this job, if it could not.
    pub fn store_failure(&self) -> Option<String> {
        self.store_failure.lock().unwrap().clone()
    }

    /// What audit entries of this job name: its run, or its (first) job; the details of a
    /// batch of event jobs list them all.
    fn target(&self) -> &str {
        self.run_id.as_deref().unwrap_or(&self.job_ids[0])
    }

    fn reveal(&self, value: &str) {
        if value.len() >= SCRUB_MIN_LEN {
            self.revealed.lock().unwrap().extend(disguises(value));
        }
    }

    /// `text` with every secret value and token this job handed out — as it is, reversed,
    /// in other letter case, base64 or hex — replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let revealed = self.revealed.lock().unwrap();
        revealed.iter().fold(text.to_string(), |text, value| {
            replace_ignoring_case(&text, value, REDACTED)
        })
    }

    /// Whether `name` is a secret the plugin may never read, whatever its manifest says:
    /// the client secret behind one of this connector's credentials (the host uses it to
    /// fetch tokens; the plugin gets only the token) or one of the hub's own.
    fn reserved(&self, name: &str) -> bool {
        name.starts_with(crate::secrets::HUB_SECRET_PREFIX)
            || self.credentials.values().any(|c| c.client_secret == name)
    }

    async fn open_secret(&self, name: &str) -> Result<String, PluginError> {
        let value = self
            .inner
            .secrets
            .store()
            .get(&self.connector.id, name)
            .await
            .map_err(|e| match e {
                SecretError::Vault(_) | SecretError::Store(_) => {
                    PluginError::Unavailable(format!("the hub could not read its secret store: {e}"))
                }
                other => PluginError::Config(format!("secret {name:?}: {other}")),
            })?;
        if let Some(value) = &value {
            self.reveal(value);
        }
        value.ok_or_else(|| {
            self.log(
                LogLevel::Warn,
                format!("plugin asked for secret {name:?}, which is not granted to this connector"),
                vec![],
                false,
            );
            PluginError::Config(format!("secret {name:?} is not granted to this connector instance"))
        })
    }
}

impl ConnectorJob {
    /// One audit entry per stored batch: when, how many, and whether it was stored (seed 002);
    /// an alert when the connector's reject-rate window closes over the limit.
    async fn audit_batch(&self, received: usize, result: &Result<BatchOutcome, StoreError>) {
        let event = Event::new(
            format!("connector:{}", self.connector.id),
            "records.batch",
            self.target(),
        );
        let event = match result {
            Ok(outcome) => {
                let rejected = outcome.rejected.len();
                if let Some(over) = self
                    .inner
                    .reject_windows
                    .add(&self.connector.id, received as u64, rejected as u64)
                {
                    let message = format!(
                        "{} of {} rows received were rejected (over {:.0} %, judged over at least {REJECT_WINDOW_ROWS} rows or 15 minutes); see GET /api/v1/rejects?connector_id={}",
                        over.rejected,
                        over.received,
                        REJECT_SHARE_LIMIT * 100.0,
                        self.connector.id
                    );
                    self.inner
                        .raise_alert(
                            AlertSubject::Connector(&self.connector),
                            self.run_id.as_deref(),
                            REJECT_RATE,
                            message,
                        )
                        .await;
                }
                event.details(json!({
                    "received": received,
                    "created": outcome.counts.created,
                    "updated": outcome.counts.updated,
                    "unchanged": outcome.counts.unchanged,
                    "rejected": rejected,
                    "jobs": self.job_ids,
                }))
            }
            Err(error) => event
                .outcome(Outcome::Failure)
                .details(json!({ "received": received, "error": error.to_string(), "jobs": self.job_ids })),
        };
        self.inner.audit.record(event).await;
    }

    fn source(&self) -> BatchSource<'_> {
        BatchSource {
            connector_id: &self.connector.id,
            run_id: self.run_id.as_deref(),
            quotas: &self.quotas,
            creates: self.creates,
        }
    }

    /// Begins storing each transaction's rows of `batch` in this job's lane (see
    /// [`crate::pipeline::Pipeline::begin`]): `(rows, storing)` in order.
    fn begin_storing(&self, batch: Vec<CanonicalRecord>) -> Vec<(u32, Storing)> {
        let mut rows = batch.into_iter();
        let mut storing = Vec::new();
        while rows.len() > 0 {
            let chunk: Vec<CanonicalRecord> = rows.by_ref().take(ROWS_PER_TRANSACTION).collect();
            let len = chunk.len() as u32;
            storing.push((len, self.inner.runs.pipeline.begin(&self.lane, self.source(), chunk)));
        }
        storing
    }

    /// Waits for the batch's transactions, in order; audits the batch as one.
    async fn store(&self, storing: Vec<(u32, Storing)>) -> Result<EmitOutcome, PluginError> {
        let received: u32 = storing.iter().map(|(rows, _)| rows).sum();
        let mut outcome = BatchOutcome::default();
        let mut result = Ok(());
        let mut offset = 0u32;
        for (rows, part) in storing {
            match part.outcome().await {
                Ok(part) => outcome.add(part, offset),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
            offset += rows;
        }
        let result = result.map(|()| outcome);
        if let Ok(outcome) = &result {
            let c = outcome.counts;
            let rejected = outcome.rejected.len() as i64;
            let counts = [c.created, c.updated, c.unchanged, rejected, c.held].map(|n| n as u64);
            crate::metrics::metrics().records(&self.connector.name, counts);
        }
        self.flush_logs().await;
        self.audit_batch(received as usize, &result).await;
        match result {
            Ok(outcome) => Ok(EmitOutcome {
                accepted: (outcome.counts.created + outcome.counts.updated + outcome.counts.unchanged) as u32,
                rejected: outcome
                    .rejected
                    .into_iter()
                    .map(|(index, reason)| RejectedRow { index, reason })
                    .collect(),
            }),
            Err(error) => {
                self.log(
                    LogLevel::Error,
                    format!("storing a batch failed: {error}"),
                    vec![],
                    false,
                );
                self.store_failure.lock().unwrap().get_or_insert(error.to_string());
                Err(PluginError::Unavailable(
                    "the hub could not store this batch; the run will be retried".into(),
                ))
            }
        }
    }
}

/// A batch's span, begun in the plugin call that emitted it: a queued page is stored by a
/// future polled outside that call's span, and still belongs to its trace.
fn batch_span(rows: usize) -> tracing::Span {
    tracing::debug_span!("pipeline.store", rows)
}

impl RecordSink for ConnectorJob {
    fn emit(&self, batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>> {
        let span = batch_span(batch.len());
        let storing = span.in_scope(|| self.begin_storing(batch));
        Box::pin(self.store(storing).instrument(span))
    }

    fn begin(self: Arc<Self>, batch: Vec<CanonicalRecord>) -> BoxFuture<'static, Result<EmitOutcome, PluginError>> {
        let span = batch_span(batch.len());
        let storing = span.in_scope(|| self.begin_storing(batch));
        Box::pin(async move { self.store(storing).await }.instrument(span))
    }
}

impl StateStore for ConnectorJob {
    fn state_get(&self, key: String) -> BoxFuture<'_, wasmtime::Result<Option<String>>> {
        Box::pin(async move {
            self.inner
                .db
                .state_get(&self.connector.id, &key)
                .await
                .map_err(wasmtime::Error::new)
        })
    }

    fn state_set(&self, key: String, value: String, max_keys: u32) -> BoxFuture<'_, wasmtime::Result<bool>> {
        Box::pin(async move {
            self.inner
                .db
                .state_set(&self.connector.id, &key, &value, max_keys)
                .await
                .map_err(wasmtime::Error::new)
        })
    }
}

impl TokenSource for ConnectorJob {
    fn bearer_token(&self, credential: String) -> BoxFuture<'_, Result<String, PluginError>> {
        Box::pin(async move {
            let spec = self.credentials.get(&credential).ok_or_else(|| {
                PluginError::Config(format!(
                    "credential {credential:?} is not configured for this connector instance"
                ))
            })?;
            let client_secret = self.open_secret(&spec.client_secret).await?;
            let token = self
                .inner
                .tokens
                .token(&self.connector.id, &credential, spec, &client_secret)
                .await;
            match &token {
                Ok(token) => self.reveal(token),
                Err(error) => self.log(
                    LogLevel::Error,
                    format!("credential {credential:?}: {error:?}"),
                    vec![],
                    false,
                ),
            }
            token
        })
    }

    fn invalidate_token(&self, credential: String, token: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.log(
                LogLevel::Info,
                format!("credential {credential:?}: token refused by the external system; refreshing"),
                vec![],
                false,
            );
            self.inner.tokens.invalidate(&self.connector.id, &credential, &token);
        })
    }
}

impl SecretSource for ConnectorJob {
    fn secret(&self, name: String) -> BoxFuture<'_, Result<String, PluginError>> {
        Box::pin(async move {
            if self.reserved(&name) || !self.granted_secrets.contains(&name) {
                self.log(
                    LogLevel::Warn,
                    format!("plugin asked for secret {name:?}, which its manifest does not declare; refused"),
                    vec![],
                    false,
                );
                let event = Event::new(
                    format!("connector:{}", self.connector.id),
                    "secret.denied",
                    self.target(),
                )
                .outcome(Outcome::Denied)
                .details(json!({ "name": name }));
                self.inner.audit.record(event).await;
                return Err(PluginError::Config(if self.reserved(&name) {
                    format!("secret {name:?} backs a credential or the hub itself; plugins never read it")
                } else {
                    format!("secret {name:?} is not declared in this plugin's manifest (plugin.toml `secrets`)")
                }));
            }
            self.open_secret(&name).await
        })
    }
}

impl LogSink for ConnectorJob {
    fn log(&self, level: LogLevel, message: String, fields: Vec<(String, String)>, from_plugin: bool) {
        let origin = if from_plugin { "plugin" } else { "host" };
        let message = self.scrub(&message);
        let fields: Vec<(String, String)> = fields.into_iter().map(|(k, v)| (k, self.scrub(&v))).collect();
        let connector = &self.connector.id;
        let job = &self.job_ids[0];
        match level {
            LogLevel::Error => tracing::error!(%connector, %job, origin, "{message}"),
            LogLevel::Warn => tracing::warn!(%connector, %job, origin, "{message}"),
            LogLevel::Info => tracing::info!(%connector, %job, origin, "{message}"),
            LogLevel::Debug | LogLevel::Trace => tracing::debug!(%connector, %job, origin, "{message}"),
        }
        self.logs.lock().unwrap().push(LogLine {
            id: 0,
            connector_id: connector.clone(),
            run_id: self.run_id.clone(),
            at: store::Timestamp::now(),
            level: level.as_str().into(),
            origin: origin.into(),
            message,
            fields: serde_json::Value::Object(fields.into_iter().map(|(k, v)| (k, v.into())).collect()),
        });
    }

    fn flush_logs(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let lines = std::mem::take(&mut *self.logs.lock().unwrap());
            if !lines.is_empty()
                && let Err(error) = self.inner.db.append_logs(&lines).await
            {
                tracing::error!(connector = %self.connector.id, %error, "could not store connector log lines");
            }
        })
    }
}

/// `value` and the forms a plugin could turn it into to slip it past an exact match:
/// reversed, base64 (standard and URL-safe, with and without padding) and hex. Letter case
/// is handled by the match itself.
fn disguises(value: &str) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = value.as_bytes();
    let mut forms = vec![value.to_string(), value.chars().rev().collect(), hex::encode(bytes)];
    forms.extend([STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].map(|engine| engine.encode(bytes)));
    forms.sort();
    forms.dedup();
    forms
}

/// `text` with every occurrence of `needle`, in any ASCII letter case, replaced.
fn replace_ignoring_case(text: &str, needle: &str, with: &str) -> String {
    let (haystack, needle) = (text.to_ascii_lowercase(), needle.to_ascii_lowercase());
    if needle.is_empty() || !haystack.contains(&needle) {
        return text.to_string();
    }
    // ASCII lowercasing keeps byte offsets, so matches in `haystack` are matches in `text`.
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in haystack.match_indices(&needle) {
        if at < last {
            continue;
        }
        out.push_str(&text[last..at]);
        out.push_str(with);
        last = at + needle.len();
    }
    out.push_str(&text[last..]);
    out
}
