//! The record pipeline behind `records.emit`: validate → match → merge → encrypt → upsert, one
//! transaction per batch.
//!
//! - Every text a plugin sent is checked first (`boundary`): control and invisible
//!   characters, dates, identifiers, sizes. Then the row's own rules (`validate`).
//! - A row that fails validation is kept as a reject (sealed, with its reason) and the batch
//!   goes on. A row whose STR is not active (revoked, expired) updates the practitioner it
//!   matches, so the revocation is recorded, but never creates one.
//! - Matching uses blind indexes only: STR first, then the fallback tuple (normalized name +
//!   NIK + birth place, seed 002) when the STR is missing or unknown. A match whose NIK
//!   differs is a conflicting identifier: rejected, never merged.
//! - A matched row whose keyed content hash is unchanged since its source last sent it is
//!   counted and not rewritten.
//! - Each source's latest record is kept (sealed) per practitioner, and the stored
//!   practitioner is the golden record merged from them field by field (`golden`).

mod accounts;
pub mod boundary;
pub mod golden;
mod observations;
mod validate;

use crate::crypto::KeyRing;
use crate::runtime::bindings::{CanonicalRecord, Practitioner};
use crate::store::practitioners::{MatchKeys, SealedContribution, SealedPractitioner};
use crate::store::rejects::RejectRecord;
use crate::store::runs::RunCounts;
use crate::store::{self, Db, StoreError};
use golden::{Contribution, Provenance};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Who emitted a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchSource<'a> {
    pub connector_id: &'a str,
    pub run_id: Option<&'a str>,
    /// The connector's quotas (field and record sizes, list lengths).
    pub quotas: &'a crate::runtime::Quotas,
}

/// What became of a batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub counts: RunCounts,
    /// `(index in the batch, reason)` of every rejected row.
    pub rejected: Vec<(u32, String)>,
}

impl BatchOutcome {
    /// Adds the outcome of a part of a batch that starts at row `offset`.
    pub fn add(&mut self, part: BatchOutcome, offset: u32) {
        let (c, p) = (&mut self.counts, part.counts);
        c.received += p.received;
        c.created += p.created;
        c.updated += p.updated;
        c.unchanged += p.unchanged;
        c.rejected += p.rejected;
        self.rejected.extend(
            part.rejected
                .into_iter()
                .map(|(index, reason)| (index + offset, reason)),
        );
    }
}

pub struct Pipeline {
    db: Db,
    keys: Arc<KeyRing>,
}

/// A practitioner's blind indexes.
struct Indexes {
    str_index: Vec<u8>,
    nik_index: Vec<u8>,
    match_index: Option<Vec<u8>>,
}

/// A valid practitioner with its blind indexes.
struct Keyed {
    index: usize,
    record: Practitioner,
    indexes: Indexes,
    /// Of the record as its source sent it.
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
                Err(StoreError::Concurrent) => {
                    tracing::debug!(
                        connector = source.connector_id,
                        "a concurrent writer merged into the same people; merging again"
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
            if let Err(reason) = boundary::check(&record, source.quotas) {
                rejects.push((index, reason, record));
                continue;
            }
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

        let str_keys: Vec<Vec<u8>> = keyed.iter().map(|k| k.indexes.str_index.clone()).collect();
        let match_keys: Vec<Vec<u8>> = keyed.iter().filter_map(|k| k.indexes.match_index.clone()).collect();
        let nik_keys: Vec<Vec<u8>> = keyed.iter().map(|k| k.indexes.nik_index.clone()).collect();
        let stored = self.db.match_keys(&str_keys, &match_keys, &nik_keys).await?;
        let stored_ids: HashSet<String> = stored.iter().map(|k| k.id.clone()).collect();
        let sealed_sources = {
            let ids: Vec<String> = stored_ids.iter().cloned().collect();
            let mut conn = self.db.pool().acquire().await?;
            store::practitioners::contributions(&mut conn, self.db.backend(), &ids).await?
        };
        let mut sources = Sources::new(&sealed_sources);
        let mut known = Known::default();
        for keys in stored {
            known.remember(keys);
        }

        // Decide row by row, so that one person twice in a batch becomes one row.
        let mut counts = RunCounts {
            received: received as i64,
            ..RunCounts::default()
        };
        let mut rows: Vec<SealedPractitioner> = Vec::new();
        let mut row_of_id: HashMap<String, usize> = HashMap::new();
        for k in keyed {
            let found = known
                .by_str
                .get(&k.indexes.str_index)
                .or_else(|| k.indexes.match_index.as_ref().and_then(|m| known.by_match.get(m)))
                .cloned();
            let system = k.record.source.system.clone();
            let id = match &found {
                Some(existing) if existing.nik_index.as_ref().is_some_and(|n| *n != k.indexes.nik_index) => {
                    rejects.push((
                        k.index,
                        "conflicting identifier: this STR belongs to a stored practitioner with a different NIK; not merged".into(),
                        CanonicalRecord::Practitioner(k.record),
                    ));
                    continue;
                }
                Some(existing) if sources.unchanged(existing, &system, &k.content_hash) => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(existing) => {
                    counts.updated += 1;
                    existing.id.clone()
                }
                // Who a NIK belongs to is settled by identity rules (docs/golden-record.md);
                // until a record matches by STR or the fallback tuple, a second person under
                // a stored NIK is never created.
                None if known.by_nik.contains_key(&k.indexes.nik_index) => {
                    rejects.push((
                        k.index,
                        "conflicting identifier: a stored practitioner already has this NIK under another STR number; not created as a second person".into(),
                        CanonicalRecord::Practitioner(k.record),
                    ));
                    continue;
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
            let latest = k.record.source.clone();
            let contribution = Contribution {
                system,
                connector_id: source.connector_id.to_string(),
                at: latest.updated_at.clone().unwrap_or_else(|| now.clone()),
                record: k.record,
            };
            let merged = sources.add(&self.keys, &id, contribution, k.content_hash, &now)?;
            let (golden, provenance) = golden::merge(merged, latest);
            let row = self.seal(&id, &golden, &provenance, &now);
            known.remember(MatchKeys {
                id: id.clone(),
                str_index: row.str_index.clone(),
                nik_index: row.nik_index.clone(),
                match_index: row.match_index.clone(),
                content_hash: row.content_hash.clone(),
            });
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
        // The stored practitioners this batch merges into: locked, then their contributions
        // read again; if another writer merged into them since they were read above, this
        // merge would lose its change, so the batch starts over.
        let touched: Vec<String> = rows
            .iter()
            .filter(|r| stored_ids.contains(&r.id))
            .map(|r| r.id.clone())
            .collect();
        if !touched.is_empty() {
            store::practitioners::lock(&mut tx, self.db.backend(), &touched).await?;
            let now_stored = store::practitioners::contributions(&mut tx, self.db.backend(), &touched).await?;
            if !sources.still_current(&touched, &now_stored) {
                return Err(StoreError::Concurrent);
            }
        }
        let contribution_rows = sources.into_written();
        store::practitioners::upsert(&mut tx, self.db.backend(), &rows).await?;
        store::practitioners::upsert_contributions(&mut tx, self.db.backend(), &contribution_rows).await?;
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
        Keyed {
            index,
            indexes: self.indexes(&record),
            content_hash: self.content_hash(&record),
            record,
            inactive_str,
        }
    }

    fn indexes(&self, p: &Practitioner) -> Indexes {
        let blind = &self.keys.blind;
        let nik = p.nik.as_deref().unwrap_or_default();
        Indexes {
            str_index: blind.str_number(p.str_number.as_deref().unwrap_or_default()),
            nik_index: blind.nik(nik),
            match_index: match (&p.full_name, &p.birth_place) {
                (Some(name), Some(place)) => Some(blind.fallback(name, nik, place)),
                _ => None,
            },
        }
    }

    /// Keyed hash of what a record says; the source's own timestamp is not content, so a
    /// row re-sent unchanged stays unchanged.
    fn content_hash(&self, p: &Practitioner) -> Vec<u8> {
        let mut content = p.clone();
        content.source.updated_at = None;
        let json = serde_json::to_string(&content).expect("records serialize");
        self.keys.blind.index("content", &[&json])
    }

    /// The golden record `p` as the practitioners row `id`.
    fn seal(&self, id: &str, p: &Practitioner, provenance: &Provenance, now: &str) -> SealedPractitioner {
        let cipher = self.keys.cipher();
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
        let indexes = self.indexes(p);
        SealedPractitioner {
            id: id.to_string(),
            str_index: Some(indexes.str_index),
            nik_index: Some(indexes.nik_index),
            match_index: indexes.match_index,
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
            content_hash: self.content_hash(p),
            source_system: p.source.system.clone(),
            source_id: p.source.id.clone(),
            source_updated_at: p.source.updated_at.clone(),
            provenance: Some(serde_json::to_string(provenance).expect("provenance serializes")),
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
            source_system: shown(system),
            source_id: shown(source_id),
            reason: reason.to_string(),
            created_at: now.to_string(),
        }
    }
}

/// Every practitioner's contributions in this batch: as stored (sealed, opened only when the
/// practitioner changes) and as the batch leaves them.
struct Sources<'a> {
    stored: HashMap<&'a str, Vec<&'a SealedContribution>>,
    merged: HashMap<String, Vec<Contribution>>,
    written: HashMap<(String, String), SealedContribution>,
}

impl<'a> Sources<'a> {
    fn new(stored: &'a [SealedContribution]) -> Self {
        let mut by_id: HashMap<&str, Vec<&SealedContribution>> = HashMap::new();
        for c in stored {
            by_id.entry(c.practitioner_id.as_str()).or_default().push(c);
        }
        Self {
            stored: by_id,
            merged: HashMap::new(),
            written: HashMap::new(),
        }
    }

    /// Whether `system` said exactly this (`hash`) about `existing` last time.
    fn unchanged(&self, existing: &MatchKeys, system: &str, hash: &[u8]) -> bool {
        if let Some(written) = self.written.get(&(existing.id.clone(), system.to_string())) {
            return written.content_hash == hash;
        }
        match self.stored.get(existing.id.as_str()) {
            Some(list) => list.iter().any(|c| c.source_system == system && c.content_hash == hash),
            None if self.merged.contains_key(&existing.id) => false,
            // Stored before sources were kept per system (migration 0008): its own hash.
            None => existing.content_hash == hash,
        }
    }

    /// Records `contribution` as its system's latest for practitioner `id`; all of that
    /// practitioner's contributions, to merge.
    fn add(
        &mut self,
        keys: &KeyRing,
        id: &str,
        contribution: Contribution,
        content_hash: Vec<u8>,
        now: &str,
    ) -> Result<&[Contribution], StoreError> {
        let cipher = keys.cipher();
        if !self.merged.contains_key(id) {
            let opened = self
                .stored
                .get(id)
                .map(|list| list.iter().map(|c| open_contribution(&cipher, c)).collect())
                .transpose()?
                .unwrap_or_default();
            self.merged.insert(id.to_string(), opened);
        }
        let row_id = SealedContribution::row_id(id, &contribution.system);
        let json = serde_json::to_string(&contribution.record).expect("records serialize");
        self.written.insert(
            (id.to_string(), contribution.system.clone()),
            SealedContribution {
                practitioner_id: id.to_string(),
                source_system: contribution.system.clone(),
                connector_id: contribution.connector_id.clone(),
                key_version: cipher.active_version() as i64,
                record: cipher.encrypt_str("practitioner_sources", "record", &row_id, &json),
                content_hash,
                source_updated_at: contribution.record.source.updated_at.clone(),
                received_at: now.to_string(),
            },
        );
        let list = self.merged.get_mut(id).expect("inserted above");
        list.retain(|c| c.system != contribution.system);
        list.push(contribution);
        Ok(list)
    }

    /// Whether what is stored now for `ids` is what this batch merged with.
    fn still_current(&self, ids: &[String], now_stored: &[SealedContribution]) -> bool {
        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let fingerprint = |c: &SealedContribution| {
            (
                c.practitioner_id.clone(),
                c.source_system.clone(),
                c.content_hash.clone(),
            )
        };
        let then: HashSet<_> = self
            .stored
            .iter()
            .filter(|(id, _)| ids.contains(*id))
            .flat_map(|(_, list)| list.iter().map(|c| fingerprint(c)))
            .collect();
        let now: HashSet<_> = now_stored.iter().map(fingerprint).collect();
        then == now
    }

    fn into_written(self) -> Vec<SealedContribution> {
        self.written.into_values().collect()
    }
}

fn open_contribution(
    cipher: &crate::crypto::FieldCipher,
    sealed: &SealedContribution,
) -> Result<Contribution, StoreError> {
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
            .unwrap_or_else(|| sealed.received_at.clone()),
        record,
    })
}

/// The practitioners a batch may match, stored or created earlier in the batch, by each of
/// their blind indexes.
#[derive(Default)]
struct Known {
    by_str: HashMap<Vec<u8>, MatchKeys>,
    by_match: HashMap<Vec<u8>, MatchKeys>,
    by_nik: HashMap<Vec<u8>, MatchKeys>,
}

impl Known {
    fn remember(&mut self, keys: MatchKeys) {
        if let Some(m) = &keys.match_index {
            self.by_match.insert(m.clone(), keys.clone());
        }
        if let Some(n) = &keys.nik_index {
            self.by_nik.insert(n.clone(), keys.clone());
        }
        if let Some(s) = &keys.str_index {
            self.by_str.insert(s.clone(), keys);
        }
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

pub fn gender_name(p: &Practitioner) -> &'static str {
    match p.gender {
        crate::runtime::bindings::Gender::Male => "male",
        crate::runtime::bindings::Gender::Female => "female",
        crate::runtime::bindings::Gender::Unknown => "unknown",
    }
}
