//! {{name}}: stores the people a system reports changed. It posts Standard Webhooks
//! (`{"type": "person.updated", "data": {...}}`) to `/webhooks/<connector id>`; the hub checks
//! their signatures before this code sees them.

use healthforce_sdk::events::{self, Event};
use healthforce_sdk::listing::text;
use healthforce_sdk::{
    CanonicalRecord, Connector, Error, Practitioner, SourceRef, WebhookRequest, WebhookResponse,
};
use serde_json::Value;

/// The source system's name in every record's provenance.
const SYSTEM: &str = "{{name}}";

struct {{type}};

impl Connector for {{type}} {
    fn handle_webhooks(requests: Vec<WebhookRequest>) -> Vec<Result<WebhookResponse, Error>> {
        events::store_each(&requests, SYSTEM, |event: Event| {
            match event.kind.as_str() {
                "person.created" | "person.updated" => Some(to_record(&event.data)),
                // Other event types are answered 202 and stored nowhere.
                _ => None,
            }
        })
    }
}

healthforce_sdk::export_connector!({{type}});

/// An event's person as the hub's record; the hub validates it and keeps a bad one as a
/// reject with its reason.
fn to_record(person: &Value) -> CanonicalRecord {
    CanonicalRecord::Practitioner(Practitioner {
        nik: text(person, "nik"),
        full_name: text(person, "name"),
        birth_date: text(person, "birth_date"),
        source: SourceRef {
            system: SYSTEM.into(),
            id: text(person, "id").unwrap_or_default(),
            updated_at: text(person, "updated_at"),
        },
        ..healthforce_sdk::empty_practitioner()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use healthforce_sdk::testing::FakeHost;
    use serde_json::json;

    fn webhook(body: Value) -> WebhookRequest {
        WebhookRequest {
            id: "msg-1".into(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
            config: "{}".into(),
        }
    }

    #[test]
    fn an_update_is_stored_and_other_events_are_accepted_unstored() {
        let host = FakeHost::new();
        let person = json!({"id": "p-1", "nik": "3174014506850001", "name": "Siti Rahayu"});
        let answers = host.run(|| {
            {{type}}::handle_webhooks(vec![
                webhook(json!({"type": "person.updated", "data": person})),
                webhook(json!({"type": "person.viewed", "data": {}})),
            ])
        });
        let statuses: Vec<u16> = answers
            .iter()
            .map(|a| a.as_ref().map(|r| r.status).unwrap_or(0))
            .collect();
        assert_eq!(statuses, [200, 202]);
        assert_eq!(host.records().len(), 1);
    }
}
