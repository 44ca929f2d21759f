//! Stage `matching`: which stored practitioner (or one created earlier in the same batch) a
//! valid row is, by blind indexes only, tier by tier (docs/golden-record.md), and what
//! becomes of the row:
//!
//! 0. `review`: a review decision pinned to this source record says whose it is;
//! 1. `str`: an STR number the person holds or once held, under the same NIK;
//! 2. `nik`: the same NIK, with a birth date that agrees with the NIK's date segment (+40
//!    for women);
//! 3. `fallback`: the same NIK, normalized name and birth place (seed 002), for a row
//!    without a birth date.
//!
//! A person is identified by their NIK. A row that is probably, not surely, a stored person
//! is held for review, never merged ([`Ambiguity`]); a row under a stored NIK that nothing
//! confirms, without a birth date, is refused. A row that matches nobody creates a
//! practitioner where its connector's creation policy allows.

use super::index::Keyed;
use super::merge::Sources;
use super::validate::{BIRTH_DATE_DISAGREES, Findings};
use crate::store::practitioners::MatchKeys;
use crate::store::review::Pin;
use crate::store::{StoreError, Tx};
use hub_registry::CreatePolicy;
use std::collections::{HashMap, HashSet};

/// The practitioners a batch may match, stored or created earlier in the batch, by id and by
/// each of their blind indexes, and the review decisions on the batch's source records.
#[derive(Default)]
pub(super) struct Known {
    people: HashMap<String, MatchKeys>,
    /// By every STR number they hold or held.
    by_str: HashMap<Vec<u8>, String>,
    by_nik: HashMap<Vec<u8>, String>,
    by_twin: HashMap<Vec<u8>, String>,
    /// By source system and record id.
    pins: HashMap<(String, String), Pins>,
}

/// What review decided about one source record.
#[derive(Default)]
struct Pins {
    /// Whose it is: merged into them, or split out as them (who may not exist yet).
    is: Option<String>,
    /// Whom it is not.
    apart: HashSet<String>,
}

/// The tier that joined a row to a practitioner, recorded with its contribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tier {
    Review,
    Str,
    Nik,
    Fallback,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Review => "review",
            Tier::Str => "str",
            Tier::Nik => "nik",
            Tier::Fallback => "fallback",
        }
    }
}

/// Why a row is probably, not surely, a stored person: it is held for review instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ambiguity {
    /// The row's STR number is held by a person under another NIK.
    StrOnTwoNiks,
    /// The row's NIK is a person's, but its birth date is not the NIK's.
    NikBirthDate,
    /// The row's normalized name, birth date and birth place are a person's, under another
    /// NIK (a NIK mistyped by a digit, or two people alike).
    SameNameBirth,
}

impl Ambiguity {
    pub fn as_str(self) -> &'static str {
        match self {
            Ambiguity::StrOnTwoNiks => "str-on-two-niks",
            Ambiguity::NikBirthDate => "nik-birth-date",
            Ambiguity::SameNameBirth => "same-name-birth",
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
    /// Held for review against the practitioner with this id.
    Hold(String, Ambiguity),
    Reject(String),
}

impl Known {
    /// The stored practitioners any row of the batch may match (one query per index kind),
    /// and the review decisions pinned to the batch's records.
    pub async fn lookup(tx: &mut Tx, rows: &[Keyed]) -> Result<Self, StoreError> {
        let of = |index: fn(&Keyed) -> Option<&Vec<u8>>| rows.iter().filter_map(index).cloned().collect::<Vec<_>>();
        let str_keys = of(|k| k.indexes.str_index.as_ref());
        let nik_keys = of(|k| Some(&k.indexes.nik_index));
        let twin_keys = of(|k| k.indexes.twin_index.as_ref());
        let source_ids: Vec<String> = rows.iter().map(|k| k.record.source.id.clone()).collect();
        let mut known = Known::default();
        for pin in crate::store::review::pins(tx, &source_ids).await? {
            known.pin(pin);
        }
        let pinned: Vec<String> = known.pins.values().filter_map(|p| p.is.clone()).collect();
        let found = crate::store::practitioners::match_keys(tx, &str_keys, &nik_keys, &twin_keys, &pinned).await?;
        for keys in found.people {
            known.remember(keys);
        }
        for holder in found.holders {
            known.by_str.insert(holder.held_str, holder.keys.id.clone());
            known.people.entry(holder.keys.id.clone()).or_insert(holder.keys);
        }
        Ok(known)
    }

    fn pin(&mut self, pin: Pin) {
        let pins = self.pins.entry((pin.source_system, pin.source_id)).or_default();
        match pin.relation.as_str() {
            "is" => pins.is = Some(pin.practitioner_id),
            _ => {
                pins.apart.insert(pin.practitioner_id);
            }
        }
    }

    /// The ids of every practitioner known.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.people.keys()
    }

    /// Remembers a practitioner the batch wrote, under their golden indexes.
    pub fn remember(&mut self, keys: MatchKeys) {
        for (map, index) in [
            (&mut self.by_nik, &keys.nik_index),
            (&mut self.by_str, &keys.str_index),
            (&mut self.by_twin, &keys.twin_index),
        ] {
            if let Some(index) = index {
                map.insert(index.clone(), keys.id.clone());
            }
        }
        self.people.insert(keys.id.clone(), keys);
    }

    /// Remembers that practitioner `id` holds the STR number `str_index`.
    pub fn remember_str(&mut self, str_index: Vec<u8>, id: &str) {
        self.by_str.insert(str_index, id.to_string());
    }

    /// Who holds the STR number `str_index`, if anyone known does.
    pub fn holder(&self, str_index: &[u8]) -> Option<&str> {
        self.by_str.get(str_index).map(String::as_str)
    }

    fn by(&self, map: &HashMap<Vec<u8>, String>, index: Option<&Vec<u8>>) -> Option<&MatchKeys> {
        index.and_then(|i| map.get(i)).and_then(|id| self.people.get(id))
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
        let source = &row.record.source;
        let pins = (!self.pins.is_empty())
            .then(|| self.pins.get(&(source.system.clone(), source.id.clone())))
            .flatten();
        if let Some(id) = pins.and_then(|p| p.is.as_ref()) {
            return match self.people.get(id) {
                Some(existing) => matched(existing, Tier::Review),
                None => Decision::Create(id.clone()),
            };
        }
        let apart = |existing: &MatchKeys| pins.is_some_and(|p| p.apart.contains(&existing.id));
        let same_nik = |existing: &MatchKeys| existing.nik_index.as_ref() == Some(&row.indexes.nik_index);

        let by_nik = self.by(&self.by_nik, Some(&row.indexes.nik_index));
        if row.findings.birth_date_disagrees {
            // Whatever else agrees, a birth date that is not the NIK's means one was mistyped:
            // review decides whether this is the person the NIK names, and it is nobody else.
            return match by_nik {
                Some(existing) if apart(existing) => Decision::Reject(format!(
                    "{BIRTH_DATE_DISAGREES}, and review kept it apart from the practitioner with this NIK: \
                     correct the NIK or the birth date at the source"
                )),
                Some(existing) => Decision::Hold(existing.id.clone(), Ambiguity::NikBirthDate),
                None => Decision::Reject(BIRTH_DATE_DISAGREES.into()),
            };
        }
        if let Some(existing) = self.by(&self.by_str, row.indexes.str_index.as_ref()) {
            if same_nik(existing) {
                return matched(existing, Tier::Str);
            }
            if !apart(existing) {
                return Decision::Hold(existing.id.clone(), Ambiguity::StrOnTwoNiks);
            }
            // Kept apart: the STR says nothing about who this is; the other tiers decide.
        }
        if let Some(existing) = by_nik {
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
        if let Some(existing) = self.by(&self.by_twin, row.indexes.twin_index.as_ref())
            && !apart(existing)
        {
            return Decision::Hold(existing.id.clone(), Ambiguity::SameNameBirth);
        }
        match creation_refusal(creates, &row.findings) {
            Some(reason) => Decision::Reject(reason),
            None => Decision::Create(uuid::Uuid::now_v7().to_string()),
        }
    }
}

/// Why a valid row that matches nobody may not create a practitioner under its connector's
/// creation policy, if it may not.
pub(super) fn creation_refusal(creates: CreatePolicy, findings: &Findings) -> Option<String> {
    match (creates, &findings.inactive_str) {
        (CreatePolicy::Never, _) => Some(
            "matches no stored practitioner, and this connector's records only update practitioners others made \
             (creates_practitioners = never)"
                .into(),
        ),
        (CreatePolicy::WithActiveStr, Some(reason)) => Some(format!(
            "{reason}: it matches no stored practitioner, and this connector creates practitioners only from records \
             with an active STR (creates_practitioners = with-active-str)"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::BlindIndexer;
    use crate::model::Practitioner;
    use crate::pipeline::{index, validate};
    use crate::store::Timestamp;

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
            twin_index: indexes.twin_index,
            content_hash: vec![0],
        });
        known
    }

    /// What becomes of `record`, validated as the pipeline does, in words.
    fn decide(known: &Known, record: Practitioner, creates: CreatePolicy) -> String {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let findings = validate::practitioner(&record, today).expect("a well-formed record");
        let row = index::keyed(&blind(), 0, record, findings);
        match known.decide(&row, &Sources::new(Vec::new()), creates) {
            Decision::Create(_) => "create".into(),
            Decision::Update(id, tier) => format!("{id} by {}", tier.as_str()),
            Decision::Unchanged => "unchanged".into(),
            Decision::Hold(id, ambiguity) => format!("held against {id}: {}", ambiguity.as_str()),
            Decision::Reject(reason) => reason,
        }
    }

    /// Another person's NIK: the sample's with the next serial.
    fn other_nik() -> Option<String> {
        Some("3174014506850002".into())
    }

    #[test]
    fn each_tier_joins_the_same_person_and_says_which_it_was() {
        let stored = Practitioner::sample();
        let known = known(&stored);
        let active = CreatePolicy::WithActiveStr;
        assert_eq!(decide(&known, stored.clone(), active), "p-1 by str");
        let reissued = Practitioner {
            str_number: Some("STR-2".into()),
            ..stored.clone()
        };
        assert_eq!(decide(&known, reissued, active), "p-1 by nik");
        let undated = Practitioner {
            str_number: None,
            birth_date: None,
            full_name: Some("dr. SITI  rahayu, S.Kep".into()),
            birth_place: Some("DKI Jakarta".into()),
            ..stored.clone()
        };
        assert_eq!(decide(&known, undated, active), "p-1 by fallback");
    }

    #[test]
    fn what_is_probable_but_not_sure_is_held_for_review_never_merged() {
        let stored = Practitioner::sample();
        let known = known(&stored);
        let policy = CreatePolicy::WithValidNik;
        let str_elsewhere = Practitioner {
            nik: other_nik(),
            full_name: Some("Dewi Lestari".into()),
            ..stored.clone()
        };
        assert_eq!(
            decide(&known, str_elsewhere, policy),
            "held against p-1: str-on-two-niks"
        );
        let other_birth_date = Practitioner {
            birth_date: Some("1985-06-06".into()),
            ..stored.clone()
        };
        assert_eq!(
            decide(&known, other_birth_date, policy),
            "held against p-1: nik-birth-date"
        );
        let nik_typo = Practitioner {
            nik: other_nik(),
            str_number: None,
            full_name: Some("SITI RAHAYU, A.Md.Keb".into()),
            ..stored.clone()
        };
        assert_eq!(decide(&known, nik_typo, policy), "held against p-1: same-name-birth");
    }

    #[test]
    fn what_nothing_confirms_is_a_conflict_never_a_merge_or_a_second_person() {
        let stored = Practitioner::sample();
        let known = known(&stored);
        let renamed_undated = Practitioner {
            str_number: None,
            birth_date: None,
            full_name: Some("Dewi Lestari".into()),
            ..stored.clone()
        };
        let reason = decide(&known, renamed_undated, CreatePolicy::WithValidNik);
        assert!(reason.starts_with("conflicting identifier"), "{reason}");
        let nobodys_nik_with_another_date = Practitioner {
            nik: other_nik(),
            str_number: None,
            birth_date: Some("1990-01-01".into()),
            ..stored.clone()
        };
        let reason = decide(&known, nobodys_nik_with_another_date, CreatePolicy::WithValidNik);
        assert_eq!(reason, BIRTH_DATE_DISAGREES);
    }

    #[test]
    fn a_review_decision_on_a_record_decides_it_from_then_on() {
        let stored = Practitioner::sample();
        let str_elsewhere = Practitioner {
            nik: other_nik(),
            full_name: Some("Dewi Lestari".into()),
            ..stored.clone()
        };
        let pinned = |relation: &str, id: &str| {
            let mut known = known(&stored);
            known.pin(Pin {
                source_system: "regnakes".into(),
                source_id: "r-1".into(),
                relation: relation.into(),
                practitioner_id: id.into(),
                decided_at: Timestamp::now(),
            });
            known
        };
        let policy = CreatePolicy::WithActiveStr;
        assert_eq!(
            decide(&pinned("is", "p-1"), str_elsewhere.clone(), policy),
            "p-1 by review"
        );
        // Split out as a person of its own who does not exist yet: it creates them.
        assert_eq!(decide(&pinned("is", "p-2"), stored.clone(), policy), "create");
        // Kept apart: the shared STR no longer holds it; it is a person of its own.
        assert_eq!(decide(&pinned("apart", "p-1"), str_elsewhere, policy), "create");
        let other_birth_date = Practitioner {
            birth_date: Some("1985-06-06".into()),
            ..stored.clone()
        };
        let reason = decide(&pinned("apart", "p-1"), other_birth_date, policy);
        assert!(reason.contains("review kept it apart"), "{reason}");
    }

    #[test]
    fn whether_a_record_that_matches_nobody_creates_a_person_is_its_connectors_policy() {
        let known = Known::default();
        let staff = Practitioner {
            str_number: None,
            registrations: Vec::new(),
            ..Practitioner::sample()
        };
        assert_eq!(decide(&known, staff.clone(), CreatePolicy::WithValidNik), "create");
        let reason = decide(&known, staff, CreatePolicy::WithActiveStr);
        assert!(
            reason.starts_with("the record carries no STR number") && reason.contains("with-active-str"),
            "{reason}"
        );
        let reason = decide(&known, Practitioner::sample(), CreatePolicy::Never);
        assert!(reason.contains("creates_practitioners = never"), "{reason}");
        assert_eq!(
            decide(&known, Practitioner::sample(), CreatePolicy::WithActiveStr),
            "create"
        );
    }
}
