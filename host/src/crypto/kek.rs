//! The key-encryption key (KEK): what wraps the data keys stored in the database. Either the
//! local master key file, or a Vault/OpenBao transit key that never leaves Vault.
//!
//! Every wrapped key is bound to its label (purpose and version), so a wrapped key copied to
//! another purpose or version fails to unwrap.

use super::{LocalMasterKey, MasterKeyError};
use crate::vault::{Vault, VaultError, has_status};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error(transparent)]
    Local(#[from] MasterKeyError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(
        "a data key could not be unwrapped with transit key {key}: wrong transit key, or the stored key was altered"
    )]
    TransitUnwrap { key: String },
}

pub enum Kek {
    Local(Box<LocalMasterKey>),
    Transit(TransitKek),
}

pub struct TransitKek {
    pub vault: Arc<Vault>,
    pub mount: String,
    pub key: String,
}

impl Kek {
    /// What wraps the data keys, for status pages: `local` or `transit:<mount>/<key>`.
    pub fn describe(&self) -> String {
        match self {
            Kek::Local(_) => "local".into(),
            Kek::Transit(t) => format!("transit:{}/{}", t.mount, t.key),
        }
    }

    pub async fn wrap(&self, label: &str, key: &[u8]) -> Result<Vec<u8>, KekError> {
        match self {
            Kek::Local(master) => Ok(master.wrap(label, key)),
            Kek::Transit(t) => {
                let plaintext = BASE64.encode(labelled(label, key));
                let sealed = t
                    .vault
                    .call("encrypt", |c| {
                        let plaintext = plaintext.clone();
                        async move { vaultrs::transit::data::encrypt(&*c, &t.mount, &t.key, &plaintext, None).await }
                    })
                    .await
                    .map_err(|e| VaultError::request(&e))?;
                Ok(sealed.ciphertext.into_bytes())
            }
        }
    }

    pub async fn unwrap(&self, label: &str, wrapped: &[u8]) -> Result<Vec<u8>, KekError> {
        match self {
            Kek::Local(master) => Ok(master.unwrap(label, wrapped)?),
            Kek::Transit(t) => {
                let refused = || KekError::TransitUnwrap { key: t.key.clone() };
                let ciphertext = std::str::from_utf8(wrapped).map_err(|_| refused())?;
                let opened = t
                    .vault
                    .call("decrypt", |c| async move {
                        vaultrs::transit::data::decrypt(&*c, &t.mount, &t.key, ciphertext, None).await
                    })
                    .await
                    .map_err(|e| {
                        // Vault answers 400 for ciphertext it cannot open.
                        if has_status(&e, 400) {
                            refused()
                        } else {
                            KekError::Vault(VaultError::request(&e))
                        }
                    })?;
                let bytes = BASE64.decode(opened.plaintext).map_err(|_| refused())?;
                let prefix = labelled(label, &[]);
                bytes
                    .strip_prefix(prefix.as_slice())
                    .map(<[u8]>::to_vec)
                    .ok_or_else(refused)
            }
        }
    }
}

fn labelled(label: &str, key: &[u8]) -> Vec<u8> {
    [label.as_bytes(), &[0], key].concat()
}
