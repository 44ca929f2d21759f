//! The record pipeline behind `records.emit`: validate → match → merge → encrypt → upsert, one
//! transaction per batch.
//!
//! - A row that fails validation is kept as a reject (sealed, with its reason) and the batch
//!   goes on. A row whose STR is not active (revoked, expired) updates the practitioner it
//!   matches, so the revocation is recorded, but never creates one.
//! - Matching uses blind indexes only: STR first, then the fallback tuple (normalized name +
//!   NIK + birth place, seed 002) when the STR is missing or unknown. A match whose NIK
//!   differs is a conflicting identifier: rejected, never merged.
//! - A matched row whose keyed content hash is unchanged is counted and not rewritten.

mod accounts;
mod observations;
mod validate;

use crate::crypto::KeyRing;
use crate::runtime::bindings::{CanonicalRecord, Practitioner};
use crate::store::practitioners::{MatchKeys, SealedPractitioner};
use crate::store::rejects::RejectRecord;
use crate::store::runs::RunCounts;
use crate::store::{self, Db, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// Who emitted a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchSource<'a> {
    pub connector_id: &'a str,
    pub run_id: Option<&'a str>,
}

/// What became of a batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub counts: RunCounts,
    /// `(index in the batch, reason)` of every rejected row.
    pub rejected: Vec<(u32, String)>,
}

pub struct Pipeline {
    db: Db,
    keys: Arc<KeyRing>,
}

/// A valid practitioner with its blind indexes.
struct Keyed {
    index: usize,
    record: Practitioner,
    str_index: Vec<u8>,
    nik_index: Vec<u8>,
    match_index: Option<Vec<u8>>,
    content_hash: Vec<u8>,
    /// Why its STR is not current, if it is not: then it only updates a stored practitioner.
    inactive_str: Option<String>,
}

impl Pipeline {
    pub fn new(db: Db, keys: Arc<KeyRing>) -> Self {
        Self { db, keys }
    }

    /// Stores a batch in one transaction. When another writer (a concurrent run, another
    /// replica) created one of the same people between this batch's match and its insert,
    /// the unique STR index refuses the insert and the batch is matched and stored again, so
    /// the person is updated rather than duplicated or lost.
    pub async fn ingest(
        &self,
        source: BatchSource<'_>,
        batch: Vec<CanonicalRecord>,
    ) -> Result<BatchOutcome, StoreError> {
        const TRIES: usize = 3;
        for _ in 1..TRIES {
            match self.ingest_once(source, batch.clone()).await {
                Err(StoreError::Sqlx(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                    tracing::debug!(
                        connector = source.connector_id,
                        "a concurrent writer stored the same people; matching again"
                    );
                }
                other => return other,
            }
        }
        self.ingest_once(source, batch).await
    }

    async fn ingest_once(
        &self,
        source: BatchSource<'_>,
        batch: Vec<CanonicalRecord>,
    ) -> Result<BatchOutcome, StoreError> {
        let today = chrono::Utc::now().date_naive();
        let now = store::now();
        let received = batch.len();
        let mut rejects: Vec<(usize, String, CanonicalRecord)> = Vec::new();
        let mut keyed = Vec::new();
        let mut valid_accounts = Vec::new();
        let mut observation_rows = Vec::new();
        for (index, record) in batch.into_iter().enumerate() {
            match record {
                CanonicalRecord::Practitioner(p) => match validate::practitioner(&p, today) {
                    Ok(inactive_str) => keyed.push(self.keyed(index, p, inactive_str)),
                    Err(reason) => rejects.push((index, reason, CanonicalRecord::Practitioner(p))),
                },
                CanonicalRecord::Account(a) => accounts::take_account(index, a, &mut valid_accounts, &mut rejects),
                CanonicalRecord::Observation(o) => match observations::validate(&o) {
                    Ok(()) => observation_rows.push(self.seal_observation(source.connector_id, o, &now)),
                    Err(reason) => rejects.push((index, reason, CanonicalRecord::Observation(o))),
                },
            }
        }

        let str_keys: Vec<Vec<u8>> = keyed.iter().map(|k| k.str_index.clone()).collect();
        let match_keys: Vec<Vec<u8>> = keyed.iter().filter_map(|k| k.match_index.clone()).collect();
        let stored = self.db.match_keys(&str_keys, &match_keys).await?;
        let mut by_str: HashMap<Vec<u8>, MatchKeys> = HashMap::new();
        let mut by_match: HashMap<Vec<u8>, MatchKeys> = HashMap::new();
        for keys in stored {
            remember(&mut by_str, &mut by_match, keys);
        }

        // Decide row by row, so that one person twice in a batch becomes one row.
        let mut counts = RunCounts {
            received: received as i64,
            ..RunCounts::default()
        };
        let mut rows: Vec<SealedPractitioner> = Vec::new();
        let mut row_of_id: HashMap<String, usize> = HashMap::new();
        for k in keyed {
            let found = by_str
                .get(&k.str_index)
                .or_else(|| k.match_index.as_ref().and_then(|m| by_match.get(m)))
                .cloned();
            let id = match &found {
                Some(existing) if existing.nik_index.as_ref().is_some_and(|n| *n != k.nik_index) => {
                    rejects.push((
                        k.index,
                        "conflicting identifier: this STR belongs to a stored practitioner with a different NIK; not merged".into(),
                        CanonicalRecord::Practitioner(k.record),
                    ));
                    continue;
                }
                Some(existing) if existing.content_hash == k.content_hash => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(existing) => {
                    counts.updated += 1;
                    existing.id.clone()
                }
                None if k.inactive_str.is_some() => {
                    let reason = k.inactive_str.expect("checked");
                    rejects.push((k.index, reason, CanonicalRecord::Practitioner(k.record)));
                    continue;
                }
                None => {
                    counts.created += 1;
                    uuid::Uuid::now_v7().to_string()
                }
            };
            let row = self.seal(&id, &k, &now);
            remember(
                &mut by_str,
                &mut by_match,
                MatchKeys {
                    id: id.clone(),
                    str_index: row.str_index.clone(),
                    nik_index: row.nik_index.clone(),
                    match_index: row.match_index.clone(),
                    content_hash: row.content_hash.clone(),
                },
            );
            match row_of_id.get(&id) {
                Some(&pos) => {
                    rows[pos] = SealedPractitioner {
                        created_at: rows[pos].created_at.clone(),
                        ..row
                    }
                }
                None => {
                    row_of_id.insert(id, rows.len());
                    rows.push(row);
                }
            }
        }

        let account_rows = self.seal_accounts(valid_accounts, &now, &mut counts).await?;
        counts.rejected = rejects.len() as i64;
        let reject_rows: Vec<RejectRecord> = rejects
            .iter()
            .map(|(_, reason, record)| self.seal_reject(source, reason, record, &now))
            .collect();
        let mut tx = self.db.pool().begin().await?;
        store::practitioners::upsert(&mut tx, self.db.backend(), &rows).await?;
        store::accounts::upsert(&mut tx, self.db.backend(), &account_rows).await?;
        store::rejects::insert(&mut tx, self.db.backend(), &reject_rows).await?;
        // One already stored (a redelivered message) counts as unchanged.
        let inserted = store::observations::insert(&mut tx, self.db.backend(), &observation_rows).await? as i64;
        counts.created += inserted;
        counts.unchanged += observation_rows.len() as i64 - inserted;
        if let Some(run_id) = source.run_id {
            store::runs::add_counts(&mut tx, run_id, counts).await?;
        }
        tx.commit().await?;

        let mut rejected: Vec<(u32, String)> = rejects.into_iter().map(|(i, reason, _)| (i as u32, reason)).collect();
        rejected.sort_by_key(|(i, _)| *i);
        Ok(BatchOutcome { counts, rejected })
    }

    fn keyed(&self, index: usize, record: Practitioner, inactive_str: Option<String>) -> Keyed {
        let blind = &self.keys.blind;
        let nik = record.nik.as_deref().unwrap_or_default();
        let match_index = match (&record.full_name, &record.birth_place) {
            (Some(name), Some(place)) => Some(blind.fallback(name, nik, place)),
            _ => None,
        };
        // The source's own timestamp is not content: a row re-sent unchanged stays unchanged.
        let mut content = record.clone();
        content.source.updated_at = None;
        let content_json = serde_json::to_string(&content).expect("records serialize");
        Keyed {
            index,
            str_index: blind.str_number(record.str_number.as_deref().unwrap_or_default()),
            nik_index: blind.nik(nik),
            match_index,
            content_hash: blind.index("content", &[&content_json]),
            record,
            inactive_str,
        }
    }

    fn seal(&self, id: &str, k: &Keyed, now: &str) -> SealedPractitioner {
        let cipher = self.keys.cipher();
        let p = &k.record;
        let seal = |column: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| cipher.encrypt_str("practitioners", column, id, v))
        };
        let details = serde_json::json!({
            "registrations": p.registrations,
            "trainings": p.trainings,
            "employments": p.employments,
            "educations": p.educations,
        });
        SealedPractitioner {
            id: id.to_string(),
            str_index: Some(k.str_index.clone()),
            nik_index: Some(k.nik_index.clone()),
            match_index: k.match_index.clone(),
            key_version: cipher.active_version() as i64,
            nik: seal("nik", &p.nik),
            str_number: seal("str_number", &p.str_number),
            full_name: seal("full_name", &p.full_name),
            birth_place: seal("birth_place", &p.birth_place),
            birth_date: seal("birth_date", &p.birth_date),
            phone: seal("phone", &p.phone),
            email: seal("email", &p.email),
            details: Some(cipher.encrypt_str("practitioners", "details", id, &details.to_string())),
            gender: gender_name(p).into(),
            profession: p.profession.clone(),
            content_hash: k.content_hash.clone(),
            source_system: p.source.system.clone(),
            source_id: p.source.id.clone(),
            source_updated_at: p.source.updated_at.clone(),
            created_at: now.to_string(),
            updated_at: now.to_string(),
        }
    }

    fn seal_reject(&self, source: BatchSource<'_>, reason: &str, record: &CanonicalRecord, now: &str) -> RejectRecord {
        let id = uuid::Uuid::now_v7().to_string();
        let (system, source_id) = match record {
            CanonicalRecord::Practitioner(p) => (&p.source.system, &p.source.id),
            CanonicalRecord::Observation(o) => (&o.source.system, &o.source.id),
            CanonicalRecord::Account(a) => (&a.source.system, &a.source.id),
        };
        let json = serde_json::to_string(record).expect("records serialize");
        let cipher = self.keys.cipher();
        RejectRecord {
            record: cipher.encrypt_str("rejects", "record", &id, &json),
            key_version: cipher.active_version() as i64,
            id,
            connector_id: source.connector_id.to_string(),
            run_id: source.run_id.map(str::to_string),
            source_system: system.clone(),
            source_id: source_id.clone(),
            reason: reason.to_string(),
            created_at: now.to_string(),
        }
    }
}

fn remember(by_str: &mut HashMap<Vec<u8>, MatchKeys>, by_match: &mut HashMap<Vec<u8>, MatchKeys>, keys: MatchKeys) {
    if let Some(m) = &keys.match_index {
        by_match.insert(m.clone(), keys.clone());
    }
    if let Some(s) = &keys.str_index {
        by_str.insert(s.clone(), keys);
    }
}

pub fn gender_name(p: &Practitioner) -> &'static str {
    match p.gender {
        crate::runtime::bindings::Gender::Male => "male",
        crate::runtime::bindings::Gender::Female => "female",
        crate::runtime::bindings::Gender::Unknown => "unknown",
    }
}
