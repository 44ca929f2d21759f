//! The plugin runtime: one wasmtime engine (component model, async, pooling allocator, epoch
//! interruption), one linker with every host capability, compiled components cached on disk,
//! an `InstancePre` per plugin version, and a fresh instance per job (a sync, or the queued
//! events of one connector).
//!
//! `bindings/` holds one module per contract version the host runs (the latest, and each
//! earlier one frozen with its WIT under `host/wit/since_vX_Y_Z/`, linked to the latest
//! capabilities); records cross into the hub's own model (`crate::model`) at that edge.
//!
//! A host capability is one file here plus one interface in `wit/`: `http.rs`
//! (wasi:http egress; `cassette.rs` records and replays it), `secrets.rs`, `auth.rs`, `state.rs`, `records.rs`, `log.rs`. Each
//! defines the narrow backend trait it calls for the job an instance serves
//! ([`RecordSink`], [`StateStore`], [`SecretSource`], [`TokenSource`], [`LogSink`]; bundled
//! as [`Backends`]) and keeps its per-instance state in [`HostState`]. What a
//! call may use is in `limits.rs` (memory, CPU, deadlines) and `quotas.rs` (what it hands
//! the host); docs/limits.md lists both.

mod auth;
pub mod bindings;
mod cache;
pub mod cassette;
mod engine;
mod host;
pub mod http;
mod limits;
mod log;
pub mod quotas;
mod records;
mod secrets;
pub mod state;

pub use auth::TokenSource;
pub use bindings::PluginError;
pub use bindings::{
    EmitOutcome, Message, PluginEvent, RejectedRow, SyncRequest, SyncSummary, WebhookRequest, WebhookResponse,
};
pub use host::{Backends, Cancel, HostState, JobSpec};
pub use limits::{Clock, DeadlineExceeded, Limits, MemoryLimitExceeded};
pub use log::{LOG_FLUSH_LINES, LogLevel, LogSink};
pub use quotas::{QuotaExceeded, Quotas};
pub use records::RecordSink;
pub use secrets::SecretSource;
pub use state::StateStore;

use bindings::{Connector, ConnectorPre};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tracing::Instrument;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, UpdateDeadline};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("could not set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("plugin {digest} is not a valid component for this host: {reason}")]
    Load { digest: String, reason: String },
    #[error("compile cache at {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
}

/// Why a call into a plugin did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    #[error(transparent)]
    Memory(#[from] MemoryLimitExceeded),
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    /// Stopped from outside (the connector was disabled or deleted).
    #[error("cancelled: {0}")]
    Cancelled(String),
    #[error("plugin trapped: {0}")]
    Trap(String),
    #[error("could not instantiate the plugin: {0}")]
    Instantiate(String),
    /// A page the plugin queued could not be stored.
    #[error("the hub could not store a page the plugin queued: {0}")]
    Store(String),
}

impl CallError {
    /// Why the sandbox stopped the call, as `hub_plugin_traps_total` labels it; `None`
    /// when it was not the plugin's doing.
    fn trap_reason(&self) -> Option<&'static str> {
        match self {
            Self::Deadline(DeadlineExceeded { clock: Clock::Cpu, .. }) => Some("cpu"),
            Self::Deadline(_) => Some("deadline"),
            Self::Memory(_) => Some("memory"),
            Self::Quota(_) => Some("quota"),
            Self::Trap(_) => Some("trap"),
            Self::Instantiate(_) => Some("instantiate"),
            Self::Cancelled(_) | Self::Store(_) => None,
        }
    }

    fn from_wasmtime(error: wasmtime::Error) -> Self {
        let error = match error.downcast::<DeadlineExceeded>() {
            Ok(e) => return Self::Deadline(e),
            Err(error) => error,
        };
        let error = match error.downcast::<MemoryLimitExceeded>() {
            Ok(e) => return Self::Memory(e),
            Err(error) => error,
        };
        match error.downcast::<QuotaExceeded>() {
            Ok(e) => Self::Quota(e),
            Err(error) => Self::Trap(format!("{error:#}")),
        }
    }
}

/// What makes `bytes` no WebAssembly component at all, in one sentence: the common
/// mistakes (a text file, a zip, a core module built for the wrong target) before the
/// compiler's own, longer, complaint.
pub fn component_problem(bytes: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\0asm";
    // The version and layer after the magic: a core module is 1.0, a component 0xd.1.
    const MODULE: &[u8] = &[1, 0, 0, 0];
    const COMPONENT: &[u8] = &[0x0d, 0, 1, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Some(format!(
            "the file ({} bytes) is not WebAssembly: it does not start with the WebAssembly magic bytes; give the \
             .wasm that `cargo build --target wasm32-wasip2` wrote",
            bytes.len()
        ));
    }
    match &bytes[4..8] {
        COMPONENT => None,
        MODULE => Some(
            "the file is a core WebAssembly module, not a component: build it for wasm32-wasip2 (wasm32-wasip1 and \
             wasm32-unknown-unknown make modules)"
                .into(),
        ),
        other => Some(format!(
            "the file is WebAssembly of an unknown version or layer (bytes {}); build it for wasm32-wasip2 with \
             this hub's SDK",
            other.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
        )),
    }
}

/// A plugin version ready to instantiate: compiled, linked, pre-instantiated.
pub struct LoadedPlugin {
    pub digest: String,
    pre: ConnectorPre,
}

impl LoadedPlugin {
    /// The contract version the component was built against.
    pub fn contract(&self) -> &'static str {
        self.pre.contract()
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: PathBuf,
    loaded: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    _epoch: engine::EpochTicker,
}

impl Runtime {
    /// An engine and linker for plugins; compiled components are cached under `cache_dir`.
    pub fn new(limits: Limits, cache_dir: PathBuf) -> Result<Self, RuntimeError> {
        let engine = engine::build(&limits).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = build_linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        cache::prepare(&cache_dir)?;
        let epoch = engine::EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            limits,
            cache_dir,
            loaded: RwLock::default(),
            _epoch: epoch,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The plugin version with this digest, when it is loaded already.
    pub fn loaded(&self, digest: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.read().unwrap().get(digest).cloned()
    }

    /// The plugin version with this digest, compiling (or loading from the disk cache) and
    /// pre-instantiating it on first use.
    pub async fn load(&self, digest: &str, component: &[u8]) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        if let Some(plugin) = self.loaded(digest) {
            return Ok(plugin);
        }
        if let Some(reason) = component_problem(component) {
            return Err(RuntimeError::Load {
                digest: digest.into(),
                reason,
            });
        }
        let compiled = cache::load_or_compile(&self.engine, &self.cache_dir, digest, component).await?;
        let load_error = |e: wasmtime::Error| RuntimeError::Load {
            digest: digest.into(),
            reason: format!(
                "{}; it must target the healthforce:hub connector world (build it with the SDK)",
                e.root_cause()
            ),
        };
        let instance_pre = self.linker.instantiate_pre(&compiled).map_err(load_error)?;
        let pre = ConnectorPre::new(instance_pre).map_err(load_error)?;
        let plugin = Arc::new(LoadedPlugin {
            digest: digest.to_string(),
            pre,
        });
        self.loaded.write().unwrap().insert(digest.to_string(), plugin.clone());
        Ok(plugin)
    }

    /// Runs the plugin's `sync` export in a fresh instance.
    pub async fn sync(
        &self,
        plugin: &LoadedPlugin,
        spec: JobSpec,
        backends: Backends,
        request: SyncRequest,
    ) -> Result<Result<SyncSummary, PluginError>, CallError> {
        self.call(plugin, "sync", spec, backends, async |connector, store| {
            connector.call_sync(store, &request).await
        })
        .await
    }

    /// Runs the plugin's `handle-webhooks` export on `requests` in a fresh instance: one
    /// answer per request, in order.
    pub async fn handle_webhooks(
        &self,
        plugin: &LoadedPlugin,
        spec: JobSpec,
        backends: Backends,
        requests: Vec<WebhookRequest>,
    ) -> Result<Vec<Result<WebhookResponse, PluginError>>, CallError> {
        self.call(plugin, "handle_webhooks", spec, backends, async |connector, store| {
            connector.call_handle_webhooks(store, &requests).await
        })
        .await
    }

    /// Runs the plugin's `handle-messages` export on a batch in a fresh instance.
    pub async fn handle_messages(
        &self,
        plugin: &LoadedPlugin,
        spec: JobSpec,
        backends: Backends,
        messages: Vec<Message>,
        config: String,
    ) -> Result<Result<(), PluginError>, CallError> {
        self.call(plugin, "handle_messages", spec, backends, async |connector, store| {
            connector.call_handle_messages(store, &messages, &config).await
        })
        .await
    }

    /// Runs the plugin's `deliver` export on a batch of the hub's events in a fresh instance.
    pub async fn deliver(
        &self,
        plugin: &LoadedPlugin,
        spec: JobSpec,
        backends: Backends,
        events: Vec<PluginEvent>,
        config: String,
    ) -> Result<Result<(), PluginError>, CallError> {
        self.call(plugin, "deliver", spec, backends, async |connector, store| {
            connector.call_deliver(store, &events, &config).await
        })
        .await
    }

    /// Instantiates `plugin` in a new store with this job's limits and runs `f` on it, until
    /// it returns, runs out of CPU time or wall-clock time, or `spec.cancel` stops it.
    /// Stopping drops the call's future and then its store: a host call in progress (an
    /// HTTP request, a WASI sleep) is dropped with it, so nothing of the call outlives it.
    async fn call<R>(
        &self,
        plugin: &LoadedPlugin,
        export: &'static str,
        spec: JobSpec,
        backends: Backends,
        f: impl AsyncFnOnce(&Connector, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let started = Instant::now();
        let call_deadline = started + self.limits.call_deadline();
        let (deadline, clock) = match spec.run_deadline {
            Some(run) if run < call_deadline => (run, Clock::Run),
            _ => (call_deadline, Clock::Call),
        };
        let over = DeadlineExceeded {
            clock,
            seconds: match clock {
                Clock::Run => self.limits.run_deadline().as_secs_f64(),
                _ => self.limits.call_deadline().as_secs_f64(),
            },
        };
        let cancel = spec.cancel.clone();
        let logs = backends.logs.clone();
        let metrics = crate::metrics::metrics();
        let name = spec.plugin.clone();
        let state = HostState::new(spec, backends, self.limits.memory_bytes(), deadline);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Every epoch tick (10 ms) the plugin yields to the executor, so a busy plugin never
        // starves other tasks; each tick it was running counts against its CPU budget.
        let cpu_budget = (self.limits.cpu_secs * 1000 / engine::EPOCH_TICK.as_millis() as u64).max(1);
        let cpu_secs = self.limits.cpu_secs as f64;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let ticks = &mut ctx.data_mut().cpu_ticks;
            *ticks += 1;
            if *ticks > cpu_budget {
                Err(DeadlineExceeded {
                    clock: Clock::Cpu,
                    seconds: cpu_secs,
                }
                .into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let result = {
            let run = async {
                let connector = plugin
                    .pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
                metrics.instantiated(&name, started.elapsed());
                let called = Instant::now();
                let value = f(&connector, &mut store).await.map_err(CallError::from_wasmtime);
                metrics.plugin_call(&name, export, called.elapsed());
                let value = value?;
                // The call ends once what it queued is stored (or could not be).
                match store.data_mut().queue.drain().await.map_err(CallError::from_wasmtime)? {
                    Ok(()) => Ok(value),
                    Err(error) => Err(CallError::Store(error.reason().to_string())),
                }
            };
            let span = tracing::debug_span!("plugin.call", plugin = %name, export);
            tokio::select! {
                result = tokio::time::timeout_at(deadline.into(), run).instrument(span) => {
                    result.unwrap_or(Err(CallError::Deadline(over)))
                }
                reason = cancel.cancelled() => Err(CallError::Cancelled(reason)),
            }
        };
        // A refused request may have been turned into any answer by the plugin: the breach
        // is what ends the call.
        let result = match store.data_mut().egress.breach.take() {
            Some(breach) => Err(CallError::Quota(breach)),
            None => result,
        };
        metrics.traps(&name, "egress_denied", store.data().egress.denied);
        if let Some(reason) = result.as_ref().err().and_then(CallError::trap_reason) {
            metrics.traps(&name, reason, 1);
        }
        let stderr = store.data().stderr.contents();
        if !stderr.is_empty() {
            logs.log(
                LogLevel::Warn,
                format!("plugin stderr: {}", String::from_utf8_lossy(&stderr).trim()),
                vec![],
                true,
            );
        }
        result
    }
}

fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::add_to_linker(&mut linker)?;
    Ok(linker)
}
