//! Stage `seal`: rows as stored — identifying columns and whole records encrypted under the
//! active data key, bound to their table, column and row (see `crypto`) — and their
//! opening.

use super::golden::{Contribution, Provenance};
use super::index::Keyed;
use super::matching::Ambiguity;
use super::{BatchSource, index, normalize};
use crate::crypto::FieldCipher;
use crate::model::{CanonicalRecord, Education, Employment, Gender, Practitioner, Registration, Training};
use crate::store::StoreError;
use crate::store::Timestamp;
use crate::store::practitioners::{SealedContribution, SealedPractitioner, SealedStr};
use crate::store::rejects::RejectRecord;
use crate::store::review::Candidate;

/// The golden record `p`, with its blind `indexes` and `content_hash`, as the practitioners
/// row `id`.
pub(super) fn practitioner(
    cipher: &FieldCipher,
    id: &str,
    p: &Practitioner,
    indexes: index::Indexes,
    content_hash: Vec<u8>,
    provenance: &Provenance,
    now: Timestamp,
) -> SealedPractitioner {
    let seal = |column: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| cipher.encrypt_str("practitioners", column, id, v))
    };
    let details = Details {
        registrations: &p.registrations,
        trainings: &p.trainings,
        employments: &p.employments,
        educations: &p.educations,
    };
    let details = serde_json::to_string(&details).expect("details serialize");
    SealedPractitioner {
        id: id.to_string(),
        str_index: indexes.str_index,
        nik_index: Some(indexes.nik_index),
        match_index: indexes.match_index,
        match_version: Some(normalize::VERSION),
        twin_index: indexes.twin_index,
        key_version: cipher.active_version() as i64,
        nik: seal("nik", &p.nik),
        str_number: seal("str_number", &p.str_number),
        full_name: seal("full_name", &p.full_name),
        birth_place: seal("birth_place", &p.birth_place),
        birth_date: seal("birth_date", &p.birth_date),
        phone: seal("phone", &p.phone),
        email: seal("email", &p.email),
        details: Some(cipher.encrypt_str("practitioners", "details", id, &details)),
        gender: gender_name(p).into(),
        profession: p.profession.clone(),
        content_hash,
        source_system: p.source.system.clone(),
        source_id: p.source.id.clone(),
        source_updated_at: p.source.updated_at.clone(),
        provenance: Some(serde_json::to_string(provenance).expect("provenance serializes")),
        created_at: now,
        updated_at: now,
        version_id: 1,
    }
}

/// A golden record's sealed `details`: its lists, serialized as they are (a JSON tree of
/// them first was one allocation per field of every registration, training and job).
#[derive(serde::Serialize)]
struct Details<'a> {
    registrations: &'a [Registration],
    trainings: &'a [Training],
    employments: &'a [Employment],
    educations: &'a [Education],
}

/// STR number `number` (blind index `str_index`) as one that practitioner `id` holds.
pub(super) fn str_held(cipher: &FieldCipher, str_index: Vec<u8>, id: &str, number: &str, now: Timestamp) -> SealedStr {
    let row_id = uuid::Uuid::now_v7().to_string();
    SealedStr {
        str_number: cipher.encrypt_str("practitioner_strs", "str_number", &row_id, number),
        id: row_id,
        str_index,
        practitioner_id: id.to_string(),
        key_version: cipher.active_version() as i64,
        first_seen: now,
    }
}

/// What `contribution`'s system said about practitioner `id`, sealed whole.
pub(super) fn contribution(
    cipher: &FieldCipher,
    id: &str,
    contribution: &Contribution,
    content_hash: Vec<u8>,
    matched_by: &str,
    now: Timestamp,
) -> SealedContribution {
    let row_id = SealedContribution::row_id(id, &contribution.system);
    let json = serde_json::to_string(&contribution.record).expect("records serialize");
    SealedContribution {
        practitioner_id: id.to_string(),
        source_system: contribution.system.clone(),
        connector_id: contribution.connector_id.clone(),
        key_version: cipher.active_version() as i64,
        record: cipher.encrypt_str("practitioner_sources", "record", &row_id, &json),
        content_hash,
        source_updated_at: contribution.record.source.updated_at.clone(),
        received_at: now,
        matched_by: Some(matched_by.to_string()),
        source_id: Some(contribution.record.source.id.clone()),
    }
}

pub(super) fn open_contribution(cipher: &FieldCipher, sealed: &SealedContribution) -> Result<Contribution, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "practitioner source record",
        detail,
    };
    let row_id = SealedContribution::row_id(&sealed.practitioner_id, &sealed.source_system);
    let json = cipher
        .decrypt_str("practitioner_sources", "record", &row_id, &sealed.record)
        .map_err(|e| corrupt(e.to_string()))?;
    let record: Practitioner = serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
    Ok(Contribution {
        system: sealed.source_system.clone(),
        connector_id: sealed.connector_id.clone(),
        at: sealed
            .source_updated_at
            .clone()
            .unwrap_or_else(|| sealed.received_at.to_string()),
        record: record.into(),
    })
}

/// Row `k`, held for review against practitioner `id` because of `ambiguity`: sealed whole.
pub(super) fn candidate(
    cipher: &FieldCipher,
    source: BatchSource<'_>,
    k: Keyed,
    id: &str,
    ambiguity: Ambiguity,
    now: Timestamp,
) -> Candidate {
    let row_id = uuid::Uuid::now_v7().to_string();
    // A held row passed the boundary checks: its source reference is fit to keep as is.
    let (source_system, source_id) = (k.record.source.system.clone(), k.record.source.id.clone());
    let record = CanonicalRecord::Practitioner(std::sync::Arc::unwrap_or_clone(k.record));
    let json = serde_json::to_string(&record).expect("records serialize");
    Candidate {
        record: cipher.encrypt_str("identity_candidates", "record", &row_id, &json),
        key_version: cipher.active_version() as i64,
        id: row_id,
        kind: ambiguity.as_str().into(),
        status: "open".into(),
        practitioner_id: id.to_string(),
        connector_id: source.connector_id.to_string(),
        source_system,
        source_id,
        created_at: now,
        updated_at: now,
        decided_at: None,
        decided_by: None,
    }
}

/// A whole record sealed in `table`'s `record` column of row `id` (a reject, a held
/// candidate), opened.
pub fn open_record(cipher: &FieldCipher, table: &str, id: &str, sealed: &[u8]) -> Result<CanonicalRecord, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "sealed record",
        detail: format!("{table} {id}: {detail}"),
    };
    let json = cipher
        .decrypt_str(table, "record", id, sealed)
        .map_err(|e| corrupt(e.to_string()))?;
    serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))
}

/// A rejected row, sealed whole, with its reason in clear (reasons never quote values).
pub(super) fn reject(
    cipher: &FieldCipher,
    source: BatchSource<'_>,
    reason: &str,
    record: &CanonicalRecord,
    now: Timestamp,
) -> RejectRecord {
    let id = uuid::Uuid::now_v7().to_string();
    let (system, source_id) = match record {
        CanonicalRecord::Practitioner(p) => (&p.source.system, &p.source.id),
        CanonicalRecord::Observation(o) => (&o.source.system, &o.source.id),
        CanonicalRecord::Account(a) => (&a.source.system, &a.source.id),
    };
    let json = serde_json::to_string(record).expect("records serialize");
    RejectRecord {
        record: cipher.encrypt_str("rejects", "record", &id, &json),
        key_version: cipher.active_version() as i64,
        id,
        connector_id: source.connector_id.to_string(),
        run_id: source.run_id.map(str::to_string),
        source_system: shown(system),
        source_id: shown(source_id),
        reason: reason.to_string(),
        created_at: now,
    }
}

/// A source reference as it may be stored in clear and shown: a rejected row's may hold
/// anything, so control characters are replaced and the length is capped.
fn shown(text: &str) -> String {
    text.chars()
        .take(128)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn gender_name(p: &Practitioner) -> &'static str {
    match p.gender {
        Gender::Male => "male",
        Gender::Female => "female",
        Gender::Unknown => "unknown",
    }
}
