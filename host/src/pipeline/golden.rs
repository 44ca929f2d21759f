//! The golden record: one practitioner merged from what every source system last said about
//! them, each field taken from the source that owns it, with its provenance.
//!
//! Precedence (docs/golden-record.md): for each field, the first system in its owner list
//! that has a value wins; systems not listed come after the listed ones; among equals, the
//! most recent (`source.updated_at`, else when the hub received it) wins. A source that has
//! no value for a field never erases another's.
//!
//! Registrations merge per kind: the STR from KKI (it registers doctors and decides their
//! STR status), else RegNakes, else SISDMK; SIPs from RegNakes; certificates from KKI.

use crate::model::{Gender, Practitioner, Registration, SourceRef};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What one source system last said about a practitioner.
#[derive(Clone, Debug)]
pub struct Contribution {
    pub system: String,
    /// The connector that brought it.
    pub connector_id: String,
    /// When the source changed it (or the hub received it): newer wins among equals.
    pub at: String,
    /// Shared with the batch row it came from: a batch kept for another try after a
    /// concurrent write (`Pipeline::store`) is a copy of pointers, not of every record.
    pub record: Arc<Practitioner>,
}

/// Where a golden record's fields came from, grouped by origin: each source's system,
/// connector and time once, with the fields it gave. Stored so (migration 0029): one entry
/// a field, each repeating the same three strings, made 1,483 bytes a practitioner in the
/// FHIR bench (273 grouped), parsed into ~50 strings on every read (~15 grouped).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Provenance(Vec<Origin>);

/// One source of a golden record's fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The system: `regnakes`, `kki`, `sisdmk`, ….
    pub source: String,
    /// The connector that brought it.
    pub connector_id: String,
    /// When the source changed it (or the hub received it).
    pub at: String,
    /// Field names (or `registrations.<kind>`) taken from it.
    pub fields: Vec<String>,
}

impl Provenance {
    /// Records that `field` came from `contribution`.
    fn insert(&mut self, field: String, contribution: &Contribution) {
        let same = |o: &&mut Origin| {
            o.source == contribution.system && o.connector_id == contribution.connector_id && o.at == contribution.at
        };
        match self.0.iter_mut().find(same) {
            Some(origin) => origin.fields.push(field),
            None => self.0.push(Origin {
                source: contribution.system.clone(),
                connector_id: contribution.connector_id.clone(),
                at: contribution.at.clone(),
                fields: vec![field],
            }),
        }
    }

    pub fn into_origins(self) -> Vec<Origin> {
        self.0
    }
}

const IDENTITY: &[&str] = &["regnakes", "sisdmk", "kki"];
const STR: &[&str] = &["kki", "regnakes", "sisdmk"];
const CONTACT: &[&str] = &["sisdmk", "regnakes", "kki"];
const EMPLOYMENT: &[&str] = &["sisdmk", "regnakes", "kki"];
const PROFESSION: &[&str] = &["regnakes", "kki", "sisdmk"];
const TRAINING: &[&str] = &["kki", "regnakes", "sisdmk"];

/// A field's owners and how to read and copy it.
struct Rule {
    field: &'static str,
    owners: &'static [&'static str],
    has: fn(&Practitioner) -> bool,
    copy: fn(&mut Practitioner, &Practitioner),
}

const RULES: &[Rule] = &[
    Rule {
        field: "nik",
        owners: IDENTITY,
        has: |p| p.nik.is_some(),
        copy: |g, p| g.nik = p.nik.clone(),
    },
    Rule {
        field: "full_name",
        owners: IDENTITY,
        has: |p| p.full_name.is_some(),
        copy: |g, p| g.full_name = p.full_name.clone(),
    },
    Rule {
        field: "birth_place",
        owners: IDENTITY,
        has: |p| p.birth_place.is_some(),
        copy: |g, p| g.birth_place = p.birth_place.clone(),
    },
    Rule {
        field: "birth_date",
        owners: IDENTITY,
        has: |p| p.birth_date.is_some(),
        copy: |g, p| g.birth_date = p.birth_date.clone(),
    },
    Rule {
        field: "gender",
        owners: IDENTITY,
        has: |p| p.gender != Gender::Unknown,
        copy: |g, p| g.gender = p.gender,
    },
    Rule {
        field: "str_number",
        owners: STR,
        has: |p| p.str_number.is_some(),
        copy: |g, p| g.str_number = p.str_number.clone(),
    },
    Rule {
        field: "profession",
        owners: PROFESSION,
        has: |p| p.profession.is_some(),
        copy: |g, p| g.profession = p.profession.clone(),
    },
    Rule {
        field: "phone",
        owners: CONTACT,
        has: |p| p.phone.is_some(),
        copy: |g, p| g.phone = p.phone.clone(),
    },
    Rule {
        field: "email",
        owners: CONTACT,
        has: |p| p.email.is_some(),
        copy: |g, p| g.email = p.email.clone(),
    },
    Rule {
        field: "employments",
        owners: EMPLOYMENT,
        has: |p| !p.employments.is_empty(),
        copy: |g, p| g.employments = p.employments.clone(),
    },
    Rule {
        field: "educations",
        owners: EMPLOYMENT,
        has: |p| !p.educations.is_empty(),
        copy: |g, p| g.educations = p.educations.clone(),
    },
    Rule {
        field: "trainings",
        owners: TRAINING,
        has: |p| !p.trainings.is_empty(),
        copy: |g, p| g.trainings = p.trainings.clone(),
    },
];

/// Owners of each registration kind; kinds not listed take the IDENTITY order.
const REGISTRATION_OWNERS: &[(&str, &[&str])] = &[
    ("str", STR),
    ("sip", &["regnakes", "sisdmk", "kki"]),
    ("certificate", &["kki", "regnakes", "sisdmk"]),
];

/// A practitioner with no fields but its source.
fn blank(source: SourceRef) -> Practitioner {
    Practitioner {
        nik: None,
        str_number: None,
        full_name: None,
        birth_place: None,
        birth_date: None,
        gender: Gender::Unknown,
        profession: None,
        phone: None,
        email: None,
        registrations: Vec::new(),
        trainings: Vec::new(),
        employments: Vec::new(),
        educations: Vec::new(),
        source,
    }
}

/// The golden fields whose value differs between `before` and `after` (`registrations` as
/// one), in rule order.
pub fn changed(before: &Practitioner, after: &Practitioner) -> Vec<&'static str> {
    // Each rule's copy into a blank record and back out compares that field alone.
    let only = |rule: &Rule, p: &Practitioner| {
        let mut field = blank(after.source.clone());
        (rule.copy)(&mut field, p);
        field
    };
    let mut fields: Vec<&'static str> = (RULES.iter())
        .filter(|rule| only(rule, before) != only(rule, after))
        .map(|rule| rule.field)
        .collect();
    if before.registrations != after.registrations {
        fields.push("registrations");
    }
    fields
}

/// The most trusted contribution `has` accepts: lowest rank in `owners`, then newest.
fn pick<'a>(
    contributions: &'a [Contribution],
    owners: &[&str],
    has: impl Fn(&Practitioner) -> bool,
) -> Option<&'a Contribution> {
    let rank = |c: &Contribution| owners.iter().position(|s| *s == c.system).unwrap_or(owners.len());
    contributions
        .iter()
        .filter(|c| has(&c.record))
        .min_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| b.at.cmp(&a.at)))
}

/// Merges contributions into the golden record. Its `source` is `latest`: the source whose
/// record caused this merge.
pub fn merge(contributions: &[Contribution], latest: SourceRef) -> (Practitioner, Provenance) {
    let mut golden = blank(latest);
    let mut provenance = Provenance::default();
    let mut record = |field: String, c: &Contribution| provenance.insert(field, c);
    for rule in RULES {
        if let Some(c) = pick(contributions, rule.owners, rule.has) {
            (rule.copy)(&mut golden, &c.record);
            record(rule.field.to_string(), c);
        }
    }
    let mut kinds: Vec<String> = contributions
        .iter()
        .flat_map(|c| c.record.registrations.iter().map(|r| r.kind.to_ascii_lowercase()))
        .collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let owners = REGISTRATION_OWNERS
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(IDENTITY, |(_, owners)| *owners);
        let of_kind = |p: &Practitioner| -> Vec<Registration> {
            p.registrations
                .iter()
                .filter(|r| r.kind.eq_ignore_ascii_case(&kind))
                .cloned()
                .collect()
        };
        if let Some(c) = pick(contributions, owners, |p| !of_kind(p).is_empty()) {
            golden.registrations.extend(of_kind(&c.record));
            record(format!("registrations.{kind}"), c);
        }
    }
    (golden, provenance)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Provenance {
        /// Where `field` came from.
        fn get(&self, field: &str) -> Option<&Origin> {
            self.0.iter().find(|o| o.fields.iter().any(|f| f == field))
        }
    }

    fn registration(kind: &str, status: &str) -> Registration {
        Registration {
            kind: kind.into(),
            number: "STR-1".into(),
            status: status.into(),
            issuer: None,
            valid_from: None,
            valid_until: None,
        }
    }

    fn from(system: &str, at: &str, edit: impl FnOnce(&mut Practitioner)) -> Contribution {
        let mut record = blank(SourceRef {
            system: system.into(),
            id: format!("{system}-1"),
            updated_at: Some(at.into()),
        });
        edit(&mut record);
        Contribution {
            system: system.into(),
            connector_id: format!("{system}-connector"),
            at: at.into(),
            record: record.into(),
        }
    }

    #[test]
    fn each_field_comes_from_its_owner_and_gaps_never_erase() {
        let regnakes = from("regnakes", "2026-01-03", |p| {
            p.full_name = Some("Siti Rahayu".into());
            p.phone = Some("0811".into());
            p.registrations = vec![registration("str", "active"), registration("sip", "active")];
        });
        let kki = from("kki", "2026-01-01", |p| {
            p.full_name = Some("SITI RAHAYU".into());
            p.registrations = vec![registration("str", "revoked")];
        });
        let sisdmk = from("sisdmk", "2026-01-02", |p| p.phone = Some("0813".into()));
        let (golden, provenance) = merge(&[regnakes, kki.clone(), sisdmk], kki.record.source.clone());
        assert_eq!(golden.full_name.as_deref(), Some("Siti Rahayu"));
        assert_eq!(golden.phone.as_deref(), Some("0813"));
        let str_status: Vec<_> = golden
            .registrations
            .iter()
            .map(|r| (r.kind.as_str(), r.status.as_str()))
            .collect();
        assert_eq!(str_status, [("sip", "active"), ("str", "revoked")]);
        assert_eq!(provenance.get("full_name").unwrap().source, "regnakes");
        assert_eq!(provenance.get("phone").unwrap().source, "sisdmk");
        assert_eq!(provenance.get("registrations.str").unwrap().source, "kki");
        assert_eq!(provenance.get("registrations.sip").unwrap().source, "regnakes");
        assert!(provenance.get("email").is_none());
        assert_eq!(golden.source.system, "kki");
    }

    #[test]
    fn changed_names_the_fields_whose_value_differs() {
        let before = from("regnakes", "2026-01-01", |p| {
            p.phone = Some("0811".into());
            p.registrations = vec![registration("str", "active")];
        })
        .record;
        let mut after = Practitioner::clone(&before);
        assert!(changed(&before, &after).is_empty());
        after.phone = Some("0812".into());
        after.email = Some("a@example.org".into());
        after.registrations[0].status = "inactive".into();
        assert_eq!(changed(&before, &after), ["phone", "email", "registrations"]);
    }

    #[test]
    fn among_equals_the_newest_wins() {
        let old = from("other", "2026-01-01", |p| p.email = Some("old@example.id".into()));
        let new = from("another", "2026-02-01", |p| p.email = Some("new@example.id".into()));
        let (golden, provenance) = merge(&[old.clone(), new], old.record.source.clone());
        assert_eq!(golden.email.as_deref(), Some("new@example.id"));
        assert_eq!(provenance.get("email").unwrap().at, "2026-02-01");
    }
}
