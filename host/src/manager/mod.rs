//! The integration manager: installed plugins and connector instances with their lifecycle
//! (create, configure, enable, disable, upgrade, delete); their secrets (`secrets.rs`); the
//! runs and jobs users start (`runs.rs`) and their execution (`runner.rs`).

pub mod alert_delivery;
pub mod alerts;
pub mod credentials;
mod job;
pub mod keys;
mod lifecycle;
mod manifests;
mod plugins;
pub mod review;
mod runner;
mod runs;
mod secrets;
mod subscriptions;

pub use crate::json_schema::FieldError;
pub use credentials::CredentialSpec;
pub use lifecycle::{ConnectorPatch, CursorReset, CursorState, Health};
pub use plugins::{PluginsConfig, check_runnable};
pub use runs::Runs;
pub use secrets::ConnectorSecrets;

use crate::audit::{Auditor, Event};
use crate::crypto::KeyRing;
use crate::events;
use crate::jobs::Queue;
use crate::pipeline::Pipeline;
use crate::runtime::{Quotas, Runtime};
use crate::secrets::{SecretError, SecretStore};
use crate::store::connectors::ConnectorRecord;
use crate::store::{self, Db, StoreError};
use hub_registry::{CreatePolicy, Manifest, TrustPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Whether this connector's records may create practitioners; default: its plugin
    /// manifest's `creates_practitioners` (docs/golden-record.md).
    pub creates_practitioners: Option<CreatePolicy>,
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
            creates_practitioners: None,
        }
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

pub(crate) struct Inner {
    db: Db,
    keys: Arc<KeyRing>,
    secrets: ConnectorSecrets,
    runs: Runs,
    runtime: Arc<Runtime>,
    tokens: credentials::TokenCache,
    audit: Auditor,
    trust: TrustPolicy,
    plugins: PluginsConfig,
    /// How often every replica reloads the data keys (see `keys.rs`).
    key_reload: Duration,
    settings_generation: SettingsGeneration,
    manifests: manifests::Manifests,
    reject_windows: alerts::RejectWindows,
    /// Where alerts are delivered as they change.
    alerts_out: alert_delivery::AlertsConfig,
}

/// Changes whenever a connector's settings or secrets change on this hub: caches of them
/// (the webhook inbox's) compare it with what it was when they read.
#[derive(Clone, Default)]
pub(crate) struct SettingsGeneration(Arc<AtomicU64>);

impl SettingsGeneration {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn changed(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
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
    pub alerts: alert_delivery::AlertsConfig,
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
            alerts,
        } = settings;
        let pipeline = Pipeline::new(db.clone(), keys.clone());
        let audit = Auditor::grouped(db.clone(), keys.audit);
        let trust = TrustPolicy {
            trusted_keys: plugins.trusted_keys.clone(),
            allow_unsigned: plugins.allow_unsigned,
        };
        let settings_generation = SettingsGeneration::default();
        let manifests = manifests::Manifests::new(db.clone());
        Self {
            inner: Arc::new(Inner {
                secrets: ConnectorSecrets::new(db.clone(), secrets, audit.clone(), settings_generation.clone()),
                runs: Runs::new(
                    db.clone(),
                    keys.clone(),
                    audit.clone(),
                    queue,
                    pipeline,
                    quotas,
                    manifests.clone(),
                ),
                db,
                keys,
                runtime,
                tokens: credentials::TokenCache::new(),
                audit,
                trust,
                plugins,
                key_reload,
                settings_generation,
                manifests,
                reject_windows: Default::default(),
                alerts_out: alerts,
            }),
        }
    }

    /// Changes whenever a connector's settings or secrets change on this hub.
    pub fn settings_generation(&self) -> u64 {
        self.inner.settings_generation.get()
    }

    /// Tells caches of connector settings that what they hold may be stale.
    pub(crate) fn settings_changed(&self) {
        self.inner.settings_generation.changed()
    }

    pub fn audit(&self) -> &Auditor {
        &self.inner.audit
    }

    /// The data key version new data is sealed under.
    pub fn data_key_version(&self) -> u32 {
        self.inner.keys.cipher().active_version()
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// Connector secrets: set, list, delete (`secrets.rs`).
    pub fn secrets(&self) -> &ConnectorSecrets {
        &self.inner.secrets
    }

    /// Runs and jobs: start, retry, reprocess (`runs.rs`).
    pub fn runs(&self) -> &Runs {
        &self.inner.runs
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
        self.inner.runs.check_quotas(&new.quotas)?;
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
                .unwrap_or(self.queue().retry_policy().default_attempts)
                .clamp(1, MAX_ATTEMPTS) as i64,
            previous_plugin_digest: None,
            schedule,
            timezone,
            quotas: new.quotas.to_string(),
            creates_practitioners: new.creates_practitioners.map(|p| p.as_str().to_string()),
            created_at: now,
            updated_at: now,
        };
        let event = events::connector(
            "connector.created",
            &record,
            serde_json::json!({ "plugin": manifest.id(), "enabled": record.enabled }),
        );
        self.inner.db.insert_connector(&record, &event).await?;
        if manifest.triggers.contains(&hub_registry::Trigger::Events) {
            // It gets the events from its creation on, however soon they come.
            (self.inner.db)
                .start_sink(&store::sinks::connector_sink(&record.id))
                .await?;
        }
        for (name, value) in &new.secrets {
            self.inner.secrets.put(&record.id, name, value).await?;
        }
        self.settings_changed();
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
        let changed = serde_json::json!({ "changed": lifecycle::SETTINGS });
        let event = events::connector("connector.updated", record, changed);
        self.inner.db.update_connector(record, &event).await?;
        for (name, value) in secrets {
            self.inner.secrets.put(&record.id, name, value).await?;
        }
        self.settings_changed();
        Ok(())
    }

    /// The enabled connectors whose plugin takes `trigger`, with its manifest.
    pub async fn enabled_connectors_with(
        &self,
        trigger: hub_registry::Trigger,
    ) -> Result<Vec<(ConnectorRecord, Arc<Manifest>)>, ManagerError> {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.inner.db.list_connectors(after.as_deref(), 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for connector in page.into_iter().filter(|c| c.enabled) {
                let manifest = self.manifest_of(&connector.plugin_digest).await?;
                if manifest.triggers.contains(&trigger) {
                    found.push((connector, manifest));
                }
            }
        }
        Ok(found)
    }

    pub async fn connector(&self, id: &str) -> Result<ConnectorRecord, ManagerError> {
        stored_connector(&self.inner.db, id).await
    }

    pub async fn set_enabled(&self, id: &str, enabled: bool, actor: &str) -> Result<ConnectorRecord, ManagerError> {
        let record = self.connector(id).await?;
        let (action, kind) = match enabled {
            true => ("connector.enable", "connector.enabled"),
            false => ("connector.disable", "connector.disabled"),
        };
        let event = events::connector(kind, &record, serde_json::json!({}));
        if !self.inner.db.set_connector_enabled(id, enabled, &event).await? {
            return Err(ManagerError::NotFound {
                what: "connector",
                id: id.into(),
            });
        }
        self.settings_changed();
        tracing::info!(connector = %id, "{action}");
        self.inner.audit.record(Event::new(actor, action, id)).await;
        if !enabled {
            let stopped = self
                .queue()
                .running()
                .cancel_connector(id, "the connector was disabled while the job ran");
            if stopped > 0 {
                tracing::info!(connector = %id, jobs = stopped, "running jobs of a disabled connector stopped");
            }
        }
        self.connector(id).await
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.inner.runs.queue
    }

    /// Queues a batch of the hub's events for outbound connector `connector`
    /// (`events::outbound`); nothing when a job with `dedup` is queued already.
    pub(crate) async fn queue_delivery(
        &self,
        connector: &ConnectorRecord,
        dedup: String,
        batch: &crate::jobs::DeliverPayload,
    ) -> Result<(), ManagerError> {
        let job = (self.inner.runs).new_job(connector, crate::jobs::JobKind::Deliver, Some(dedup), None, batch);
        self.inner.db.enqueue_jobs(&[job]).await?;
        self.queue().notify_work();
        Ok(())
    }
}

/// What running a record through the pipeline again (a reject reprocessed, a review
/// decided) came to.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Reprocessed {
    /// `created`, `updated`, `unchanged` (stored), `held` (for identity review) or
    /// `rejected` (a new reject holds it).
    pub outcome: &'static str,
    /// Why it was rejected again.
    pub reason: Option<String>,
}

/// The connector `id`, or why there is none: what every service of the manager answers for
/// an unknown connector.
async fn stored_connector(db: &Db, id: &str) -> Result<ConnectorRecord, ManagerError> {
    db.connector(id).await?.ok_or_else(|| ManagerError::NotFound {
        what: "connector",
        id: id.into(),
    })
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
