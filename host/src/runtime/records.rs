//! `healthforce:hub/records`: batches go to the host pipeline (validate, match, encrypt,
//! store), at most `records_per_emit` records a call.

use super::bindings::latest::healthforce::hub::{records, types};
use super::host::HostState;
use super::quotas::QuotaExceeded;
use super::{EmitOutcome, PluginError};
use crate::model::CanonicalRecord;
use futures::future::BoxFuture;

/// Where a plugin instance's records go: the pipeline, for the job the instance serves.
pub trait RecordSink: Send + Sync + 'static {
    /// Validate, match, encrypt and store a batch.
    fn emit(&self, batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>>;
}

impl types::Host for HostState {}

impl records::Host for HostState {
    async fn emit(
        &mut self,
        batch: Vec<super::bindings::CanonicalRecord>,
    ) -> wasmtime::Result<Result<EmitOutcome, PluginError>> {
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
        Ok(self.records.emit(batch.into_iter().map(Into::into).collect()).await)
    }
}

/// Links this capability's interface of the latest contract, and the record types it uses.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    types::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)?;
    records::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}
