//! Stage `derive`, beside `seal`: what the FHIR server finds a golden record by, written in
//! the transaction that writes the record and replaced with it:
//!
//! - each employment as a role at a facility (`store::facilities`). A role row says only
//!   which facility a practitioner id is linked to; position and period stay sealed;
//! - blind keys of each word of the name and of the birth date
//!   (`practitioner_search_keys`), so `name` and `birthdate` searches match without
//!   decrypting anything;
//! - the blind key of an observation's subject (`observations.subject_key`), so a search
//!   by subject identifier opens no observation.

use super::normalize;
use crate::crypto::{BlindIndexer, FieldCipher};
use crate::model::Employment;
use crate::store::facilities::{self, Facility, RoleLink, Roles};
use crate::store::practitioners::{self as stored, SealedPractitioner, SearchKey};
use crate::store::{StoreError, Timestamp, Tx};
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

/// The search key of one word of a name, normalized as names are matched
/// (`normalize::name`: titles and degrees dropped, old spellings modernized, lower case).
pub fn name_word_key(blind: &BlindIndexer, word: &str) -> Vec<u8> {
    search_key(blind, "name-word", word)
}

/// The search key of a birth date, `YYYY-MM-DD`. Only whole dates are keyed: a key of the
/// year alone would put everyone born that year in one class anyone holding the database
/// could count.
pub fn birth_date_key(blind: &BlindIndexer, date: &str) -> Vec<u8> {
    search_key(blind, "birth-date", date)
}

/// The search key of an observation's subject identifier, as the source gave it (trimmed).
pub fn subject_key(blind: &BlindIndexer, subject: &str) -> Vec<u8> {
    search_key(blind, "observation-subject", subject.trim())
}

/// The first 16 bytes of the blind index: index entries half the size of the whole 32 (the
/// 100,000-person sync writes 272,000 keys), and 128 bits make a chance collision among a
/// million keys about 10^-27 likely.
fn search_key(blind: &BlindIndexer, domain: &str, value: &str) -> Vec<u8> {
    blind.index(domain, &[value])[..16].to_vec()
}

/// The search keys of a record with name `full_name` and birth date `birth_date`.
fn search_keys(blind: &BlindIndexer, full_name: Option<&str>, birth_date: Option<&str>) -> Vec<Vec<u8>> {
    let name = full_name.map(normalize::name).unwrap_or_default();
    let mut keys: Vec<Vec<u8>> = name
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| name_word_key(blind, w))
        .collect();
    keys.extend(birth_date.filter(|d| d.len() == 10).map(|d| birth_date_key(blind, d)));
    keys.sort();
    keys.dedup();
    keys
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

/// What is derived from the golden records a batch writes, the last record of a
/// practitioner written twice winning.
#[derive(Default)]
pub(super) struct Derived {
    by_practitioner: HashMap<String, (Vec<RoleLink>, Vec<Vec<u8>>)>,
    facilities: BTreeMap<String, Facility>,
}

/// What one golden record is found by: its name, birth date and employments.
pub(super) struct Findable<'a> {
    pub full_name: Option<&'a str>,
    pub birth_date: Option<&'a str>,
    pub employments: &'a [Employment],
}

impl<'a> From<&'a crate::model::Practitioner> for Findable<'a> {
    fn from(p: &'a crate::model::Practitioner) -> Self {
        Findable {
            full_name: p.full_name.as_deref(),
            birth_date: p.birth_date.as_deref(),
            employments: &p.employments,
        }
    }
}

impl Derived {
    /// Derives what practitioner `id`'s golden record is found by.
    pub fn add(&mut self, blind: &BlindIndexer, id: &str, record: Findable<'_>, now: Timestamp) {
        let mut roles: Vec<RoleLink> = Vec::with_capacity(record.employments.len());
        for employment in record.employments {
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
        let keys = search_keys(blind, record.full_name, record.birth_date);
        self.by_practitioner.insert(id.to_string(), (roles, keys));
    }

    /// Writes it all in `tx`, replacing what was derived for the `replaced` practitioners
    /// (those stored before: a practitioner new to the store has nothing to delete, so a
    /// first sync deletes nothing).
    pub async fn write(self, tx: &mut Tx, replaced: Vec<String>) -> Result<(), StoreError> {
        let mut roles = Roles {
            replaced,
            roles: Vec::new(),
            facilities: self.facilities.into_values().collect(),
        };
        let mut keys = Vec::new();
        for (id, (links, search_keys)) in self.by_practitioner {
            roles.roles.extend(links);
            keys.extend(search_keys.into_iter().map(|key| SearchKey {
                practitioner_id: id.clone(),
                search_key: key,
            }));
        }
        stored::write_search_keys(tx, &roles.replaced, &keys).await?;
        facilities::write(tx, &roles).await
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
    fn a_name_is_keyed_by_its_words_as_identity_matching_normalizes_them_and_a_birth_date_only_whole() {
        let blind = BlindIndexer::new(vec![7; 32]);
        let keys = search_keys(&blind, Some("dr. Siti Soekarno, Sp.A"), Some("1985-06-05"));
        let expected: Vec<Vec<u8>> = vec![
            name_word_key(&blind, "siti"),
            name_word_key(&blind, "sukarno"),
            birth_date_key(&blind, "1985-06-05"),
        ];
        assert_eq!(keys.len(), 3);
        assert!(expected.iter().all(|k| keys.contains(k)));
        assert_eq!(search_keys(&blind, Some("Nur Nur"), Some("1985")).len(), 1);
        assert!(search_keys(&blind, None, None).is_empty());
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
