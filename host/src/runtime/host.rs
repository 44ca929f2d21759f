//! The store data of one plugin instance: the sandbox's WASI context (no files, no
//! environment, no sockets), its HTTP egress policy, its memory limiter, and the job it
//! serves.

use super::http::Egress;
use super::limits::MemoryLimiter;
use crate::runtime::bindings::since_v0_1_0::healthforce::hub::types::EmitOutcome;
use crate::runtime::bindings::{CanonicalRecord, PluginError};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Instant;
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
    /// `state.set`; `state.save-cursor` is `state_set` of the cursor key.
    fn state_set(&self, key: String, value: String) -> BoxFuture<'_, wasmtime::Result<()>>;
    /// `auth.bearer-token`.
    fn bearer_token(&self, credential: String) -> BoxFuture<'_, Result<String, PluginError>>;
    /// `auth.invalidate`.
    fn invalidate_token(&self, credential: String, token: String) -> BoxFuture<'_, ()>;
    /// `secrets.get`: only names granted to this connector instance.
    fn secret(&self, name: String) -> BoxFuture<'_, Result<String, PluginError>>;
    /// `log.write`, and the host's own events about this job (`from_plugin` false).
    fn log(&self, level: LogLevel, message: String, fields: Vec<(String, String)>, from_plugin: bool);
}

/// Per-job facts the sandbox needs besides the [`JobHost`].
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// Hosts (`host` or `host:port`) the plugin may call.
    pub egress: Vec<String>,
    /// W3C trace id of the run, propagated on every outgoing request.
    pub trace_id: String,
}

/// `T` of `Store<T>` for plugin instances.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(super) egress: Egress,
    pub(super) limiter: MemoryLimiter,
    pub(super) stderr: MemoryOutputPipe,
    pub(super) deadline: Instant,
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
            egress: Egress::new(spec.egress, spec.trace_id, job.clone()),
            limiter: MemoryLimiter::new(memory_bytes),
            stderr,
            deadline,
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
