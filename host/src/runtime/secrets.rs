//! `healthforce:hub/secrets`: secrets granted to this connector instance, and no others.

use super::PluginError;
use super::bindings::latest::healthforce::hub::secrets;
use super::host::HostState;
use futures::future::BoxFuture;

/// The secrets granted to the connector an instance serves.
pub trait SecretSource: Send + Sync + 'static {
    /// Only names granted to this connector instance.
    fn secret(&self, name: String) -> BoxFuture<'_, Result<String, PluginError>>;
}

impl secrets::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, PluginError>> {
        Ok(self.secrets.secret(name).await)
    }
}

/// Links this capability's interface of the latest contract.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    secrets::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}
