//! The record pipeline behind `records.emit`, one transaction per batch. A newcomer can follow
//! a row through the stages in order, one file each:
//!
//! 1. `boundary` and `validate`: every text a plugin sent is checked (control and invisible
//!    characters, dates, identifiers, sizes), then the row's own rules. A row that fails is
//!    kept as a reject (sealed, with its reason) and the batch goes on.
//! 2. `index`: blind indexes (STR, NIK, the fallback tuple) and the keyed content hash.
//! 3. `matching`: the stored practitioner a row is, by blind indexes only: STR first, then
//!    the fallback tuple (normalized name + NIK + birth place, seed 002). A match whose NIK
//!    differs is a conflicting identifier: rejected, never merged. A row whose STR is not
//!    active (revoked, expired) updates the practitioner it matches, so the revocation is
//!    recorded, but never creates one. A row whose keyed content hash is unchanged since its
//!    source last sent it is counted and not rewritten.
//! 4. `merge`: each source's latest record is kept per practitioner, and the stored
//!    practitioner is the golden record merged from them field by field (`golden`).
//! 5. `seal`: identifying columns and whole records encrypted under the active data key.
//! 6. `write`: one statement per table, in one transaction.
//!
//! Accounts (`accounts`) and observations (`observations`) take their own short paths.

mod accounts;
pub mod boundary;
pub mod golden;
mod index;
mod matching;
mod merge;
mod observations;
mod seal;
mod validate;
mod write;

use crate::crypto::KeyRing;
use crate::model::CanonicalRecord;
use crate::store::practitioners::{MatchKeys, SealedPractitioner};
use crate::store::runs::RunCounts;
use crate::store::{self, Db, StoreError};
use golden::Contribution;
use matching::{Decision, Known};
use merge::Sources;
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
        let cipher = self.keys.cipher();
        let blind = &self.keys.blind;
        let mut counts = RunCounts {
            received: batch.len() as i64,
            ..RunCounts::default()
        };

        // 1-2. Validate; index the valid practitioners.
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
                    Ok(inactive_str) => keyed.push(index::keyed(blind, index, p, inactive_str)),
                    Err(reason) => rejects.push((index, reason, CanonicalRecord::Practitioner(p))),
                },
                CanonicalRecord::Account(a) => accounts::take_account(index, a, &mut valid_accounts, &mut rejects),
                CanonicalRecord::Observation(o) => match observations::validate(&o) {
                    Ok(()) => observation_rows.push(self.seal_observation(source.connector_id, o, &now)),
                    Err(reason) => rejects.push((index, reason, CanonicalRecord::Observation(o))),
                },
            }
        }

        // 3. Match against what is stored, and read the contributions of those matched.
        let mut known = Known::lookup(&self.db, &keyed).await?;
        let stored_ids: HashSet<String> = known.ids().cloned().collect();
        let sealed_sources = {
            let ids: Vec<String> = stored_ids.iter().cloned().collect();
            let mut conn = self.db.pool().acquire().await?;
            store::practitioners::contributions(&mut conn, self.db.backend(), &ids).await?
        };
        let mut sources = Sources::new(&sealed_sources);

        // 3-5. Decide row by row, so that one person twice in a batch becomes one row; merge
        // and seal the golden record of every practitioner that changes.
        let mut rows: Vec<SealedPractitioner> = Vec::new();
        let mut row_of_id: HashMap<String, usize> = HashMap::new();
        for k in keyed {
            let id = match known.decide(&k, &sources) {
                Decision::Reject(reason) => {
                    rejects.push((k.index, reason, CanonicalRecord::Practitioner(k.record)));
                    continue;
                }
                Decision::Unchanged => {
                    counts.unchanged += 1;
                    continue;
                }
                Decision::Update(id) => {
                    counts.updated += 1;
                    id
                }
                Decision::Create(id) => {
                    counts.created += 1;
                    id
                }
            };
            let latest = k.record.source.clone();
            let contribution = Contribution {
                system: k.record.source.system.clone(),
                connector_id: source.connector_id.to_string(),
                at: latest.updated_at.clone().unwrap_or_else(|| now.clone()),
                record: k.record,
            };
            let merged = sources.add(&cipher, &id, contribution, k.content_hash, &now)?;
            let (golden, provenance) = golden::merge(merged, latest);
            let row = seal::practitioner(&cipher, blind, &id, &golden, &provenance, &now);
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
        let reject_rows = rejects
            .iter()
            .map(|(_, reason, record)| seal::reject(&cipher, source, reason, record, &now))
            .collect();

        // 6. Write.
        let rows = write::Rows {
            practitioners: rows,
            stored_ids,
            sources,
            accounts: account_rows,
            rejects: reject_rows,
            observations: observation_rows,
        };
        write::write(&self.db, source.run_id, rows, &mut counts).await?;

        let mut rejected: Vec<(u32, String)> = rejects.into_iter().map(|(i, reason, _)| (i as u32, reason)).collect();
        rejected.sort_by_key(|(i, _)| *i);
        Ok(BatchOutcome { counts, rejected })
    }
}
