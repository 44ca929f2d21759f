//! HealthForce Hub: loads one sandboxed WebAssembly connector per external system, runs it,
//! and stores the normalized records it produces with identifying fields encrypted.
//!
//! Where things are:
//! - `runtime/`: wasmtime engine, compile cache, limits, one file per host capability;
//! - `manager/`: plugins, connector instances, lifecycle, run execution;
//! - `pipeline/`: validate → match → merge → encrypt → store;
//! - `store/`: SQLite and PostgreSQL behind one interface;
//! - `crypto/`: key-encryption keys, data keys, field encryption, blind indexes;
//! - `secrets/`: connector secrets, local or in Vault/OpenBao (`vault.rs`: the connection);
//! - `auth/`: roles, permissions, SSO token verification;
//! - `jobs/`: the durable job queue every trigger goes through, and its workers;
//! - `json_schema.rs`: the checker of plugin configs and API request bodies;
//! - `triggers/`: cron schedules and MQTT subscriptions;
//! - `webhooks/`: Standard Webhooks signatures and connector webhook secrets;
//! - `metrics/`: the Prometheus metrics `GET /metrics` serves;
//! - `audit.rs`: the hash-chained audit trail;
//! - `backup/`: online backups, retention and restore;
//! - `observations.rs`: device observations' retention and monthly partitions;
//! - `api/`: the admin REST API;

pub mod api;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bundled;
pub mod config;
pub mod console;
pub mod crypto;
pub mod events;
pub mod fhir;
pub mod jobs;
pub mod json_schema;
pub mod manager;
pub mod metrics;
pub mod model;
pub mod observations;
pub mod pipeline;
pub mod retry;
pub mod runtime;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod toolchain;
pub mod triggers;
pub mod vault;
pub mod webhooks;

use crate::config::HubConfig;
use crate::crypto::KekKind;
use crate::crypto::{Kek, KeyRing, LocalMasterKey, TransitKek};
use crate::manager::Manager;
use crate::runtime::Runtime;
use crate::secrets::SecretsBackend;
use crate::secrets::{LocalSecrets, SecretStore, VaultSecrets};
use crate::store::Db;
use crate::vault::Vault;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    MasterKey(#[from] crypto::MasterKeyError),
    #[error(transparent)]
    Keys(#[from] crypto::KeyError),
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
    #[error("{0} needs a [vault] section in the config (address, and HUB_VAULT_TOKEN or an AppRole)")]
    VaultMissing(&'static str),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("installing bundled plugin: {0}")]
    Bundled(String),
    #[error(transparent)]
    Backup(#[from] backup::BackupError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// A running hub: the API server and everything behind it.
pub struct Hub {
    pub manager: Manager,
    /// Connectors' webhook signing secrets.
    pub webhook_secrets: webhooks::WebhookSecrets,
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The bootstrap admin key, when this start generated it (shown once, stored hashed).
    pub generated_admin_key: Option<String>,
    /// Backups of this hub's database (`[backup]`).
    pub backups: Arc<backup::Backups>,
    server: JoinHandle<()>,
    /// Key reloads, the scheduler and the job workers: stopped with the hub.
    background: Vec<JoinHandle<()>>,
    queue: Arc<jobs::Queue>,
}

impl Hub {
    pub async fn start(config: HubConfig) -> Result<Self, StartError> {
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let db = Db::open(&config.database_url()).await?;
        let vault = connect_vault(&config).await?;
        let kek = key_encryption_key(&config, vault.as_ref())?;
        let keys = Arc::new(KeyRing::load_or_init(db.clone(), kek).await?);
        let secrets = match config.secrets.backend {
            SecretsBackend::Local => SecretStore::Local(LocalSecrets::new(db.clone(), keys.clone())),
            SecretsBackend::Vault => SecretStore::Vault(VaultSecrets::new(
                vault
                    .clone()
                    .ok_or(StartError::VaultMissing("secrets.backend = \"vault\""))?,
                &config.secrets.kv_mount,
                &config.secrets.path_prefix,
                std::time::Duration::from_secs(config.secrets.cache_ttl_secs),
            )),
        };
        let runtime = Arc::new(Runtime::new(config.limits.clone(), data_dir.join("compile-cache"))?);
        let key_reload = std::time::Duration::from_secs(config.keys.reload_secs.max(1));
        let orphaned = db.requeue_orphaned_jobs().await?;
        if orphaned > 0 {
            tracing::warn!(count = orphaned, "jobs interrupted by the last stop were queued again");
        }
        let upgraded = pipeline::Pipeline::new(db.clone(), keys.clone()).upgrade().await?;
        if upgraded != pipeline::Upgraded::default() {
            tracing::info!(
                strs_recorded = upgraded.strs_recorded,
                match_keys = upgraded.match_keys,
                source_ids = upgraded.source_ids,
                derived = upgraded.derived,
                observation_subjects = upgraded.observation_subjects,
                "stored rows brought up to this version"
            );
        }
        let queue = jobs::Queue::new(db.clone(), config.jobs.clone(), config.retry.clone());
        let manager = Manager::new(
            db.clone(),
            keys,
            secrets,
            runtime,
            queue.clone(),
            manager::Settings {
                plugins: config.plugins.clone(),
                key_reload,
                quotas: config.quotas.clone(),
                alerts: config.alerts.clone(),
            },
        );
        let mut background = vec![
            manager.watch_keys(key_reload),
            triggers::Scheduler::new(manager.clone()).spawn(std::time::Duration::from_secs(1)),
        ];
        background.extend(queue.start(Arc::new(manager.clone())));
        background.push(observations::run_maintenance(db.clone(), config.observations.clone()));
        background.push(events::delivery::Dispatcher::new(manager.clone(), config.events.clone()).spawn());
        background.push(events::outbound::Outbound::new(manager.clone(), config.events.clone()).spawn());
        if let Some(rabbitmq) = &config.events.rabbitmq {
            background
                .push(events::rabbitmq::RabbitMqSink::new(manager.clone(), rabbitmq.clone(), &config.events).spawn());
        }
        if let Some(mqtt) = &config.mqtt {
            background.push(triggers::MqttIngest::new(manager.clone(), mqtt.clone()).spawn());
        }
        let backups = Arc::new(backup::Backups::new(db.clone(), manager.audit().clone(), &config)?);
        if config.backup.enabled {
            background.push(backups.clone().run_schedule(config.backup.checked_schedule()?));
        }
        for bundled in bundled::ALL {
            let package = bundled.package().map_err(|e| StartError::Bundled(e.to_string()))?;
            manager
                .install_bundled(&package)
                .await
                .map_err(|e| StartError::Bundled(e.to_string()))?;
        }
        let generated_admin_key = ensure_admin_key(&db, config.admin_key.as_ref().map(|k| k.expose())).await?;

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let webhook_secrets = webhooks::WebhookSecrets::new(manager.clone());
        let inbox = Arc::new(webhooks::Inbox::new(
            manager.clone(),
            webhook_secrets.clone(),
            &config.webhooks,
        ));
        let app = api::router(
            api::AppState::new(manager.clone(), inbox, &config.auth, addr),
            &config.auth,
        );
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(api::listener::ApiListener(listener), app).await {
                tracing::error!(%error, "API server stopped");
            }
        });
        tracing::info!(%addr, "hub API listening");
        Ok(Self {
            manager,
            webhook_secrets,
            addr,
            generated_admin_key,
            backups,
            server,
            background,
            queue,
        })
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving the API and working jobs. Jobs in flight are abandoned and handed back
    /// to the queue: a sync resumes from its cursor, a webhook runs again.
    pub async fn stop(self) {
        self.server.abort();
        for task in &self.background {
            task.abort();
        }
        let _ = self.server.await;
        for task in self.background {
            let _ = task.await;
        }
        self.queue.release().await;
        self.manager.db().close().await;
    }
}

/// The Vault/OpenBao connection, when the config has a `[vault]` section.
pub async fn connect_vault(config: &HubConfig) -> Result<Option<Arc<Vault>>, StartError> {
    match &config.vault {
        Some(settings) => Ok(Some(Vault::connect(settings).await?)),
        None => Ok(None),
    }
}

/// The key-encryption key the config names: the master key file in the data directory
/// (created on first use) or a Vault/OpenBao transit key.
pub fn key_encryption_key(config: &HubConfig, vault: Option<&Arc<Vault>>) -> Result<Kek, StartError> {
    Ok(match config.keys.kek {
        KekKind::Local => Kek::Local(Box::new(LocalMasterKey::open_or_create(
            &config.data_dir.join("master.key"),
        )?)),
        KekKind::Transit => Kek::Transit(TransitKek {
            vault: vault
                .cloned()
                .ok_or(StartError::VaultMissing("keys.kek = \"transit\""))?,
            mount: config.keys.transit_mount.clone(),
            key: config.keys.transit_key.clone(),
        }),
    })
}

/// Makes sure a bootstrap admin key exists: `HUB_ADMIN_KEY` when set, else one generated on
/// the first start and returned so the caller prints it once.
async fn ensure_admin_key(db: &Db, configured: Option<&str>) -> Result<Option<String>, StartError> {
    if let Some(key) = configured {
        db.set_bootstrap_key(&api::hash_key(key)).await?;
        return Ok(None);
    }
    if db.bootstrap_key_exists().await? {
        return Ok(None);
    }
    let key = crypto::new_api_key();
    db.set_bootstrap_key(&api::hash_key(&key)).await?;
    Ok(Some(key))
}
