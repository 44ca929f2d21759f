//! `hub backup` and `hub restore`: one backup now, and bringing one back (backup/).

use super::offline::DataArgs;
use anyhow::Context;
use hub::audit::Auditor;
use hub::backup::{Backups, Trigger};
use std::path::Path;

pub async fn backup(data: DataArgs) -> anyhow::Result<()> {
    let (config, db, keys) = data.open().await?;
    let backups = Backups::new(db.clone(), Auditor::new(db.clone(), keys.audit), &config)?;
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let taken = backups.take(Trigger::Manual { actor: &actor }).await;
    db.close().await;
    let manifest = taken
        .context("taking the backup")?
        .ok_or_else(|| anyhow::anyhow!("another hub claimed this backup; run hub backup again"))?;
    println!(
        "backup written: {} ({} bytes, SHA-256 {}, {} ms)",
        backups.dir().join(&manifest.file).display(),
        manifest.bytes,
        manifest.sha256,
        manifest.duration_ms
    );
    println!(
        "it needs the {} key-encryption key to be read: back that up separately (docs/backups.md)",
        manifest.kek
    );
    Ok(())
}

pub async fn restore(from: &Path, data: DataArgs) -> anyhow::Result<()> {
    let config = data.config()?;
    let manifest = hub::backup::restore(from, &config)
        .await
        .with_context(|| format!("restoring {}", from.display()))?;
    println!(
        "restored {} (taken {}, schema version {}) into {}; every data key opens with the configured key-encryption key",
        manifest.file,
        manifest.created_at,
        manifest.schema_version,
        config
            .database_url
            .as_deref()
            .map(|_| "the database at --database-url".to_string())
            .unwrap_or_else(|| config.data_dir.display().to_string())
    );
    Ok(())
}
