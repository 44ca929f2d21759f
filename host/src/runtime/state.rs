//! `healthforce:hub/state`: durable key/value per connector instance.

use super::bindings::since_v0_1_0::healthforce::hub::state;
use super::host::HostState;

/// The state key under which `save-cursor` stores the sync cursor.
pub const CURSOR_KEY: &str = "cursor";

impl state::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.job.state_get(key).await
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.job.state_set(key, value).await
    }

    async fn save_cursor(&mut self, cursor: String) -> wasmtime::Result<()> {
        self.job.state_set(CURSOR_KEY.into(), cursor).await
    }
}
