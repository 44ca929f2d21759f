//! Identity review (docs/golden-record.md, "Review"): the records the pipeline held because
//! they are probably, not surely, a stored person, shown beside that person field by field,
//! and the decisions on them; and splits, which take a source's record back out of a person.
//! A decision is pinned to the source record (matching obeys it from then on, through every
//! re-sync) and the record runs through the pipeline again under it. Audited.

use super::{Manager, ManagerError, Reprocessed};
use crate::audit::Event;
use crate::crypto::{FieldCipher, normalize_code, normalize_digits};
use crate::model::{CanonicalRecord, Gender};
use crate::pipeline::normalize;
use crate::store::Timestamp;
use crate::store::review::Candidate;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::HashMap;

/// A held record and the person it may be.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CandidateView {
    pub id: String,
    /// Why it was held: `str-on-two-niks` (its STR is held by a person under another NIK),
    /// `nik-birth-date` (its NIK is the person's, its birth date is not), `same-name-birth`
    /// (the person's name, birth date and birth place, under another NIK).
    pub kind: String,
    /// `open`, `merged` or `kept-apart`.
    pub status: String,
    /// The person it may be.
    pub practitioner_id: String,
    /// The connector that sent it.
    pub connector_id: String,
    pub system: String,
    /// The source's own id of the record.
    pub record_id: String,
    /// Its identifying fields beside the person's.
    pub fields: Vec<FieldComparison>,
    pub created_at: Timestamp,
    /// When the source last sent it while held.
    pub updated_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    pub decided_by: Option<String>,
}

/// One identifying field of a held record beside the person's, compared as matching
/// compares it (names and places normalized).
#[derive(Debug, Serialize, JsonSchema)]
pub struct FieldComparison {
    /// `nik`, `str_number`, `full_name`, `birth_date`, `birth_place` or `gender`.
    pub field: &'static str,
    /// `agree`, `disagree`, or `missing` (one side has no value).
    pub verdict: &'static str,
    /// How they differ, without values: `1 of 16 digits differ`.
    pub note: Option<String>,
    /// The record's value: only for callers with `pii:read`.
    pub record: Option<String>,
    /// The person's value: only for callers with `pii:read`.
    pub practitioner: Option<String>,
}

/// What a reviewer decides about a held record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It is the person: merged into them, and every later version of it too.
    Merge,
    /// It is not: it never joins them, and is not proposed against them again.
    KeepApart,
}

impl Verdict {
    /// The candidate's status, the pin's relation, and the audit action.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Verdict::Merge => ("merged", "is", "identity.merge"),
            Verdict::KeepApart => ("kept-apart", "apart", "identity.keep-apart"),
        }
    }
}

impl Manager {
    /// Candidates with `status` (`open`, `merged`, `kept-apart`; all when `None`), oldest
    /// first, each beside its person; values only `with_values`.
    pub async fn candidates(
        &self,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
        with_values: bool,
    ) -> Result<Vec<CandidateView>, ManagerError> {
        let candidates = self.db().list_candidates(status, after, limit).await?;
        let ids: Vec<String> = candidates.iter().map(|c| c.practitioner_id.clone()).collect();
        let cipher = self.keys().cipher();
        let mut people: HashMap<String, Identity> = HashMap::new();
        for row in self.db().practitioners_by_id(&ids).await? {
            let open = |column: &str, value: &Option<Vec<u8>>| {
                value
                    .as_ref()
                    .map(|v| cipher.decrypt_str("practitioners", column, &row.id, v))
                    .transpose()
            };
            let identity = Identity {
                nik: open("nik", &row.nik)?,
                str_number: open("str_number", &row.str_number)?,
                full_name: open("full_name", &row.full_name)?,
                birth_date: open("birth_date", &row.birth_date)?,
                birth_place: open("birth_place", &row.birth_place)?,
                gender: Some(row.gender.clone()),
            };
            people.insert(row.id.clone(), identity);
        }
        candidates
            .into_iter()
            .map(|c| {
                let record = Identity::of(&held_record(&cipher, &c)?);
                let person = people.get(&c.practitioner_id).cloned().unwrap_or_default();
                Ok(CandidateView {
                    fields: record.compare(&person, with_values),
                    id: c.id,
                    kind: c.kind,
                    status: c.status,
                    practitioner_id: c.practitioner_id,
                    connector_id: c.connector_id,
                    system: c.source_system,
                    record_id: c.source_id,
                    created_at: c.created_at,
                    updated_at: c.updated_at,
                    decided_at: c.decided_at,
                    decided_by: c.decided_by,
                })
            })
            .collect()
    }

    /// Decides candidate `id`: pins its record to its person (`Merge`) or apart from them
    /// (`KeepApart`), then runs the held record through the pipeline again, which now obeys
    /// the pin. When that run fails, the decision is withdrawn and the candidate stays open.
    pub async fn decide(&self, id: &str, verdict: Verdict, actor: &str) -> Result<Reprocessed, ManagerError> {
        let candidate = self.db().candidate(id).await?.ok_or_else(|| ManagerError::NotFound {
            what: "identity candidate",
            id: id.into(),
        })?;
        let (status, relation, action) = verdict.names();
        let already = || {
            ManagerError::Conflict(format!(
                "identity candidate {id:?} is already decided ({}); a decision stands until the practitioner is \
                 split (POST /api/v1/practitioners/{}/split)",
                candidate.status, candidate.practitioner_id
            ))
        };
        if candidate.status != "open" {
            return Err(already());
        }
        let record = held_record(&self.keys().cipher(), &candidate)?;
        if !(self.db())
            .decide_candidate(&candidate, status, relation, actor, Timestamp::now())
            .await?
        {
            return Err(already());
        }
        let outcome = match self.runs().ingest_as(&candidate.connector_id, record).await {
            Ok(outcome) => outcome,
            Err(error) => {
                self.db().withdraw_decision(&candidate).await?;
                return Err(error);
            }
        };
        self.audit()
            .record(Event::new(actor, action, id).details(serde_json::json!({
                "practitioner": candidate.practitioner_id,
                "kind": candidate.kind,
                "connector": candidate.connector_id,
                "outcome": outcome.outcome,
            })))
            .await;
        Ok(outcome)
    }
}

/// What a split did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Split {
    /// The person the record now makes.
    pub practitioner_id: String,
    /// The person it was taken from, merged again from their other sources.
    pub taken_from: String,
}

impl Manager {
    /// Takes `system`'s record out of practitioner `id` into a person of its own: pinned to
    /// them (so it stays split through every re-sync), run through the pipeline again to
    /// create them, then taken out of `id`, whose golden record is merged again from their
    /// other sources. The record is never in neither.
    pub async fn split(&self, id: &str, system: &str, actor: &str) -> Result<Split, ManagerError> {
        let pipeline = &self.runs().pipeline;
        let taken = pipeline
            .contribution_of(id, system)
            .await?
            .ok_or_else(|| ManagerError::NotFound {
                what: "source of practitioner",
                id: format!("{id}/{system}"),
            })?;
        if taken.sources < 2 {
            return Err(ManagerError::Conflict(format!(
                "{system} is practitioner {id}'s only source: there is no other person to split its record from"
            )));
        }
        if taken.same_nik {
            return Err(ManagerError::Conflict(format!(
                "the {system} record carries practitioner {id}'s own NIK, and a person is identified by their NIK, \
                 so it cannot be a person of its own; if that NIK is wrong, have {system} correct it and the \
                 corrected record is matched again"
            )));
        }
        let new_id = uuid::Uuid::now_v7().to_string();
        let source = taken.contribution.record.source.clone();
        self.db().pin(&source.system, &source.id, "is", &new_id, actor).await?;
        let connector_id = taken.contribution.connector_id.clone();
        let record = CanonicalRecord::Practitioner(std::sync::Arc::unwrap_or_clone(taken.contribution.record));
        let outcome = match self.runs().ingest_as(&connector_id, record).await {
            Ok(outcome) if outcome.outcome == "created" => outcome,
            failed => {
                self.db().unpin(&source.system, &source.id, &new_id).await?;
                let reason = match failed {
                    Ok(outcome) => outcome.reason.unwrap_or_else(|| outcome.outcome.to_string()),
                    Err(error) => return Err(error),
                };
                return Err(ManagerError::Conflict(format!(
                    "the {system} record could not become a person of its own ({reason}); practitioner {id} is \
                     unchanged"
                )));
            }
        };
        pipeline.take_out(id, system, &new_id).await?;
        self.audit()
            .record(Event::new(actor, "practitioner.split", id).details(serde_json::json!({
                "system": system,
                "connector": connector_id,
                "practitioner": new_id,
                "outcome": outcome.outcome,
            })))
            .await;
        Ok(Split {
            practitioner_id: new_id,
            taken_from: id.to_string(),
        })
    }
}

/// The practitioner record a candidate holds.
fn held_record(cipher: &FieldCipher, candidate: &Candidate) -> Result<CanonicalRecord, ManagerError> {
    let table = "identity_candidates";
    Ok(crate::pipeline::open_record(
        cipher,
        table,
        &candidate.id,
        &candidate.record,
    )?)
}

/// The identifying fields review compares, opened.
#[derive(Clone, Debug, Default)]
struct Identity {
    nik: Option<String>,
    str_number: Option<String>,
    full_name: Option<String>,
    birth_date: Option<String>,
    birth_place: Option<String>,
    gender: Option<String>,
}

impl Identity {
    fn of(record: &CanonicalRecord) -> Self {
        let CanonicalRecord::Practitioner(p) = record else {
            return Self::default();
        };
        Identity {
            nik: p.nik.clone(),
            str_number: p.str_number.clone(),
            full_name: p.full_name.clone(),
            birth_date: p.birth_date.clone(),
            birth_place: p.birth_place.clone(),
            gender: match p.gender {
                Gender::Male => Some("male".into()),
                Gender::Female => Some("female".into()),
                Gender::Unknown => None,
            },
        }
    }

    /// Field by field, as matching compares them.
    fn compare(&self, person: &Identity, with_values: bool) -> Vec<FieldComparison> {
        type Key = fn(&str) -> String;
        let fields: [(&'static str, &Option<String>, &Option<String>, Key); 6] = [
            ("nik", &self.nik, &person.nik, normalize_digits),
            ("str_number", &self.str_number, &person.str_number, normalize_code),
            ("full_name", &self.full_name, &person.full_name, normalize::name),
            ("birth_date", &self.birth_date, &person.birth_date, str::to_string),
            ("birth_place", &self.birth_place, &person.birth_place, normalize::place),
            ("gender", &self.gender, &person.gender, str::to_string),
        ];
        fields
            .into_iter()
            .map(|(field, ours, theirs, key)| {
                let (verdict, note) = match (ours, theirs) {
                    (Some(a), Some(b)) if key(a) == key(b) => ("agree", None),
                    (Some(a), Some(b)) => ("disagree", (field == "nik").then(|| digits_apart(a, b)).flatten()),
                    _ => ("missing", None),
                };
                FieldComparison {
                    field,
                    verdict,
                    note,
                    record: ours.clone().filter(|_| with_values),
                    practitioner: theirs.clone().filter(|_| with_values),
                }
            })
            .collect()
    }
}

/// `N of 16 digits differ`, for two NIKs of 16 digits.
fn digits_apart(a: &str, b: &str) -> Option<String> {
    let (a, b) = (normalize_digits(a), normalize_digits(b));
    (a.len() == 16 && b.len() == 16).then(|| {
        let differ = a.chars().zip(b.chars()).filter(|(x, y)| x != y).count();
        format!("{differ} of 16 digits differ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_compare_as_matching_does_and_show_values_only_when_asked() {
        let record = Identity {
            nik: Some("3174014506850002".into()),
            full_name: Some("dr. SITI RAHAYU, Sp.PD".into()),
            birth_place: Some("DKI Jakarta".into()),
            ..Identity::default()
        };
        let person = Identity {
            nik: Some("3174014506850001".into()),
            full_name: Some("Siti Rahayu".into()),
            birth_place: Some("Jakarta".into()),
            birth_date: Some("1985-06-05".into()),
            ..Identity::default()
        };
        let blind = record.compare(&person, false);
        let verdicts: Vec<(&str, &str)> = blind.iter().map(|f| (f.field, f.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("nik", "disagree"),
                ("str_number", "missing"),
                ("full_name", "agree"),
                ("birth_date", "missing"),
                ("birth_place", "agree"),
                ("gender", "missing"),
            ]
        );
        assert_eq!(blind[0].note.as_deref(), Some("1 of 16 digits differ"));
        assert!(blind.iter().all(|f| f.record.is_none() && f.practitioner.is_none()));
        let shown = record.compare(&person, true);
        assert_eq!(shown[0].practitioner.as_deref(), Some("3174014506850001"));
    }
}
