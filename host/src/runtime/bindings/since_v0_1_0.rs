//! Contract 0.1.0 (`host/wit/since_v0_1_0/`, frozen). Its records are the latest ones
//! unchanged, so its imports are the latest host capabilities; its one export that changed,
//! `handle-webhook` (one request a call), is adapted in [`super::Connector`].

pub const CONTRACT: &str = "0.1.0";

wasmtime::component::bindgen!({
    path: "wit/since_v0_1_0",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "healthforce:hub/types": super::latest::healthforce::hub::types,
    },
});

use super::latest::healthforce::hub as latest;
use super::{CanonicalRecord, EmitOutcome, PluginError};
use crate::runtime::host::HostState;
use healthforce::hub::{auth, log, records, secrets, state};
use wasmtime::component::{HasSelf, Linker};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // The types interface holds no functions; its instance only has to exist.
    linker.instance("healthforce:hub/types@0.1.0")?;
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
    async fn emit(&mut self, batch: Vec<CanonicalRecord>) -> wasmtime::Result<Result<EmitOutcome, PluginError>> {
        latest::records::Host::emit(self, batch).await
    }
}

impl log::Host for HostState {
    async fn write(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        latest::log::Host::write(self, level.into(), message, fields).await
    }
}

impl From<log::Level> for latest::log::Level {
    fn from(level: log::Level) -> Self {
        match level {
            log::Level::Trace => Self::Trace,
            log::Level::Debug => Self::Debug,
            log::Level::Info => Self::Info,
            log::Level::Warn => Self::Warn,
            log::Level::Error => Self::Error,
        }
    }
}
