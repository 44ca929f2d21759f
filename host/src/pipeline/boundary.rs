//! The first stage: every text a plugin hands over is checked once, here, the same for
//! both database backends, before any rule reads it. A row that fails is rejected with its
//! reason (never a failed batch):
//!
//! - no control characters (NUL, escape sequences, C1): PostgreSQL cannot store a NUL, and
//!   SQLite would store one that the other backend refuses;
//! - no invisible formatting characters (bidi overrides and isolates, zero-width spaces and
//!   joiners, the BOM, the soft hyphen): they make two different names look alike;
//! - identifiers (NIK, STR and SIP numbers, facility codes, device ids, codes) are printable
//!   ASCII, so `١٢٣` (Arabic-Indic digits) never passes for `123`;
//! - dates the rules read are real calendar dates written `YYYY-MM-DD` (`2020-02-31` and
//!   `never` are refused); dates of history may be `YYYY` or `YYYY-MM` too (FHIR `date`);
//!   instants are RFC 3339;
//! - each text at most `quotas.field_bytes`, each list at most `quotas.list_items` entries,
//!   a record's texts together at most `quotas.record_bytes`.
//!
//! Reasons name the field, never its value (reasons are stored and shown in clear).

use crate::model::{Account, CanonicalRecord, Observation, Practitioner, SourceRef};
use crate::runtime::Quotas;
use chrono::NaiveDate;

/// What a text field holds, and so which rule it follows besides the common ones.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Identifier,
    /// A full calendar date: the rules read it (birth date, registration validity).
    Date,
    /// A date as precise as the source knows it, as FHIR's `date`: `YYYY`, `YYYY-MM` or
    /// `YYYY-MM-DD` (a graduation year, an employment start month).
    PartialDate,
    Instant,
}

/// The reason `record` is refused at the boundary, if it is.
pub fn check(record: &CanonicalRecord, quotas: &Quotas) -> Result<(), String> {
    let mut checker = Checker { quotas, bytes: 0 };
    match record {
        CanonicalRecord::Practitioner(p) => checker.practitioner(p),
        CanonicalRecord::Observation(o) => checker.observation(o),
        CanonicalRecord::Account(a) => checker.account(a),
    }
}

struct Checker<'q> {
    quotas: &'q Quotas,
    /// Text bytes of the record so far.
    bytes: usize,
}

impl Checker<'_> {
    fn practitioner(&mut self, p: &Practitioner) -> Result<(), String> {
        use Kind::*;
        for (name, value, kind) in [
            ("nik", &p.nik, Identifier),
            ("str_number", &p.str_number, Identifier),
            ("full_name", &p.full_name, Text),
            ("birth_place", &p.birth_place, Text),
            ("birth_date", &p.birth_date, Date),
            ("profession", &p.profession, Text),
            ("phone", &p.phone, Text),
            ("email", &p.email, Text),
        ] {
            self.opt(name, None, value, kind)?;
        }
        self.list("registrations", p.registrations.len())?;
        for (i, r) in p.registrations.iter().enumerate() {
            self.text("registrations.kind", Some(i), &r.kind, Text)?;
            // STR and SIP numbers are identifiers; a certificate's "number" may be its name.
            let number = if ["str", "sip"].iter().any(|k| r.kind.eq_ignore_ascii_case(k)) {
                Identifier
            } else {
                Text
            };
            self.text("registrations.number", Some(i), &r.number, number)?;
            self.text("registrations.status", Some(i), &r.status, Text)?;
            self.opt("registrations.issuer", Some(i), &r.issuer, Text)?;
            self.opt("registrations.valid_from", Some(i), &r.valid_from, Date)?;
            self.opt("registrations.valid_until", Some(i), &r.valid_until, Date)?;
        }
        self.list("trainings", p.trainings.len())?;
        for (i, t) in p.trainings.iter().enumerate() {
            self.text("trainings.name", Some(i), &t.name, Text)?;
            self.opt("trainings.provider", Some(i), &t.provider, Text)?;
            self.opt("trainings.completed_on", Some(i), &t.completed_on, PartialDate)?;
        }
        self.list("employments", p.employments.len())?;
        for (i, e) in p.employments.iter().enumerate() {
            self.opt("employments.facility_code", Some(i), &e.facility_code, Identifier)?;
            self.text("employments.facility_name", Some(i), &e.facility_name, Text)?;
            self.opt("employments.position", Some(i), &e.position, Text)?;
            self.opt("employments.start_date", Some(i), &e.start_date, PartialDate)?;
            self.opt("employments.end_date", Some(i), &e.end_date, PartialDate)?;
        }
        self.list("educations", p.educations.len())?;
        for (i, e) in p.educations.iter().enumerate() {
            self.text("educations.institution", Some(i), &e.institution, Text)?;
            self.opt("educations.degree", Some(i), &e.degree, Text)?;
            self.opt("educations.major", Some(i), &e.major, Text)?;
            self.opt("educations.graduated_on", Some(i), &e.graduated_on, PartialDate)?;
        }
        self.source(&p.source)
    }

    fn observation(&mut self, o: &Observation) -> Result<(), String> {
        self.text("device_id", None, &o.device_id, Kind::Identifier)?;
        self.opt("subject", None, &o.subject, Kind::Text)?;
        self.text("code", None, &o.code, Kind::Identifier)?;
        self.opt("unit", None, &o.unit, Kind::Text)?;
        self.text("effective_at", None, &o.effective_at, Kind::Instant)?;
        self.list("components", o.components.len())?;
        for (i, c) in o.components.iter().enumerate() {
            self.text("components.code", Some(i), &c.code, Kind::Identifier)?;
            self.text("components.unit", Some(i), &c.unit, Kind::Text)?;
        }
        self.source(&o.source)
    }

    fn account(&mut self, a: &Account) -> Result<(), String> {
        self.text("subject", None, &a.subject, Kind::Text)?;
        self.text("username", None, &a.username, Kind::Text)?;
        self.opt("email", None, &a.email, Kind::Text)?;
        self.opt("nik", None, &a.nik, Kind::Identifier)?;
        self.list("roles", a.roles.len())?;
        for (i, role) in a.roles.iter().enumerate() {
            self.text("roles", Some(i), role, Kind::Text)?;
        }
        self.source(&a.source)
    }

    fn source(&mut self, s: &SourceRef) -> Result<(), String> {
        self.text("source.system", None, &s.system, Kind::Identifier)?;
        self.text("source.id", None, &s.id, Kind::Text)?;
        self.opt("source.updated_at", None, &s.updated_at, Kind::Instant)
    }

    fn list(&self, name: &str, len: usize) -> Result<(), String> {
        let max = self.quotas.list_items as usize;
        if len > max {
            return Err(format!(
                "{name} has {len} entries; at most {max} are accepted (quotas.list_items)"
            ));
        }
        Ok(())
    }

    fn opt(
        &mut self,
        name: &'static str,
        index: Option<usize>,
        value: &Option<String>,
        kind: Kind,
    ) -> Result<(), String> {
        match value {
            Some(value) => self.text(name, index, value, kind),
            None => Ok(()),
        }
    }

    fn text(&mut self, name: &'static str, index: Option<usize>, value: &str, kind: Kind) -> Result<(), String> {
        let field = || path(name, index);
        let max = self.quotas.field_bytes as usize;
        if value.len() > max {
            return Err(format!(
                "{} is {} bytes long; at most {max} are accepted (quotas.field_bytes)",
                field(),
                value.len()
            ));
        }
        self.bytes += value.len();
        let record_max = self.quotas.record_bytes as usize;
        if self.bytes > record_max {
            return Err(format!(
                "the record's text passes {record_max} bytes at {} (quotas.record_bytes)",
                field()
            ));
        }
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(format!(
                "{} contains the control character U+{:04X}; control characters are refused",
                field(),
                c as u32
            ));
        }
        if let Some(c) = value.chars().find(|&c| invisible(c)) {
            return Err(format!(
                "{} contains the invisible formatting character U+{:04X} (bidi control, zero-width or similar); refused so that lookalike text cannot pass",
                field(),
                c as u32
            ));
        }
        match kind {
            Kind::Text => Ok(()),
            Kind::Identifier if value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) => Ok(()),
            Kind::Identifier => Err(format!(
                "{} must be printable ASCII (letters, digits, punctuation, spaces; no non-ASCII digits or letters)",
                field()
            )),
            Kind::Date if is_date(value) => Ok(()),
            Kind::Date => Err(format!("{} is not a calendar date written YYYY-MM-DD", field())),
            Kind::PartialDate if is_partial_date(value) => Ok(()),
            Kind::PartialDate => Err(format!("{} is not a date written YYYY, YYYY-MM or YYYY-MM-DD", field())),
            Kind::Instant if chrono::DateTime::parse_from_rfc3339(value).is_ok() => Ok(()),
            Kind::Instant => Err(format!("{} is not an RFC 3339 instant", field())),
        }
    }
}

/// `registrations.valid_until` at index 2 as `registrations[2].valid_until`.
fn path(name: &str, index: Option<usize>) -> String {
    match (index, name.split_once('.')) {
        (Some(i), Some((list, field))) => format!("{list}[{i}].{field}"),
        (Some(i), None) => format!("{name}[{i}]"),
        (None, _) => name.to_string(),
    }
}

/// `YYYY-MM-DD` exactly, and a day that exists.
fn is_date(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

/// `YYYY`, `YYYY-MM` (a real month) or a full date.
fn is_partial_date(value: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match value.len() {
        4 => digits(value),
        7 => is_date(&format!("{value}-01")),
        _ => is_date(value),
    }
}

/// Format characters that render as nothing or reorder text (Unicode `Cf` in common use).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Practitioner {
        Practitioner::sample()
    }

    fn reason(change: impl FnOnce(&mut Practitioner)) -> String {
        let mut p = person();
        change(&mut p);
        check(&CanonicalRecord::Practitioner(p), &Quotas::default()).unwrap_err()
    }

    #[test]
    fn a_well_formed_record_passes() {
        check(&CanonicalRecord::Practitioner(person()), &Quotas::default()).unwrap();
    }

    #[test]
    fn each_hostile_text_is_refused_by_field_without_quoting_it() {
        type Spoil = Box<dyn FnOnce(&mut Practitioner)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (
                Box::new(|p| p.full_name = Some("Siti\0Rahayu".into())),
                "full_name contains the control character U+0000",
            ),
            (Box::new(|p| p.full_name = Some("Siti \x1b[31mRahayu".into())), "U+001B"),
            (
                Box::new(|p| p.full_name = Some("Siti\u{200B}Rahayu".into())),
                "invisible formatting character U+200B",
            ),
            (
                Box::new(|p| p.birth_place = Some("\u{202E}atrakaJ".into())),
                "birth_place contains the invisible",
            ),
            (
                Box::new(|p| p.nik = Some("٣١٧٤٠١٤٥٠٦٨٥٠٠٠١".into())),
                "nik must be printable ASCII",
            ),
            (
                Box::new(|p| p.birth_date = Some("2020-02-31".into())),
                "birth_date is not a calendar date",
            ),
            (
                Box::new(|p| p.registrations[0].valid_until = Some("never".into())),
                "registrations[0].valid_until is not a calendar date",
            ),
            (
                Box::new(|p| p.birth_date = Some("+1985-06-05".into())),
                "birth_date is not a calendar date",
            ),
            (
                Box::new(|p| p.source.updated_at = Some("yesterday".into())),
                "source.updated_at is not an RFC 3339",
            ),
            (
                Box::new(|p| p.full_name = Some("a".repeat(5_000))),
                "full_name is 5000 bytes long",
            ),
            (
                Box::new(|p| {
                    p.trainings = (0..300)
                        .map(|_| crate::model::Training {
                            name: "x".into(),
                            provider: None,
                            completed_on: None,
                            hours: None,
                        })
                        .collect()
                }),
                "trainings has 300 entries",
            ),
        ];
        for (change, expected) in cases {
            let reason = reason(change);
            assert!(reason.contains(expected), "{reason:?} should contain {expected:?}");
            assert!(!reason.contains("Siti") && !reason.contains("3174"), "{reason}");
        }
    }

    fn education(graduated_on: &str) -> crate::model::Education {
        crate::model::Education {
            institution: "Universitas Indonesia".into(),
            degree: None,
            major: None,
            graduated_on: Some(graduated_on.into()),
        }
    }

    #[test]
    fn dates_of_history_may_be_as_precise_as_the_source_knows_them() {
        for ok in ["2010", "2010-07", "2010-07-31"] {
            let mut p = person();
            p.educations = vec![education(ok)];
            check(&CanonicalRecord::Practitioner(p), &Quotas::default()).unwrap();
        }
        let reason = reason(|p| p.birth_date = Some("1985".into()));
        assert!(
            reason.contains("birth_date is not a calendar date written YYYY-MM-DD"),
            "{reason}"
        );
    }

    #[test]
    fn a_record_over_its_byte_quota_is_refused() {
        let quotas = Quotas {
            record_bytes: 64,
            ..Quotas::default()
        };
        let mut p = person();
        p.profession = Some("x".repeat(60));
        let reason = check(&CanonicalRecord::Practitioner(p), &quotas).unwrap_err();
        assert!(reason.contains("quotas.record_bytes"), "{reason}");
    }
}
