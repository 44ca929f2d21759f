//! Stage `roles`, beside `seal`: a golden record's employments as the roles and facilities
//! the FHIR server searches (`store::facilities`). A role row says only which facility a
//! practitioner id is linked to; its position and period stay sealed in the record.

use crate::crypto::{BlindIndexer, FieldCipher};
use crate::model::Employment;
use crate::store::facilities::{Facility, RoleLink, Roles};
use crate::store::practitioners::SealedPractitioner;
use crate::store::{StoreError, Timestamp};
use std::collections::{BTreeMap, HashMap};

/// The id of practitioner `practitioner_id`'s role `employment`: theirs, and a keyed digest
/// of the facility, position and start (keyed, so the id tells nothing of them). It stays
/// while the rest of the record changes; the same employment given twice is one role.
/// 36 + 1 + 16 characters, within FHIR's 64.
pub fn role_id(blind: &BlindIndexer, practitioner_id: &str, employment: &Employment) -> String {
    let facility = (employment.facility_code.as_deref()).unwrap_or(&employment.facility_name);
    let digest = blind.index(
        "role",
        &[
            facility,
            employment.position.as_deref().unwrap_or_default(),
            employment.start_date.as_deref().unwrap_or_default(),
        ],
    );
    format!("{practitioner_id}-{}", hex::encode(&digest[..8]))
}

/// The employments of stored golden record `row`, opened from its sealed details.
pub fn employments(cipher: &FieldCipher, row: &SealedPractitioner) -> Result<Vec<Employment>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Details {
        #[serde(default)]
        employments: Vec<Employment>,
    }
    let Some(sealed) = &row.details else {
        return Ok(Vec::new());
    };
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "practitioner",
        detail: format!("details: {detail}"),
    };
    let json = cipher
        .decrypt_str("practitioners", "details", &row.id, sealed)
        .map_err(|e| corrupt(e.to_string()))?;
    let details: Details = serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
    Ok(details.employments)
}

/// The roles and facilities of the golden records a batch writes, the last record of a
/// practitioner written twice winning.
#[derive(Default)]
pub(super) struct RoleSet {
    by_practitioner: HashMap<String, Vec<RoleLink>>,
    facilities: BTreeMap<String, Facility>,
}

impl RoleSet {
    /// Practitioner `id`'s roles, from their golden record's `employments`.
    pub fn add(&mut self, blind: &BlindIndexer, id: &str, employments: &[Employment], now: Timestamp) {
        let mut roles: Vec<RoleLink> = Vec::with_capacity(employments.len());
        for employment in employments {
            let role = RoleLink {
                id: role_id(blind, id, employment),
                practitioner_id: id.to_string(),
                facility_id: employment.facility_code.clone(),
                updated_at: now,
            };
            if !roles.iter().any(|r| r.id == role.id) {
                roles.push(role);
            }
            if let Some(code) = &employment.facility_code {
                self.facilities.insert(
                    code.clone(),
                    Facility {
                        id: code.clone(),
                        name: employment.facility_name.clone(),
                        updated_at: now,
                        version_id: 1,
                    },
                );
            }
        }
        self.by_practitioner.insert(id.to_string(), roles);
    }

    /// The rows to write, replacing the roles of the `replaced` practitioners (those stored
    /// before).
    pub fn into_rows(self, replaced: Vec<String>) -> Roles {
        Roles {
            replaced,
            roles: self.by_practitioner.into_values().flatten().collect(),
            facilities: self.facilities.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn employment(code: Option<&str>, position: &str) -> Employment {
        Employment {
            facility_code: code.map(str::to_string),
            facility_name: "RSUD Dr. Soetomo".into(),
            position: Some(position.into()),
            start_date: Some("2019-03".into()),
            end_date: None,
        }
    }

    #[test]
    fn a_role_id_is_a_fhir_id_that_depends_on_the_employment_and_not_on_its_end() {
        let blind = BlindIndexer::new(vec![7; 32]);
        let id = "0190f4c2-6b1e-7a3c-9d2e-5f6a7b8c9d0e";
        let nurse = employment(Some("3578015"), "perawat");
        let role = role_id(&blind, id, &nurse);
        assert!(role.len() <= 64 && role.starts_with(id), "{role}");
        assert!(role.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let ended = Employment {
            end_date: Some("2024-12-31".into()),
            ..nurse.clone()
        };
        assert_eq!(role_id(&blind, id, &ended), role);
        assert_ne!(role_id(&blind, id, &employment(Some("3578015"), "bidan")), role);
        assert_ne!(role_id(&blind, id, &employment(None, "perawat")), role);
        assert_ne!(role_id(&BlindIndexer::new(vec![8; 32]), id, &nurse), role);
    }
}
