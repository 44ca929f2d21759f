//! Stage `matching`: which stored practitioner (or one created earlier in the same batch) a
//! valid row is, by blind indexes only, tier by tier (docs/golden-record.md), and what
//! becomes of the row:
//!
//! 1. `str`: an STR number the person holds or once held, under the same NIK;
//! 2. `nik`: the same NIK, with a birth date (validation has checked that it agrees with the
//!    NIK's date segment, +40 for women);
//! 3. `fallback`: the same NIK, normalized name and birth place (seed 002), for a row
//!    without a birth date.
//!
//! A person is identified by their NIK: the same STR under another NIK is a conflicting
//! identifier, and a row under a stored NIK that no tier confirms is refused, never merged
//! and never a second person. A row that matches nobody creates a practitioner where its
//! connector's creation policy allows.

use super::index::Keyed;
use super::merge::Sources;
use crate::store::practitioners::MatchKeys;
use crate::store::{StoreError, Tx};
use hub_registry::CreatePolicy;
use std::collections::HashMap;

/// The practitioners a batch may match, stored or created earlier in the batch, by each of
/// their blind indexes.
#[derive(Default)]
pub(super) struct Known {
    /// By every STR number they hold or held.
    by_str: HashMap<Vec<u8>, MatchKeys>,
    by_nik: HashMap<Vec<u8>, MatchKeys>,
}

/// The tier that joined a row to a practitioner, recorded with its contribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tier {
    Str,
    Nik,
    Fallback,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Str => "str",
            Tier::Nik => "nik",
            Tier::Fallback => "fallback",
        }
    }
}

/// What becomes of one valid row.
pub(super) enum Decision {
    /// A new practitioner with this id.
    Create(String),
    /// Merged into the stored (or earlier in the batch) practitioner with this id.
    Update(String, Tier),
    /// Its source said exactly this about that practitioner last time.
    Unchanged,
    Reject(String),
}

impl Known {
    /// The stored practitioners any row of the batch may match: one query per index kind.
    pub async fn lookup(tx: &mut Tx, rows: &[Keyed]) -> Result<Self, StoreError> {
        let str_keys: Vec<Vec<u8>> = rows.iter().filter_map(|k| k.indexes.str_index.clone()).collect();
        let nik_keys: Vec<Vec<u8>> = rows.iter().map(|k| k.indexes.nik_index.clone()).collect();
        let (holders, by_nik) = crate::store::practitioners::match_keys(tx, &str_keys, &nik_keys).await?;
        let mut known = Known::default();
        for keys in by_nik {
            known.remember(keys);
        }
        for holder in holders {
            known.by_str.insert(holder.held_str, holder.keys);
        }
        Ok(known)
    }

    /// The ids of every practitioner known.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.by_str.values().chain(self.by_nik.values()).map(|k| &k.id)
    }

    /// Remembers a practitioner the batch wrote, under their golden indexes.
    pub fn remember(&mut self, keys: MatchKeys) {
        if let Some(n) = &keys.nik_index {
            self.by_nik.insert(n.clone(), keys.clone());
        }
        if let Some(s) = &keys.str_index {
            self.by_str.insert(s.clone(), keys);
        }
    }

    /// Remembers that practitioner `keys` holds the STR number `str_index`.
    pub fn remember_str(&mut self, str_index: Vec<u8>, keys: MatchKeys) {
        self.by_str.insert(str_index, keys);
    }

    /// Whether the STR number `str_index` is known to be held by practitioner `id`.
    pub fn holds(&self, str_index: &[u8], id: &str) -> bool {
        self.by_str.get(str_index).is_some_and(|k| k.id == id)
    }

    /// What becomes of `row`, given what its source said before (`sources`) and whether its
    /// connector's records may create practitioners (`creates`).
    pub fn decide(&self, row: &Keyed, sources: &Sources, creates: CreatePolicy) -> Decision {
        let matched = |existing: &MatchKeys, tier: Tier| {
            if sources.unchanged(existing, &row.record.source.system, &row.content_hash) {
                Decision::Unchanged
            } else {
                Decision::Update(existing.id.clone(), tier)
            }
        };
        if let Some(existing) = row.indexes.str_index.as_ref().and_then(|s| self.by_str.get(s)) {
            if existing.nik_index.as_ref().is_some_and(|n| *n != row.indexes.nik_index) {
                return Decision::Reject(
                    "conflicting identifier: this STR belongs to a stored practitioner with a different NIK; not merged"
                        .into(),
                );
            }
            return matched(existing, Tier::Str);
        }
        if let Some(existing) = self.by_nik.get(&row.indexes.nik_index) {
            if row.record.birth_date.is_some() {
                return matched(existing, Tier::Nik);
            }
            if row.indexes.match_index.is_some() && row.indexes.match_index == existing.match_index {
                return matched(existing, Tier::Fallback);
            }
            return Decision::Reject(
                "conflicting identifier: a stored practitioner has this NIK, but the record has no birth date and \
                 its name or birth place differs, so nothing confirms it is the same person; not merged"
                    .into(),
            );
        }
        match (creates, &row.inactive_str) {
            (CreatePolicy::Never, _) => Decision::Reject(
                "matches no stored practitioner, and this connector's records only update practitioners others \
                 made (creates_practitioners = never)"
                    .into(),
            ),
            (CreatePolicy::WithActiveStr, Some(reason)) => Decision::Reject(format!(
                "{reason}: it matches no stored practitioner, and this connector creates practitioners only from \
                 records with an active STR (creates_practitioners = with-active-str)"
            )),
            _ => Decision::Create(uuid::Uuid::now_v7().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::BlindIndexer;
    use crate::model::Practitioner;
    use crate::pipeline::index;

    fn blind() -> BlindIndexer {
        BlindIndexer::new(vec![7; 32])
    }

    /// What the batch knows: `stored`, as a practitioner with id `p-1`.
    fn known(stored: &Practitioner) -> Known {
        let indexes = index::indexes(&blind(), stored);
        let mut known = Known::default();
        known.remember(MatchKeys {
            id: "p-1".into(),
            str_index: indexes.str_index,
            nik_index: Some(indexes.nik_index),
            match_index: indexes.match_index,
            content_hash: vec![0],
        });
        known
    }

    fn decide(known: &Known, record: Practitioner, inactive_str: Option<&str>, creates: CreatePolicy) -> String {
        let row = index::keyed(&blind(), 0, record, inactive_str.map(str::to_string));
        match known.decide(&row, &Sources::new(Vec::new()), creates) {
            Decision::Create(_) => "create".into(),
            Decision::Update(id, tier) => format!("{id} by {}", tier.as_str()),
            Decision::Unchanged => "unchanged".into(),
            Decision::Reject(reason) => reason,
        }
    }

    #[test]
    fn each_tier_joins_the_same_person_and_says_which_it_was() {
        let stored = Practitioner::sample();
        let known = known(&stored);
        let active = CreatePolicy::WithActiveStr;
        assert_eq!(decide(&known, stored.clone(), None, active), "p-1 by str");
        let reissued = Practitioner {
            str_number: Some("STR-2".into()),
            ..stored.clone()
        };
        assert_eq!(decide(&known, reissued, None, active), "p-1 by nik");
        let undated = Practitioner {
            str_number: None,
            birth_date: None,
            full_name: Some("dr. SITI  rahayu, S.Kep".into()),
            birth_place: Some("DKI Jakarta".into()),
            ..stored.clone()
        };
        assert_eq!(decide(&known, undated, Some("no STR"), active), "p-1 by fallback");
    }

    #[test]
    fn what_no_tier_confirms_is_a_conflict_never_a_merge_or_a_second_person() {
        let stored = Practitioner::sample();
        let known = known(&stored);
        let policy = CreatePolicy::WithValidNik;
        let renamed_undated = Practitioner {
            str_number: None,
            birth_date: None,
            full_name: Some("Dewi Lestari".into()),
            ..stored.clone()
        };
        let reason = decide(&known, renamed_undated, Some("no STR"), policy);
        assert!(reason.starts_with("conflicting identifier"), "{reason}");
        let other_nik = Practitioner {
            nik: Some("3174014506850002".into()),
            ..stored.clone()
        };
        let reason = decide(&known, other_nik, None, policy);
        assert!(
            reason.contains("this STR belongs to a stored practitioner with a different NIK"),
            "{reason}"
        );
    }

    #[test]
    fn whether_a_record_that_matches_nobody_creates_a_person_is_its_connectors_policy() {
        let known = Known::default();
        let staff = Practitioner {
            str_number: None,
            registrations: Vec::new(),
            ..Practitioner::sample()
        };
        let no_str = Some("the record carries no STR number");
        assert_eq!(
            decide(&known, staff.clone(), no_str, CreatePolicy::WithValidNik),
            "create"
        );
        let reason = decide(&known, staff.clone(), no_str, CreatePolicy::WithActiveStr);
        assert!(
            reason.starts_with("the record carries no STR number") && reason.contains("with-active-str"),
            "{reason}"
        );
        let reason = decide(&known, Practitioner::sample(), None, CreatePolicy::Never);
        assert!(reason.contains("creates_practitioners = never"), "{reason}");
        assert_eq!(
            decide(&known, Practitioner::sample(), None, CreatePolicy::WithActiveStr),
            "create"
        );
    }
}
