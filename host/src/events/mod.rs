//! Events out (docs/events.md): what the hub tells the outside when its data changes. Every
//! change writes its event to the outbox (`store::events`) in the transaction that makes the
//! change, so there is no event without its change and no change without its event;
//! delivery reads the outbox after commit.
//!
//! An event says what changed, where it came from and which record, by id: never an
//! identifying value (a name, a NIK), so an outbox row, a log line or a subscriber's copy
//! leaks nothing. A consumer with `pii:read` reads the record itself.

pub mod delivery;
pub mod outbound;
pub mod rabbitmq;
pub mod subscriptions;

use crate::store::Timestamp;
use crate::store::alerts::AlertRecord;
use crate::store::connectors::ConnectorRecord;
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
        "practitioner.merged",
        "A source's record joined a practitioner it had no record of yet (matched by identifier, or merged by a reviewer): `practitioner_id`, `source`, `connector_id`, `matched_by` (the tier of docs/golden-record.md that joined it: `str`, `nik`, `fallback`, or `review`, a reviewer's merge) and `fields`, as `practitioner.updated`.",
    ),
    (
        "practitioner.split",
        "Someone took a source's record out of a practitioner (`POST /api/v1/practitioners/{id}/split`): `practitioner_id` (who it was taken from, merged again from their other sources), `source`, `connector_id` and `split_into`, the practitioner that record is now.",
    ),
    (
        "run.succeeded",
        "A run ended: `run_id`, `connector_id`, `trigger`, `counts` (received, created, updated, unchanged, rejected, held), `duration_ms` and `trace_id`.",
    ),
    ("run.failed", "A run failed: as `run.succeeded`, with `error`."),
    (
        "alert.raised",
        "The hub raised an alert on a connector or a webhook subscription: `alert_id`, `connector_id` or `subscription_id`, `kind` (`credentials`, `reject-rate`, `subscription-disabled`), `run_id` and `message`.",
    ),
    (
        "alert.resolved",
        "What an alert was about cleared (credentials: a later run got a token): as `alert.raised`, with `raised_at`.",
    ),
    (
        "connector.created",
        "Someone created a connector: `connector_id`, `name`, `plugin` (`<plugin>@<version>`) and `enabled`.",
    ),
    (
        "connector.updated",
        "Someone changed a connector's settings: `connector_id`, `name` and `changed`, the settings they set (never their values).",
    ),
    (
        "connector.enabled",
        "Someone enabled a connector: `connector_id` and `name`.",
    ),
    (
        "connector.disabled",
        "Someone disabled a connector: its runs stop. `connector_id` and `name`.",
    ),
    (
        "connector.upgraded",
        "A connector moved to another version of its plugin: `connector_id`, `name`, `from` and `to` (versions).",
    ),
    (
        "connector.rolled_back",
        "A connector went back to the version before its last upgrade: as `connector.upgraded`.",
    ),
    (
        "connector.deleted",
        "Someone deleted a connector (its runs and the records it brought stay): `connector_id` and `name`.",
    ),
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
    /// What it is about: `practitioner/<id>`, `run/<id>`, `alert/<id>`, `connector/<id>`.
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

/// How a source's record changed a practitioner.
pub enum Change<'a> {
    /// A source they had a record of already.
    Updated,
    /// A source new to them joined them, matched so (`pipeline::identity`'s tiers).
    Merged { matched_by: &'a str },
}

/// Practitioner `id` changed by `system`'s record: the golden `fields` whose value changed.
pub fn practitioner_changed(
    change: Change<'_>,
    id: &str,
    system: &str,
    connector_id: &str,
    fields: &[&str],
    at: Timestamp,
) -> StoredEvent {
    let mut data = json!({ "practitioner_id": id, "source": system, "connector_id": connector_id, "fields": fields });
    let kind = match change {
        Change::Updated => "practitioner.updated",
        Change::Merged { matched_by } => {
            data["matched_by"] = json!(matched_by);
            "practitioner.merged"
        }
    };
    event(kind, format!("practitioner/{id}"), Some(connector_id), at, data)
}

/// `system`'s record, brought by `connector_id`, taken out of practitioner `id` into
/// practitioner `split_into`.
pub fn practitioner_split(id: &str, system: &str, connector_id: &str, split_into: &str, at: Timestamp) -> StoredEvent {
    let data =
        json!({ "practitioner_id": id, "source": system, "connector_id": connector_id, "split_into": split_into });
    event(
        "practitioner.split",
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

/// `alert` was raised, or resolved when it has `resolved_at`.
pub fn alert(alert: &AlertRecord) -> StoredEvent {
    let mut data = json!({
        "alert_id": alert.id,
        "connector_id": alert.connector_id,
        "subscription_id": alert.subscription_id,
        "kind": alert.kind,
        "run_id": alert.run_id,
        "message": alert.message,
    });
    let (kind, at) = match alert.resolved_at {
        Some(resolved_at) => {
            data["raised_at"] = json!(alert.raised_at);
            ("alert.resolved", resolved_at)
        }
        None => ("alert.raised", alert.raised_at),
    };
    event(
        kind,
        format!("alert/{}", alert.id),
        alert.connector_id.as_deref(),
        at,
        data,
    )
}

/// Something happened to `connector`: `kind` is one of the `connector.*` types, `details`
/// what it adds to the connector's id and name.
pub fn connector(kind: &'static str, connector: &ConnectorRecord, details: Value) -> StoredEvent {
    debug_assert!(kind.starts_with("connector."));
    let mut data = json!({ "connector_id": connector.id, "name": connector.name });
    if let (Value::Object(data), Value::Object(details)) = (&mut data, details) {
        data.extend(details);
    }
    event(
        kind,
        format!("connector/{}", connector.id),
        Some(&connector.id),
        Timestamp::now(),
        data,
    )
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
