//! What must never be found in clear in the hub's storage, logs or answers: the seeded NIKs,
//! STR numbers and names, client secrets, access tokens. Scans raw bytes for any of them (test support).

use std::collections::HashSet;

pub struct Needles {
    niks: HashSet<String>,
    strs: Vec<String>,
    names: Vec<String>,
    secrets: Vec<String>,
}

impl Needles {
    /// The NIKs and STR numbers of `people`, and the full names that cannot be mistaken for a common word
    /// (two words or more).
    pub fn people(people: &[crate::people::Person]) -> Self {
        Self {
            niks: people.iter().map(|p| p.nik.clone()).collect(),
            strs: people.iter().map(|p| p.str_number.clone()).collect(),
            names: people
                .iter()
                .filter(|p| p.full_name.contains(' '))
                .map(|p| p.full_name.clone())
                .collect(),
            secrets: Vec::new(),
        }
    }

    /// Adds credentials (client secrets, tokens) that must not appear either.
    pub fn and_secrets(mut self, secrets: impl IntoIterator<Item = String>) -> Self {
        self.secrets.extend(secrets.into_iter().filter(|s| !s.is_empty()));
        self
    }

    /// Panics naming the kind of needle found in `bytes`; `what` says where they came from.
    pub fn assert_absent(&self, what: &str, bytes: &[u8]) {
        // Every 16-digit window of every digit run: a NIK in clear would be one of them.
        for run in bytes.split(|b| !b.is_ascii_digit()).filter(|run| run.len() >= 16) {
            for window in run.windows(16) {
                let window = std::str::from_utf8(window).expect("digits");
                assert!(!self.niks.contains(window), "{what} contains a seeded NIK in clear");
            }
        }
        let text = String::from_utf8_lossy(bytes);
        for name in &self.names {
            assert!(
                !text.contains(name.as_str()),
                "{what} contains the name {name:?} in clear"
            );
        }
        for number in &self.strs {
            // What precedes it says where it is (a column name, a JSON key), not the value.
            if let Some(at) = text.find(number.as_str()) {
                let before: String = text[..at]
                    .chars()
                    .rev()
                    .take(48)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!("{what} contains a seeded STR number in clear, after {before:?}");
            }
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            assert!(
                !text.contains(secret.as_str()),
                "{what} contains credential #{i} (client secret or token) in clear"
            );
        }
    }

    /// How many credentials are checked (a test asserts it saw some).
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }
}
