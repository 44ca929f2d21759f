//! Stage `index`: the blind indexes a practitioner is matched and looked up by, and the keyed
//! hash of what a source said (to tell an unchanged row without decrypting anything).

use super::normalize;
use super::validate::Findings;
use crate::crypto::{BlindIndexer, normalize_digits};
use crate::model::Practitioner;

/// A practitioner's blind indexes.
#[derive(Clone)]
pub(super) struct Indexes {
    /// Of the STR number, when the record carries one.
    pub str_index: Option<Vec<u8>>,
    pub nik_index: Vec<u8>,
    pub match_index: Option<Vec<u8>>,
    /// Of the normalized name, birth date and birth place, without the NIK: the same person
    /// under another NIK has the same one.
    pub twin_index: Option<Vec<u8>>,
}

/// A valid practitioner of the batch with its blind indexes.
#[derive(Clone)]
pub(super) struct Keyed {
    /// Its position in the batch.
    pub index: usize,
    pub record: Practitioner,
    pub indexes: Indexes,
    /// Of the record as its source sent it.
    pub content_hash: Vec<u8>,
    pub findings: Findings,
}

pub(super) fn keyed(blind: &BlindIndexer, index: usize, record: Practitioner, findings: Findings) -> Keyed {
    Keyed {
        index,
        indexes: indexes(blind, &record),
        content_hash: content_hash(blind, &record),
        record,
        findings,
    }
}

pub(super) fn indexes(blind: &BlindIndexer, p: &Practitioner) -> Indexes {
    let nik = p.nik.as_deref().unwrap_or_default();
    Indexes {
        str_index: (p.str_number.as_deref())
            .filter(|s| !s.trim().is_empty())
            .map(|s| blind.str_number(s)),
        nik_index: blind.nik(nik),
        match_index: match (&p.full_name, &p.birth_place) {
            (Some(name), Some(place)) => Some(match_index(blind, name, nik, place)),
            _ => None,
        },
        twin_index: match (&p.full_name, &p.birth_date, &p.birth_place) {
            (Some(name), Some(date), Some(place)) => Some(twin_index(blind, name, date, place)),
            _ => None,
        },
    }
}

/// The fallback tier's key (seed 002): normalized name, NIK and normalized birth place.
pub(super) fn match_index(blind: &BlindIndexer, full_name: &str, nik: &str, birth_place: &str) -> Vec<u8> {
    let (name, nik, place) = (
        normalize::name(full_name),
        normalize_digits(nik),
        normalize::place(birth_place),
    );
    blind.index("match", &[&name, &nik, &place])
}

/// The review key: normalized name, birth date and normalized birth place.
pub(super) fn twin_index(blind: &BlindIndexer, full_name: &str, birth_date: &str, birth_place: &str) -> Vec<u8> {
    let (name, place) = (normalize::name(full_name), normalize::place(birth_place));
    blind.index("twin", &[&name, birth_date, &place])
}

/// Keyed hash of what a record says; the source's own timestamp is not content, so a row
/// re-sent unchanged stays unchanged.
pub(super) fn content_hash(blind: &BlindIndexer, p: &Practitioner) -> Vec<u8> {
    let mut content = p.clone();
    content.source.updated_at = None;
    let json = serde_json::to_string(&content).expect("records serialize");
    blind.index("content", &[&json])
}
