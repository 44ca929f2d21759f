//! `hub audit verify`: walks the audit chain and fails on any edited or deleted entry.

use anyhow::Context;
use hub::audit::{AuditError, Auditor};
use hub::config::HubConfig;
use hub::crypto::KeyRing;
use hub::store::Db;
use std::path::PathBuf;

pub async fn verify(data_dir: Option<PathBuf>, database_url: Option<String>, config: PathBuf) -> anyhow::Result<bool> {
    let mut hub_config = HubConfig::load(config.exists().then_some(config.as_path()))?;
    if let Some(dir) = data_dir {
        hub_config.data_dir = dir;
    }
    if database_url.is_some() {
        hub_config.database_url = database_url;
    }
    let key_path = hub_config.data_dir.join("master.key");
    if hub_config.keys.kek == hub::config::KekKind::Local && !key_path.exists() {
        anyhow::bail!(
            "{} does not exist: point --data-dir at the hub's data directory",
            key_path.display()
        );
    }
    let db = Db::open(&hub_config.database_url())
        .await
        .context("opening the hub's database")?;
    let vault = hub::connect_vault(&hub_config).await?;
    let kek = hub::key_encryption_key(&hub_config, vault.as_ref())?;
    let keys = KeyRing::load_or_init(db.clone(), kek).await?;
    let result = Auditor::new(db.clone(), keys.audit).verify().await;
    db.close().await;
    match result {
        Ok(count) => {
            println!("audit log intact: {count} entries, chain and head verified");
            Ok(true)
        }
        Err(AuditError::Chain(broken)) => {
            eprintln!("AUDIT LOG TAMPERED: {broken}");
            Ok(false)
        }
        Err(AuditError::Store(error)) => Err(error).context("reading the audit log"),
    }
}
