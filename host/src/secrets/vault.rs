//! The Vault/OpenBao backend: KV v2 at `<mount>/<prefix>/<connector id>/<name>`, the value
//! in the field `value`. Vault keeps the versions; reads are cached for a short TTL so a sync
//! does not ask Vault once per request.

use super::{SecretError, SecretInfo, secret_path};
use crate::vault::{Vault, VaultError, has_status};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vaultrs::kv2;

pub struct VaultSecrets {
    vault: Arc<Vault>,
    mount: String,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    value: String,
}

impl VaultSecrets {
    pub fn new(vault: Arc<Vault>, mount: &str, prefix: &str, ttl: Duration) -> Self {
        Self {
            vault,
            mount: mount.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, connector_id: &str, name: &str) -> String {
        format!("{}/{}", self.prefix, secret_path(connector_id, name))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.cache.lock().expect("secret cache lock")
    }

    pub async fn put(&self, connector_id: &str, name: &str, value: &str) -> Result<SecretInfo, SecretError> {
        let path = self.path(connector_id, name);
        let stored = &Stored { value: value.into() };
        let (mount, path) = (self.mount.as_str(), path.as_str());
        let written = self
            .vault
            .call(
                "write",
                move |c| async move { kv2::set(&*c, mount, path, stored).await },
            )
            .await
            .map_err(|e| VaultError::request(&e))?;
        self.cache()
            .insert(path.to_string(), (value.to_string(), Instant::now()));
        Ok(SecretInfo {
            name: name.to_string(),
            version: written.version as i64,
            updated_at: vault_time(&written.created_time)?,
        })
    }

    pub async fn get(&self, connector_id: &str, name: &str) -> Result<Option<String>, SecretError> {
        let path = self.path(connector_id, name);
        if let Some((value, at)) = self.cache().get(&path)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(value.clone()));
        }
        let (mount, at_path) = (self.mount.as_str(), path.as_str());
        let read = self
            .vault
            .call("read", |c| async move {
                kv2::read::<serde_json::Value>(&*c, mount, at_path).await
            })
            .await;
        let data = match read {
            Ok(data) => data,
            Err(e) if has_status(&e, 404) => {
                self.cache().remove(&path);
                return Ok(None);
            }
            Err(e) => return Err(VaultError::request(&e).into()),
        };
        let value = serde_json::from_value::<Stored>(data)
            .map_err(|_| SecretError::Shape { path: path.clone() })?
            .value;
        self.cache().insert(path, (value.clone(), Instant::now()));
        Ok(Some(value))
    }

    pub async fn list(&self, connector_id: &str) -> Result<Vec<SecretInfo>, SecretError> {
        let dir = format!("{}/{connector_id}", self.prefix);
        let (mount, dir) = (self.mount.as_str(), dir.as_str());
        let names = match self
            .vault
            .call("list", |c| async move { kv2::list(&*c, mount, dir).await })
            .await
        {
            Ok(names) => names,
            Err(e) if has_status(&e, 404) => return Ok(vec![]),
            Err(e) => return Err(VaultError::request(&e).into()),
        };
        let mut secrets = Vec::with_capacity(names.len());
        // Folders (`name/`) are not the hub's: it writes leaves only.
        for name in names.into_iter().filter(|n| !n.ends_with('/')) {
            let path = self.path(connector_id, &name);
            let at_path = path.as_str();
            let meta = self
                .vault
                .call("read", |c| async move { kv2::read_metadata(&*c, mount, at_path).await })
                .await
                .map_err(|e| VaultError::request(&e))?;
            secrets.push(SecretInfo {
                name,
                version: meta.current_version as i64,
                updated_at: vault_time(&meta.updated_time)?,
            });
        }
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(secrets)
    }

    pub async fn delete(&self, connector_id: &str, name: &str) -> Result<bool, SecretError> {
        let path = self.path(connector_id, name);
        self.cache().remove(&path);
        let (mount, at_path) = (self.mount.as_str(), path.as_str());
        match self
            .vault
            .call("read", |c| async move { kv2::read_metadata(&*c, mount, at_path).await })
            .await
        {
            Ok(_) => {}
            Err(e) if has_status(&e, 404) => return Ok(false),
            Err(e) => return Err(VaultError::request(&e).into()),
        }
        self.vault
            .call(
                "delete",
                |c| async move { kv2::delete_metadata(&*c, mount, at_path).await },
            )
            .await
            .map_err(|e| VaultError::request(&e))?;
        Ok(true)
    }
}

/// A time Vault reports (RFC 3339, nanoseconds), as the hub shows times.
fn vault_time(text: &str) -> Result<crate::store::Timestamp, VaultError> {
    text.parse().map_err(|_| {
        VaultError::Request(format!(
            "Vault/OpenBao answered with a time the hub cannot read: {text:?}"
        ))
    })
}
