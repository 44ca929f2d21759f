//! `healthforce:hub/records`: batches go to the host pipeline (validate, match, encrypt,
//! store).

use super::bindings::since_v0_1_0::healthforce::hub::{records, types};
use super::host::HostState;
use super::{EmitOutcome, PluginError};
use crate::runtime::bindings::CanonicalRecord;

impl types::Host for HostState {}

impl records::Host for HostState {
    async fn emit(&mut self, batch: Vec<CanonicalRecord>) -> wasmtime::Result<Result<EmitOutcome, PluginError>> {
        Ok(self.job.emit(batch).await)
    }
}
