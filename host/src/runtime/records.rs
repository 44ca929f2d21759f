//! `healthforce:hub/records`: batches go to the host pipeline (validate, match, encrypt,
//! store), at most `records_per_emit` records a call — at once (`emit`), or queued to be
//! stored while the plugin fetches the next page (`queue`).

use super::bindings::latest::healthforce::hub::{records, types};
use super::host::HostState;
use super::quotas::QuotaExceeded;
use super::state::{self, CURSOR_KEY, StateStore};
use super::{EmitOutcome, PluginError};
use crate::model::CanonicalRecord;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where a plugin instance's records go: the pipeline, for the job the instance serves.
pub trait RecordSink: Send + Sync + 'static {
    /// Validate, match, encrypt and store a batch.
    fn emit(&self, batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>>;
}

/// What a plugin queued, in order: pages to store, and the cursors it saved after them.
enum Step {
    Store(Vec<CanonicalRecord>),
    SaveCursor(String),
}

/// How many steps wait behind the one being stored. One: a page of 1,000 records is stored in
/// ~100 ms and fetched in ~25 ms (BENCHMARKS.md, sync), so a deeper queue would only hold
/// more pages in memory; the plugin waits in `queue` instead (back-pressure).
const WAITING_STEPS: usize = 1;

/// The per-instance state of `queue`: one task stores the queued steps in order while the
/// plugin goes on; it stops at the first step it cannot store, so no cursor saved after an
/// unstored page is kept. Dropping the queue (the call was cut off) aborts the task: nothing
/// of a call outlives it, and what was not stored is fetched again from the last kept cursor.
#[derive(Default)]
pub(super) struct Queue {
    steps: Option<mpsc::Sender<Step>>,
    task: Option<JoinHandle<wasmtime::Result<Result<(), PluginError>>>>,
}

impl Queue {
    fn start(
        &mut self,
        records: Arc<dyn RecordSink>,
        state: Arc<dyn StateStore>,
        max_keys: u32,
    ) -> &mpsc::Sender<Step> {
        let (sender, mut steps) = mpsc::channel(WAITING_STEPS);
        self.task = Some(tokio::spawn(async move {
            while let Some(step) = steps.recv().await {
                match step {
                    Step::Store(batch) => {
                        if let Err(error) = records.emit(batch).await {
                            return Ok(Err(error));
                        }
                    }
                    Step::SaveCursor(cursor) => state::write(&*state, CURSOR_KEY.into(), cursor, max_keys).await?,
                }
            }
            Ok(Ok(()))
        }));
        self.steps.insert(sender)
    }

    /// Whether steps were queued that may not be done yet.
    pub(super) fn is_active(&self) -> bool {
        self.task.is_some()
    }

    /// Waits until every queued step is done; what stopped the queue, if something did.
    pub(super) async fn drain(&mut self) -> wasmtime::Result<Result<(), PluginError>> {
        self.steps = None;
        match self.task.take() {
            None => Ok(Ok(())),
            Some(task) => task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl HostState {
    /// Adds `step` to the queue, starting its task on first use; waits while the queue is
    /// full. Fails with what stopped the queue, if an earlier step could not be stored.
    async fn enqueue(&mut self, step: Step) -> wasmtime::Result<Result<(), PluginError>> {
        let steps = match &self.queue.steps {
            Some(steps) => steps,
            None => self
                .queue
                .start(self.records.clone(), self.state.clone(), self.quotas.state_keys),
        };
        if steps.send(step).await.is_ok() {
            return Ok(Ok(()));
        }
        // The task stopped at a step it could not store, and said why.
        self.queue.drain().await
    }

    /// Saves the cursor after what is queued, or at once when nothing is.
    pub(super) async fn save_cursor_in_order(&mut self, cursor: String) -> wasmtime::Result<()> {
        if !self.queue.is_active() {
            return state::write(&*self.state, CURSOR_KEY.into(), cursor, self.quotas.state_keys).await;
        }
        match self.enqueue(Step::SaveCursor(cursor)).await? {
            Ok(()) => Ok(()),
            Err(error) => Err(queue_failed(error)),
        }
    }

    /// Waits for what is queued before a call that must see it stored (state reads and
    /// writes); an unstored page ends the call.
    pub(super) async fn wait_for_queue(&mut self) -> wasmtime::Result<()> {
        self.queue.drain().await?.map_err(queue_failed)
    }

    fn check_batch_size(&self, batch: &[super::bindings::CanonicalRecord]) -> wasmtime::Result<()> {
        let limit = self.quotas.records_per_emit;
        if batch.len() > limit as usize {
            return Err(QuotaExceeded {
                quota: "records_per_emit",
                limit: limit.into(),
                what: format!("a batch of {} records; emit page by page", batch.len()),
            }
            .into());
        }
        Ok(())
    }
}

/// A queued page the hub could not store, as the end of a call that cannot report it.
fn queue_failed(error: PluginError) -> wasmtime::Error {
    wasmtime::Error::msg(format!("a page queued earlier could not be stored: {}", error.reason()))
}

impl types::Host for HostState {}

impl records::Host for HostState {
    async fn emit(
        &mut self,
        batch: Vec<super::bindings::CanonicalRecord>,
    ) -> wasmtime::Result<Result<EmitOutcome, PluginError>> {
        self.check_batch_size(&batch)?;
        if let Err(error) = self.queue.drain().await? {
            return Ok(Err(error));
        }
        // Into the hub's own model at the edge: fields move, nothing is copied.
        Ok(self.records.emit(batch.into_iter().map(Into::into).collect()).await)
    }

    async fn queue(
        &mut self,
        batch: Vec<super::bindings::CanonicalRecord>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        self.check_batch_size(&batch)?;
        self.enqueue(Step::Store(batch.into_iter().map(Into::into).collect()))
            .await
    }
}

/// Links this capability's interface of the latest contract, and the record types it uses.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    types::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)?;
    records::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}
