//! Inbound events: webhooks in the Standard Webhooks payload shape
//! (`{"type": "...", "timestamp": "...", "data": {...}}`), already verified by the host.
//!
//! An event's `data` is read straight into the connector's own row type (or kept as a
//! `serde_json::Value`, the default); give it [`Text`](crate::listing::Text) and
//! [`Lenient`](crate::listing::Lenient) fields so an odd field makes the hub reject the
//! record with its reason instead of the event failing to parse:
//!
//! ```no_run
//! use healthforce_sdk::events::{self, Event};
//! # use healthforce_sdk::{CanonicalRecord, Error, WebhookRequest, WebhookResponse};
//! # #[derive(Default, serde::Deserialize)] struct Person;
//! # fn to_record(person: Person) -> CanonicalRecord { unimplemented!() }
//! fn handle_webhooks(requests: Vec<WebhookRequest>) -> Vec<Result<WebhookResponse, Error>> {
//!     events::store_each(&requests, "Example", |event: Event<Person>| match event.kind.as_str() {
//!         "person.updated" => Some(to_record(event.data)),
//!         _ => None,
//!     })
//! }
//! ```

use crate::{CanonicalRecord, Error, WebhookRequest, WebhookResponse, records};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An event as its sender posted it, its `data` read as `T`.
#[derive(Debug, Deserialize)]
pub struct Event<T = Value> {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: T,
}

impl<T: DeserializeOwned + Default> Event<T> {
    /// Parses a webhook body; `system` names the sender in the error.
    pub fn parse(body: &[u8], system: &str) -> Result<Self, Error> {
        serde_json::from_slice(body)
            .map_err(|e| Error::InvalidInput(format!("{system} event is not the expected JSON: {e}")))
    }
}

/// Answers a batch of webhooks whose events carry one record each: every body is parsed as
/// an [`Event`], `to_record` gives its record (`None`: an event type the connector does not
/// use, answered `202`), and the records of the whole batch are emitted in one call. Each
/// request is answered `200` once its record is stored; with an `invalid-input` error
/// naming the reason when its body is not an event or the hub rejected its record (the job
/// is then dead-lettered, never retried as it is, and the row kept among the rejects); with
/// the emit's own error when the hub could not store the batch (the job is retried).
pub fn store_each<T: DeserializeOwned + Default>(
    requests: &[WebhookRequest],
    system: &str,
    to_record: impl Fn(Event<T>) -> Option<CanonicalRecord>,
) -> Vec<Result<WebhookResponse, Error>> {
    let mut answers: Vec<Result<WebhookResponse, Error>> = Vec::with_capacity(requests.len());
    let mut records = Vec::new();
    // For each emitted record, the request it came from and its event type.
    let mut origins = Vec::new();
    for (at, request) in requests.iter().enumerate() {
        let event = match Event::parse(&request.body, system) {
            Ok(event) => event,
            Err(error) => {
                answers.push(Err(error));
                continue;
            }
        };
        let kind = event.kind.clone();
        match to_record(event) {
            Some(record) => {
                records.push(record);
                origins.push((at, kind));
                answers.push(Ok(stored()));
            }
            None => answers.push(Ok(ignored(&kind))),
        }
    }
    if records.is_empty() {
        return answers;
    }
    match records::emit(&records) {
        Ok(outcome) => {
            for rejected in outcome.rejected {
                if let Some((at, kind)) = origins.get(rejected.index as usize) {
                    answers[*at] = Err(Error::InvalidInput(format!("{kind} rejected: {}", rejected.reason)));
                }
            }
        }
        Err(error) => {
            for (at, _) in &origins {
                answers[*at] = Err(error.clone());
            }
        }
    }
    answers
}

fn stored() -> WebhookResponse {
    WebhookResponse {
        status: 200,
        body: Vec::new(),
    }
}

/// Acknowledges an event type the connector does not use (`202`): ignoring it is not a failure.
pub fn ignored(kind: &str) -> WebhookResponse {
    WebhookResponse {
        status: 202,
        body: format!("event type {kind} ignored").into_bytes(),
    }
}
