//! What the host does behind a plugin's imports during one run of one connector.

use super::Inner;
use super::alerts::{REJECT_RATE, REJECT_SHARE_LIMIT};
use super::credentials::CredentialSpec;
use crate::audit::{Event, Outcome};
use crate::pipeline::{BatchOutcome, BatchSource};
use crate::runtime::bindings::CanonicalRecord;
use crate::runtime::{EmitOutcome, JobHost, LogLevel, PluginError, RejectedRow};
use crate::secrets::SecretError;
use crate::store::logs::LogLine;
use crate::store::{self, StoreError, connectors::ConnectorRecord};
use futures::future::BoxFuture;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub struct ConnectorJob {
    inner: Arc<Inner>,
    connector: ConnectorRecord,
    credentials: BTreeMap<String, CredentialSpec>,
    /// The durable job this is an attempt of.
    job_id: String,
    /// The run, for a sync.
    run_id: Option<String>,
    /// Secret names the plugin may read (its manifest's `secrets`).
    granted_secrets: Vec<String>,
    logs: Mutex<Vec<LogLine>>,
    /// Secret values and bearer tokens handed out in this job: scrubbed from everything it
    /// logs and from its error, should a plugin try to leak them.
    revealed: Mutex<Vec<String>>,
}

/// What a scrubbed value is replaced with.
const REDACTED: &str = "[redacted]";
/// Shorter values are not scrubbed: they would match ordinary text.
const SCRUB_MIN_LEN: usize = 6;

impl ConnectorJob {
    pub fn new(
        inner: Arc<Inner>,
        connector: ConnectorRecord,
        job_id: String,
        run_id: Option<String>,
        granted_secrets: Vec<String>,
    ) -> Self {
        let credentials = serde_json::from_str(&connector.credentials).unwrap_or_default();
        Self {
            inner,
            connector,
            credentials,
            job_id,
            run_id,
            granted_secrets,
            logs: Mutex::default(),
            revealed: Mutex::default(),
        }
    }

    /// The run this job executes, for a sync.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// What audit entries of this job name: its run, or the job itself.
    fn target(&self) -> &str {
        self.run_id.as_deref().unwrap_or(&self.job_id)
    }

    fn reveal(&self, value: &str) {
        if value.len() >= SCRUB_MIN_LEN {
            self.revealed.lock().unwrap().push(value.to_string());
        }
    }

    /// `text` with every secret value and token this job handed out replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let revealed = self.revealed.lock().unwrap();
        revealed
            .iter()
            .fold(text.to_string(), |text, value| text.replace(value.as_str(), REDACTED))
    }

    /// Writes buffered log lines to the database.
    pub async fn flush_logs(&self) {
        let lines = std::mem::take(&mut *self.logs.lock().unwrap());
        if !lines.is_empty()
            && let Err(error) = self.inner.db.append_logs(&lines).await
        {
            tracing::error!(connector = %self.connector.id, %error, "could not store connector log lines");
        }
    }

    async fn open_secret(&self, name: &str) -> Result<String, PluginError> {
        let value = self
            .inner
            .secrets
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
    /// One audit entry per stored batch: when, how many, and whether it was stored (seed 002).
    async fn audit_batch(&self, received: usize, result: &Result<BatchOutcome, StoreError>) {
        let event = Event::new(
            format!("connector:{}", self.connector.id),
            "records.batch",
            self.target(),
        );
        let event = match result {
            Ok(outcome) => {
                let rejected = outcome.rejected.len();
                if received > 0 && rejected as f64 > received as f64 * REJECT_SHARE_LIMIT {
                    let message = format!(
                        "{rejected} of {received} rows in one batch were rejected (over {:.0} %); see GET /api/v1/rejects?connector_id={}",
                        REJECT_SHARE_LIMIT * 100.0,
                        self.connector.id
                    );
                    self.inner
                        .raise_alert(&self.connector.id, self.run_id.as_deref(), REJECT_RATE, message)
                        .await;
                }
                event.details(json!({
                    "received": received,
                    "created": outcome.counts.created,
                    "updated": outcome.counts.updated,
                    "unchanged": outcome.counts.unchanged,
                    "rejected": rejected,
                }))
            }
            Err(error) => event
                .outcome(Outcome::Failure)
                .details(json!({ "received": received, "error": error.to_string() })),
        };
        self.inner.audit.record(event).await;
    }
}

impl JobHost for ConnectorJob {
    fn emit(&self, batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>> {
        Box::pin(async move {
            let source = BatchSource {
                connector_id: &self.connector.id,
                run_id: self.run_id.as_deref(),
            };
            let received = batch.len();
            let result = self.inner.pipeline.ingest(source, batch).await;
            self.flush_logs().await;
            self.audit_batch(received, &result).await;
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
                    Err(PluginError::Unavailable(
                        "the hub could not store this batch; the run will be retried".into(),
                    ))
                }
            }
        })
    }

    fn state_get(&self, key: String) -> BoxFuture<'_, wasmtime::Result<Option<String>>> {
        Box::pin(async move {
            self.inner
                .db
                .state_get(&self.connector.id, &key)
                .await
                .map_err(wasmtime::Error::new)
        })
    }

    fn state_set(&self, key: String, value: String) -> BoxFuture<'_, wasmtime::Result<()>> {
        Box::pin(async move {
            self.inner
                .db
                .state_set(&self.connector.id, &key, &value)
                .await
                .map_err(wasmtime::Error::new)
        })
    }

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

    fn secret(&self, name: String) -> BoxFuture<'_, Result<String, PluginError>> {
        Box::pin(async move {
            if !self.granted_secrets.contains(&name) {
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
                return Err(PluginError::Config(format!(
                    "secret {name:?} is not declared in this plugin's manifest (plugin.toml `secrets`)"
                )));
            }
            self.open_secret(&name).await
        })
    }

    fn log(&self, level: LogLevel, message: String, fields: Vec<(String, String)>, from_plugin: bool) {
        let origin = if from_plugin { "plugin" } else { "host" };
        let message = self.scrub(&message);
        let fields: Vec<(String, String)> = fields.into_iter().map(|(k, v)| (k, self.scrub(&v))).collect();
        let connector = &self.connector.id;
        let job = &self.job_id;
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
            at: store::now(),
            level: level.as_str().into(),
            origin: origin.into(),
            message,
            fields: serde_json::Value::Object(fields.into_iter().map(|(k, v)| (k, v.into())).collect()),
        });
    }
}
