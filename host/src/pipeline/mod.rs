//! The record pipeline behind `records.emit`, one transaction per batch. A newcomer can follow
//! a row through the stages in order, one file each:
//!
//! 1. `boundary` and `validate`: every text a plugin sent is checked (control and invisible
//!    characters, dates, identifiers, sizes), then the row's own rules. A row that fails is
//!    kept as a reject (sealed, with its reason) and the batch goes on.
//! 2. `index`: blind indexes (STR, NIK, the fallback tuple) and the keyed content hash.
//! 3. `matching`: the stored person a row is, by blind indexes only, in tiers: an STR they
//!    hold or held, then the same NIK with a birth date, then the same NIK, name and birth
//!    place (seed 002). A match that no tier confirms, or an STR under another NIK, is a
//!    conflicting identifier: rejected, never merged. A row that matches nobody creates a
//!    person where its connector's policy allows (`CreatePolicy`). A row whose keyed content
//!    hash is unchanged since its source last sent it is counted and not rewritten.
//! 4. `merge`: each source's latest record is kept per practitioner, and the stored
//!    practitioner is the golden record merged from them field by field (`golden`).
//! 5. `seal`: identifying columns and whole records encrypted under the active data key;
//!    beside it, `derive`: what FHIR finds the record by (roles at facilities, blind keys of
//!    name words and the birth date).
//! 6. `write`: one statement per table, in one transaction.
//!
//! Stages 1-2 need nothing stored: [`Pipeline::begin`] starts them on the blocking pool at
//! once, so they run while earlier batches are matched and written, over every core.
//! Stages 3-6 follow in the order the batches came wherever order matters, and side by side
//! where it cannot (`lane`: batches that share no key are not about the same people).
//!
//! Accounts (`accounts`) and observations (`observations`) take their own short paths.

mod accounts;
pub mod boundary;
pub(crate) mod derive;
pub mod golden;
mod index;
mod lane;
mod matching;
mod merge;
pub(crate) mod normalize;
pub mod observations;
mod seal;
mod split;
mod upgrade;
mod validate;
mod write;

use crate::crypto::KeyRing;
use crate::model::CanonicalRecord;
use crate::store::Timestamp;
use crate::store::practitioners::{MatchKeys, SealedPractitioner, SealedStr};
use crate::store::review::Candidate;
use crate::store::runs::RunCounts;
use crate::store::{self, Db, StoreError};
use golden::Contribution;
use lane::Concerns;
pub use lane::Lane;
use matching::{Decision, Known};
use merge::Sources;
pub use seal::open_record;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
pub use upgrade::Upgraded;

/// Who emitted a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchSource<'a> {
    pub connector_id: &'a str,
    pub run_id: Option<&'a str>,
    /// The connector's quotas (field and record sizes, list lengths).
    pub quotas: &'a crate::runtime::Quotas,
    /// Whether its practitioner records may create practitioners.
    pub creates: hub_registry::CreatePolicy,
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
        c.held += p.held;
        self.rejected.extend(
            part.rejected
                .into_iter()
                .map(|(index, reason)| (index + offset, reason)),
        );
    }
}

#[derive(Clone)]
pub struct Pipeline {
    db: Db,
    keys: Arc<KeyRing>,
}

impl Pipeline {
    pub fn new(db: Db, keys: Arc<KeyRing>) -> Self {
        Self { db, keys }
    }

    /// Stores a batch in one transaction: [`Pipeline::prepare`], then [`Pipeline::store`].
    pub async fn ingest(
        &self,
        source: BatchSource<'_>,
        batch: Vec<CanonicalRecord>,
    ) -> Result<BatchOutcome, StoreError> {
        let prepared = self.prepare(source, batch);
        self.store(source, prepared.taken().await, &tracing::Span::current())
            .await
    }

    /// Stores a batch of a job, in one transaction, as one of `lane`'s: validation starts at
    /// once; matching, merging and writing as soon as no batch begun before it in the lane
    /// that may be about the same people is still being written. Dropped, the batch is
    /// given up (a write under way rolls back).
    pub fn begin(&self, lane: &Lane, source: BatchSource<'_>, batch: Vec<CanonicalRecord>) -> Storing {
        let mut turn = lane.turn();
        let prepared = self.prepare(source, batch);
        let pipeline = self.clone();
        let source = OwnedSource::from(source);
        let overlap = self.db.backend() == store::Backend::Postgres;
        let batch_span = tracing::Span::current();
        let storing = async move {
            let taken = prepared.taken().await;
            turn.wait(if overlap { taken.concerns() } else { Concerns::Everyone })
                .await;
            pipeline.store(source.borrow(), taken, &batch_span).await
        };
        // The task runs in no span: sqlx enters the span current when a query starts on every
        // poll of its row stream, three times over (query, pool, connection), so a batch's
        // span around its queries was entered and left ~15 times a webhook, two thirds of
        // what tracing cost one (BENCHMARKS.md, "Tracing's cost in instructions"). The
        // stages' spans are children of the batch's, open while the stage runs, never entered.
        Storing(tokio::spawn(storing))
    }

    /// Starts stages 1-2 (validate; index the valid practitioners) of a batch on the
    /// blocking pool at once: they need nothing stored, so they run while earlier batches
    /// are matched and written, and batches prepared together use every core.
    fn prepare(&self, source: BatchSource<'_>, batch: Vec<CanonicalRecord>) -> Preparing {
        let (keys, connector_id, quotas) = (
            self.keys.clone(),
            source.connector_id.to_string(),
            source.quotas.clone(),
        );
        let span = tracing::debug_span!("pipeline.validate", rows = batch.len());
        Preparing(tokio::task::spawn_blocking(move || {
            span.in_scope(|| Taken::from_batch(&keys, &quotas, &connector_id, batch, Timestamp::now()))
        }))
    }

    /// Matches, merges, seals and writes a prepared batch (stages 3-6) in one transaction.
    /// Batches of one source must be stored in the order they came where a later one may
    /// update a person an earlier one created ([`Lane`]). When another writer (a concurrent
    /// run, another replica) created one of the same people between this batch's match and
    /// its insert, the unique STR index refuses the insert and the batch is matched and
    /// stored again, so the person is updated rather than duplicated or lost.
    async fn store(
        &self,
        source: BatchSource<'_>,
        taken: Taken,
        span: &tracing::Span,
    ) -> Result<BatchOutcome, StoreError> {
        // A try after a conflict succeeds unless yet another writer created one more of the
        // batch's people meanwhile: two hubs working the webhooks of 60 people beside a sync
        // of the same 60 needed more than 3 back-to-back tries in CI, and once (2026-12-01)
        // more than 5, failing that sync's attempt. Short jittered pauses (10, 20, 40, 80,
        // 160, 200, 200 ms ±25 %, 0.7 s in all) spread the writers apart.
        const CONFLICTS: crate::jobs::RetryPolicy = crate::jobs::RetryPolicy {
            base_delay_ms: 10,
            max_delay_ms: 200,
            default_attempts: 8,
        };
        for attempt in 1..CONFLICTS.default_attempts {
            match self.store_once(source, taken.clone(), span).await {
                Err(StoreError::Sqlx(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                    tracing::debug!(
                        parent: span,
                        connector = source.connector_id,
                        "a concurrent writer stored the same people; matching again"
                    );
                }
                Err(StoreError::Concurrent) => {
                    tracing::debug!(
                        parent: span,
                        connector = source.connector_id,
                        "a concurrent writer merged into the same people; merging again"
                    );
                }
                other => return other,
            }
            tokio::time::sleep(CONFLICTS.delay(attempt)).await;
        }
        self.store_once(source, taken, span).await
    }

    async fn store_once(
        &self,
        source: BatchSource<'_>,
        taken: Taken,
        span: &tracing::Span,
    ) -> Result<BatchOutcome, StoreError> {
        let now = Timestamp::now();
        let connector_id = source.connector_id.to_string();
        let run_id = source.run_id.map(str::to_string);
        let quotas = source.quotas.clone();
        let creates = source.creates;

        // 3. Match against what is stored; read what each matched practitioner's sources said
        // (by hash), and the sealed records of those the batch changes. One read transaction,
        // outside the write: matching runs before sealing, which takes a while; the write
        // checks that the hashes are still current.
        let matching = tracing::debug_span!(parent: span, "pipeline.match", rows = taken.keyed.len());
        let (known, stored_ids, sources) = async {
            let mut reads = self.db.begin().await?;
            let known = Known::lookup(&mut reads, &taken.keyed).await?;
            let stored_ids: HashSet<String> = known.ids().cloned().collect();
            let ids: Vec<String> = stored_ids.iter().cloned().collect();
            let sources = Sources::new(store::practitioners::contribution_hashes(&mut reads, &ids).await?);
            let to_read = sources.to_read(&known, &taken.keyed, source.creates);
            let sources = sources.with_sealed(store::practitioners::contributions(&mut reads, &to_read).await?);
            Ok::<_, StoreError>((known, stored_ids, sources))
        }
        .await?;
        drop(matching);

        // 3-5. Decide, merge and seal.
        let mut merged = {
            let keys = self.keys.clone();
            let merging = tracing::debug_span!(parent: span, "pipeline.merge");
            off_async(move || {
                let _merging = merging.enter();
                let source = BatchSource {
                    connector_id: &connector_id,
                    run_id: run_id.as_deref(),
                    quotas: &quotas,
                    creates,
                };
                taken.merge(&keys, source, known, sources, now)
            })
            .await?
        };
        let accounts = std::mem::take(&mut merged.accounts);
        let account_rows = self.seal_accounts(accounts, now, &mut merged.counts).await?;

        // 6. Write.
        let mut counts = merged.counts;
        let rows = write::Rows {
            practitioners: merged.practitioners,
            strs: merged.strs,
            derived: merged.derived,
            held: merged.held,
            stored_ids,
            sources: merged.sources,
            accounts: account_rows,
            rejects: merged.reject_rows,
            observations: merged.observations,
            events: merged.events,
        };
        let writing = tracing::debug_span!(parent: span, "db.write");
        write::write(&self.db, source.run_id, rows, &mut counts).await?;
        drop(writing);
        Ok(BatchOutcome {
            counts,
            rejected: merged.rejected,
        })
    }
}

/// Why the hub would refuse `record` from a connector with creation policy `creates` were
/// nobody stored yet: the boundary check, the record's own rules, then whether it may create
/// a practitioner. What `hub plugin run` reports, with nothing stored; a record refused only
/// by the policy is taken once it matches a person another connector made.
pub fn refusal(
    record: &CanonicalRecord,
    quotas: &crate::runtime::Quotas,
    creates: hub_registry::CreatePolicy,
    today: chrono::NaiveDate,
) -> Option<String> {
    boundary::check(record, quotas).err().or_else(|| match record {
        CanonicalRecord::Practitioner(p) => match validate::practitioner(p, today) {
            Ok(findings) => matching::creation_refusal(creates, &findings),
            Err(reason) => Some(reason),
        },
        CanonicalRecord::Account(a) => accounts::validate(a).err(),
        CanonicalRecord::Observation(o) => observations::validate(o).err(),
    })
}

/// Runs CPU work of a batch (validating, indexing, merging and sealing 500 rows takes tens of
/// milliseconds) on the blocking pool, so it never holds one of the async threads that the
/// API, the webhook inbox and MQTT ingest share (two on this machine).
async fn off_async<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A batch being prepared by [`Pipeline::prepare`]; dropped, its result is discarded.
struct Preparing(tokio::task::JoinHandle<Taken>);

impl Preparing {
    async fn taken(self) -> Taken {
        self.0
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

/// A batch being stored by [`Pipeline::begin`]; dropped, it is given up.
pub struct Storing(tokio::task::JoinHandle<Result<BatchOutcome, StoreError>>);

impl Storing {
    pub async fn outcome(mut self) -> Result<BatchOutcome, StoreError> {
        (&mut self.0)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

impl Drop for Storing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A [`BatchSource`] a task owns.
struct OwnedSource {
    connector_id: String,
    run_id: Option<String>,
    quotas: crate::runtime::Quotas,
    creates: hub_registry::CreatePolicy,
}

impl OwnedSource {
    fn from(source: BatchSource<'_>) -> Self {
        Self {
            connector_id: source.connector_id.to_string(),
            run_id: source.run_id.map(str::to_string),
            quotas: source.quotas.clone(),
            creates: source.creates,
        }
    }

    fn borrow(&self) -> BatchSource<'_> {
        BatchSource {
            connector_id: &self.connector_id,
            run_id: self.run_id.as_deref(),
            quotas: &self.quotas,
            creates: self.creates,
        }
    }
}

/// A batch after validation (stages 1-2): what goes on to matching, and what was refused.
#[derive(Clone)]
struct Taken {
    counts: RunCounts,
    keyed: Vec<index::Keyed>,
    rejects: Vec<(usize, String, CanonicalRecord)>,
    accounts: Vec<crate::model::Account>,
    observations: Vec<crate::store::observations::ObservationRecord>,
}

/// A batch after stages 3-5: rows sealed, ready to write.
struct Merged {
    counts: RunCounts,
    /// What the batch changes, for the outbox, in order.
    events: Vec<crate::store::events::StoredEvent>,
    practitioners: Vec<SealedPractitioner>,
    /// STR numbers the batch found on practitioners for the first time.
    strs: Vec<SealedStr>,
    derived: derive::Derived,
    /// Rows held for review.
    held: Vec<Candidate>,
    sources: Sources,
    accounts: Vec<crate::model::Account>,
    observations: Vec<crate::store::observations::ObservationRecord>,
    reject_rows: Vec<crate::store::rejects::RejectRecord>,
    /// `(index in the batch, reason)` of every rejected row, in batch order.
    rejected: Vec<(u32, String)>,
}

impl Taken {
    /// Who the batch may be about: the keys its practitioners are matched by and their
    /// source ids (review pins and contributions are found by them); anyone when it has
    /// accounts or observations.
    fn concerns(&self) -> Concerns {
        if !self.accounts.is_empty() || !self.observations.is_empty() {
            return Concerns::Everyone;
        }
        let mut keys = HashSet::with_capacity(self.keyed.len() * 5);
        for row in &self.keyed {
            let i = &row.indexes;
            keys.insert(i.nik_index.clone());
            keys.extend(
                [&i.str_index, &i.match_index, &i.twin_index]
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            let source = &row.record.source;
            keys.insert([source.system.as_bytes(), b"\0", source.id.as_bytes()].concat());
        }
        Concerns::Keys(keys)
    }

    fn from_batch(
        keys: &KeyRing,
        quotas: &crate::runtime::Quotas,
        connector_id: &str,
        batch: Vec<CanonicalRecord>,
        now: Timestamp,
    ) -> Self {
        let today = chrono::Utc::now().date_naive();
        let cipher = keys.cipher();
        let mut taken = Taken {
            counts: RunCounts {
                received: batch.len() as i64,
                ..RunCounts::default()
            },
            keyed: Vec::new(),
            rejects: Vec::new(),
            accounts: Vec::new(),
            observations: Vec::new(),
        };
        for (index, record) in batch.into_iter().enumerate() {
            if let Err(reason) = boundary::check(&record, quotas) {
                taken.rejects.push((index, reason, record));
                continue;
            }
            match record {
                CanonicalRecord::Practitioner(p) => match validate::practitioner(&p, today) {
                    Ok(findings) => taken.keyed.push(index::keyed(&keys.blind, index, p, findings)),
                    Err(reason) => taken.rejects.push((index, reason, CanonicalRecord::Practitioner(p))),
                },
                CanonicalRecord::Account(a) => {
                    accounts::take_account(index, a, &mut taken.accounts, &mut taken.rejects)
                }
                CanonicalRecord::Observation(o) => match observations::validate(&o) {
                    Ok(effective_at) => {
                        let sealed = observations::seal(&cipher, &keys.blind, connector_id, o, effective_at, now);
                        taken.observations.push(sealed)
                    }
                    Err(reason) => taken.rejects.push((index, reason, CanonicalRecord::Observation(o))),
                },
            }
        }
        taken
    }

    /// Decides row by row, so that one person twice in a batch becomes one row; merges and
    /// seals the golden record of every practitioner that changes, and seals the rejects.
    fn merge(
        self,
        keys: &KeyRing,
        source: BatchSource<'_>,
        mut known: Known,
        mut sources: Sources,
        now: Timestamp,
    ) -> Result<Merged, StoreError> {
        let Taken {
            mut counts,
            keyed,
            mut rejects,
            accounts,
            observations,
        } = self;
        let cipher = keys.cipher();
        let blind = &keys.blind;
        let mut rows: Vec<SealedPractitioner> = Vec::new();
        let mut strs: Vec<SealedStr> = Vec::new();
        let mut held: Vec<Candidate> = Vec::new();
        let mut derived = derive::Derived::default();
        let mut row_of_id: HashMap<String, usize> = HashMap::new();
        let mut events = Vec::new();
        for k in keyed {
            let (id, matched_by, creates) = match known.decide(&k, &sources, source.creates) {
                Decision::Reject(reason) => {
                    let record = Arc::unwrap_or_clone(k.record);
                    rejects.push((k.index, reason, CanonicalRecord::Practitioner(record)));
                    continue;
                }
                Decision::Hold(id, ambiguity) => {
                    counts.held += 1;
                    held.push(seal::candidate(&cipher, source, k, &id, ambiguity, now));
                    continue;
                }
                Decision::Unchanged => {
                    counts.unchanged += 1;
                    continue;
                }
                Decision::Update(id, tier) => {
                    counts.updated += 1;
                    (id, tier.as_str(), false)
                }
                Decision::Create(id) => {
                    counts.created += 1;
                    (id, "created", true)
                }
            };
            // An STR nobody holds yet becomes this person's; one a person kept apart from this
            // one holds stays theirs.
            let new_str = (k.indexes.str_index.clone())
                .filter(|s| known.holder(s).is_none())
                .zip(k.record.str_number.clone());
            let latest = k.record.source.clone();
            // The golden record before this row, to tell which fields it changes, and whether
            // its source is new to the person (their records merge).
            let before = match creates {
                true => None,
                false => {
                    let current = sources.current(&cipher, &id)?;
                    let joins = !current.iter().any(|c| c.system == k.record.source.system);
                    Some((golden::merge(current, latest.clone()).0, joins))
                }
            };
            let contribution = Contribution {
                system: k.record.source.system.clone(),
                connector_id: source.connector_id.to_string(),
                at: latest.updated_at.clone().unwrap_or_else(|| now.to_string()),
                record: k.record,
            };
            let merged = sources.add(&cipher, &id, contribution, k.content_hash.clone(), matched_by, now)?;
            let (golden, provenance) = golden::merge(merged, latest);
            // A golden record that is this row as sent (the person's only source: every
            // create of a first sync) has the row's indexes and content hash; computing them
            // again was four blind indexes and a JSON copy of the record hashed per row.
            let (indexes, content_hash) = match merged {
                [only] if *only.record == golden => (k.indexes, k.content_hash),
                _ => (index::indexes(blind, &golden), index::content_hash(blind, &golden)),
            };
            let system = &golden.source.system;
            events.push(match &before {
                None => crate::events::practitioner_created(&id, system, source.connector_id, now),
                Some((before, joins)) => {
                    let fields = golden::changed(before, &golden);
                    let kind = match joins {
                        true => crate::events::Change::Merged { matched_by },
                        false => crate::events::Change::Updated,
                    };
                    crate::events::practitioner_changed(kind, &id, system, source.connector_id, &fields, now)
                }
            });
            let mut row = seal::practitioner(&cipher, &id, &golden, indexes, content_hash, &provenance, now);
            derived.add(blind, &id, (&golden).into(), now);
            if let Some((str_index, number)) = new_str {
                strs.push(seal::str_held(&cipher, str_index.clone(), &id, &number, now));
                known.remember_str(str_index, &id);
            }
            // The golden STR's index is the holder's alone (it is unique): a person whose
            // golden STR another holds keeps the number, sealed, without the index.
            if (row.str_index.as_deref()).is_some_and(|s| known.holder(s).is_some_and(|holder| holder != id)) {
                row.str_index = None;
            }
            let keys = MatchKeys {
                id: id.clone(),
                str_index: row.str_index.clone(),
                nik_index: row.nik_index.clone(),
                match_index: row.match_index.clone(),
                twin_index: row.twin_index.clone(),
                content_hash: row.content_hash.clone(),
            };
            known.remember(keys);
            match row_of_id.get(&id) {
                Some(&pos) => {
                    rows[pos] = SealedPractitioner {
                        created_at: rows[pos].created_at,
                        ..row
                    }
                }
                None => {
                    row_of_id.insert(id, rows.len());
                    rows.push(row);
                }
            }
        }
        counts.rejected = rejects.len() as i64;
        let reject_rows = rejects
            .iter()
            .map(|(_, reason, record)| seal::reject(&cipher, source, reason, record, now))
            .collect();
        let mut rejected: Vec<(u32, String)> = rejects.into_iter().map(|(i, reason, _)| (i as u32, reason)).collect();
        rejected.sort_by_key(|(i, _)| *i);
        Ok(Merged {
            counts,
            events,
            practitioners: rows,
            strs,
            derived,
            held,
            sources,
            accounts,
            observations,
            reject_rows,
            rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Practitioner;
    use hub_registry::CreatePolicy;

    /// A cell's text between backticks.
    fn code(cell: &str) -> &str {
        cell.trim().trim_start_matches('`').trim_end_matches('`')
    }

    /// `"<5000 × a>"` as 5000 a's: long values written short in the docs.
    fn expand(value: &mut serde_json::Value) {
        if let Some(text) = value.as_str()
            && let Some((count, c)) = text
                .strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .and_then(|t| t.split_once(" × "))
        {
            *value = c.repeat(count.parse().expect("a count")).into();
        }
    }

    #[test]
    fn every_rule_in_docs_validation_md_refuses_its_example_with_its_reason() {
        let doc = include_str!("../../../docs/validation.md");
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let sample = serde_json::to_value(Practitioner::sample()).unwrap();
        let accepted = CanonicalRecord::Practitioner(Practitioner::sample());
        let quotas = crate::runtime::Quotas::default();
        assert_eq!(refusal(&accepted, &quotas, CreatePolicy::WithActiveStr, today), None);
        let mut rules = 0;
        for line in doc.lines().filter(|l| l.starts_with("| ") && l.contains("| `{")) {
            let cells: Vec<&str> = line.split(" | ").collect();
            let (example, reason) = (code(cells[1]), code(cells[2].trim_end_matches(" |")));
            let mut record = sample.clone();
            let changes: serde_json::Value = serde_json::from_str(example).expect("the example is JSON");
            for (field, value) in changes.as_object().unwrap() {
                let mut value = value.clone();
                expand(&mut value);
                record[field] = value;
            }
            let record: Practitioner = serde_json::from_value(record).expect("the example is a practitioner");
            let refused = refusal(
                &CanonicalRecord::Practitioner(record),
                &quotas,
                CreatePolicy::WithActiveStr,
                today,
            );
            assert!(
                refused.as_deref().is_some_and(|r| r.starts_with(reason)),
                "docs/validation.md: {example} is refused with {refused:?}, not {reason:?}"
            );
            rules += 1;
        }
        assert!(rules >= 20, "the tables were read: {rules} rules");
    }
}
