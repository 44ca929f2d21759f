//! The manifests of installed plugin versions, parsed once: a digest names one immutable
//! package, so its manifest never changes.

use super::ManagerError;
use crate::store::{Db, StoreError};
use hub_registry::Manifest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub(crate) struct Manifests {
    db: Db,
    parsed: Arc<Mutex<HashMap<String, Arc<Manifest>>>>,
}

impl Manifests {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            parsed: Arc::default(),
        }
    }

    /// The manifest of the installed plugin version `digest`.
    pub async fn get(&self, digest: &str) -> Result<Arc<Manifest>, ManagerError> {
        if let Some(manifest) = self.parsed.lock().unwrap().get(digest) {
            return Ok(manifest.clone());
        }
        let plugin = self
            .db
            .plugin_by_digest(digest)
            .await?
            .ok_or_else(|| ManagerError::NotFound {
                what: "plugin",
                id: digest.into(),
            })?;
        let manifest = Arc::new(Manifest::parse(&plugin.manifest).map_err(|e| StoreError::Corrupt {
            what: "plugin manifest",
            detail: e.to_string(),
        })?);
        self.parsed.lock().unwrap().insert(digest.to_string(), manifest.clone());
        Ok(manifest)
    }
}
