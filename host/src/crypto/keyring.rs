//! The keys in use: data keys and the blind-index key, loaded from the database and
//! unwrapped with the key-encryption key, created on first start.

use super::{BlindIndexer, FieldCipher, LocalMasterKey, MasterKeyError};
use crate::store::{Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error("the stored {purpose} key has the wrong length; the key table is corrupt")]
    Length { purpose: &'static str },
}

pub struct KeyRing {
    pub cipher: FieldCipher,
    pub blind: BlindIndexer,
    /// MAC key of the audit chain. Never rotated: old entries must stay verifiable.
    pub audit: [u8; 32],
}

const DATA: &str = "data";
const BLIND_INDEX: &str = "blind-index";
const AUDIT: &str = "audit";

impl KeyRing {
    pub async fn load_or_init(db: &Db, kek: &LocalMasterKey) -> Result<Self, KeyError> {
        let data = unwrapped_keys(db, kek, DATA).await?;
        let active = data.iter().map(|(v, _)| *v).max().expect("at least one data key");
        let blind = unwrapped_keys(db, kek, BLIND_INDEX).await?;
        let (_, blind_key) = blind
            .into_iter()
            .max_by_key(|(v, _)| *v)
            .expect("at least one blind-index key");
        let audit = unwrapped_keys(db, kek, AUDIT).await?;
        let (_, audit_key) = audit
            .into_iter()
            .min_by_key(|(v, _)| *v)
            .expect("at least one audit key");
        Ok(Self {
            cipher: FieldCipher::new(active, data),
            blind: BlindIndexer::new(blind_key),
            audit: audit_key.try_into().map_err(|_| KeyError::Length { purpose: AUDIT })?,
        })
    }
}

/// Every key of `purpose`, creating version 1 when there is none.
async fn unwrapped_keys(db: &Db, kek: &LocalMasterKey, purpose: &str) -> Result<Vec<(u32, Vec<u8>)>, KeyError> {
    let mut stored = db.data_keys(purpose).await?;
    if stored.is_empty() {
        let wrapped = kek.wrap(&label(purpose, 1), &super::random_bytes::<32>());
        // Another replica may create it first; then use theirs.
        db.insert_data_key(purpose, 1, &wrapped).await?;
        stored = db.data_keys(purpose).await?;
    }
    stored
        .into_iter()
        .map(|(version, wrapped, _status)| {
            let version = version as u32;
            Ok((version, kek.unwrap(&label(purpose, version), &wrapped)?))
        })
        .collect()
}

fn label(purpose: &str, version: u32) -> String {
    format!("hub-data-key/{purpose}/{version}")
}
