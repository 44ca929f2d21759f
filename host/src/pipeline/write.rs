//! Stage `write`: one transaction per batch, one statement per table. The stored
//! practitioners the batch merges into are locked and their contributions read again first;
//! if another writer merged into them since the batch read them, this merge would lose its
//! change, so the batch starts over (`StoreError::Concurrent`).

use super::derive::Derived;
use super::merge::Sources;

use crate::store::accounts::SealedAccount;
use crate::store::events::StoredEvent;
use crate::store::observations::ObservationRecord;
use crate::store::practitioners::{SealedPractitioner, SealedStr};
use crate::store::rejects::RejectRecord;
use crate::store::review::Candidate;
use crate::store::runs::RunCounts;
use crate::store::{self, Db, StoreError};
use std::collections::HashSet;

/// Everything a batch stores.
pub(super) struct Rows {
    pub practitioners: Vec<SealedPractitioner>,
    pub strs: Vec<SealedStr>,
    pub derived: Derived,
    /// Rows held for review.
    pub held: Vec<Candidate>,
    /// Which of them were stored before this batch.
    pub stored_ids: HashSet<String>,
    pub sources: Sources,
    pub accounts: Vec<SealedAccount>,
    pub rejects: Vec<RejectRecord>,
    pub observations: Vec<ObservationRecord>,
    /// What the batch changed, for the outbox.
    pub events: Vec<StoredEvent>,
}

/// Stores `rows`, completing `counts` with the observations inserted, and adds the counts
/// to run `run_id`.
pub(super) async fn write(db: &Db, run_id: Option<&str>, rows: Rows, counts: &mut RunCounts) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let touched: Vec<String> = rows
        .practitioners
        .iter()
        .filter(|r| rows.stored_ids.contains(&r.id))
        .map(|r| r.id.clone())
        .collect();
    if !touched.is_empty() {
        store::practitioners::lock(&mut tx, &touched).await?;
        let now_stored = store::practitioners::contribution_hashes(&mut tx, &touched).await?;
        if !rows.sources.still_current(&touched, &now_stored) {
            return Err(StoreError::Concurrent);
        }
    }
    store::practitioners::upsert(&mut tx, &rows.practitioners).await?;
    store::practitioners::insert_strs(&mut tx, &rows.strs).await?;
    rows.derived.write(&mut tx, touched).await?;
    store::review::hold(&mut tx, &rows.held).await?;
    store::practitioners::upsert_contributions(&mut tx, &rows.sources.into_written()).await?;
    store::accounts::upsert(&mut tx, &rows.accounts).await?;
    store::rejects::insert(&mut tx, &rows.rejects).await?;
    // One already stored (a redelivered message) counts as unchanged.
    let inserted = store::observations::insert(&mut tx, &rows.observations).await? as i64;
    counts.created += inserted;
    counts.unchanged += rows.observations.len() as i64 - inserted;
    if let Some(run_id) = run_id {
        store::runs::add_counts(&mut tx, run_id, *counts).await?;
    }
    // Last: it holds the outbox's seq counter until the commit.
    store::events::insert(&mut tx, &rows.events).await?;
    tx.commit().await?;
    Ok(())
}
