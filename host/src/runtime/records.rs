//! `healthforce:hub/records`: batches go to the host pipeline (validate, match, encrypt,
//! store), at most `records_per_emit` records a call.

use super::bindings::latest::healthforce::hub::{records, types};
use super::host::HostState;
use super::quotas::QuotaExceeded;
use super::{EmitOutcome, PluginError};
use crate::runtime::bindings::CanonicalRecord;

impl types::Host for HostState {}

impl records::Host for HostState {
    async fn emit(&mut self, batch: Vec<CanonicalRecord>) -> wasmtime::Result<Result<EmitOutcome, PluginError>> {
        let limit = self.quotas.records_per_emit;
        if batch.len() > limit as usize {
            return Err(QuotaExceeded {
                quota: "records_per_emit",
                limit: limit.into(),
                what: format!("an emit of {} records; emit page by page", batch.len()),
            }
            .into());
        }
        // Into the hub's own model at the edge: fields move, nothing is copied.
        Ok(self.job.emit(batch.into_iter().map(Into::into).collect()).await)
    }
}
