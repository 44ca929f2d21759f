//! HealthForce Hub: loads one sandboxed WebAssembly connector per external system, runs it,
//! and stores the normalized records it produces with identifying fields encrypted.
//!
//! Where things are:
//! - `runtime/`: wasmtime engine, compile cache, limits, one file per host capability;
//! - `manager/`: plugins, connector instances, lifecycle, run execution;
//! - `pipeline/`: validate → match → merge → encrypt → store;
//! - `store/`: SQLite and PostgreSQL behind one interface;
//! - `crypto/`: master key, data keys, field encryption, blind indexes;
//! - `auth/`: roles, permissions, SSO token verification;
//! - `audit.rs`: the hash-chained audit trail;
//! - `api/`: the admin REST API;

pub mod api;
pub mod audit;
pub mod auth;
pub mod bundled;
pub mod config;
pub mod crypto;
pub mod manager;
pub mod pipeline;
pub mod runtime;
pub mod store;
pub mod telemetry;

use crate::config::HubConfig;
use crate::crypto::{KeyRing, LocalMasterKey};
use crate::manager::Manager;
use crate::runtime::Runtime;
use crate::store::Db;
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
    Runtime(#[from] runtime::RuntimeError),
    #[error("installing bundled plugin: {0}")]
    Bundled(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// A running hub: the API server and everything behind it.
pub struct Hub {
    pub manager: Manager,
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The bootstrap admin key, when this start generated it (shown once, stored hashed).
    pub generated_admin_key: Option<String>,
    server: JoinHandle<()>,
}

impl Hub {
    pub async fn start(config: HubConfig) -> Result<Self, StartError> {
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let db = Db::open(&config.database_url()).await?;
        let master_key = LocalMasterKey::open_or_create(&data_dir.join("master.key"))?;
        let keys = Arc::new(KeyRing::load_or_init(&db, &master_key).await?);
        let runtime = Arc::new(Runtime::new(config.limits.clone(), data_dir.join("compile-cache"))?);
        let manager = Manager::new(db.clone(), keys, runtime, config.retry.clone(), config.plugins.clone());

        let interrupted = db.fail_interrupted_runs().await?;
        if interrupted > 0 {
            tracing::warn!(
                count = interrupted,
                "runs interrupted by the last stop were marked failed"
            );
        }
        for bundled in bundled::ALL {
            let package = bundled.package().map_err(|e| StartError::Bundled(e.to_string()))?;
            manager
                .install_bundled(&package)
                .await
                .map_err(|e| StartError::Bundled(e.to_string()))?;
        }
        let generated_admin_key = ensure_admin_key(&db, config.admin_key.as_deref()).await?;

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
        let app = api::router(api::AppState::new(manager.clone(), &config.auth), &config.auth);
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "API server stopped");
            }
        });
        tracing::info!(%addr, "hub API listening");
        Ok(Self {
            manager,
            addr,
            generated_admin_key,
            server,
        })
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving the API (runs in flight are abandoned; their cursor resumes them).
    pub async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        self.manager.db().close().await;
    }
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
