//! Stage `merge`: every source's latest record of a practitioner, as stored (sealed, opened
//! only when the practitioner changes) and as the batch leaves them, merged field by field
//! into the golden record by the rules in `golden`.

use super::golden::Contribution;
use super::seal;
use crate::crypto::FieldCipher;
use crate::store::StoreError;
use crate::store::practitioners::{MatchKeys, SealedContribution};
use std::collections::{HashMap, HashSet};

/// Every practitioner's contributions in this batch.
pub(super) struct Sources {
    stored: HashMap<String, Vec<SealedContribution>>,
    merged: HashMap<String, Vec<Contribution>>,
    written: HashMap<(String, String), SealedContribution>,
}

impl Sources {
    pub fn new(stored: Vec<SealedContribution>) -> Self {
        let mut by_id: HashMap<String, Vec<SealedContribution>> = HashMap::new();
        for c in stored {
            by_id.entry(c.practitioner_id.clone()).or_default().push(c);
        }
        Self {
            stored: by_id,
            merged: HashMap::new(),
            written: HashMap::new(),
        }
    }

    /// Whether `system` said exactly this (`hash`) about `existing` last time.
    pub fn unchanged(&self, existing: &MatchKeys, system: &str, hash: &[u8]) -> bool {
        if let Some(written) = self.written.get(&(existing.id.clone(), system.to_string())) {
            return written.content_hash == hash;
        }
        match self.stored.get(existing.id.as_str()) {
            Some(list) => list.iter().any(|c| c.source_system == system && c.content_hash == hash),
            None if self.merged.contains_key(&existing.id) => false,
            // Stored before sources were kept per system (migration 0008): its own hash.
            None => existing.content_hash == hash,
        }
    }

    /// Records `contribution` as its system's latest for practitioner `id`; all of that
    /// practitioner's contributions, to merge.
    pub fn add(
        &mut self,
        cipher: &FieldCipher,
        id: &str,
        contribution: Contribution,
        content_hash: Vec<u8>,
        now: &str,
    ) -> Result<&[Contribution], StoreError> {
        if !self.merged.contains_key(id) {
            let opened = self
                .stored
                .get(id)
                .map(|list| list.iter().map(|c| seal::open_contribution(cipher, c)).collect())
                .transpose()?
                .unwrap_or_default();
            self.merged.insert(id.to_string(), opened);
        }
        self.written.insert(
            (id.to_string(), contribution.system.clone()),
            seal::contribution(cipher, id, &contribution, content_hash, now),
        );
        let list = self.merged.get_mut(id).expect("inserted above");
        list.retain(|c| c.system != contribution.system);
        list.push(contribution);
        Ok(list)
    }

    /// Whether what is stored now for `ids` is what this batch merged with.
    pub fn still_current(&self, ids: &[String], now_stored: &[SealedContribution]) -> bool {
        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let fingerprint = |c: &SealedContribution| {
            (
                c.practitioner_id.clone(),
                c.source_system.clone(),
                c.content_hash.clone(),
            )
        };
        let then: HashSet<_> = self
            .stored
            .iter()
            .filter(|(id, _)| ids.contains(id.as_str()))
            .flat_map(|(_, list)| list.iter().map(fingerprint))
            .collect();
        let now: HashSet<_> = now_stored.iter().map(fingerprint).collect();
        then == now
    }

    pub fn into_written(self) -> Vec<SealedContribution> {
        self.written.into_values().collect()
    }
}
