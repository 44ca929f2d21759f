//! Group commit for jobs that must be durable before their sender is answered (a webhook's
//! `202`, an MQTT message's ack).
//!
//! Jobs stored at about the same time go into one multi-row insert, and each caller gets its
//! answer after the commit that holds its job. A few committers share the queue, so one
//! gathers the next group while another commits; nobody waits for a group to fill.

use crate::store::Db;
use crate::store::jobs::NewJob;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the hub is stopping")]
    Stopping,
    /// The cause is logged, not handed to the sender.
    #[error("the hub's database failed; send it again")]
    Store,
}

struct Pending {
    job: NewJob,
    reply: oneshot::Sender<Result<bool, CommitError>>,
}

type SharedReceiver = Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>;

pub(super) struct Committer {
    sender: mpsc::Sender<Pending>,
    /// Taken by `start`.
    receiver: Mutex<Option<SharedReceiver>>,
    max_batch: usize,
}

impl Committer {
    pub(super) fn new(max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (sender, receiver) = mpsc::channel(max_batch * 8);
        Self {
            sender,
            receiver: Mutex::new(Some(Arc::new(tokio::sync::Mutex::new(receiver)))),
            max_batch,
        }
    }

    /// Starts `count` committer tasks (one on SQLite, which has one writer).
    pub(super) fn start(&self, db: &Db, count: usize) -> Vec<JoinHandle<()>> {
        let Some(receiver) = self.receiver.lock().unwrap().take() else {
            return Vec::new();
        };
        (0..count.max(1))
            .map(|_| tokio::spawn(commit_loop(db.clone(), receiver.clone(), self.max_batch)))
            .collect()
    }

    /// Stores `job`; true once committed, false when a job with its dedup key was stored
    /// before (or is in the same group).
    pub(super) async fn store(&self, job: NewJob) -> Result<bool, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { job, reply })
            .await
            .map_err(|_| CommitError::Stopping)?;
        answer.await.map_err(|_| CommitError::Stopping)?
    }
}

/// Takes what is waiting (up to `max_batch`), stores it in one statement, answers each.
async fn commit_loop(db: Db, receiver: SharedReceiver, max_batch: usize) {
    loop {
        let mut batch = Vec::with_capacity(max_batch);
        {
            let mut receiver = receiver.lock().await;
            match receiver.recv().await {
                Some(pending) => batch.push(pending),
                None => return,
            }
            while batch.len() < max_batch {
                match receiver.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
        }
        // The same keyed job twice in one group: the first is stored, the rest are duplicates.
        let mut seen = HashSet::new();
        let (unique, repeated): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| match &p.job.dedup_key {
            Some(key) => seen.insert((p.job.connector_id.clone(), p.job.kind, key.clone())),
            None => true,
        });
        for pending in repeated {
            let _ = pending.reply.send(Ok(false));
        }
        let (jobs, replies): (Vec<_>, Vec<_>) = unique.into_iter().map(|p| (p.job, p.reply)).unzip();
        match db.enqueue_jobs(&jobs).await {
            Ok(inserted) => {
                let inserted: HashSet<String> = inserted.into_iter().collect();
                for (job, reply) in jobs.iter().zip(replies) {
                    let _ = reply.send(Ok(inserted.contains(&job.id)));
                }
            }
            Err(error) => {
                tracing::error!(%error, count = jobs.len(), "storing jobs failed; their senders are told to retry");
                for reply in replies {
                    let _ = reply.send(Err(CommitError::Store));
                }
            }
        }
    }
}
