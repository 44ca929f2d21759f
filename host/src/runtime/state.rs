//! `healthforce:hub/state`: durable key/value per connector instance, within its quotas
//! (value and cursor size, number of keys). Values are text without NUL, the same on both
//! database backends.

use super::bindings::latest::healthforce::hub::state;
use super::host::HostState;
use super::quotas::QuotaExceeded;
use futures::future::BoxFuture;

/// The durable key/value state of the connector an instance serves.
pub trait StateStore: Send + Sync + 'static {
    fn state_get(&self, key: String) -> BoxFuture<'_, wasmtime::Result<Option<String>>>;
    /// False, with nothing stored, when `key` is new and the connector holds `max_keys`
    /// keys already.
    fn state_set(&self, key: String, value: String, max_keys: u32) -> BoxFuture<'_, wasmtime::Result<bool>>;
}

/// The state key under which `save-cursor` stores the sync cursor.
pub const CURSOR_KEY: &str = "cursor";

impl HostState {
    async fn store_state(
        &mut self,
        key: String,
        value: String,
        quota: &'static str,
        limit: u32,
    ) -> wasmtime::Result<()> {
        let exceeded = |what: String| QuotaExceeded {
            quota,
            limit: limit.into(),
            what,
        };
        if value.len() > limit as usize {
            return Err(exceeded(format!("a value of {} bytes for state key {key:?}", value.len())).into());
        }
        if key.is_empty() || key.len() > 256 || key.contains('\0') || value.contains('\0') {
            return Err(wasmtime::Error::msg(
                "plugin stored state the hub refuses: keys are 1-256 bytes and neither key nor value may contain NUL",
            ));
        }
        let max_keys = self.quotas.state_keys;
        if !self.state.state_set(key.clone(), value, max_keys).await? {
            return Err(QuotaExceeded {
                quota: "state_keys",
                limit: max_keys.into(),
                what: format!("a new state key {key:?}"),
            }
            .into());
        }
        Ok(())
    }
}

impl state::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.state.state_get(key).await
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        let limit = self.quotas.state_value_bytes;
        self.store_state(key, value, "state_value_bytes", limit).await
    }

    async fn save_cursor(&mut self, cursor: String) -> wasmtime::Result<()> {
        let limit = self.quotas.cursor_bytes;
        self.store_state(CURSOR_KEY.into(), cursor, "cursor_bytes", limit).await
    }
}

/// Links this capability's interface of the latest contract.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    state::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}
