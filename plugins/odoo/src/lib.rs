//! Odoo: an outbound connector. The hub hands it its events (`deliver`); it records each run's
//! end on the SDMK dashboard model (`x_sdmk.sync`: counts, status, duration, trace id) and
//! each practitioner a source created, changed, merged into or split from
//! (`x_sdmk.practitioner`: what happened last, which fields, from which source), through Odoo 19's external JSON-2 API (`POST /json/2/<model>/<method>` with a
//! bearer API key; XML-RPC and JSON-RPC are deprecated since 19).
//!
//! Both go through the models' `hub_upsert`, one transaction per call, keyed by the run's and
//! the practitioner's hub id: a batch the hub hands again after a failure writes the same rows
//! again, never a second copy. Events carry ids and counts, never a name or a NIK, and so does
//! what this sends.

use healthforce_sdk::http::HttpClient;
use healthforce_sdk::{Connector, Error, Event};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    base_url: String,
    database: Option<String>,
}

struct Odoo;

impl Connector for Odoo {
    fn deliver(events: Vec<Event>, config: String) -> Result<(), Error> {
        let config: Config = healthforce_sdk::config(&config)?;
        let (practitioners, syncs) = rows(&events);
        if practitioners.is_empty() && syncs.is_empty() {
            return Ok(());
        }
        let key = healthforce_sdk::secrets::get("api_key")?;
        let mut odoo = HttpClient::new(&config.base_url)?.with_header("authorization", &format!("bearer {key}"));
        if let Some(database) = &config.database {
            odoo = odoo.with_header("x-odoo-database", database);
        }
        // Practitioners first: a sync on the dashboard links to rows that are there already.
        for (model, rows) in [("x_sdmk.practitioner", practitioners), ("x_sdmk.sync", syncs)] {
            if !rows.is_empty() {
                let _ids: Vec<Value> =
                    odoo.post_json(&format!("/json/2/{model}/hub_upsert"), &json!({ "vals_list": rows }))?;
            }
        }
        Ok(())
    }
}

/// The `x_sdmk.practitioner` and `x_sdmk.sync` rows `events` make, each once: a later event
/// of the same practitioner or run replaces an earlier one in the batch.
fn rows(events: &[Event]) -> (Vec<Value>, Vec<Value>) {
    let mut practitioners: Vec<(String, Value)> = Vec::new();
    let mut syncs: Vec<(String, Value)> = Vec::new();
    for event in events {
        let Ok(Value::Object(data)) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        let text = |field: &str| data.get(field).cloned().unwrap_or(Value::Bool(false));
        match event.kind.as_str() {
            kind if kind.starts_with("practitioner.") => {
                let Some(id) = data.get("practitioner_id").and_then(Value::as_str) else {
                    continue;
                };
                let fields = (data.get("fields").and_then(Value::as_array).into_iter().flatten())
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",");
                let row = json!({
                    "x_hub_id": id,
                    "x_source": text("source"),
                    "x_connector_id": text("connector_id"),
                    "x_last_change": event.kind.trim_start_matches("practitioner."),
                    "x_fields": fields,
                    "x_changed_at": event.occurred_at,
                    "x_event_id": event.id,
                });
                keep_last(&mut practitioners, id, row);
            }
            "run.succeeded" | "run.failed" => {
                let Some(run) = data.get("run_id").and_then(Value::as_str) else {
                    continue;
                };
                let counts = data
                    .get("counts")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let count = |name: &str| counts.get(name).cloned().unwrap_or(json!(0));
                let mut row = Map::new();
                row.insert("x_run_id".into(), json!(run));
                row.insert("x_connector_id".into(), text("connector_id"));
                row.insert("x_trigger".into(), text("trigger"));
                row.insert("x_status".into(), json!(event.kind.trim_start_matches("run.")));
                for name in ["received", "created", "updated", "unchanged", "rejected", "held"] {
                    row.insert(format!("x_{name}"), count(name));
                }
                row.insert("x_duration_ms".into(), text("duration_ms"));
                row.insert("x_trace_id".into(), text("trace_id"));
                row.insert("x_error".into(), text("error"));
                row.insert("x_finished_at".into(), json!(event.occurred_at));
                row.insert("x_event_id".into(), json!(event.id));
                keep_last(&mut syncs, run, Value::Object(row));
            }
            _ => {}
        }
    }
    let values = |rows: Vec<(String, Value)>| rows.into_iter().map(|(_, row)| row).collect();
    (values(practitioners), values(syncs))
}

fn keep_last(rows: &mut Vec<(String, Value)>, key: &str, row: Value) {
    match rows.iter_mut().find(|(k, _)| k == key) {
        Some((_, existing)) => *existing = row,
        None => rows.push((key.to_string(), row)),
    }
}

healthforce_sdk::export_connector!(Odoo);
