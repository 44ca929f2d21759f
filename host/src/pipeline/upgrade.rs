//! Bringing rows stored by an older hub up to this one, when the hub starts: what a
//! migration cannot compute in SQL because it needs the sealed values. Each step reads a
//! page, opens it, and writes it back in one statement, until nothing is left; a step cut
//! short by a stop resumes at the next start.

use super::derive::{self, Derived, Findable};
use super::{Pipeline, index, normalize, observations, seal};
use crate::crypto::FieldCipher;
use crate::store::identity::MatchKeyUpdate;
use crate::store::practitioners::SealedContribution;
use crate::store::{self, StoreError};

/// Rows per page: 1,000 opened values are well under a megabyte.
const PAGE: i64 = 1000;

/// What [`Pipeline::upgrade`] brought up to date.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upgraded {
    /// STR numbers recorded as held (practitioners stored before migration 0014).
    pub strs_recorded: usize,
    /// Match keys (`match_index`, `twin_index`) recomputed with the current normalization
    /// tables.
    pub match_keys: usize,
    /// Contributions given their source's record id (stored before migration 0015).
    pub source_ids: usize,
    /// Practitioners whose roles, facilities and search keys were derived again (stored
    /// before migration 0021, or their names normalized again).
    pub derived: usize,
    /// Observations whose subject was given its search key (stored before migration 0023).
    pub observation_subjects: usize,
}

impl Pipeline {
    /// Brings every stored row up to this hub: the STR numbers practitioners held before
    /// migration 0014 recorded, so an old number finds them after a re-issue; match keys
    /// computed with older normalization tables recomputed (`normalize::VERSION`); each
    /// contribution's source record id filled in; what FHIR finds records by (roles,
    /// facilities, search keys) derived for those stored before migration 0021 and those
    /// whose names are normalized again; the subject keys of observations stored before
    /// migration 0023.
    pub async fn upgrade(&self) -> Result<Upgraded, StoreError> {
        let cipher = self.keys.cipher();
        let mut upgraded = Upgraded::default();
        loop {
            let rows = self.db.strs_without_history(PAGE).await?;
            if rows.is_empty() {
                break;
            }
            let sealed = rows
                .into_iter()
                .map(|r| {
                    let number = open(&cipher, "str_number", &r.id, &r.str_number)?;
                    Ok(seal::str_held(&cipher, r.str_index, &r.id, &number, r.created_at))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut tx = self.db.begin().await?;
            store::practitioners::insert_strs(&mut tx, &sealed).await?;
            tx.commit().await?;
            upgraded.strs_recorded += sealed.len();
        }
        loop {
            let rows = self.db.stale_match_keys(normalize::VERSION, PAGE).await?;
            if rows.is_empty() {
                break;
            }
            let keys = rows
                .into_iter()
                .map(|r| {
                    let opened = |column, value: &Option<Vec<u8>>| {
                        value.as_ref().map(|v| open(&cipher, column, &r.id, v)).transpose()
                    };
                    let (name, nik, place, date) = (
                        opened("full_name", &r.full_name)?,
                        opened("nik", &r.nik)?,
                        opened("birth_place", &r.birth_place)?,
                        opened("birth_date", &r.birth_date)?,
                    );
                    let (match_index, twin_index) = index::name_keys(
                        &self.keys.blind,
                        name.as_deref(),
                        nik.as_deref().unwrap_or_default(),
                        date.as_deref(),
                        place.as_deref(),
                    );
                    Ok(MatchKeyUpdate {
                        id: r.id,
                        match_index,
                        twin_index,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            // Their name words are keyed with the same tables: derived again below. Listed
            // first, so a stop between the two leaves them listed, not stale.
            let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
            let mut tx = self.db.begin().await?;
            store::practitioners::to_derive(&mut tx, &ids).await?;
            tx.commit().await?;
            self.db.set_match_keys(&keys, normalize::VERSION).await?;
            upgraded.match_keys += keys.len();
        }
        loop {
            let rows = self.db.contributions_without_source_id(PAGE).await?;
            if rows.is_empty() {
                break;
            }
            let ids = rows
                .iter()
                .map(|c| {
                    let opened = seal::open_contribution(&cipher, c)?;
                    let row_id = SealedContribution::row_id(&c.practitioner_id, &c.source_system);
                    Ok((row_id, opened.record.source.id.clone()))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.db.set_source_ids(&ids).await?;
            upgraded.source_ids += ids.len();
        }
        loop {
            let ids = self.db.practitioners_to_derive(PAGE).await?;
            if ids.is_empty() {
                break;
            }
            let mut derived = Derived::default();
            for row in self.db.practitioners_by_id(&ids).await? {
                let opened = |column, value: &Option<Vec<u8>>| {
                    value.as_ref().map(|v| open(&cipher, column, &row.id, v)).transpose()
                };
                let (full_name, birth_date) = (
                    opened("full_name", &row.full_name)?,
                    opened("birth_date", &row.birth_date)?,
                );
                let employments = derive::employments(&cipher, &row)?;
                let findable = Findable {
                    full_name: full_name.as_deref(),
                    birth_date: birth_date.as_deref(),
                    employments: &employments,
                };
                derived.add(&self.keys.blind, &row.id, findable, row.updated_at);
            }
            let mut tx = self.db.begin().await?;
            derived.write(&mut tx, ids.clone()).await?;
            store::practitioners::derived(&mut tx, &ids).await?;
            tx.commit().await?;
            upgraded.derived += ids.len();
        }
        loop {
            let ids = self.db.observations_to_key(PAGE).await?;
            if ids.is_empty() {
                break;
            }
            let mut keys = Vec::new();
            for row in self.db.observations_by_id(&ids).await? {
                if let Some(subject) = observations::open(&cipher, &row)?.subject {
                    keys.push((row.id, derive::subject_key(&self.keys.blind, &subject)));
                }
            }
            let mut tx = self.db.begin().await?;
            store::observations::set_subject_keys(&mut tx, &keys, &ids).await?;
            tx.commit().await?;
            upgraded.observation_subjects += keys.len();
        }
        Ok(upgraded)
    }
}

/// Opens `practitioners.<column>` of row `id`.
fn open(cipher: &FieldCipher, column: &str, id: &str, sealed: &[u8]) -> Result<String, StoreError> {
    cipher
        .decrypt_str("practitioners", column, id, sealed)
        .map_err(|e| StoreError::Corrupt {
            what: "practitioner",
            detail: format!("{column}: {e}"),
        })
}
