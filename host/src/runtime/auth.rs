//! `healthforce:hub/auth`: bearer tokens for credentials the host holds.

use super::PluginError;
use super::bindings::latest::healthforce::hub::auth;
use super::host::HostState;
use futures::future::BoxFuture;

/// Bearer tokens for the credentials of the connector an instance serves.
pub trait TokenSource: Send + Sync + 'static {
    fn bearer_token(&self, credential: String) -> BoxFuture<'_, Result<String, PluginError>>;
    /// The external system refused `token`: the next `bearer_token` fetches a fresh one.
    fn invalidate_token(&self, credential: String, token: String) -> BoxFuture<'_, ()>;
}

impl auth::Host for HostState {
    async fn bearer_token(&mut self, credential: String) -> wasmtime::Result<Result<String, PluginError>> {
        Ok(self.tokens.bearer_token(credential).await)
    }

    async fn invalidate(&mut self, credential: String, token: String) -> wasmtime::Result<()> {
        self.tokens.invalidate_token(credential, token).await;
        Ok(())
    }
}

/// Links this capability's interface of the latest contract.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    auth::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}
