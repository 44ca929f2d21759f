//! Connector secrets (client secrets, API tokens): set, rotated and deleted through the API,
//! read by the host for a plugin only when its manifest declares them. Values are never
//! returned, logged or put in an error message.
//!
//! Two backends behind one interface:
//! - `local.rs` (the embedded default): the hub's database, sealed under the data keys;
//! - `vault.rs`: Vault/OpenBao KV v2, one path per secret, with a short-TTL read cache.

mod local;
mod vault;

pub use local::LocalSecrets;
pub use vault::VaultSecrets;

/// Names of secrets only the hub itself reads (webhook signing secrets): never readable by a
/// plugin, never listed, set or deleted through the secrets API.
pub const HUB_SECRET_PREFIX: &str = "hub.";

use crate::crypto::CryptoError;
use crate::store::StoreError;
use crate::store::Timestamp;
use crate::vault::VaultError;
use serde::Deserialize;

/// Where connector secrets are kept.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretsBackend {
    /// The hub's database, sealed under the data keys.
    #[default]
    Local,
    /// Vault/OpenBao KV v2 (`[vault]`).
    Vault,
}

/// `[secrets]`: the connector secret backend.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    pub backend: SecretsBackend,
    /// KV v2 mount.
    pub kv_mount: String,
    /// Secrets live at `<kv_mount>/<path_prefix>/<connector id>/<name>`.
    pub path_prefix: String,
    /// How long a secret read from Vault is reused before it is read again.
    pub cache_ttl_secs: u64,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            backend: SecretsBackend::Local,
            kv_mount: "secret".into(),
            path_prefix: "healthforce-hub".into(),
            cache_ttl_secs: 30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("the stored secret cannot be decrypted: {0}")]
    Crypto(#[from] CryptoError),
    #[error("the secret stored at {path} in Vault has no string field \"value\"; set it again through the API")]
    Shape { path: String },
}

/// What the API may say about a secret: never its value.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct SecretInfo {
    pub name: String,
    /// 1 when set, +1 on every change.
    pub version: i64,
    pub updated_at: Timestamp,
}

pub enum SecretStore {
    Local(LocalSecrets),
    Vault(VaultSecrets),
}

impl SecretStore {
    /// `local` or `vault`, for status pages.
    pub fn backend(&self) -> &'static str {
        match self {
            SecretStore::Local(_) => "local",
            SecretStore::Vault(_) => "vault",
        }
    }

    /// Sets or rotates a secret; returns what the API shows of it.
    pub async fn put(&self, connector_id: &str, name: &str, value: &str) -> Result<SecretInfo, SecretError> {
        match self {
            SecretStore::Local(s) => s.put(connector_id, name, value).await,
            SecretStore::Vault(s) => s.put(connector_id, name, value).await,
        }
    }

    pub async fn get(&self, connector_id: &str, name: &str) -> Result<Option<String>, SecretError> {
        match self {
            SecretStore::Local(s) => s.get(connector_id, name).await,
            SecretStore::Vault(s) => s.get(connector_id, name).await,
        }
    }

    /// A connector's secrets by name.
    pub async fn list(&self, connector_id: &str) -> Result<Vec<SecretInfo>, SecretError> {
        match self {
            SecretStore::Local(s) => Ok(s.list(connector_id).await?),
            SecretStore::Vault(s) => s.list(connector_id).await,
        }
    }

    /// Deletes a secret with all its versions; false when there was none.
    pub async fn delete(&self, connector_id: &str, name: &str) -> Result<bool, SecretError> {
        match self {
            SecretStore::Local(s) => Ok(s.delete(connector_id, name).await?),
            SecretStore::Vault(s) => s.delete(connector_id, name).await,
        }
    }

    /// Deletes every secret of a connector (the connector is being deleted).
    pub async fn delete_all(&self, connector_id: &str) -> Result<(), SecretError> {
        for secret in self.list(connector_id).await? {
            self.delete(connector_id, &secret.name).await?;
        }
        Ok(())
    }
}

/// The row id a local secret's ciphertext is bound to (and its Vault path below the prefix).
pub fn secret_path(connector_id: &str, name: &str) -> String {
    format!("{connector_id}/{name}")
}
