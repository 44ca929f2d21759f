//! `healthforce:hub/auth`: bearer tokens for credentials the host holds.

use super::PluginError;
use super::bindings::latest::healthforce::hub::auth;
use super::host::HostState;

impl auth::Host for HostState {
    async fn bearer_token(&mut self, credential: String) -> wasmtime::Result<Result<String, PluginError>> {
        Ok(self.job.bearer_token(credential).await)
    }

    async fn invalidate(&mut self, credential: String, token: String) -> wasmtime::Result<()> {
        self.job.invalidate_token(credential, token).await;
        Ok(())
    }
}
