//! `/api/v1/practitioners?str=&nik=`: decrypted practitioners, looked up by blind index.
//! Needs the `pii:read` grant (checked by the route table); every read is audited.

use super::extract::Query;
use super::problem::Problem;
use super::{AppState, Page};
use crate::audit::Event;
use crate::auth::Caller;
use crate::crypto::CryptoError;
use crate::store::practitioners::{IndexColumn, SealedPractitioner};
use axum::Extension;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// STR number (exact, any formatting).
    #[serde(rename = "str")]
    pub str_number: Option<String>,
    /// NIK (16 digits).
    pub nik: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<Value>>, Problem> {
    let db = state.manager.db();
    let blind = &state.manager.keys().blind;
    let limit = crate::store::clamp_limit(q.limit);
    let rows = match (&q.str_number, &q.nik) {
        (Some(str_number), nik) => {
            let rows = db
                .practitioners_by_index(IndexColumn::Str, &blind.str_number(str_number), limit)
                .await?;
            let nik_index = nik.as_deref().map(|n| blind.nik(n));
            rows.into_iter()
                .filter(|r| nik_index.is_none() || r.nik_index == nik_index)
                .collect()
        }
        (None, Some(nik)) => {
            db.practitioners_by_index(IndexColumn::Nik, &blind.nik(nik), limit)
                .await?
        }
        (None, None) => db.list_practitioners(q.cursor.as_deref(), limit).await?,
    };
    let mut items = rows
        .iter()
        .map(|row| open(&state, row))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Problem::internal(&e))?;
    mark_stale(&state, &mut items).await?;
    // The audit says how the caller looked and how many they saw, never the values.
    let lookup = match (&q.str_number, &q.nik) {
        (Some(_), Some(_)) => "str+nik",
        (Some(_), None) => "str",
        (None, Some(_)) => "nik",
        (None, None) => "list",
    };
    let ids: Vec<&str> = items.iter().filter_map(|v| v["id"].as_str()).collect();
    let event = Event::new(&caller.actor, "pii.read", "practitioners")
        .details(json!({ "lookup": lookup, "count": items.len(), "ids": ids }));
    // No audit entry, no data.
    state.manager.audit().try_record(&event).await?;
    Ok(axum::Json(Page::new(items, limit, |v| {
        v["id"].as_str().unwrap_or_default().to_string()
    })))
}

/// Marks the fields whose connector's last finished sync failed (`provenance.<field>.stale`)
/// and lists their systems in `stale_sources`: the hub keeps serving the last data it has
/// (seed 001: fall back to the local copy) and says it may be out of date.
async fn mark_stale(state: &AppState, items: &mut [Value]) -> Result<(), Problem> {
    let connector_of = |source: &Value| source["connector_id"].as_str().map(str::to_string);
    let connectors: BTreeSet<String> = items
        .iter()
        .filter_map(|p| p["provenance"].as_object())
        .flat_map(|fields| fields.values().filter_map(connector_of))
        .collect();
    let mut stale = BTreeSet::new();
    for connector in connectors {
        let last = state.manager.db().finished_runs(&connector, 1).await?;
        if last.first().is_some_and(|run| run.status == "failed") {
            stale.insert(connector);
        }
    }
    for item in items {
        let mut systems = BTreeSet::new();
        if let Some(fields) = item["provenance"].as_object_mut() {
            for source in fields.values_mut() {
                if connector_of(source).is_some_and(|c| stale.contains(&c)) {
                    source["stale"] = Value::Bool(true);
                    systems.insert(source["source"].as_str().unwrap_or_default().to_string());
                }
            }
        }
        item["stale_sources"] = json!(systems);
    }
    Ok(())
}

/// Decrypts a stored practitioner into the canonical field names.
fn open(state: &AppState, row: &SealedPractitioner) -> Result<Value, CryptoError> {
    let cipher = state.manager.keys().cipher();
    let field = |column: &str, sealed: &Option<Vec<u8>>| -> Result<Value, CryptoError> {
        Ok(match sealed {
            Some(bytes) => Value::String(cipher.decrypt_str("practitioners", column, &row.id, bytes)?),
            None => Value::Null,
        })
    };
    let details: Value = match &row.details {
        Some(bytes) => serde_json::from_str(&cipher.decrypt_str("practitioners", "details", &row.id, bytes)?)
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    Ok(json!({
        "id": row.id,
        "nik": field("nik", &row.nik)?,
        "str_number": field("str_number", &row.str_number)?,
        "full_name": field("full_name", &row.full_name)?,
        "birth_place": field("birth_place", &row.birth_place)?,
        "birth_date": field("birth_date", &row.birth_date)?,
        "gender": row.gender,
        "profession": row.profession,
        "phone": field("phone", &row.phone)?,
        "email": field("email", &row.email)?,
        "registrations": details["registrations"],
        "trainings": details["trainings"],
        "employments": details["employments"],
        "educations": details["educations"],
        "source": { "system": row.source_system, "id": row.source_id, "updated_at": row.source_updated_at },
        "provenance": row.provenance.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()).unwrap_or(Value::Null),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }))
}
