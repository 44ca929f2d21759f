//! Stage `matching`: which stored practitioner (or one created earlier in the same batch) a
//! valid row is, by blind indexes only — STR first, then the fallback tuple (normalized name
//! + NIK + birth place, seed 002) — and what becomes of the row.

use super::index::Keyed;
use super::merge::Sources;
use crate::store::practitioners::MatchKeys;
use crate::store::{StoreError, Tx};
use std::collections::HashMap;

/// The practitioners a batch may match, stored or created earlier in the batch, by each of
/// their blind indexes.
#[derive(Default)]
pub(super) struct Known {
    by_str: HashMap<Vec<u8>, MatchKeys>,
    by_match: HashMap<Vec<u8>, MatchKeys>,
    by_nik: HashMap<Vec<u8>, MatchKeys>,
}

/// What becomes of one valid row.
pub(super) enum Decision {
    /// A new practitioner with this id.
    Create(String),
    /// Merged into the stored (or earlier in the batch) practitioner with this id.
    Update(String),
    /// Its source said exactly this about that practitioner last time.
    Unchanged,
    Reject(String),
}

impl Known {
    /// The stored practitioners any row of the batch may match: one query per index kind.
    pub async fn lookup(tx: &mut Tx, rows: &[Keyed]) -> Result<Self, StoreError> {
        let str_keys: Vec<Vec<u8>> = rows.iter().map(|k| k.indexes.str_index.clone()).collect();
        let match_keys: Vec<Vec<u8>> = rows.iter().filter_map(|k| k.indexes.match_index.clone()).collect();
        let nik_keys: Vec<Vec<u8>> = rows.iter().map(|k| k.indexes.nik_index.clone()).collect();
        let mut known = Known::default();
        for keys in crate::store::practitioners::match_keys(tx, &str_keys, &match_keys, &nik_keys).await? {
            known.remember(keys);
        }
        Ok(known)
    }

    /// The ids of every practitioner known.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.by_str
            .values()
            .chain(self.by_match.values())
            .chain(self.by_nik.values())
            .map(|k| &k.id)
    }

    pub fn remember(&mut self, keys: MatchKeys) {
        if let Some(m) = &keys.match_index {
            self.by_match.insert(m.clone(), keys.clone());
        }
        if let Some(n) = &keys.nik_index {
            self.by_nik.insert(n.clone(), keys.clone());
        }
        if let Some(s) = &keys.str_index {
            self.by_str.insert(s.clone(), keys);
        }
    }

    /// What becomes of `row`, given what its source said before (`sources`).
    pub fn decide(&self, row: &Keyed, sources: &Sources) -> Decision {
        let found = self
            .by_str
            .get(&row.indexes.str_index)
            .or_else(|| row.indexes.match_index.as_ref().and_then(|m| self.by_match.get(m)));
        match found {
            Some(existing) if existing.nik_index.as_ref().is_some_and(|n| *n != row.indexes.nik_index) => {
                Decision::Reject(
                    "conflicting identifier: this STR belongs to a stored practitioner with a different NIK; not merged"
                        .into(),
                )
            }
            Some(existing) if sources.unchanged(existing, &row.record.source.system, &row.content_hash) => {
                Decision::Unchanged
            }
            Some(existing) => Decision::Update(existing.id.clone()),
            // Who a NIK belongs to is settled by identity rules (docs/golden-record.md);
            // until a record matches by STR or the fallback tuple, a second person under a
            // stored NIK is never created.
            None if self.by_nik.contains_key(&row.indexes.nik_index) => Decision::Reject(
                "conflicting identifier: a stored practitioner already has this NIK under another STR number; not created as a second person".into(),
            ),
            None => match &row.inactive_str {
                Some(reason) => Decision::Reject(reason.clone()),
                None => Decision::Create(uuid::Uuid::now_v7().to_string()),
            },
        }
    }
}
