//! The audit trail: who did what to which object, logins and refused credentials, PII reads,
//! plugin installs and one summary per stored batch.
//!
//! Entries are append-only and chained: each entry's MAC is HMAC-SHA256, under a key only the
//! hub can unwrap, over its number, its fields and the seal of the entry before it; the head
//! row holds the seal of the last entry (a MAC over its number and MAC), which is also what
//! the next entry chains to. Editing, deleting or truncating entries, even
//! with full write access to the database, breaks the chain, and [`Auditor::verify`] names
//! the first broken entry.

use crate::store::audit::AuditEntry;
use crate::store::{self, Db, StoreError};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type HmacSha256 = Hmac<Sha256>;

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// An audited event. `details` never holds personal data or secrets.
pub struct Event {
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub outcome: Outcome,
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(actor: impl Into<String>, action: &'static str, target: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            action,
            target: target.into(),
            outcome: Outcome::Success,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

fn entry(event: &Event) -> AuditEntry {
    AuditEntry {
        at: store::Timestamp::now(),
        actor: event.actor.clone(),
        action: event.action.to_string(),
        target: event.target.clone(),
        outcome: event.outcome.as_str().to_string(),
        details: event.details.to_string(),
    }
}

/// Where the chain breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("audit entry {seq} was changed after it was written (its MAC does not match)")]
    Edited { seq: i64 },
    #[error("audit entry {seq} is missing: it was deleted")]
    Deleted { seq: i64 },
    #[error("audit entries {first} to {last} are missing: the end of the log was deleted")]
    Truncated { first: i64, last: i64 },
    #[error("the audit head was changed: it does not seal entry {seq}")]
    Head { seq: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Auditor {
    db: Db,
    key: [u8; 32],
    /// Where entries go to be appended together, when grouped.
    group: Option<mpsc::Sender<Pending>>,
}

/// An entry waiting for its group's commit.
struct Pending {
    entry: AuditEntry,
    reply: oneshot::Sender<Result<i64, Arc<StoreError>>>,
}

/// Most entries appended in one transaction.
const MAX_GROUP: usize = 256;

impl Auditor {
    /// Appends each entry in its own transaction (the CLI, restores).
    pub fn new(db: Db, key: [u8; 32]) -> Self {
        Self { db, key, group: None }
    }

    /// Appends entries recorded at about the same time in one transaction — one head update,
    /// one multi-row insert — answering each caller after the commit that holds its entry.
    /// Every append takes the head's lock, so the log takes one append at a time whatever
    /// the callers; grouping makes each one count (a page of personal data read by 256
    /// clients at once waits for one commit, not 256 in a row). The appending task ends when
    /// the last clone of this auditor is dropped.
    pub fn grouped(db: Db, key: [u8; 32]) -> Self {
        let (sender, receiver) = mpsc::channel(MAX_GROUP * 4);
        tokio::spawn(Self::new(db.clone(), key).append_groups(receiver));
        Self {
            db,
            key,
            group: Some(sender),
        }
    }

    async fn append_groups(self, mut receiver: mpsc::Receiver<Pending>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
            let entries: Vec<AuditEntry> = group.iter().map(|p| p.entry.clone()).collect();
            let appended = self.append(&entries).await.map_err(Arc::new);
            for (offset, pending) in group.drain(..).enumerate() {
                let _ = pending.reply.send(appended.clone().map(|first| first + offset as i64));
            }
        }
    }

    async fn append(&self, entries: &[AuditEntry]) -> Result<i64, StoreError> {
        self.db
            .append_audit(entries, |seq, previous, entry| self.seal(seq, previous, entry))
            .await
    }

    /// Appends `event`, trying again for a moment when the database is busy (a SQLite
    /// writer). A failure after that is logged, not returned: an action that already
    /// happened must not be reported as failed because its audit entry could not be written.
    /// Where the action can wait for its entry, use [`Auditor::record_in`] instead.
    pub async fn record(&self, event: Event) {
        let mut result = self.try_record(&event).await;
        for pause_ms in [100, 400, 1_600] {
            if result.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
            result = self.try_record(&event).await;
        }
        if let Err(error) = result {
            tracing::error!(%error, action = event.action, target = %event.target, "audit entry not written");
        }
    }

    /// Appends `event`; its number once committed.
    pub async fn try_record(&self, event: &Event) -> Result<i64, StoreError> {
        let entry = entry(event);
        let Some(group) = &self.group else {
            return self.append(std::slice::from_ref(&entry)).await;
        };
        let (reply, answer) = oneshot::channel();
        group
            .send(Pending { entry, reply })
            .await
            .map_err(|_| StoreError::Stopping)?;
        answer
            .await
            .map_err(|_| StoreError::Stopping)?
            .map_err(StoreError::Grouped)
    }

    /// Appends `event` inside the caller's transaction: the action it records and the entry
    /// commit together, or neither does.
    pub async fn record_in(&self, tx: &mut crate::store::Tx, event: &Event) -> Result<i64, StoreError> {
        crate::store::audit::append_audit_in(tx, &[entry(event)], |seq, previous, entry| {
            self.seal(seq, previous, entry)
        })
        .await
    }

    /// The MAC of entry `seq` after `previous`, and the head's MAC over it.
    fn seal(&self, seq: i64, previous: &[u8], entry: &AuditEntry) -> (Vec<u8>, Vec<u8>) {
        let mac = self.entry_mac(seq, previous, entry);
        let head = self.head_mac(seq, &mac);
        (mac, head)
    }

    /// Walks the whole log and checks every MAC, the numbering and the head.
    ///
    /// The head is read before the walk: an entry appended while the walk runs (a live hub,
    /// a restored hub resuming its sync) is checked like the others instead of being taken
    /// for a truncation, and the head must seal the entry it named when it was read.
    pub async fn verify(&self) -> Result<i64, AuditError> {
        let (head_seq, head_mac) = self.db.audit_head().await?;
        let mut previous = Vec::new();
        let mut sealed_at_head = (head_seq == 0).then(Vec::new);
        let mut expected = 1;
        loop {
            let page = self.db.audit_entries(expected - 1, 1000).await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                if row.seq != expected {
                    return Err(ChainError::Deleted { seq: expected }.into());
                }
                let mac = self.entry_mac(row.seq, &previous, &row.entry);
                if !bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..], &row.mac[..])) {
                    return Err(ChainError::Edited { seq: row.seq }.into());
                }
                // Entries chain through the head seal of the entry before them, which is
                // what the head held when they were appended.
                previous = self.head_mac(row.seq, &mac);
                if row.seq == head_seq {
                    sealed_at_head = Some(previous.clone());
                }
                expected += 1;
            }
        }
        let last = expected - 1;
        if head_seq > last {
            return Err(ChainError::Truncated {
                first: last + 1,
                last: head_seq,
            }
            .into());
        }
        let sealed = sealed_at_head.unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&sealed[..], &head_mac[..])) {
            return Err(ChainError::Head { seq: head_seq }.into());
        }
        // Entries past the head read first were appended since, with the head moved along in
        // the same transaction; a head behind them now was put back.
        if last > head_seq && self.db.audit_head().await?.0 < last {
            return Err(ChainError::Head { seq: last }.into());
        }
        Ok(last)
    }

    fn entry_mac(&self, seq: i64, previous: &[u8], fields: &AuditEntry) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"audit-entry-v1\0");
        mac.update(&seq.to_be_bytes());
        // The time's text form: what the log held when times were text, so entries written
        // then still verify.
        let at = fields.at.to_string();
        for part in [
            previous,
            at.as_bytes(),
            fields.actor.as_bytes(),
            fields.action.as_bytes(),
            fields.target.as_bytes(),
            fields.outcome.as_bytes(),
            fields.details.as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }

    fn head_mac(&self, seq: i64, last_mac: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"audit-head-v1\0");
        mac.update(&seq.to_be_bytes());
        mac.update(last_mac);
        mac.finalize().into_bytes().to_vec()
    }
}
