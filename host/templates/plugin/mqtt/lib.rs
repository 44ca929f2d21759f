//! {{name}}: stores the readings devices publish on `devices/<id>/vitals` as
//! `{"device_id": "…", "at": "2026-11-30T08:00:00Z", "heart_rate": 72}`.

use healthforce_sdk::{
    CanonicalRecord, Connector, Error, Message, Observation, SourceRef, records,
};
use serde::Deserialize;

/// The source system's name in every record's provenance.
const SYSTEM: &str = "{{name}}";

#[derive(Deserialize)]
struct Reading {
    device_id: String,
    at: String,
    heart_rate: Option<f64>,
}

struct {{type}};

impl Connector for {{type}} {
    fn handle_messages(messages: Vec<Message>, _config: String) -> Result<(), Error> {
        let mut batch = Vec::with_capacity(messages.len());
        for message in &messages {
            match serde_json::from_slice::<Reading>(&message.payload) {
                Ok(reading) => batch.push(heart_rate(&reading, &message.topic)),
                Err(e) => healthforce_sdk::log::warn(&format!(
                    "message on {} is not a reading ({e}); skipped",
                    message.topic
                )),
            }
        }
        // Within the hub's records_per_emit quota (5,000 by default).
        for page in batch.chunks(1000) {
            records::emit(page)?;
        }
        Ok(())
    }
}

healthforce_sdk::export_connector!({{type}});

/// A reading's heart rate as an observation (LOINC 8867-4, beats per minute).
fn heart_rate(reading: &Reading, topic: &str) -> CanonicalRecord {
    CanonicalRecord::Observation(Observation {
        device_id: reading.device_id.clone(),
        subject: None,
        code: "8867-4".into(),
        value: reading.heart_rate,
        unit: Some("/min".into()),
        components: Vec::new(),
        effective_at: reading.at.clone(),
        source: SourceRef {
            system: SYSTEM.into(),
            id: format!("{topic}@{}", reading.at),
            updated_at: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use healthforce_sdk::testing::FakeHost;

    #[test]
    fn readings_become_observations_and_junk_is_logged() {
        let host = FakeHost::new();
        let message = |payload: &str| Message {
            topic: "devices/d-1/vitals".into(),
            payload: payload.as_bytes().to_vec(),
        };
        host.run(|| {
            {{type}}::handle_messages(
                vec![
                    message(
                        r#"{"device_id": "d-1", "at": "2026-11-30T08:00:00Z", "heart_rate": 72}"#,
                    ),
                    message("not json"),
                ],
                "{}".into(),
            )
        })
        .expect("the batch is stored");
        assert_eq!(host.records().len(), 1);
        assert_eq!(host.logs()[0].level, "warn");
    }
}
