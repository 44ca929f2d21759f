//! The local key-encryption key: 32 random bytes in a file readable only by the hub (mode
//! 0600), created on first run. It wraps the data keys stored in the database; it never
//! encrypts data itself.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("master key file {path} must hold exactly 32 bytes; it holds {len}. Restore it from backup")]
    Length { path: PathBuf, len: usize },
    #[error("master key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "a data key could not be unwrapped with the master key: wrong master key file, or the stored key was altered"
    )]
    Unwrap,
}

pub struct LocalMasterKey {
    cipher: Aes256Gcm,
}

impl LocalMasterKey {
    /// Opens the key at `path`, creating it (mode 0600) if it does not exist.
    pub fn open_or_create(path: &Path) -> Result<Self, MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.into(),
            source,
        };
        if !path.exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(io)?;
            file.write_all(&super::random_bytes::<32>()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "created a new master key; back it up: without it the data cannot be decrypted");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(MasterKeyError::Permissions {
                    path: path.into(),
                    mode,
                });
            }
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| MasterKeyError::Length {
            path: path.into(),
            len: bytes.len(),
        })?;
        Ok(Self { cipher })
    }

    /// Wraps a data key; `label` (purpose and version) is bound as AAD.
    pub fn wrap(&self, label: &str, key: &[u8]) -> Vec<u8> {
        let nonce = super::random_bytes::<12>();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: key,
                    aad: label.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a 32-byte key cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn unwrap(&self, label: &str, wrapped: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        let (nonce, sealed) = wrapped.split_at_checked(12).ok_or(MasterKeyError::Unwrap)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| MasterKeyError::Unwrap)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| MasterKeyError::Unwrap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_with_mode_0600_and_wraps_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let key = LocalMasterKey::open_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let wrapped = key.wrap("data/1", &[7; 32]);
        let reopened = LocalMasterKey::open_or_create(&path).unwrap();
        assert_eq!(reopened.unwrap("data/1", &wrapped).unwrap(), vec![7; 32]);
        assert!(reopened.unwrap("data/2", &wrapped).is_err(), "label is bound");
    }
}
