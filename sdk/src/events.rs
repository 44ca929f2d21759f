//! Inbound events: webhooks in the Standard Webhooks payload shape
//! (`{"type": "...", "timestamp": "...", "data": {...}}`), already verified by the host.
//!
//! ```no_run
//! use healthforce_sdk::events::{self, Event};
//! # use healthforce_sdk::{CanonicalRecord, Error, WebhookRequest, WebhookResponse};
//! # fn to_record(data: &serde_json::Value) -> CanonicalRecord { unimplemented!() }
//! fn handle_webhook(request: WebhookRequest) -> Result<WebhookResponse, Error> {
//!     let event = Event::parse(&request.body, "Example")?;
//!     match event.kind.as_str() {
//!         "person.updated" => events::store_one(&event, to_record(&event.data)),
//!         _ => Ok(events::ignored(&event)),
//!     }
//! }
//! ```

use crate::{CanonicalRecord, Error, WebhookResponse, records};
use serde::Deserialize;
use serde_json::Value;

/// An event as its sender posted it.
#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Value,
}

impl Event {
    /// Parses a webhook body; `system` names the sender in the error.
    pub fn parse(body: &[u8], system: &str) -> Result<Self, Error> {
        serde_json::from_slice(body)
            .map_err(|e| Error::InvalidInput(format!("{system} event is not the expected JSON: {e}")))
    }
}

/// Emits the one record an event carries: `200` once stored; when the hub rejects it, an
/// `invalid-input` error with the reason, so the job is dead-lettered (never retried as it
/// is) and the row is kept among the rejects.
pub fn store_one(event: &Event, record: CanonicalRecord) -> Result<WebhookResponse, Error> {
    let outcome = records::emit(&[record])?;
    if let Some(rejected) = outcome.rejected.first() {
        return Err(Error::InvalidInput(format!(
            "{} rejected: {}",
            event.kind, rejected.reason
        )));
    }
    Ok(WebhookResponse {
        status: 200,
        body: Vec::new(),
    })
}

/// Acknowledges an event type the connector does not use (`202`): ignoring it is not a failure.
pub fn ignored(event: &Event) -> WebhookResponse {
    WebhookResponse {
        status: 202,
        body: format!("event type {} ignored", event.kind).into_bytes(),
    }
}
