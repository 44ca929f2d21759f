//! Events out (docs/events.md): what the hub tells the outside when its data changes. Every
//! change writes its event to the outbox (`store::events`) in the transaction that makes the
//! change, so there is no event without its change and no change without its event;
//! delivery reads the outbox after commit.
//!
//! An event says what changed, where it came from and which record, by id: never an
//! identifying value (a name, a NIK), so an outbox row, a log line or a subscriber's copy
//! leaks nothing. A consumer with `pii:read` reads the record itself.

pub mod delivery;
pub mod subscriptions;

use crate::store::Timestamp;
use crate::store::events::StoredEvent;
use crate::store::runs::RunRecord;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

/// Every event type the hub writes and what it says: the one list docs/events.md is checked
/// against.
pub const TYPES: &[(&str, &str)] = &[
    (
        "practitioner.created",
        "A source's record made a new golden record: `practitioner_id`, `source` (the system) and `connector_id`.",
    ),
    (
        "practitioner.updated",
        "A source's record changed a golden record: `practitioner_id`, `source`, `connector_id` and `fields`, the golden fields whose value changed (none when only what the source said changed, not the merged result).",
    ),
    (
        "run.succeeded",
        "A run ended: `run_id`, `connector_id`, `trigger`, `counts` (received, created, updated, unchanged, rejected, held), `duration_ms` and `trace_id`.",
    ),
    ("run.failed", "A run failed: as `run.succeeded`, with `error`."),
];

/// An event as the API and subscribers get it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Event {
    /// Stable across deliveries: deduplicate by it.
    pub id: String,
    /// Its place in the outbox; events of one subject come in this order.
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// What it is about: `practitioner/<id>`, `run/<id>`.
    pub subject: String,
    pub connector_id: Option<String>,
    pub occurred_at: Timestamp,
    pub data: Value,
}

impl From<StoredEvent> for Event {
    fn from(e: StoredEvent) -> Self {
        Event {
            data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
            id: e.id,
            seq: e.seq,
            kind: e.kind,
            subject: e.subject,
            connector_id: e.connector_id,
            occurred_at: e.occurred_at,
        }
    }
}

/// The least event id (a UUID v7, time-ordered) of an event made at or after `at`: ids
/// compare as text in time order, so `id < floor` selects older events by the id's index.
pub fn id_floor(at: chrono::DateTime<chrono::Utc>) -> String {
    let ms = at.timestamp_millis().max(0) as u64 & 0xffff_ffff_ffff;
    format!("{:08x}-{:04x}-7000-8000-000000000000", ms >> 16, ms & 0xffff)
}

fn event(kind: &'static str, subject: String, connector_id: Option<&str>, at: Timestamp, data: Value) -> StoredEvent {
    debug_assert!(TYPES.iter().any(|(t, _)| *t == kind), "{kind} is listed in TYPES");
    StoredEvent {
        seq: 0,
        id: uuid::Uuid::now_v7().to_string(),
        kind: kind.to_string(),
        subject,
        connector_id: connector_id.map(str::to_string),
        occurred_at: at,
        data: data.to_string(),
    }
}

/// Practitioner `id` made from `system`'s record, brought by `connector_id`.
pub fn practitioner_created(id: &str, system: &str, connector_id: &str, at: Timestamp) -> StoredEvent {
    let data = json!({ "practitioner_id": id, "source": system, "connector_id": connector_id });
    event(
        "practitioner.created",
        format!("practitioner/{id}"),
        Some(connector_id),
        at,
        data,
    )
}

/// Practitioner `id` changed by `system`'s record: the golden `fields` whose value changed.
pub fn practitioner_updated(id: &str, system: &str, connector_id: &str, fields: &[&str], at: Timestamp) -> StoredEvent {
    let data = json!({ "practitioner_id": id, "source": system, "connector_id": connector_id, "fields": fields });
    event(
        "practitioner.updated",
        format!("practitioner/{id}"),
        Some(connector_id),
        at,
        data,
    )
}

/// `run` has ended.
pub fn run_finished(run: &RunRecord) -> StoredEvent {
    let at = run.finished_at.unwrap_or_else(Timestamp::now);
    let duration_ms = run
        .started_at
        .map(|started| (at.as_datetime() - started.as_datetime()).num_milliseconds());
    let mut data = json!({
        "run_id": run.id,
        "connector_id": run.connector_id,
        "trigger": run.trigger,
        "counts": {
            "received": run.records_received,
            "created": run.records_created,
            "updated": run.records_updated,
            "unchanged": run.records_unchanged,
            "rejected": run.records_rejected,
            "held": run.records_held,
        },
        "duration_ms": duration_ms,
        "trace_id": run.trace_id,
    });
    let kind = match &run.error {
        Some(error) => {
            data["error"] = json!(error);
            "run.failed"
        }
        None => "run.succeeded",
    };
    event(kind, format!("run/{}", run.id), Some(&run.connector_id), at, data)
}

#[cfg(test)]
mod tests {
    use super::{TYPES, id_floor};

    #[test]
    fn an_id_floor_sorts_after_older_ids_and_before_newer_ones() {
        let at = chrono::Utc::now();
        let floor = id_floor(at);
        let id_at = |t: chrono::DateTime<chrono::Utc>| {
            let ts = uuid::Timestamp::from_unix(uuid::NoContext, t.timestamp() as u64, t.timestamp_subsec_nanos());
            uuid::Uuid::new_v7(ts).to_string()
        };
        for _ in 0..100 {
            assert!(id_at(at - chrono::Duration::milliseconds(1)) < floor);
            assert!(id_at(at) >= floor);
            assert!(id_at(at + chrono::Duration::seconds(1)) > floor);
        }
        assert_eq!(uuid::Uuid::parse_str(&floor).unwrap().get_version_num(), 7);
    }

    /// docs/events.md's table lists each type the hub writes, with what it says.
    #[test]
    fn the_documented_event_types_are_the_ones_the_hub_writes() {
        let doc = include_str!("../../../docs/events.md");
        let table = doc.split("## Types").nth(1).expect("a Types section");
        let documented: Vec<(String, String)> = table
            .lines()
            .skip_while(|l| !l.starts_with("| `"))
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_string(), cells[2].to_string())
            })
            .collect();
        let written: Vec<(String, String)> = TYPES.iter().map(|(t, d)| (t.to_string(), d.to_string())).collect();
        assert_eq!(documented, written);
    }
}
