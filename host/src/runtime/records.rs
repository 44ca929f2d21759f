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

    /// A queued batch: starts at once what needs no earlier batch stored (validating,
    /// indexing; the pipeline also stores it when no earlier batch is about the same people)
    /// and returns the rest, which the queue awaits in order. By default nothing starts
    /// early.
    fn begin(self: Arc<Self>, batch: Vec<CanonicalRecord>) -> BoxFuture<'static, Result<EmitOutcome, PluginError>> {
        Box::pin(async move { self.emit(batch).await })
    }
}

/// What a plugin queued, in order: pages being stored (begun by [`RecordSink::begin`]), and
/// the cursors it saved after them.
enum Step {
    Store(BoxFuture<'static, Result<EmitOutcome, PluginError>>),
    SaveCursor(String),
}

/// How many steps wait behind the one being stored. One: a page of 1,000 records is stored in
/// ~100 ms and fetched in ~25 ms (BENCHMARKS.md, sync), so a deeper queue would only hold
/// more pages in memory; the plugin waits in `queue` instead (back-pressure). The waiting
/// page is validated and indexed meanwhile, as is the one the plugin waits to hand over.
const WAITING_STEPS: usize = 1;

/// The per-instance state of `queue`: one task stores the queued steps in order while the
/// plugin goes on; it stops at the first step it cannot store, and from then on the call
/// stores nothing more (a plugin that ignores the error cannot get a cursor kept past the
/// unstored page). Dropping the queue (the call was cut off) aborts the task: nothing of a
/// call outlives it, and what was not stored is fetched again from the last kept cursor.
#[derive(Default)]
pub(super) struct Queue {
    steps: Option<mpsc::Sender<Step>>,
    task: Option<JoinHandle<wasmtime::Result<Result<(), PluginError>>>>,
    /// Why a queued page could not be stored, once one could not.
    failed: Option<PluginError>,
}

impl Queue {
    fn start(&mut self, state: Arc<dyn StateStore>, max_keys: u32) -> &mpsc::Sender<Step> {
        let (sender, mut steps) = mpsc::channel(WAITING_STEPS);
        self.task = Some(tokio::spawn(async move {
            while let Some(step) = steps.recv().await {
                match step {
                    Step::Store(storing) => {
                        if let Err(error) = storing.await {
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

    /// Whether nothing was queued that may not be done yet, and nothing failed.
    fn is_idle(&self) -> bool {
        self.task.is_none() && self.failed.is_none()
    }

    /// Waits until every queued step is done; what stopped the queue, if something did.
    pub(super) async fn drain(&mut self) -> wasmtime::Result<Result<(), PluginError>> {
        self.steps = None;
        if let Some(task) = self.task.take()
            && let Err(error) = task
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?
        {
            self.failed = Some(error);
        }
        Ok(self.failed.clone().map_or(Ok(()), Err))
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
        if let Some(error) = &self.queue.failed {
            return Ok(Err(error.clone()));
        }
        let steps = match &self.queue.steps {
            Some(steps) => steps,
            None => self.queue.start(self.state.clone(), self.quotas.state_keys),
        };
        if steps.send(step).await.is_ok() {
            return Ok(Ok(()));
        }
        // The task stopped at a step it could not store, and said why.
        self.queue.drain().await
    }

    /// Saves the cursor after what is queued, or at once when nothing is.
    pub(super) async fn save_cursor_in_order(&mut self, cursor: String) -> wasmtime::Result<()> {
        if self.queue.is_idle() {
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

    /// Refuses a batch over `records_per_emit`; `call` names it (`an emit`, `a queued page`).
    fn check_batch_size(&self, call: &str, batch: &[super::bindings::CanonicalRecord]) -> wasmtime::Result<()> {
        let limit = self.quotas.records_per_emit;
        if batch.len() > limit as usize {
            return Err(QuotaExceeded {
                quota: "records_per_emit",
                limit: limit.into(),
                what: format!("{call} of {} records; emit page by page", batch.len()),
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
        self.check_batch_size("an emit", &batch)?;
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
        self.check_batch_size("a queued page", &batch)?;
        let batch = batch.into_iter().map(Into::into).collect();
        self.enqueue(Step::Store(self.records.clone().begin(batch))).await
    }
}

/// Links this capability's interface of the latest contract, and the record types it uses.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    types::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)?;
    records::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

#[cfg(test)]
mod tests {
    use super::super::bindings::latest::healthforce::hub::{records::Host as _, state::Host as _};
    use super::super::{Backends, JobSpec, LogLevel, LogSink, SecretSource, TokenSource};
    use super::*;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// Stores pages slowly, refuses the `refuse`-th (1-based), and records what it kept:
    /// `page N` for each stored page, `cursor C` for each cursor; and in `events`, when each
    /// queued page was begun and stored.
    #[derive(Default)]
    struct Recorder {
        refuse: usize,
        pages: Mutex<usize>,
        kept: Mutex<Vec<String>>,
        begun: Mutex<usize>,
        events: Mutex<Vec<String>>,
    }

    impl RecordSink for Recorder {
        fn emit(&self, _batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let page = {
                    let mut pages = self.pages.lock().unwrap();
                    *pages += 1;
                    *pages
                };
                if page == self.refuse {
                    return Err(PluginError::Unavailable("the disk is full".into()));
                }
                self.kept.lock().unwrap().push(format!("page {page}"));
                self.events.lock().unwrap().push(format!("stored {page}"));
                Ok(EmitOutcome {
                    accepted: 0,
                    rejected: Vec::new(),
                })
            })
        }

        fn begin(self: Arc<Self>, batch: Vec<CanonicalRecord>) -> BoxFuture<'static, Result<EmitOutcome, PluginError>> {
            let page = {
                let mut begun = self.begun.lock().unwrap();
                *begun += 1;
                *begun
            };
            self.events.lock().unwrap().push(format!("begun {page}"));
            Box::pin(async move { self.emit(batch).await })
        }
    }

    impl StateStore for Recorder {
        fn state_get(&self, _key: String) -> BoxFuture<'_, wasmtime::Result<Option<String>>> {
            Box::pin(async { Ok(None) })
        }

        fn state_set(&self, _key: String, value: String, _max_keys: u32) -> BoxFuture<'_, wasmtime::Result<bool>> {
            self.kept.lock().unwrap().push(format!("cursor {value}"));
            Box::pin(async { Ok(true) })
        }
    }

    impl TokenSource for Recorder {
        fn bearer_token(&self, _credential: String) -> BoxFuture<'_, Result<String, PluginError>> {
            Box::pin(async { Err(PluginError::Config("no credentials here".into())) })
        }

        fn invalidate_token(&self, _credential: String, _token: String) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    impl SecretSource for Recorder {
        fn secret(&self, _name: String) -> BoxFuture<'_, Result<String, PluginError>> {
            Box::pin(async { Err(PluginError::Config("no secrets here".into())) })
        }
    }

    impl LogSink for Recorder {
        fn log(&self, _level: LogLevel, _message: String, _fields: Vec<(String, String)>, _from_plugin: bool) {}

        fn flush_logs(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    fn host(recorder: &Arc<Recorder>) -> HostState {
        let spec = JobSpec::new(Vec::new(), "0".repeat(32));
        let deadline = Instant::now() + Duration::from_secs(60);
        HostState::new(spec, Backends::of(recorder.clone()), 64 << 20, deadline)
    }

    /// What a pull does: queue a page, save its cursor, and go on — here even after an error,
    /// as a careless plugin might.
    async fn pull(host: &mut HostState, pages: usize) -> Vec<bool> {
        let mut accepted = Vec::new();
        for page in 1..=pages {
            accepted.push(host.queue(Vec::new()).await.unwrap().is_ok());
            let _ = host.save_cursor(page.to_string()).await;
        }
        accepted
    }

    #[tokio::test]
    async fn queued_pages_and_their_cursors_are_kept_in_order() {
        let recorder = Arc::new(Recorder::default());
        let mut host = host(&recorder);
        assert_eq!(pull(&mut host, 3).await, [true, true, true]);
        assert!(host.queue.drain().await.unwrap().is_ok());
        assert_eq!(
            *recorder.kept.lock().unwrap(),
            ["page 1", "cursor 1", "page 2", "cursor 2", "page 3", "cursor 3"]
        );
    }

    #[tokio::test]
    async fn a_queued_page_is_begun_while_the_page_before_it_is_stored() {
        let recorder = Arc::new(Recorder::default());
        let mut host = host(&recorder);
        pull(&mut host, 3).await;
        assert!(host.queue.drain().await.unwrap().is_ok());
        let events = recorder.events.lock().unwrap().clone();
        let at = |event: &str| events.iter().position(|e| e == event).unwrap();
        assert!(at("begun 2") < at("stored 1"), "{events:?}");
        assert!(at("begun 3") < at("stored 2"), "{events:?}");
        assert_eq!(
            *recorder.kept.lock().unwrap(),
            ["page 1", "cursor 1", "page 2", "cursor 2", "page 3", "cursor 3"]
        );
    }

    #[tokio::test]
    async fn after_a_page_cannot_be_stored_nothing_later_is_kept_even_if_the_plugin_goes_on() {
        let recorder = Arc::new(Recorder {
            refuse: 2,
            ..Recorder::default()
        });
        let mut host = host(&recorder);
        let accepted = pull(&mut host, 5).await;
        assert!(
            !accepted[4],
            "the queue keeps refusing once a page failed: {accepted:?}"
        );
        let error = host.queue.drain().await.unwrap().unwrap_err();
        assert_eq!(error.reason(), "the disk is full");
        // A direct emit or state write after the failure stores nothing either.
        assert!(host.emit(Vec::new()).await.unwrap().is_err());
        assert!(host.save_cursor("9".into()).await.is_err());
        assert_eq!(*recorder.kept.lock().unwrap(), ["page 1", "cursor 1"]);
    }
}
