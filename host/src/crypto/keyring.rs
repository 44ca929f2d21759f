//! The keys in use: versioned data keys, the blind-index key and the audit key, stored in the
//! database wrapped by the key-encryption key, created on first start.
//!
//! Data keys rotate: a new version becomes the one new data is sealed under, older versions
//! stay readable (`retiring`) until the re-encryption job has moved every row off them, then
//! they are `retired` and no longer loaded. Replicas pick up changes with [`KeyRing::reload`].

use super::{BlindIndexer, FieldCipher, Kek, KekError};
use crate::store::keys::StoredKey;
use crate::store::{Db, StoreError};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error("the stored {purpose} key has the wrong length; the key table is corrupt")]
    Length { purpose: &'static str },
    #[error("no usable data key is stored: every version is retired; restore the data_keys table from backup")]
    NoDataKey,
    #[error(
        "another replica created data key version {0} at the same moment; look at GET /api/v1/keys and retry if needed"
    )]
    Conflict(u32),
}

pub struct KeyRing {
    db: Db,
    kek: Kek,
    cipher: RwLock<Arc<FieldCipher>>,
    pub blind: BlindIndexer,
    /// MAC key of the audit chain. Never rotated: old entries must stay verifiable.
    pub audit: [u8; 32],
}

pub const DATA: &str = "data";
const BLIND_INDEX: &str = "blind-index";
const AUDIT: &str = "audit";

pub const ACTIVE: &str = "active";
pub const RETIRING: &str = "retiring";
pub const RETIRED: &str = "retired";

impl KeyRing {
    pub async fn load_or_init(db: Db, kek: Kek) -> Result<Self, KeyError> {
        let (active, data) = usable_data_keys(&stored_or_created(&db, &kek, DATA).await?)?;
        let data = unwrap_all(&kek, data).await?;
        let blind = stored_or_created(&db, &kek, BLIND_INDEX).await?;
        let blind = blind.last().expect("at least one blind-index key");
        let blind_key = kek.unwrap(&label(BLIND_INDEX, blind.version), &blind.wrapped).await?;
        let audit = stored_or_created(&db, &kek, AUDIT).await?;
        let audit = audit.first().expect("at least one audit key");
        let audit_key = kek.unwrap(&label(AUDIT, audit.version), &audit.wrapped).await?;
        Ok(Self {
            cipher: RwLock::new(Arc::new(FieldCipher::new(active, data))),
            blind: BlindIndexer::new(blind_key),
            audit: audit_key.try_into().map_err(|_| KeyError::Length { purpose: AUDIT })?,
            db,
            kek,
        })
    }

    /// The cipher in effect now. Callers keep it for one unit of work (a batch, a page), so a
    /// row is sealed under one key version throughout.
    pub fn cipher(&self) -> Arc<FieldCipher> {
        self.cipher.read().expect("key ring lock").clone()
    }

    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// Re-reads the data key list; loads new versions and drops retired ones.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let stored = self.db.data_keys(DATA).await?;
        let (active, usable) = usable_data_keys(&stored)?;
        let current = self.cipher();
        let wanted: Vec<u32> = usable.iter().map(|k| k.0).collect();
        if current.active_version() == active && current.versions() == wanted {
            return Ok(());
        }
        let new: Vec<_> = usable.into_iter().filter(|(v, _)| !current.holds(*v)).collect();
        let added = unwrap_all(&self.kek, new).await?;
        let next = current.rebuild(active, &wanted, added);
        tracing::info!(active, versions = ?wanted, "data keys reloaded");
        *self.cipher.write().expect("key ring lock") = Arc::new(next);
        Ok(())
    }

    /// Creates the next data key version and makes it the one new data is sealed under; the
    /// versions before it become `retiring`. Returns the new version.
    pub async fn add_data_key(&self) -> Result<u32, KeyError> {
        let stored = self.db.data_keys(DATA).await?;
        let next = stored.iter().map(|k| k.version).max().unwrap_or(0) + 1;
        let wrapped = self.kek.wrap(&label(DATA, next), &super::random_bytes::<32>()).await?;
        if !self.db.insert_data_key(DATA, next, &wrapped).await? {
            return Err(KeyError::Conflict(next));
        }
        self.db.set_data_key_status(DATA, next, ACTIVE, RETIRING).await?;
        self.reload().await?;
        Ok(next)
    }

    /// Retires every data key version below `active`: they are no longer loaded, so a row
    /// still sealed under one fails loudly instead of being read.
    pub async fn retire_below(&self, active: u32) -> Result<(), KeyError> {
        self.db.set_data_key_status(DATA, active, RETIRING, RETIRED).await?;
        self.reload().await
    }
}

/// Keys by version: wrapped, or unwrapped.
type VersionedKeys = Vec<(u32, Vec<u8>)>;

/// The active version (newest not retired) and every usable (not retired) wrapped key.
fn usable_data_keys(stored: &[StoredKey]) -> Result<(u32, VersionedKeys), KeyError> {
    let usable: Vec<_> = stored
        .iter()
        .filter(|k| k.status != RETIRED)
        .map(|k| (k.version, k.wrapped.clone()))
        .collect();
    let active = usable.iter().map(|k| k.0).max().ok_or(KeyError::NoDataKey)?;
    Ok((active, usable))
}

async fn unwrap_all(kek: &Kek, wrapped: VersionedKeys) -> Result<VersionedKeys, KeyError> {
    let mut keys = Vec::with_capacity(wrapped.len());
    for (version, wrapped) in wrapped {
        keys.push((version, kek.unwrap(&label(DATA, version), &wrapped).await?));
    }
    Ok(keys)
}

/// Every stored key of `purpose` by version, creating version 1 when there is none.
async fn stored_or_created(db: &Db, kek: &Kek, purpose: &str) -> Result<Vec<StoredKey>, KeyError> {
    let stored = db.data_keys(purpose).await?;
    if !stored.is_empty() {
        return Ok(stored);
    }
    let wrapped = kek.wrap(&label(purpose, 1), &super::random_bytes::<32>()).await?;
    // Another replica may create it first; then use theirs.
    db.insert_data_key(purpose, 1, &wrapped).await?;
    Ok(db.data_keys(purpose).await?)
}

fn label(purpose: &str, version: u32) -> String {
    format!("hub-data-key/{purpose}/{version}")
}
