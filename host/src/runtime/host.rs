//! The store data of one plugin instance: the sandbox's WASI context (no files, no
//! environment, no sockets), its HTTP egress policy, its memory limiter, its quotas and what
//! it has used of them, and each capability's state and backend for the job it serves.

use super::auth::TokenSource;
use super::cassette::Transport;
use super::http::Egress;
use super::limits::MemoryLimiter;
use super::log::{Log, LogSink};
use super::quotas::Quotas;
use super::records::{Queue, RecordSink};
use super::secrets::SecretSource;
use super::state::StateStore;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What the host does behind each capability for the job an instance serves: one backend
/// per capability, each the narrow trait its runtime file defines. The manager provides the
/// real ones (one `ConnectorJob` serves them all); benchmarks and tests may provide others.
#[derive(Clone)]
pub struct Backends {
    pub records: Arc<dyn RecordSink>,
    pub state: Arc<dyn StateStore>,
    pub secrets: Arc<dyn SecretSource>,
    pub tokens: Arc<dyn TokenSource>,
    pub logs: Arc<dyn LogSink>,
}

impl Backends {
    /// Every capability served by `job`.
    pub fn of<J: RecordSink + StateStore + SecretSource + TokenSource + LogSink>(job: Arc<J>) -> Self {
        Self {
            records: job.clone(),
            state: job.clone(),
            secrets: job.clone(),
            tokens: job.clone(),
            logs: job,
        }
    }
}

/// Per-job facts the sandbox needs besides its [`Backends`].
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// The plugin's name, as metrics label its calls.
    pub plugin: String,
    /// Hosts (`host` or `host:port`) the plugin may call.
    pub egress: Vec<String>,
    /// W3C trace id of the run, propagated on every outgoing request.
    pub trace_id: String,
    /// This connector's quotas.
    pub quotas: Quotas,
    /// When the sync run this call belongs to must end, if sooner than the call deadline.
    pub run_deadline: Option<Instant>,
    /// Cancels the call (the connector was disabled or deleted).
    pub cancel: Cancel,
    /// Where requests go once allowed: the network, or a cassette (`hub plugin run
    /// --record`, `hub plugin test`).
    pub transport: Transport,
}

impl JobSpec {
    /// Default quotas, no run deadline, cancelled by nobody.
    pub fn new(egress: Vec<String>, trace_id: String) -> Self {
        Self {
            plugin: String::new(),
            egress,
            trace_id,
            quotas: Quotas::default(),
            run_deadline: None,
            cancel: Cancel::default(),
            transport: Transport::Network,
        }
    }
}

/// Cancels a running plugin call from outside it, with a reason: the call ends at its next
/// await — in guest code at the next epoch tick (10 ms), in a host call at once.
#[derive(Clone, Debug)]
pub struct Cancel(Arc<watch::Sender<Option<String>>>);

impl Default for Cancel {
    fn default() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }
}

impl Cancel {
    /// Ends the call with `reason`; the first reason given stands.
    pub fn cancel(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.0.send_if_modified(|slot| {
            let first = slot.is_none();
            if first {
                *slot = Some(reason);
            }
            first
        });
    }

    /// Resolves with the reason once cancelled.
    pub async fn cancelled(&self) -> String {
        let mut receiver = self.0.subscribe();
        // The sender lives in `self`, so waiting cannot fail while `self` is borrowed.
        let reason = receiver.wait_for(Option::is_some).await.map(|r| r.clone());
        reason.ok().flatten().unwrap_or_default()
    }
}

/// `T` of `Store<T>` for plugin instances.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(super) egress: Egress,
    pub(super) limiter: MemoryLimiter,
    pub(super) stderr: MemoryOutputPipe,
    pub(super) quotas: Quotas,
    /// Epoch ticks (10 ms each) of guest execution so far, against the CPU budget.
    pub(super) cpu_ticks: u64,
    pub(super) records: Arc<dyn RecordSink>,
    /// Pages queued (`records.queue`) and not yet stored.
    pub(super) queue: Queue,
    pub(super) state: Arc<dyn StateStore>,
    pub(super) secrets: Arc<dyn SecretSource>,
    pub(super) tokens: Arc<dyn TokenSource>,
    pub(super) log: Log,
}

impl HostState {
    pub(super) fn new(spec: JobSpec, backends: Backends, memory_bytes: usize, deadline: Instant) -> Self {
        let stderr = MemoryOutputPipe::new(64 * 1024);
        // Deny by default: no preopened directories, no environment, no arguments, and no
        // sockets (wasi:sockets checks every address against a check that refuses all).
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress: Egress::new(
                spec.egress,
                spec.trace_id,
                &spec.quotas,
                deadline,
                backends.logs.clone(),
                spec.transport,
            ),
            limiter: MemoryLimiter::new(memory_bytes),
            stderr,
            quotas: spec.quotas,
            cpu_ticks: 0,
            records: backends.records,
            queue: Queue::default(),
            state: backends.state,
            secrets: backends.secrets,
            tokens: backends.tokens,
            log: Log::new(backends.logs),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}
