//! `healthforce:hub/secrets`: secrets granted to this connector instance, and no others.

use super::PluginError;
use super::bindings::latest::healthforce::hub::secrets;
use super::host::HostState;

impl secrets::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, PluginError>> {
        Ok(self.job.secret(name).await)
    }
}
