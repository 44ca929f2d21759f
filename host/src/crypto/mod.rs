//! Field-level encryption of identifying data and blind indexes for lookups.
//!
//! - Data keys (AES-256-GCM) are versioned and stored wrapped by a key-encryption key (KEK,
//!   `kek.rs`): the local master key file (`master_key.rs`, the default) or a Vault/OpenBao
//!   transit key. They rotate online (`keyring.rs`, `manager/keys.rs`).
//! - Every encrypted field binds its table, column and row id plus the key version as AAD,
//!   so a ciphertext moved to another row or column fails to decrypt (`cipher.rs`).
//! - Blind indexes are HMAC-SHA256 under a separate key over normalized values, so matching
//!   and lookups never decrypt (`blind_index.rs`).

mod blind_index;
mod cipher;
mod kek;
pub mod keyring;
mod master_key;

pub use blind_index::{BlindIndexer, normalize_code, normalize_digits};
pub use cipher::{CryptoError, FieldCipher};
pub use kek::{Kek, KekError, TransitKek};
pub use keyring::{KeyError, KeyRing};
pub use master_key::{LocalMasterKey, MasterKeyError};
use serde::Deserialize;

/// What wraps the data keys.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KekKind {
    /// `master.key` in the data directory (mode 0600).
    #[default]
    Local,
    /// A Vault/OpenBao transit key (`[vault]`): the key never leaves Vault.
    Transit,
}

/// `[keys]`: the key-encryption key and key rotation.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    pub kek: KekKind,
    /// Mount of the Vault/OpenBao transit engine (`kek = "transit"`).
    pub transit_mount: String,
    /// Name of the transit key that wraps the data keys (`kek = "transit"`).
    pub transit_key: String,
    /// How often a hub re-reads the data key list, so a rotation started on another replica
    /// reaches it. A rotation waits twice this long before re-encrypting.
    pub reload_secs: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            kek: KekKind::Local,
            transit_mount: "transit".into(),
            transit_key: "healthforce-hub".into(),
            reload_secs: 10,
        }
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// A new API key: `hub_` and 256 random bits, URL-safe.
pub fn new_api_key() -> String {
    use base64::Engine as _;
    format!(
        "hub_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}
