//! Stage `index`: the blind indexes a practitioner is matched and looked up by, and the keyed
//! hash of what a source said (to tell an unchanged row without decrypting anything).

use super::normalize;
use super::validate::Findings;
use crate::crypto::{BlindIndexer, normalize_digits};
use crate::model::Practitioner;
use std::sync::Arc;

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
    pub record: Arc<Practitioner>,
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
        record: record.into(),
        findings,
    }
}

pub(super) fn indexes(blind: &BlindIndexer, p: &Practitioner) -> Indexes {
    let nik = p.nik.as_deref().unwrap_or_default();
    let (match_index, twin_index) = name_keys(
        blind,
        p.full_name.as_deref(),
        nik,
        p.birth_date.as_deref(),
        p.birth_place.as_deref(),
    );
    Indexes {
        str_index: (p.str_number.as_deref())
            .filter(|s| !s.trim().is_empty())
            .map(|s| blind.str_number(s)),
        nik_index: blind.nik(nik),
        match_index,
        twin_index,
    }
}

/// `(match_index, twin_index)`: the keys made of a name and birth place, normalized once
/// for both. The fallback tier's (seed 002: name, NIK and birth place) and the review key
/// (name, birth date and birth place).
pub(super) fn name_keys(
    blind: &BlindIndexer,
    full_name: Option<&str>,
    nik: &str,
    birth_date: Option<&str>,
    birth_place: Option<&str>,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let (Some(name), Some(place)) = (full_name, birth_place) else {
        return (None, None);
    };
    let (name, place) = (normalize::name(name), normalize::place(place));
    (
        Some(blind.index("match", &[&name, &normalize_digits(nik), &place])),
        birth_date.map(|date| blind.index("twin", &[&name, date, &place])),
    )
}

/// Keyed hash of what a record says; the source's own timestamp is not content, so a row
/// re-sent unchanged stays unchanged.
pub(super) fn content_hash(blind: &BlindIndexer, p: &Practitioner) -> Vec<u8> {
    let mut content = p.clone();
    content.source.updated_at = None;
    let json = serde_json::to_string(&content).expect("records serialize");
    blind.index("content", &[&json])
}
