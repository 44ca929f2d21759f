//! AES-256-GCM for identifying fields.
//!
//! Ciphertext layout: `0x01 | key version (u32 BE) | nonce (12) | sealed data + tag`. The AAD
//! is `table/column/row id/v<key version>`, so a value copied into another row or column, or
//! relabelled with another key version, fails loudly instead of decrypting.

use aes_gcm::aead::{Aead, AeadInOut, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::collections::HashMap;

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + 12;
const TAG: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CryptoError {
    #[error("ciphertext of {field} is malformed (truncated or not produced by this hub)")]
    Malformed { field: String },
    #[error("ciphertext of {field} is under data key version {version}, which this hub does not hold")]
    UnknownKey { field: String, version: u32 },
    #[error("ciphertext of {field} failed authentication: it was altered, moved, or the key is wrong")]
    Tampered { field: String },
}

/// Encrypts and decrypts fields with the versioned data keys.
pub struct FieldCipher {
    active: u32,
    keys: HashMap<u32, Aes256Gcm>,
}

impl FieldCipher {
    /// `keys` maps versions to 32-byte data keys; new data is sealed under `active`.
    pub fn new(active: u32, keys: impl IntoIterator<Item = (u32, Vec<u8>)>) -> Self {
        let cipher = Self::new_unchecked(active, keys);
        assert!(cipher.keys.contains_key(&active), "the active data key must be loaded");
        cipher
    }

    fn new_unchecked(active: u32, keys: impl IntoIterator<Item = (u32, Vec<u8>)>) -> Self {
        let keys = keys
            .into_iter()
            .map(|(v, k)| (v, Aes256Gcm::new_from_slice(&k).expect("data keys are 32 bytes")))
            .collect::<HashMap<_, _>>();
        Self { active, keys }
    }

    /// The key version a ciphertext was sealed under, read from its header.
    pub fn version_of(ciphertext: &[u8]) -> Option<u32> {
        (ciphertext.len() >= HEADER && ciphertext[0] == FORMAT)
            .then(|| u32::from_be_bytes(ciphertext[1..5].try_into().expect("4 bytes")))
    }

    pub fn active_version(&self) -> u32 {
        self.active
    }

    /// The versions this cipher can open, ascending.
    pub fn versions(&self) -> Vec<u32> {
        let mut versions: Vec<u32> = self.keys.keys().copied().collect();
        versions.sort_unstable();
        versions
    }

    pub fn holds(&self, version: u32) -> bool {
        self.keys.contains_key(&version)
    }

    /// A cipher with the versions in `keep` that this one holds, plus `added`.
    pub fn rebuild(&self, active: u32, keep: &[u32], added: Vec<(u32, Vec<u8>)>) -> Self {
        let mut next = Self::new_unchecked(active, added);
        for version in keep {
            if let Some(key) = self.keys.get(version) {
                next.keys.entry(*version).or_insert_with(|| key.clone());
            }
        }
        assert!(next.keys.contains_key(&active), "the active data key must be loaded");
        next
    }

    /// Seals `plaintext` in place in the row it is returned in (one allocation a field: a
    /// 100,000-person sync seals about a million).
    pub fn encrypt(&self, table: &str, column: &str, row_id: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = nonce();
        let mut out = Vec::with_capacity(HEADER + plaintext.len() + TAG);
        out.push(FORMAT);
        out.extend_from_slice(&self.active.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = with_aad(table, column, row_id, self.active, |aad| {
            self.keys[&self.active].encrypt_inout_detached(&Nonce::from(nonce), aad, (&mut out[HEADER..]).into())
        })
        .expect("AES-GCM encryption cannot fail for in-memory data");
        out.extend_from_slice(&tag);
        out
    }

    pub fn decrypt(&self, table: &str, column: &str, row_id: &str, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let field = || format!("{table}.{column} of row {row_id}");
        if ciphertext.len() < HEADER + TAG || ciphertext[0] != FORMAT {
            return Err(CryptoError::Malformed { field: field() });
        }
        let version = u32::from_be_bytes(ciphertext[1..5].try_into().expect("4 bytes"));
        let nonce: [u8; 12] = ciphertext[5..HEADER].try_into().expect("12 bytes");
        let key = self.keys.get(&version).ok_or_else(|| CryptoError::UnknownKey {
            field: field(),
            version,
        })?;
        with_aad(table, column, row_id, version, |aad| {
            key.decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &ciphertext[HEADER..],
                    aad,
                },
            )
        })
        .map_err(|_| CryptoError::Tampered { field: field() })
    }

    pub fn encrypt_str(&self, table: &str, column: &str, row_id: &str, plaintext: &str) -> Vec<u8> {
        self.encrypt(table, column, row_id, plaintext.as_bytes())
    }

    pub fn decrypt_str(
        &self,
        table: &str,
        column: &str,
        row_id: &str,
        ciphertext: &[u8],
    ) -> Result<String, CryptoError> {
        let bytes = self.decrypt(table, column, row_id, ciphertext)?;
        String::from_utf8(bytes).map_err(|_| CryptoError::Malformed {
            field: format!("{table}.{column} of row {row_id}"),
        })
    }
}

/// A fresh 96-bit nonce from the thread's CSPRNG (ChaCha12, seeded from the operating system
/// and reseeded from it every 64 KiB): random nonces under one key stay unique with
/// overwhelming odds for far more than the 2^32 encryptions NIST allows. Asking the kernel
/// for each one was a system call per sealed field, 2.6 % of a sync's CPU (BENCHMARKS.md,
/// 2026-12-03). The hub never forks, so no two processes share the generator's state.
fn nonce() -> [u8; 12] {
    use rand::RngExt as _;
    rand::rng().random()
}

/// Calls `use_aad` with the AAD of a field, `table/column/row id/v<key version>`, built on
/// the stack: a 100-resource FHIR page opens 800 fields, and formatting each AAD into a new
/// string was half of what decrypting them cost (BENCHMARKS.md, 2026-12-03).
fn with_aad<T>(table: &str, column: &str, row_id: &str, version: u32, use_aad: impl FnOnce(&[u8]) -> T) -> T {
    let mut digits = itoa::Buffer::new();
    let parts = [
        table.as_bytes(),
        b"/",
        column.as_bytes(),
        b"/",
        row_id.as_bytes(),
        b"/v",
        digits.format(version).as_bytes(),
    ];
    let len = parts.iter().map(|part| part.len()).sum();
    // Table and column names and uuid row ids fit; a longer id goes to the heap.
    let mut stack = [0u8; 128];
    let mut heap = Vec::new();
    let aad = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap[..]
    };
    let mut at = 0;
    for part in parts {
        aad[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    use_aad(aad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> FieldCipher {
        FieldCipher::new(2, [(1, vec![1; 32]), (2, vec![2; 32])])
    }

    #[test]
    fn the_aad_is_table_column_row_id_and_key_version_however_long_the_id() {
        let long_id = "x".repeat(300);
        for (row_id, version) in [
            ("row-1", 0),
            ("0b9c2f4e-3c1d-4f6a-9e7b-2d5c8a1f0e93", 7),
            (&long_id, u32::MAX),
        ] {
            let aad = with_aad("practitioner_contributions", "record", row_id, version, <[u8]>::to_vec);
            let documented = format!("practitioner_contributions/record/{row_id}/v{version}");
            assert_eq!(String::from_utf8(aad).unwrap(), documented);
        }
    }

    #[test]
    fn round_trips_and_binds_row_and_column() {
        let c = cipher();
        let sealed = c.encrypt_str("practitioners", "nik", "row-1", "3174014506850001");
        assert_eq!(
            c.decrypt_str("practitioners", "nik", "row-1", &sealed).unwrap(),
            "3174014506850001"
        );
        assert!(matches!(
            c.decrypt("practitioners", "nik", "row-2", &sealed),
            Err(CryptoError::Tampered { .. })
        ));
        assert!(matches!(
            c.decrypt("practitioners", "full_name", "row-1", &sealed),
            Err(CryptoError::Tampered { .. })
        ));
    }

    #[test]
    fn every_seal_has_the_documented_layout_and_a_nonce_never_seen_before_on_any_thread() {
        let c = cipher();
        let value = b"the same value every time";
        let nonces: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..2_500)
                            .map(|_| {
                                let sealed = c.encrypt("t", "c", "r", value);
                                assert_eq!(sealed.len(), HEADER + value.len() + TAG);
                                assert_eq!((sealed[0], &sealed[1..5]), (FORMAT, &2u32.to_be_bytes()[..]));
                                assert_eq!(c.decrypt("t", "c", "r", &sealed).unwrap(), value);
                                sealed[5..HEADER].to_vec()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
        });
        let distinct: std::collections::HashSet<&Vec<u8>> = nonces.iter().collect();
        assert_eq!(distinct.len(), 10_000, "a nonce repeated");
    }

    #[test]
    fn tampering_and_unknown_keys_fail_loudly() {
        let c = cipher();
        let mut sealed = c.encrypt_str("t", "c", "r", "secret");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(
            c.decrypt("t", "c", "r", &sealed),
            Err(CryptoError::Tampered { .. })
        ));
        let mut relabelled = c.encrypt_str("t", "c", "r", "secret");
        relabelled[4] = 9;
        assert!(matches!(
            c.decrypt("t", "c", "r", &relabelled),
            Err(CryptoError::UnknownKey { version: 9, .. })
        ));
        assert!(matches!(
            c.decrypt("t", "c", "r", b"short"),
            Err(CryptoError::Malformed { .. })
        ));
    }
}
