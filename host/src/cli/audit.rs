//! `hub audit verify`: walks the audit chain and fails on any edited or deleted entry.

use super::offline::DataArgs;
use anyhow::Context;
use hub::audit::{AuditError, Auditor};

pub async fn verify(data: DataArgs) -> anyhow::Result<bool> {
    let (_, db, keys) = data.open().await?;
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
