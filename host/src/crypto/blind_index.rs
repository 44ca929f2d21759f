//! Blind indexes: HMAC-SHA256 under a key separate from the data keys, over normalized
//! values (names and birth places by `pipeline::normalize`). Equal inputs give equal indexes,
//! so the store matches and looks up by NIK, STR and the fallback tuple without decrypting
//! anything; the index reveals nothing without the key.
//!
//! Rotating the blind-index key means recomputing every index (a reindex job that decrypts
//! each row once), which is why it is versioned apart from the data keys.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub struct BlindIndexer {
    /// HMAC keyed once: each index clones this state instead of hashing the key's inner and
    /// outer pads again (two of the four SHA-256 blocks of a short index).
    keyed: Hmac<Sha256>,
}

impl BlindIndexer {
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            keyed: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length"),
        }
    }

    /// Index of `parts` in the `domain` (`nik`, `str`, `match`, ...); the domain and a
    /// separator between parts keep indexes of different kinds from ever colliding.
    pub fn index(&self, domain: &str, parts: &[&str]) -> Vec<u8> {
        let mut mac = self.keyed.clone();
        mac.update(domain.as_bytes());
        for part in parts {
            mac.update(&[0]);
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().to_vec()
    }

    pub fn nik(&self, nik: &str) -> Vec<u8> {
        self.index("nik", &[&normalize_digits(nik)])
    }

    pub fn str_number(&self, str_number: &str) -> Vec<u8> {
        self.index("str", &[&normalize_code(str_number)])
    }
}

pub fn normalize_digits(value: &str) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

/// Registration numbers: letters and digits only, upper case.
pub fn normalize_code(value: &str) -> String {
    value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_makes_written_variants_match() {
        let ix = BlindIndexer::new(vec![9; 32]);
        assert_eq!(ix.nik("3174 0145 0685 0001"), ix.nik("3174014506850001"));
        assert_eq!(ix.str_number("31-12 3456"), ix.str_number("3112 3456"));
        assert_ne!(
            ix.nik("3174014506850001"),
            ix.str_number("3174014506850001"),
            "domains separate"
        );
        assert_ne!(BlindIndexer::new(vec![8; 32]).nik("1"), ix.nik("1"), "keyed");
    }
}
