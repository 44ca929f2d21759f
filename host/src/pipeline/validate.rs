//! Row validation. A reason says what is wrong and never quotes the identifying value itself
//! (reasons are stored and shown in clear).

use crate::model::{Gender, Practitioner};
use chrono::{Datelike, NaiveDate};

/// Province codes in use on NIKs (Kemendagri), including the Papua provinces created in 2022.
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65, 71, 72, 73, 74, 75,
    76, 81, 82, 91, 92, 93, 94, 95, 96,
];

/// Registration statuses that make an STR valid (seed 002: STR must be valid and active).
const ACTIVE: &[&str] = &["active"];

/// What a well-formed row carries that decides what it may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Why it holds no active STR (none at all, not active, past its validity or of unknown
    /// status), if it does not: such a row updates the practitioner it matches (their STR
    /// was revoked, which the hub must record; a staff registry adds employment) and creates
    /// one only where its connector's policy allows (`CreatePolicy`; seed 002 for the
    /// licensing registries).
    pub inactive_str: Option<String>,
    /// Its birth date is not the one its NIK's date segment says: one of them is mistyped.
    /// Such a row never creates a person, and against the person its NIK names it is held
    /// for review (`matching`), never merged.
    pub birth_date_disagrees: bool,
}

/// The reason a row whose birth date disagrees with its NIK is refused when its NIK names
/// nobody.
pub const BIRTH_DATE_DISAGREES: &str = "NIK birth date segment does not match birth_date";

/// `Err` when the row is malformed, else what it may do ([`Findings`]).
pub fn practitioner(p: &Practitioner, today: NaiveDate) -> Result<Findings, String> {
    if p.full_name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err("full_name is missing".into());
    }
    let birth_date = match p.birth_date.as_deref() {
        Some(text) => Some(
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| "birth_date is not a date in YYYY-MM-DD form".to_string())?,
        ),
        None => None,
    };
    if let Some(date) = birth_date
        && (date.year() < 1900 || date > today - chrono::Duration::days(15 * 365))
    {
        return Err("birth_date is implausible for a health worker (before 1900 or under 15 years ago)".into());
    }
    let nik = p.nik.as_deref().ok_or("NIK is missing")?;
    let (day, month, yy) = nik_structure(nik, p.gender)?;
    Ok(Findings {
        inactive_str: str_active(p, today)?,
        birth_date_disagrees: birth_date
            .is_some_and(|date| (date.day(), date.month(), date.year().rem_euclid(100) as u32) != (day, month, yy)),
    })
}

/// NIK: 16 digits = province (2) regency (2) district (2) birth date DDMMYY, day + 40 for
/// women (6), serial (4). Returns the birth date it says, as (day, month, two-digit year).
pub fn nik_structure(nik: &str, gender: Gender) -> Result<(u32, u32, u32), String> {
    if nik.len() != 16 || !nik.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "NIK must be exactly 16 digits (got {} characters)",
            nik.chars().count()
        ));
    }
    let num = |range: std::ops::Range<usize>| nik[range].parse::<u32>().expect("digits");
    let province = num(0..2) as u8;
    if !PROVINCES.contains(&province) {
        return Err(format!(
            "NIK province code {province:02} is not a province of Indonesia"
        ));
    }
    if num(2..4) == 0 || num(4..6) == 0 {
        return Err("NIK regency or district code is 00".into());
    }
    let (raw_day, month, yy) = (num(6..8), num(8..10), num(10..12));
    let (day, female) = match raw_day {
        1..=31 => (raw_day, false),
        41..=71 => (raw_day - 40, true),
        _ => return Err("NIK birth day is neither 01-31 (men) nor 41-71 (women)".into()),
    };
    match gender {
        Gender::Female if !female => return Err("NIK birth day lacks the +40 of a woman's NIK".into()),
        Gender::Male if female => return Err("NIK birth day carries the +40 of a woman's NIK for a man".into()),
        _ => {}
    }
    if !(1..=12).contains(&month) {
        return Err("NIK birth month is not 01-12".into());
    }
    if (1900..2100).all(|y| NaiveDate::from_ymd_opt(y, month, day).is_none()) {
        return Err("NIK birth date segment is not a calendar date".into());
    }
    if num(12..16) == 0 {
        return Err("NIK serial number is 0000".into());
    }
    Ok((day, month, yy))
}

/// `Some(reason)` when the record holds no active STR: none at all, its registration missing
/// (a source that carries the number but not its status, like SISDMK, cannot say whether it
/// is active), not active, or not in its validity period.
fn str_active(p: &Practitioner, today: NaiveDate) -> Result<Option<String>, String> {
    let Some(number) = p.str_number.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Ok(Some("the record carries no STR number".into()));
    };
    let Some(registration) = p
        .registrations
        .iter()
        .find(|r| r.kind.eq_ignore_ascii_case("str") && r.number == number)
    else {
        return Ok(Some("STR status unknown: the record has no STR registration".into()));
    };
    if !ACTIVE.contains(&registration.status.to_ascii_lowercase().as_str()) {
        return Ok(Some(format!("STR is not active (status: {})", registration.status)));
    }
    let until = registration
        .valid_until
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    if until.is_some_and(|until| until < today) {
        return Ok(Some("STR validity period has ended".into()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nik_rules() {
        // A woman born 5 June 1985 in Jakarta Selatan.
        assert!(nik_structure("3174014506850001", Gender::Female) == Ok((5, 6, 85)));
        assert!(
            nik_structure("3174014506850001", Gender::Male)
                .unwrap_err()
                .contains("+40")
        );
        assert!(
            nik_structure("3174010506850001", Gender::Female)
                .unwrap_err()
                .contains("lacks")
        );
        assert!(
            nik_structure("317401450685001", Gender::Female)
                .unwrap_err()
                .contains("16 digits")
        );
        assert!(
            nik_structure("9974014506850001", Gender::Female)
                .unwrap_err()
                .contains("province")
        );
        assert!(
            nik_structure("3174013506850001", Gender::Unknown)
                .unwrap_err()
                .contains("birth day")
        );
        assert!(
            nik_structure("3174014506850000", Gender::Female)
                .unwrap_err()
                .contains("serial")
        );
    }

    #[test]
    fn reasons_never_quote_the_nik() {
        let nik = "9974014506850001";
        let reason = nik_structure(nik, Gender::Female).unwrap_err();
        assert!(!reason.contains(nik) && !reason.contains("450685"));
    }

    #[test]
    fn a_birth_date_other_than_the_niks_is_a_finding_not_a_reject() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let mut p = Practitioner::sample();
        assert_eq!(practitioner(&p, today).map(|f| f.birth_date_disagrees), Ok(false));
        p.birth_date = Some("1985-06-06".into());
        assert_eq!(practitioner(&p, today).map(|f| f.birth_date_disagrees), Ok(true));
        p.birth_date = None;
        assert_eq!(practitioner(&p, today).map(|f| f.birth_date_disagrees), Ok(false));
    }
}
