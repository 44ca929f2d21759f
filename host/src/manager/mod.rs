//! The integration manager: installed plugins, connector instances and their lifecycle
//! (create, enable, disable, run), and the execution of runs.

pub mod alerts;
pub mod credentials;
mod job;
pub mod keys;
mod lifecycle;
mod plugins;
mod runner;

pub use crate::json_schema::FieldError;
pub use credentials::CredentialSpec;
pub use lifecycle::{ConnectorPatch, Health};

use crate::audit::{Auditor, Event};
use crate::config::PluginsConfig;
use crate::crypto::KeyRing;
use crate::jobs::{JobKind, Queue};
use crate::pipeline::Pipeline;
use crate::runtime::{Quotas, Runtime};
use crate::secrets::{SecretError, SecretInfo, SecretStore};
use crate::store::connectors::ConnectorRecord;
use crate::store::jobs::{JobRecord, NewJob};
use crate::store::runs::RunRecord;
use crate::store::{self, Db, StoreError};
use hub_registry::{Manifest, TrustPolicy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{detail}")]
    Invalid { detail: String, fields: Vec<FieldError> },
    #[error("{0}")]
    Conflict(String),
    /// A package that fails the trust policy or cannot run on this hub.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
    #[error(transparent)]
    Keys(#[from] crate::crypto::KeyError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl ManagerError {
    fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid {
            detail: detail.into(),
            fields: Vec::new(),
        }
    }
}

/// `POST /api/v1/connectors`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnector {
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// `name` (newest installed version) or `name@version`.
    pub plugin: String,
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// Hosts the plugin may call; defaults to the manifest's `egress`.
    pub egress: Option<Vec<String>>,
    #[serde(default)]
    pub credentials: BTreeMap<String, CredentialSpec>,
    /// Secret values, stored encrypted; never returned.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub enabled: bool,
    /// Syncs of this connector at once (default 1).
    #[schemars(range(min = 1, max = MAX_CONCURRENCY))]
    pub concurrency: Option<u32>,
    /// Attempts a job gets before it is dead (default `[retry] default_attempts`).
    #[schemars(range(min = 1, max = MAX_ATTEMPTS))]
    pub max_attempts: Option<u32>,
    /// Cron expression: 5 fields (`min hour day month weekday`) or 6-7 (seconds first, year
    /// last). Runs fire on it while the connector is enabled.
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in; default Asia/Jakarta.
    pub timezone: Option<String>,
    /// Quotas this connector needs other than the hub's `[quotas]`, e.g.
    /// `{"log_lines": 50000}` (docs/limits.md).
    #[serde(default = "empty_object")]
    pub quotas: serde_json::Value,
}

impl NewConnector {
    /// A connector of `plugin` named `name`, every other setting at what the API takes as
    /// its default: no config, the manifest's egress, no credentials or secrets, disabled.
    pub fn new(name: &str, plugin: &str) -> Self {
        Self {
            name: name.into(),
            plugin: plugin.into(),
            config: empty_object(),
            egress: None,
            credentials: BTreeMap::new(),
            secrets: BTreeMap::new(),
            enabled: false,
            concurrency: None,
            max_attempts: None,
            schedule: None,
            timezone: None,
            quotas: empty_object(),
        }
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

pub(crate) struct Inner {
    db: Db,
    keys: Arc<KeyRing>,
    secrets: SecretStore,
    runtime: Arc<Runtime>,
    pipeline: Pipeline,
    tokens: credentials::TokenCache,
    queue: Arc<Queue>,
    audit: Auditor,
    trust: TrustPolicy,
    plugins: PluginsConfig,
    /// How often every replica reloads the data keys (see `keys.rs`).
    key_reload: Duration,
    /// `[quotas]`: what a connector gets unless it overrides some.
    quotas: Quotas,
    /// Bumped whenever a connector's settings or secrets change on this hub, so caches of
    /// them (the webhook inbox's) drop what they hold at once.
    settings_generation: std::sync::atomic::AtomicU64,
    /// Manifests by plugin digest (see `manifest_of`).
    manifests: Mutex<HashMap<String, Arc<Manifest>>>,
    reject_windows: alerts::RejectWindows,
}

#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

/// The manager's share of the hub config.
pub struct Settings {
    pub plugins: PluginsConfig,
    /// How often every replica reloads the data keys.
    pub key_reload: Duration,
    pub quotas: Quotas,
}

impl Manager {
    pub fn new(
        db: Db,
        keys: Arc<KeyRing>,
        secrets: SecretStore,
        runtime: Arc<Runtime>,
        queue: Arc<Queue>,
        settings: Settings,
    ) -> Self {
        let Settings {
            plugins,
            key_reload,
            quotas,
        } = settings;
        let pipeline = Pipeline::new(db.clone(), keys.clone());
        let audit = Auditor::grouped(db.clone(), keys.audit);
        let trust = TrustPolicy {
            trusted_keys: plugins.trusted_keys.clone(),
            allow_unsigned: plugins.allow_unsigned,
        };
        Self {
            inner: Arc::new(Inner {
                db,
                keys,
                secrets,
                runtime,
                pipeline,
                tokens: credentials::TokenCache::new(),
                queue,
                audit,
                trust,
                plugins,
                key_reload,
                quotas,
                settings_generation: Default::default(),
                manifests: Mutex::default(),
                reject_windows: Default::default(),
            }),
        }
    }

    /// Changes whenever a connector's settings or secrets change on this hub.
    pub fn settings_generation(&self) -> u64 {
        self.inner
            .settings_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Tells caches of connector settings that what they hold may be stale.
    pub(crate) fn settings_changed(&self) {
        self.inner
            .settings_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn audit(&self) -> &Auditor {
        &self.inner.audit
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    pub fn secrets(&self) -> &SecretStore {
        &self.inner.secrets
    }

    pub async fn create_connector(&self, new: NewConnector, actor: &str) -> Result<ConnectorRecord, ManagerError> {
        validate_name(&new.name)?;
        if self.inner.db.connector_by_name(&new.name).await?.is_some() {
            return Err(ManagerError::Conflict(format!(
                "a connector named {:?} exists already; pick another name",
                new.name
            )));
        }
        let (plugin_name, version) = match new.plugin.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (new.plugin.as_str(), None),
        };
        let plugin = self
            .inner
            .db
            .find_plugin(plugin_name, version)
            .await?
            .ok_or_else(|| ManagerError::NotFound {
                what: "plugin",
                id: new.plugin.clone(),
            })?;
        let manifest = Manifest::parse(&plugin.manifest).map_err(|e| StoreError::Corrupt {
            what: "plugin manifest",
            detail: e.to_string(),
        })?;
        lifecycle::check_config(&manifest, &new.config)?;
        let egress = new.egress.unwrap_or_else(|| manifest.egress.clone());
        for host in &egress {
            validate_egress(host)?;
        }
        for needed in &manifest.credentials {
            if !new.credentials.contains_key(needed) {
                return Err(ManagerError::invalid(format!(
                    "plugin {} needs the credential {needed:?}; add it under \"credentials\"",
                    manifest.id()
                )));
            }
        }
        self.check_quotas(&new.quotas)?;
        check_credential_secrets(&manifest, &new.credentials)?;
        for (name, spec) in &new.credentials {
            if !(spec.token_url.starts_with("https://") || spec.token_url.starts_with("http://")) {
                return Err(ManagerError::invalid(format!(
                    "credentials.{name}.token_url must be an http(s) URL"
                )));
            }
            if !new.secrets.contains_key(&spec.client_secret) {
                return Err(ManagerError::invalid(format!(
                    "credentials.{name}.client_secret names the secret {:?}, which is not among \"secrets\"",
                    spec.client_secret
                )));
            }
        }
        let timezone = new
            .timezone
            .unwrap_or_else(|| crate::triggers::DEFAULT_TIMEZONE.to_string());
        let schedule = new.schedule.filter(|s| !s.trim().is_empty());
        lifecycle::check_schedule(schedule.as_deref(), &timezone)?;
        let now = store::Timestamp::now();
        let record = ConnectorRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: new.name,
            plugin_digest: plugin.digest,
            config: new.config.to_string(),
            egress: serde_json::to_string(&egress).expect("strings serialize"),
            credentials: serde_json::to_string(&new.credentials).expect("credentials serialize"),
            enabled: new.enabled,
            concurrency: new.concurrency.unwrap_or(1).clamp(1, MAX_CONCURRENCY) as i64,
            max_attempts: new
                .max_attempts
                .unwrap_or(self.inner.queue.retry_policy().default_attempts)
                .clamp(1, MAX_ATTEMPTS) as i64,
            previous_plugin_digest: None,
            schedule,
            timezone,
            quotas: new.quotas.to_string(),
            created_at: now,
            updated_at: now,
        };
        self.inner.db.insert_connector(&record).await?;
        for (name, value) in &new.secrets {
            self.put_secret(&record.id, name, value).await?;
        }
        tracing::info!(connector = %record.id, name = %record.name, plugin = %manifest.id(), "connector created");
        self.inner
            .audit
            .record(
                Event::new(actor, "connector.create", &record.id).details(serde_json::json!({
                    "name": record.name, "plugin": manifest.id(), "egress": egress,
                    "secrets": new.secrets.keys().collect::<Vec<_>>(),
                })),
            )
            .await;
        Ok(record)
    }

    /// Points an existing connector at new settings (used by `hub demo` on restart).
    pub async fn update_connector(
        &self,
        record: &ConnectorRecord,
        secrets: &BTreeMap<String, String>,
    ) -> Result<(), ManagerError> {
        self.inner.db.update_connector(record).await?;
        for (name, value) in secrets {
            self.put_secret(&record.id, name, value).await?;
        }
        self.settings_changed();
        Ok(())
    }

    /// Sets or rotates a connector secret; audited by name and version, never by value.
    pub async fn set_secret(
        &self,
        connector_id: &str,
        name: &str,
        value: &str,
        actor: &str,
    ) -> Result<SecretInfo, ManagerError> {
        self.connector(connector_id).await?;
        let info = self.put_secret(connector_id, name, value).await?;
        self.inner
            .audit
            .record(
                Event::new(actor, "secret.set", connector_id)
                    .details(serde_json::json!({ "name": name, "version": info.version })),
            )
            .await;
        Ok(info)
    }

    /// Names and versions of a connector's secrets.
    pub async fn list_secrets(&self, connector_id: &str) -> Result<Vec<SecretInfo>, ManagerError> {
        self.connector(connector_id).await?;
        let mut secrets = self.inner.secrets.list(connector_id).await?;
        secrets.retain(|s| !s.name.starts_with(crate::secrets::HUB_SECRET_PREFIX));
        Ok(secrets)
    }

    pub async fn delete_secret(&self, connector_id: &str, name: &str, actor: &str) -> Result<(), ManagerError> {
        self.connector(connector_id).await?;
        // The same rule as setting one: the hub's own secrets (`hub.…`) are out of reach.
        validate_name(name)?;
        if !self.inner.secrets.delete(connector_id, name).await? {
            return Err(ManagerError::NotFound {
                what: "secret",
                id: name.into(),
            });
        }
        self.settings_changed();
        self.inner
            .audit
            .record(Event::new(actor, "secret.delete", connector_id).details(serde_json::json!({ "name": name })))
            .await;
        Ok(())
    }

    async fn put_secret(&self, connector_id: &str, name: &str, value: &str) -> Result<SecretInfo, ManagerError> {
        validate_name(name)?;
        if value.is_empty() || value.len() > 64 * 1024 {
            return Err(ManagerError::invalid("a secret value must be 1 byte to 64 KiB"));
        }
        let info = self.inner.secrets.put(connector_id, name, value).await?;
        self.settings_changed();
        Ok(info)
    }

    pub async fn connector(&self, id: &str) -> Result<ConnectorRecord, ManagerError> {
        self.inner
            .db
            .connector(id)
            .await?
            .ok_or_else(|| ManagerError::NotFound {
                what: "connector",
                id: id.into(),
            })
    }

    pub async fn set_enabled(&self, id: &str, enabled: bool, actor: &str) -> Result<ConnectorRecord, ManagerError> {
        if !self.inner.db.set_connector_enabled(id, enabled).await? {
            return Err(ManagerError::NotFound {
                what: "connector",
                id: id.into(),
            });
        }
        self.settings_changed();
        let action = if enabled {
            "connector.enable"
        } else {
            "connector.disable"
        };
        tracing::info!(connector = %id, "{action}");
        self.inner.audit.record(Event::new(actor, action, id)).await;
        if !enabled {
            let stopped = self
                .inner
                .queue
                .running()
                .cancel_connector(id, "the connector was disabled while the job ran");
            if stopped > 0 {
                tracing::info!(connector = %id, jobs = stopped, "running jobs of a disabled connector stopped");
            }
        }
        self.connector(id).await
    }

    /// Queues a run of an enabled connector and starts it in the background; the run waits
    /// for a slot when the connector is at its concurrency limit.
    pub async fn request_run(&self, id: &str, trigger: &str, actor: &str) -> Result<RunRecord, ManagerError> {
        let connector = self.connector(id).await?;
        if !connector.enabled {
            return Err(ManagerError::Conflict(format!(
                "connector {:?} is disabled; enable it (POST /api/v1/connectors/{id}/enable) before running it",
                connector.name
            )));
        }
        let run = self.start_run(&connector, trigger, actor, None).await?;
        Ok(run.expect("a run without a fire key is always created"))
    }

    /// Queues and starts the run of a schedule's fire time; `None` when another hub fired it.
    pub(crate) async fn start_scheduled_run(
        &self,
        connector: &ConnectorRecord,
        fire_key: &str,
    ) -> Result<Option<RunRecord>, ManagerError> {
        self.start_run(connector, "cron", "scheduler", Some(fire_key)).await
    }

    /// Queues a run as a durable job; `None` when `fire_key` was taken (another hub fired
    /// this schedule tick).
    async fn start_run(
        &self,
        connector: &ConnectorRecord,
        trigger: &str,
        actor: &str,
        fire_key: Option<&str>,
    ) -> Result<Option<RunRecord>, ManagerError> {
        let run_id = uuid::Uuid::now_v7().to_string();
        let trace_id = hex::encode(crate::crypto::random_bytes::<16>());
        let job = self.new_job(connector, JobKind::Sync, None, Some(run_id.clone()), &());
        // The run and its audit entry commit together: a run is never accepted unaudited.
        let db = &self.inner.db;
        let mut tx = db.begin().await?;
        if !store::jobs::enqueue_run(&mut tx, &job, trigger, &trace_id, fire_key).await? {
            return Ok(None);
        }
        let event = Event::new(actor, "connector.run", &connector.id)
            .details(serde_json::json!({ "run": run_id, "trigger": trigger, "job": job.id }));
        self.inner.audit.record_in(&mut tx, &event).await?;
        tx.commit().await?;
        self.inner.queue.notify_sync();
        let run = db.run(&run_id).await?.expect("run just created");
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
        let id = uuid::Uuid::now_v7().to_string();
        let cipher = self.inner.keys.cipher();
        NewJob {
            payload: crate::jobs::seal_payload(&cipher, &id, payload),
            key_version: cipher.active_version() as i64,
            id,
            connector_id: connector.id.clone(),
            kind: kind.as_str(),
            dedup_key,
            run_id,
            max_attempts: connector.max_attempts,
            run_after: store::Timestamp::now(),
        }
    }

    /// Queues a dead job again with a fresh set of attempts; a sync's run opens again.
    pub async fn retry_job(&self, id: &str, actor: &str) -> Result<JobRecord, ManagerError> {
        let db = &self.inner.db;
        let Some(job) = db.requeue_dead_job(id).await? else {
            return Err(match db.job(id).await? {
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
                db.reopen_run(run_id).await?;
                self.inner.queue.notify_sync();
            }
            None => self.inner.queue.notify_work(),
        }
        self.inner
            .audit
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
        let db = &self.inner.db;
        let reject = db.reject(id).await?.ok_or_else(|| ManagerError::NotFound {
            what: "reject",
            id: id.into(),
        })?;
        let json = self
            .inner
            .keys
            .cipher()
            .decrypt_str("rejects", "record", &reject.id, &reject.record)?;
        let record = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
            what: "rejected record",
            detail: e.to_string(),
        })?;
        // The connector's quotas; the hub's when the connector is gone.
        let quotas = match db.connector(&reject.connector_id).await? {
            Some(connector) => self.inner.quotas_of(&connector).map_err(ManagerError::invalid)?,
            None => self.inner.quotas.clone(),
        };
        let source = crate::pipeline::BatchSource {
            connector_id: &reject.connector_id,
            run_id: None,
            quotas: &quotas,
        };
        let outcome = self.inner.pipeline.ingest(source, vec![record]).await?;
        db.delete_reject(&reject.id).await?;
        let reprocessed = match outcome.rejected.into_iter().next() {
            Some((_, reason)) => Reprocessed {
                outcome: "rejected",
                reason: Some(reason),
            },
            None => Reprocessed {
                outcome: if outcome.counts.created > 0 {
                    "created"
                } else if outcome.counts.updated > 0 {
                    "updated"
                } else {
                    "unchanged"
                },
                reason: None,
            },
        };
        self.inner
            .audit
            .record(Event::new(actor, "reject.reprocess", id).details(serde_json::json!({
                "connector": reject.connector_id, "outcome": reprocessed.outcome,
            })))
            .await;
        Ok(reprocessed)
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.inner.queue
    }
}

/// What reprocessing a reject came to.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Reprocessed {
    /// `created`, `updated`, `unchanged` (stored) or `rejected` (again; a new reject holds it).
    pub outcome: &'static str,
    /// Why it was rejected again.
    pub reason: Option<String>,
}

/// Row id of a connector secret in the AAD of its ciphertext.
impl Inner {
    /// The quotas `connector` runs under: the hub's, with its overrides over them.
    pub(crate) fn quotas_of(&self, connector: &ConnectorRecord) -> Result<Quotas, String> {
        let overrides = serde_json::from_str(&connector.quotas).unwrap_or_else(|_| serde_json::json!({}));
        self.quotas.with_overrides(&overrides)
    }
}

impl Manager {
    /// Refuses quota overrides that name no quota or are not positive whole numbers.
    fn check_quotas(&self, overrides: &serde_json::Value) -> Result<(), ManagerError> {
        self.inner
            .quotas
            .with_overrides(overrides)
            .map(drop)
            .map_err(ManagerError::invalid)
    }
}

/// A credential's client secret is the host's alone: a plugin whose manifest declares a
/// secret of that name could read it with `secrets.get`, so such a pairing is refused.
fn check_credential_secrets(
    manifest: &Manifest,
    credentials: &BTreeMap<String, CredentialSpec>,
) -> Result<(), ManagerError> {
    for (name, spec) in credentials {
        if manifest.secrets.contains(&spec.client_secret) {
            return Err(ManagerError::invalid(format!(
                "credentials.{name}.client_secret names the secret {:?}, which plugin {} declares as one it \
                 reads itself; a credential's client secret must never reach the plugin, so give it a name of its own",
                spec.client_secret,
                manifest.id()
            )));
        }
    }
    Ok(())
}

/// Connector names, as checked here and shown in the API's schema.
pub const NAME_PATTERN: &str = "^[a-z0-9_-]{1,64}$";
/// Most syncs of one connector at once.
pub const MAX_CONCURRENCY: u32 = 64;
/// Most attempts a connector's jobs may get.
pub const MAX_ATTEMPTS: u32 = 20;

fn validate_name(name: &str) -> Result<(), ManagerError> {
    if crate::json_schema::matches(NAME_PATTERN, name) {
        Ok(())
    } else {
        Err(ManagerError::invalid(format!(
            "name {name:?} must be 1-64 characters of a-z, 0-9, '-' and '_'"
        )))
    }
}

/// An egress entry: `host` or `host:port` (IPv6 as `[addr]:port`), no scheme or path.
fn validate_egress(entry: &str) -> Result<(), ManagerError> {
    let bad = || {
        ManagerError::invalid(format!(
            "egress entry {entry:?} must be a host or host:port, without scheme or path"
        ))
    };
    if entry.is_empty() || entry.contains('/') || entry.contains('@') || entry.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let port = match entry.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && (!host.contains(':') || host.ends_with(']')) => Some(port),
        _ => None,
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(bad());
    }
    Ok(())
}
