//! Connector secrets as admins handle them: set or rotate, list by name and version, delete.
//! Values go to the secret store (local and sealed, or Vault/OpenBao) and are never
//! returned or audited; names under `hub.` are the hub's own and out of reach.

use super::{ManagerError, SettingsGeneration, validate_name};
use crate::audit::{Auditor, Event};
use crate::secrets::{HUB_SECRET_PREFIX, SecretInfo, SecretStore};
use crate::store::Db;

/// Largest secret value: a PEM bundle fits, a file does not.
const MAX_VALUE_BYTES: usize = 64 * 1024;

pub struct ConnectorSecrets {
    db: Db,
    store: SecretStore,
    audit: Auditor,
    generation: SettingsGeneration,
}

impl ConnectorSecrets {
    pub(super) fn new(db: Db, store: SecretStore, audit: Auditor, generation: SettingsGeneration) -> Self {
        Self {
            db,
            store,
            audit,
            generation,
        }
    }

    /// The store itself, for the hub's own secrets (webhook signing secrets) and for jobs
    /// reading the secrets their plugin declares.
    pub fn store(&self) -> &SecretStore {
        &self.store
    }

    /// Sets or rotates a connector secret; audited by name and version, never by value.
    pub async fn set(
        &self,
        connector_id: &str,
        name: &str,
        value: &str,
        actor: &str,
    ) -> Result<SecretInfo, ManagerError> {
        self.connector_exists(connector_id).await?;
        let info = self.put(connector_id, name, value).await?;
        self.audit
            .record(
                Event::new(actor, "secret.set", connector_id)
                    .details(serde_json::json!({ "name": name, "version": info.version })),
            )
            .await;
        Ok(info)
    }

    /// Names and versions of a connector's secrets.
    pub async fn list(&self, connector_id: &str) -> Result<Vec<SecretInfo>, ManagerError> {
        self.connector_exists(connector_id).await?;
        let mut secrets = self.store.list(connector_id).await?;
        secrets.retain(|s| !s.name.starts_with(HUB_SECRET_PREFIX));
        Ok(secrets)
    }

    pub async fn delete(&self, connector_id: &str, name: &str, actor: &str) -> Result<(), ManagerError> {
        self.connector_exists(connector_id).await?;
        // The same rule as setting one: the hub's own secrets (`hub.…`) are out of reach.
        validate_name(name)?;
        if !self.store.delete(connector_id, name).await? {
            return Err(ManagerError::NotFound {
                what: "secret",
                id: name.into(),
            });
        }
        self.generation.changed();
        self.audit
            .record(Event::new(actor, "secret.delete", connector_id).details(serde_json::json!({ "name": name })))
            .await;
        Ok(())
    }

    /// Stores a secret of a connector known to exist, unaudited (its creation audits it).
    pub(super) async fn put(&self, connector_id: &str, name: &str, value: &str) -> Result<SecretInfo, ManagerError> {
        validate_name(name)?;
        if value.is_empty() || value.len() > MAX_VALUE_BYTES {
            return Err(ManagerError::invalid("a secret value must be 1 byte to 64 KiB"));
        }
        let info = self.store.put(connector_id, name, value).await?;
        self.generation.changed();
        Ok(info)
    }

    async fn connector_exists(&self, id: &str) -> Result<(), ManagerError> {
        super::stored_connector(&self.db, id).await.map(drop)
    }
}
