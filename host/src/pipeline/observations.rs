//! Observations (device vital signs): validate, seal the subject and components (keeping the
//! subject's blind key to search by), store once per device, code and time.

use super::derive;
use crate::crypto::{BlindIndexer, FieldCipher};
use crate::model::{Observation, ObservationComponent};
use crate::store::observations::ObservationRecord;
use crate::store::{StoreError, Timestamp};

/// An observation's time (in UTC, to the millisecond, so one instant is one key however it
/// was written), or its reason for rejection.
pub(super) fn validate(o: &Observation) -> Result<Timestamp, String> {
    let within = |value: &str, max: usize| !value.trim().is_empty() && value.len() <= max;
    if !within(&o.device_id, 128) {
        return Err("device_id must be 1-128 characters".into());
    }
    if !within(&o.code, 32) {
        return Err("code (LOINC) must be 1-32 characters".into());
    }
    let Ok(effective_at) = o.effective_at.parse() else {
        return Err("effective_at is not an RFC 3339 instant".into());
    };
    if o.value.is_none() && o.components.is_empty() {
        return Err("an observation needs a value or components".into());
    }
    let finite = o.value.is_none_or(f64::is_finite) && o.components.iter().all(|c| c.value.is_finite());
    if !finite {
        return Err("values must be finite numbers".into());
    }
    Ok(effective_at)
}

/// An observation as stored: subject and components sealed in `details`.
pub(super) fn seal(
    cipher: &FieldCipher,
    blind: &BlindIndexer,
    connector_id: &str,
    o: Observation,
    effective_at: Timestamp,
    now: Timestamp,
) -> ObservationRecord {
    let id = uuid::Uuid::now_v7().to_string();
    let subject_key = o.subject.as_deref().map(|subject| derive::subject_key(blind, subject));
    let details = serde_json::json!({
        "subject": o.subject,
        "components": o.components,
        "source": o.source,
    })
    .to_string();
    ObservationRecord {
        details: cipher.encrypt_str("observations", "details", &id, &details),
        key_version: cipher.active_version() as i64,
        subject_key,
        id,
        connector_id: connector_id.to_string(),
        device_id: o.device_id,
        code: o.code,
        value: o.value,
        unit: o.unit,
        effective_at,
        source_system: o.source.system,
        created_at: now,
    }
}

/// What an observation keeps sealed in `details`.
#[derive(serde::Deserialize)]
pub struct Details {
    pub subject: Option<String>,
    #[serde(default)]
    pub components: Vec<ObservationComponent>,
}

/// Opens `row`'s sealed details.
pub fn open(cipher: &FieldCipher, row: &ObservationRecord) -> Result<Details, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "observation",
        detail,
    };
    let text = cipher
        .decrypt_str("observations", "details", &row.id, &row.details)
        .map_err(|e| corrupt(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))
}
