//! The local backend: secrets in the hub's database, each sealed under the active data key
//! and bound to its connector and name.

use super::{SecretError, SecretInfo, secret_path};
use crate::crypto::KeyRing;
use crate::store::{Db, StoreError};
use std::sync::Arc;

const TABLE: &str = "connector_secrets";
const COLUMN: &str = "value";

pub struct LocalSecrets {
    db: Db,
    keys: Arc<KeyRing>,
}

impl LocalSecrets {
    pub fn new(db: Db, keys: Arc<KeyRing>) -> Self {
        Self { db, keys }
    }

    pub async fn put(&self, connector_id: &str, name: &str, value: &str) -> Result<SecretInfo, SecretError> {
        let cipher = self.keys.cipher();
        let sealed = cipher.encrypt_str(TABLE, COLUMN, &secret_path(connector_id, name), value);
        Ok(self
            .db
            .put_secret(connector_id, name, &sealed, cipher.active_version())
            .await?)
    }

    pub async fn get(&self, connector_id: &str, name: &str) -> Result<Option<String>, SecretError> {
        let Some(sealed) = self.db.secret(connector_id, name).await? else {
            return Ok(None);
        };
        let value = self
            .keys
            .cipher()
            .decrypt_str(TABLE, COLUMN, &secret_path(connector_id, name), &sealed)?;
        Ok(Some(value))
    }

    pub async fn list(&self, connector_id: &str) -> Result<Vec<SecretInfo>, StoreError> {
        self.db.list_secrets(connector_id).await
    }

    pub async fn delete(&self, connector_id: &str, name: &str) -> Result<bool, StoreError> {
        self.db.delete_secret(connector_id, name).await
    }
}
