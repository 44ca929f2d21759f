//! Host bindings of the plugin contract, one module per supported contract version.
//!
//! `latest` is the contract in `wit/connector.wit`; the host, the pipeline and the SDK speak
//! it. When the contract changes, the WIT of the version being replaced is frozen under
//! `host/wit/since_vX_Y_Z/` and keeps a module here that links its imports to the latest
//! host capabilities and adapts its exports, so plugins built against it still run (Zed's
//! extension host does the same). [`ConnectorPre`] holds a component of either version.

mod into_model;
pub mod since_v0_1_0;
pub mod since_v0_2_1;

pub mod latest {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

pub use latest::healthforce::hub::types::{
    CanonicalRecord, EmitOutcome, Error as PluginError, Event as PluginEvent, Message, RejectedRow, SyncRequest,
    SyncSummary, WebhookRequest, WebhookResponse,
};

use super::host::HostState;
use wasmtime::Store;
use wasmtime::component::{InstancePre, Linker};

impl PluginError {
    /// What the plugin (or the host, for its own failures) said went wrong.
    pub fn reason(&self) -> &str {
        let (Self::Unauthorized(reason)
        | Self::Unavailable(reason)
        | Self::InvalidInput(reason)
        | Self::Config(reason)
        | Self::Unsupported(reason)) = self;
        reason
    }

    /// What kind of failure this is, in words: what a run's error starts with.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "external system unavailable",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidInput(_) => "invalid input",
            Self::Config(_) => "configuration error",
            Self::Unsupported(_) => "unsupported",
        }
    }
}

/// The contract versions this host runs, oldest first. A minor version only adds (0.2.1 adds
/// `records.queue`), so wasmtime's linker, which resolves imports by semver, runs a 0.2.0
/// component on the 0.2.1 bindings.
pub const SUPPORTED_CONTRACTS: &[&str] = &[since_v0_1_0::CONTRACT, "0.2.0", since_v0_2_1::CONTRACT, CONTRACT];

/// The contract version of `wit/connector.wit`.
pub const CONTRACT: &str = "0.3.0";

/// `wit/` of the latest contract, file by file (path under `wit/`, text): what a plugin in
/// another language generates its bindings from (`hub plugin wit`).
pub const WIT: &[(&str, &str)] = &[
    ("connector.wit", include_str!("../../../../wit/connector.wit")),
    ("deps/cli.wit", include_str!("../../../../wit/deps/cli.wit")),
    ("deps/clocks.wit", include_str!("../../../../wit/deps/clocks.wit")),
    (
        "deps/filesystem.wit",
        include_str!("../../../../wit/deps/filesystem.wit"),
    ),
    ("deps/http.wit", include_str!("../../../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../../../wit/deps/io.wit")),
    ("deps/random.wit", include_str!("../../../../wit/deps/random.wit")),
    ("deps/sockets.wit", include_str!("../../../../wit/deps/sockets.wit")),
];

/// In the module of a frozen contract version: implements its host imports by calling the
/// latest ones (the same functions under an older package version) and defines its
/// `add_to_linker`. `$types` is its `types` interface, which holds no functions: its
/// instance only has to exist. `$records` holds the `records` functions it has beyond `emit`.
macro_rules! delegate_imports_to_latest {
    ($types:literal, { $($records:tt)* }) => {
        use super::latest::healthforce::hub as latest;
        use super::{CanonicalRecord, EmitOutcome, PluginError};
        use crate::runtime::host::HostState;
        use healthforce::hub::{auth, log, records, secrets, state};
        use wasmtime::component::{HasSelf, Linker};

        pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
            linker.instance($types)?;
            secrets::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
            auth::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
            state::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
            records::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
            log::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
            Ok(())
        }

        impl secrets::Host for HostState {
            async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, PluginError>> {
                latest::secrets::Host::get(self, name).await
            }
        }

        impl auth::Host for HostState {
            async fn bearer_token(&mut self, credential: String) -> wasmtime::Result<Result<String, PluginError>> {
                latest::auth::Host::bearer_token(self, credential).await
            }

            async fn invalidate(&mut self, credential: String, token: String) -> wasmtime::Result<()> {
                latest::auth::Host::invalidate(self, credential, token).await
            }
        }

        impl state::Host for HostState {
            async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
                latest::state::Host::get(self, key).await
            }

            async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
                latest::state::Host::set(self, key, value).await
            }

            async fn save_cursor(&mut self, cursor: String) -> wasmtime::Result<()> {
                latest::state::Host::save_cursor(self, cursor).await
            }
        }

        impl records::Host for HostState {
            async fn emit(
                &mut self,
                batch: Vec<CanonicalRecord>,
            ) -> wasmtime::Result<Result<EmitOutcome, PluginError>> {
                latest::records::Host::emit(self, batch).await
            }

            $($records)*
        }

        impl log::Host for HostState {
            async fn write(
                &mut self,
                level: log::Level,
                message: String,
                fields: Vec<(String, String)>,
            ) -> wasmtime::Result<()> {
                let level = match level {
                    log::Level::Trace => latest::log::Level::Trace,
                    log::Level::Debug => latest::log::Level::Debug,
                    log::Level::Info => latest::log::Level::Info,
                    log::Level::Warn => latest::log::Level::Warn,
                    log::Level::Error => latest::log::Level::Error,
                };
                latest::log::Host::write(self, level, message, fields).await
            }
        }
    };
}
use delegate_imports_to_latest;

/// Writes [`WIT`] into `dir` (`dir/connector.wit`, `dir/deps/…`).
pub fn write_wit(dir: &std::path::Path) -> std::io::Result<()> {
    for (path, text) in WIT {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// Adds the imports of every supported contract version to `linker`: each capability links
/// its latest interface itself; earlier versions link theirs onto the same capabilities.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use super::{auth, log, records, secrets, state};
    records::add_to_linker(linker)?;
    secrets::add_to_linker(linker)?;
    auth::add_to_linker(linker)?;
    state::add_to_linker(linker)?;
    log::add_to_linker(linker)?;
    since_v0_1_0::add_to_linker(linker)?;
    since_v0_2_1::add_to_linker(linker)
}

/// A component ready to instantiate, by the contract version it exports.
pub enum ConnectorPre {
    Latest(latest::ConnectorPre<HostState>),
    /// With the version of the 0.2 line the component imports.
    V0_2(since_v0_2_1::ConnectorPre<HostState>, &'static str),
    V0_1_0(since_v0_1_0::ConnectorPre<HostState>),
}

/// An instance of a plugin, by the contract version it exports.
pub enum Connector {
    Latest(latest::Connector),
    V0_2(since_v0_2_1::Connector),
    V0_1_0(since_v0_1_0::Connector),
}

impl ConnectorPre {
    /// The component's exports checked against each supported contract, newest first; the
    /// error names what the latest contract wanted.
    pub fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        let latest_error = match latest::ConnectorPre::new(pre.clone()) {
            Ok(pre) => return Ok(Self::Latest(pre)),
            Err(error) => error,
        };
        if let Ok(v0_2) = since_v0_2_1::ConnectorPre::new(pre.clone()) {
            return Ok(Self::V0_2(v0_2, imported_contract(pre.component())));
        }
        since_v0_1_0::ConnectorPre::new(pre)
            .map(Self::V0_1_0)
            .map_err(|_| latest_error)
    }

    /// The contract version the component was built against.
    pub fn contract(&self) -> &'static str {
        match self {
            Self::Latest(_) => CONTRACT,
            Self::V0_2(_, contract) => contract,
            Self::V0_1_0(_) => since_v0_1_0::CONTRACT,
        }
    }

    pub async fn instantiate_async(&self, store: &mut Store<HostState>) -> wasmtime::Result<Connector> {
        Ok(match self {
            Self::Latest(pre) => Connector::Latest(pre.instantiate_async(store).await?),
            Self::V0_2(pre, _) => Connector::V0_2(pre.instantiate_async(store).await?),
            Self::V0_1_0(pre) => Connector::V0_1_0(pre.instantiate_async(store).await?),
        })
    }
}

/// The version of the 0.2 line whose `healthforce:hub` interfaces `component` imports:
/// 0.2.1 when it imports none.
fn imported_contract(component: &wasmtime::component::Component) -> &'static str {
    component
        .component_type()
        .imports(component.engine())
        .find_map(|(name, _)| {
            let version = name.strip_prefix("healthforce:hub/")?.split_once('@')?.1;
            SUPPORTED_CONTRACTS.iter().copied().find(|c| *c == version)
        })
        .unwrap_or(since_v0_2_1::CONTRACT)
}

impl Connector {
    pub async fn call_sync(
        &self,
        store: &mut Store<HostState>,
        request: &SyncRequest,
    ) -> wasmtime::Result<Result<SyncSummary, PluginError>> {
        match self {
            Self::Latest(c) => c.call_sync(store, request).await,
            Self::V0_2(c) => c.call_sync(store, request).await,
            Self::V0_1_0(c) => c.call_sync(store, request).await,
        }
    }

    /// One answer per request, in order. A 0.1.0 plugin takes them one call at a time, in
    /// this one instance.
    pub async fn call_handle_webhooks(
        &self,
        store: &mut Store<HostState>,
        requests: &[WebhookRequest],
    ) -> wasmtime::Result<Vec<Result<WebhookResponse, PluginError>>> {
        match self {
            Self::Latest(c) => c.call_handle_webhooks(store, requests).await,
            Self::V0_2(c) => c.call_handle_webhooks(store, requests).await,
            Self::V0_1_0(c) => {
                let mut answers = Vec::with_capacity(requests.len());
                for request in requests {
                    answers.push(c.call_handle_webhook(&mut *store, request).await?);
                }
                Ok(answers)
            }
        }
    }

    pub async fn call_handle_messages(
        &self,
        store: &mut Store<HostState>,
        messages: &[Message],
        config: &str,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        match self {
            Self::Latest(c) => c.call_handle_messages(store, messages, config).await,
            Self::V0_2(c) => c.call_handle_messages(store, messages, config).await,
            Self::V0_1_0(c) => c.call_handle_messages(store, messages, config).await,
        }
    }

    /// Hands events to an outbound connector; a plugin built before 0.3.0 has no `deliver`.
    pub async fn call_deliver(
        &self,
        store: &mut Store<HostState>,
        events: &[PluginEvent],
        config: &str,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        match self {
            Self::Latest(c) => c.call_deliver(store, events, config).await,
            Self::V0_2(_) | Self::V0_1_0(_) => Ok(Err(PluginError::Unsupported(format!(
                "the plugin was built against a contract before {CONTRACT}, which has no `deliver`; rebuild it with \
                 the current SDK"
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_wit_is_every_file_of_the_wit_directory() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut on_disk = Vec::new();
        for dir in [root.clone(), root.join("deps")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "wit") {
                    on_disk.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = super::WIT.iter().map(|(path, _)| path.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "add the new file to bindings::WIT");
    }
}
