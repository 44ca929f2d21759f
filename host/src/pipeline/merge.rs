//! Stage `merge`: every source's latest record of a practitioner, as stored (sealed, read and
//! opened only when the practitioner changes; its hash alone tells an unchanged record) and
//! as the batch leaves them, merged field by field into the golden record by the rules in
//! `golden`.

use super::golden::Contribution;
use super::index::Keyed;
use super::matching::{Decision, Known};
use super::seal;
use crate::crypto::FieldCipher;
use crate::store::StoreError;
use crate::store::Timestamp;
use crate::store::practitioners::{ContributionHash, MatchKeys, SealedContribution};
use hub_registry::CreatePolicy;
use std::collections::{HashMap, HashSet};

/// Every practitioner's contributions in this batch.
pub(super) struct Sources {
    /// The hashes of every stored contribution of the practitioners the batch matched.
    stored: HashMap<String, Vec<ContributionHash>>,
    /// The sealed contributions of those the batch changes (see [`Sources::to_read`]).
    sealed: HashMap<String, Vec<SealedContribution>>,
    merged: HashMap<String, Vec<Contribution>>,
    written: HashMap<(String, String), SealedContribution>,
}

impl Sources {
    /// What is stored, by hash: enough to decide every row.
    pub fn new(stored: Vec<ContributionHash>) -> Self {
        let mut by_id: HashMap<String, Vec<ContributionHash>> = HashMap::new();
        for c in stored {
            by_id.entry(c.practitioner_id.clone()).or_default().push(c);
        }
        Self {
            stored: by_id,
            sealed: HashMap::new(),
            merged: HashMap::new(),
            written: HashMap::new(),
        }
    }

    /// The stored practitioners whose contributions must be read to merge the batch: those
    /// a row would update, decided against what is stored alone. The first row to update a
    /// stored practitioner is decided the same way when the batch is merged (earlier rows
    /// only add keys pointing at other practitioners, and nothing was written for this one
    /// yet), so this finds every practitioner the merge opens.
    pub fn to_read(&self, known: &Known, rows: &[Keyed], creates: CreatePolicy) -> Vec<String> {
        let mut ids: Vec<String> = rows
            .iter()
            .filter_map(|row| match known.decide(row, self, creates) {
                Decision::Update(id, _) if self.stored.contains_key(&id) => Some(id),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Adds the sealed contributions read for [`Sources::to_read`].
    pub fn with_sealed(mut self, sealed: Vec<SealedContribution>) -> Self {
        for c in sealed {
            self.sealed.entry(c.practitioner_id.clone()).or_default().push(c);
        }
        self
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

    /// What practitioner `id`'s sources say as the batch has left them so far (opened the
    /// first time it is asked).
    pub fn current(&mut self, cipher: &FieldCipher, id: &str) -> Result<&[Contribution], StoreError> {
        if !self.merged.contains_key(id) {
            if self.stored.contains_key(id) && !self.sealed.contains_key(id) {
                // `to_read` missed it: merging without its other sources would drop them.
                return Err(StoreError::Corrupt {
                    what: "batch merge",
                    detail: format!("the stored sources of practitioner {id} were not read before merging"),
                });
            }
            let opened = self
                .sealed
                .get(id)
                .map(|list| list.iter().map(|c| seal::open_contribution(cipher, c)).collect())
                .transpose()?
                .unwrap_or_default();
            self.merged.insert(id.to_string(), opened);
        }
        Ok(&self.merged[id])
    }

    /// Records `contribution` as its system's latest for practitioner `id`; all of that
    /// practitioner's contributions, to merge.
    pub fn add(
        &mut self,
        cipher: &FieldCipher,
        id: &str,
        contribution: Contribution,
        content_hash: Vec<u8>,
        matched_by: &str,
        now: Timestamp,
    ) -> Result<&[Contribution], StoreError> {
        self.current(cipher, id)?;
        self.written.insert(
            (id.to_string(), contribution.system.clone()),
            seal::contribution(cipher, id, &contribution, content_hash, matched_by, now),
        );
        let list = self.merged.get_mut(id).expect("opened above");
        list.retain(|c| c.system != contribution.system);
        list.push(contribution);
        Ok(list)
    }

    /// Whether what is stored now for `ids` is what this batch merged with.
    pub fn still_current(&self, ids: &[String], now_stored: &[ContributionHash]) -> bool {
        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let then: HashSet<&ContributionHash> = self
            .stored
            .iter()
            .filter(|(id, _)| ids.contains(id.as_str()))
            .flat_map(|(_, list)| list.iter())
            .collect();
        let now: HashSet<&ContributionHash> = now_stored.iter().collect();
        then == now
    }

    pub fn into_written(self) -> Vec<SealedContribution> {
        self.written.into_values().collect()
    }
}
