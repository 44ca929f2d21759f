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
    /// Refuses what no state may hold: a value over `limit` bytes (the `quota` it counts
    /// against), a key of 0 or over 256 bytes, NUL in either.
    fn check_state(&self, key: &str, value: &str, quota: &'static str, limit: u32) -> wasmtime::Result<()> {
        if value.len() > limit as usize {
            return Err(QuotaExceeded {
                quota,
                limit: limit.into(),
                what: format!("a value of {} bytes for state key {key:?}", value.len()),
            }
            .into());
        }
        if key.is_empty() || key.len() > 256 || key.contains('\0') || value.contains('\0') {
            return Err(wasmtime::Error::msg(
                "plugin stored state the hub refuses: keys are 1-256 bytes and neither key nor value may contain NUL",
            ));
        }
        Ok(())
    }
}

/// Stores `key` in `state`, unless it is new and the connector holds `max_keys` keys already.
pub(super) async fn write(state: &dyn StateStore, key: String, value: String, max_keys: u32) -> wasmtime::Result<()> {
    if !state.state_set(key.clone(), value, max_keys).await? {
        return Err(QuotaExceeded {
            quota: "state_keys",
            limit: max_keys.into(),
            what: format!("a new state key {key:?}"),
        }
        .into());
    }
    Ok(())
}

/// State calls first wait for the pages the plugin queued (`records.queue`), so a plugin
/// reads back what it wrote in order; only `save-cursor` is itself queued behind them.
impl state::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.wait_for_queue().await?;
        self.state.state_get(key).await
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.check_state(&key, &value, "state_value_bytes", self.quotas.state_value_bytes)?;
        self.wait_for_queue().await?;
        write(&*self.state, key, value, self.quotas.state_keys).await
    }

    async fn save_cursor(&mut self, cursor: String) -> wasmtime::Result<()> {
        self.check_state(CURSOR_KEY, &cursor, "cursor_bytes", self.quotas.cursor_bytes)?;
        self.save_cursor_in_order(cursor).await
    }
}

/// Links this capability's interface of the latest contract.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    state::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}
