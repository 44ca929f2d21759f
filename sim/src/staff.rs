//! A provincial staff registry (SIMPEG-like): every health worker a province employs, with
//! NIK, name and birth data, and an STR only for clinical staff; listed behind an API key
//! (`x-api-key`), rows changed since a time (`updated_since`), paged by an opaque cursor
//! (`?limit=N&cursor=…`, the next page's cursor in `meta.next_cursor`). The shape the SDK's
//! `Paging::cursor` and `hub plugin new --template pull` expect.

use crate::events::unauthorized;
use crate::people::{self, Person};
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct StaffConfig {
    pub people: usize,
    /// The people generator's seed: the other simulators', for overlapping people.
    pub seed: u64,
    /// The key the registry gives the hub, sent as `x-api-key`.
    pub api_key: String,
    /// Share of staff without an STR (administrators, drivers, cleaners: SDMK counts them).
    pub without_str_rate: f64,
}

impl Default for StaffConfig {
    fn default() -> Self {
        Self {
            people: 200,
            seed: 2026,
            api_key: "staff-sim-key-0001".into(),
            without_str_rate: 0.2,
        }
    }
}

/// One row as listed.
#[derive(Clone, Debug, Serialize)]
pub struct StaffRow {
    pub id: String,
    pub nik: String,
    pub name: String,
    pub birth_place: String,
    pub birth_date: String,
    /// Empty for staff without an STR.
    pub str: String,
    pub updated_at: String,
}

#[derive(Clone)]
pub struct StaffSim {
    config: StaffConfig,
    rows: Arc<Vec<StaffRow>>,
}

impl StaffSim {
    pub fn new(config: StaffConfig) -> Self {
        let every = (1.0 / config.without_str_rate.max(0.01)).round() as usize;
        let rows = (0..config.people)
            .map(|index| {
                let person: Person = people::person(config.seed, index);
                StaffRow {
                    id: format!("PEG-{index:06}"),
                    nik: person.nik,
                    name: person.full_name,
                    birth_place: person.birth_place,
                    birth_date: person.birth_date.map(|d| d.to_string()).unwrap_or_default(),
                    str: if index % every == every - 1 {
                        String::new()
                    } else {
                        person.str_number
                    },
                    // One format (UTC, whole seconds), so the newest is the greatest string.
                    updated_at: format!(
                        "2026-11-01T{:02}:{:02}:{:02}Z",
                        index / 3600 % 24,
                        index / 60 % 60,
                        index % 60
                    ),
                }
            })
            .collect();
        Self {
            config,
            rows: Arc::new(rows),
        }
    }

    pub fn config(&self) -> &StaffConfig {
        &self.config
    }

    pub fn rows(&self) -> &[StaffRow] {
        &self.rows
    }

    pub fn router(&self) -> Router {
        Router::new().route("/people", get(list)).with_state(self.clone())
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    updated_since: Option<String>,
}

async fn list(State(sim): State<StaffSim>, headers: HeaderMap, Query(query): Query<ListQuery>) -> Response {
    if let Some(refused) = unauthorized(&headers, "x-api-key", &sim.config.api_key) {
        return refused;
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let changed: Vec<&StaffRow> = sim
        .rows
        .iter()
        .filter(|row| query.updated_since.as_ref().is_none_or(|since| &row.updated_at > since))
        .collect();
    let start = match query
        .cursor
        .as_deref()
        .map(|c| c.strip_prefix("after:").and_then(|n| n.parse().ok()))
    {
        None => 0,
        Some(Some(start)) => start,
        Some(None) => return (axum::http::StatusCode::BAD_REQUEST, "unknown cursor").into_response(),
    };
    let page: Vec<&StaffRow> = changed.iter().skip(start).take(limit).copied().collect();
    let end = start + page.len();
    let next_cursor = (end < changed.len()).then(|| format!("after:{end}"));
    Json(serde_json::json!({ "data": page, "meta": { "next_cursor": next_cursor } })).into_response()
}
