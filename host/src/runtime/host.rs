//! The store data of one plugin instance: the sandbox's WASI context (no files, no
//! environment, no sockets), its HTTP egress policy, its memory limiter, its quotas and what
//! it has used of them, and the job it serves.

use super::http::Egress;
use super::limits::MemoryLimiter;
use super::quotas::Quotas;
use crate::model::CanonicalRecord;
use crate::runtime::bindings::EmitOutcome;
use crate::runtime::bindings::PluginError;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Severity of a connector log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// What the host does for one job's plugin instance behind each import. The manager provides
/// the real one (pipeline, database, credentials, secrets); benchmarks and tests may provide
/// others. One implementation serves one job, so it knows its connector and run.
pub trait JobHost: Send + Sync + 'static {
    /// `records.emit`: validate, match, encrypt and store a batch.
    fn emit(&self, batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>>;
    /// `state.get`.
    fn state_get(&self, key: String) -> BoxFuture<'_, wasmtime::Result<Option<String>>>;
    /// `state.set`; `state.save-cursor` is `state_set` of the cursor key. False, with
    /// nothing stored, when `key` is new and the connector holds `max_keys` keys already.
    fn state_set(&self, key: String, value: String, max_keys: u32) -> BoxFuture<'_, wasmtime::Result<bool>>;
    /// `auth.bearer-token`.
    fn bearer_token(&self, credential: String) -> BoxFuture<'_, Result<String, PluginError>>;
    /// `auth.invalidate`.
    fn invalidate_token(&self, credential: String, token: String) -> BoxFuture<'_, ()>;
    /// `secrets.get`: only names granted to this connector instance.
    fn secret(&self, name: String) -> BoxFuture<'_, Result<String, PluginError>>;
    /// `log.write`, and the host's own events about this job (`from_plugin` false). Lines
    /// may be buffered; [`JobHost::flush_logs`] stores them.
    fn log(&self, level: LogLevel, message: String, fields: Vec<(String, String)>, from_plugin: bool);
    /// Stores the buffered log lines; called every [`LOG_FLUSH_LINES`] plugin lines, so a
    /// plugin that logs a lot never makes the host hold its whole log in memory.
    fn flush_logs(&self) -> BoxFuture<'_, ()>;
}

/// Plugin log lines between two flushes to the store.
pub const LOG_FLUSH_LINES: u32 = 256;

/// Per-job facts the sandbox needs besides the [`JobHost`].
#[derive(Clone, Debug)]
pub struct JobSpec {
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
}

impl JobSpec {
    /// Default quotas, no run deadline, cancelled by nobody.
    pub fn new(egress: Vec<String>, trace_id: String) -> Self {
        Self {
            egress,
            trace_id,
            quotas: Quotas::default(),
            run_deadline: None,
            cancel: Cancel::default(),
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

/// What one call has used of its quotas so far.
#[derive(Default)]
pub(super) struct Usage {
    pub log_lines: u32,
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
    pub(super) usage: Usage,
    /// Epoch ticks (10 ms each) of guest execution so far, against the CPU budget.
    pub(super) cpu_ticks: u64,
    pub job: Arc<dyn JobHost>,
}

impl HostState {
    pub(super) fn new(spec: JobSpec, job: Arc<dyn JobHost>, memory_bytes: usize, deadline: Instant) -> Self {
        let stderr = MemoryOutputPipe::new(64 * 1024);
        // Deny by default: no preopened directories, no environment, no arguments, and no
        // sockets (wasi:sockets checks every address against a check that refuses all).
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress: Egress::new(spec.egress, spec.trace_id, &spec.quotas, deadline, job.clone()),
            limiter: MemoryLimiter::new(memory_bytes),
            stderr,
            quotas: spec.quotas,
            usage: Usage::default(),
            cpu_ticks: 0,
            job,
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
