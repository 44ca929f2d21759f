//! Host bindings of the plugin contract, one module per supported contract version.
//!
//! `latest` is the contract in `wit/connector.wit`; the host, the pipeline and the SDK speak
//! it. When the contract changes, the WIT of the version being replaced is frozen under
//! `host/wit/since_vX_Y_Z/` and keeps a module here that links its imports to the latest
//! host capabilities and adapts its exports, so plugins built against it still run (Zed's
//! extension host does the same). [`ConnectorPre`] holds a component of either version.

mod into_model;
pub mod since_v0_1_0;

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
    CanonicalRecord, EmitOutcome, Error as PluginError, Message, RejectedRow, SyncRequest, SyncSummary, WebhookRequest,
    WebhookResponse,
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
pub const SUPPORTED_CONTRACTS: &[&str] = &[since_v0_1_0::CONTRACT, "0.2.0", CONTRACT];

/// The contract version of `wit/connector.wit`.
pub const CONTRACT: &str = "0.2.1";

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
    since_v0_1_0::add_to_linker(linker)
}

/// A component ready to instantiate, by the contract version it exports.
pub enum ConnectorPre {
    /// With the version of the latest line the component imports.
    Latest(latest::ConnectorPre<HostState>, &'static str),
    V0_1_0(since_v0_1_0::ConnectorPre<HostState>),
}

/// An instance of a plugin, by the contract version it exports.
pub enum Connector {
    Latest(latest::Connector),
    V0_1_0(since_v0_1_0::Connector),
}

impl ConnectorPre {
    /// The component's exports checked against each supported contract, newest first; the
    /// error names what the latest contract wanted.
    pub fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        let contract = imported_contract(pre.component());
        match latest::ConnectorPre::new(pre.clone()) {
            Ok(pre) => Ok(Self::Latest(pre, contract)),
            Err(latest_error) => since_v0_1_0::ConnectorPre::new(pre)
                .map(Self::V0_1_0)
                .map_err(|_| latest_error),
        }
    }

    /// The contract version the component was built against.
    pub fn contract(&self) -> &'static str {
        match self {
            Self::Latest(_, contract) => contract,
            Self::V0_1_0(_) => since_v0_1_0::CONTRACT,
        }
    }

    pub async fn instantiate_async(&self, store: &mut Store<HostState>) -> wasmtime::Result<Connector> {
        Ok(match self {
            Self::Latest(pre, _) => Connector::Latest(pre.instantiate_async(store).await?),
            Self::V0_1_0(pre) => Connector::V0_1_0(pre.instantiate_async(store).await?),
        })
    }
}

/// The contract version whose `healthforce:hub` interfaces `component` imports; the latest
/// when it imports none.
fn imported_contract(component: &wasmtime::component::Component) -> &'static str {
    component
        .component_type()
        .imports(component.engine())
        .find_map(|(name, _)| {
            let version = name.strip_prefix("healthforce:hub/")?.split_once('@')?.1;
            SUPPORTED_CONTRACTS.iter().copied().find(|c| *c == version)
        })
        .unwrap_or(CONTRACT)
}

impl Connector {
    pub async fn call_sync(
        &self,
        store: &mut Store<HostState>,
        request: &SyncRequest,
    ) -> wasmtime::Result<Result<SyncSummary, PluginError>> {
        match self {
            Self::Latest(c) => c.call_sync(store, request).await,
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
            Self::V0_1_0(c) => c.call_handle_messages(store, messages, config).await,
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
