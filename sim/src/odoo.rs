//! Odoo 19, as far as the hub's Odoo connector uses it: the external JSON-2 API
//! (`POST /json/2/<model>/<method>`, `Authorization: bearer <API key>`) on the two models of
//! an SDMK dashboard module, with faults on demand (outage, latency, 5xx; a wrong key is a
//! 401 as Odoo answers it).
//!
//! - `x_sdmk.sync`: one row per hub run (its counts, status and trace id), keyed by
//!   `x_run_id`;
//! - `x_sdmk.practitioner`: one row per practitioner the hub changed (which fields, from
//!   which source), keyed by `x_hub_id`.
//!
//! Each model has `hub_upsert` (`{"vals_list": [...]}`), the one-transaction method Odoo's
//! documentation advises a module to add for related writes: it creates the rows whose key is
//! new and writes over the others, so a batch the hub sends again changes nothing twice.
//! `search_read` (`{"domain": [[field, "=", value]], "fields": [...]}`) reads them back.

use crate::faults::{self, FaultState};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The API key of the simulator `hub demo` and `hub sim` run.
pub const DEMO_API_KEY: &str = "odoo_demo_api_key_0123456789abcdef";

/// The SDMK dashboard models and the field each is keyed by.
pub const MODELS: [(&str, &str); 2] = [("x_sdmk.sync", "x_run_id"), ("x_sdmk.practitioner", "x_hub_id")];

/// A model's rows by their key; each row holds its `id`.
type Table = BTreeMap<String, Map<String, Value>>;

/// An Odoo database with one API key.
#[derive(Clone)]
pub struct OdooSim {
    inner: Arc<Inner>,
}

struct Inner {
    api_key: Mutex<String>,
    rows: Mutex<BTreeMap<&'static str, Table>>,
    next_id: Mutex<i64>,
    /// Requests refused for their key.
    unauthorized: Mutex<u64>,
    faults: Arc<FaultState>,
}

impl OdooSim {
    pub fn new(api_key: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                api_key: Mutex::new(api_key.to_string()),
                rows: Mutex::new(BTreeMap::new()),
                next_id: Mutex::new(1),
                unauthorized: Mutex::new(0),
                faults: Arc::default(),
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/json/2/{model}/{method}", post(call))
            .route(
                "/web/version",
                get(|| async { axum::Json(json!({ "version": "19.0" })) }),
            )
            .with_state(self.clone())
            .merge(faults::router(self.inner.faults.clone()))
    }

    pub fn faults(&self) -> &FaultState {
        &self.inner.faults
    }

    /// Replaces the API key (the old one stops working, as when a key is revoked).
    pub fn set_api_key(&self, key: &str) {
        *self.inner.api_key.lock().unwrap() = key.to_string();
    }

    /// The rows of `model`, by key order.
    pub fn rows(&self, model: &str) -> Vec<Value> {
        let rows = self.inner.rows.lock().unwrap();
        (rows.get(model).into_iter().flat_map(|rows| rows.values()))
            .map(|row| Value::Object(row.clone()))
            .collect()
    }

    /// How many requests were refused for their key.
    pub fn unauthorized(&self) -> u64 {
        *self.inner.unauthorized.lock().unwrap()
    }
}

/// Odoo's error body: the exception's name and message.
fn error(status: StatusCode, name: &str, message: &str) -> Response {
    let body = json!({ "name": name, "message": message, "arguments": [message], "context": {}, "debug": "" });
    (status, axum::Json(body)).into_response()
}

async fn call(
    State(sim): State<OdooSim>,
    Path((model, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(failure) = sim.inner.faults.injected_failure().await {
        return failure;
    }
    let presented = (headers.get("authorization").and_then(|v| v.to_str().ok()))
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_string());
    let expected = sim.inner.api_key.lock().unwrap().clone();
    if !presented.is_some_and(|key| constant_time_eq(key.as_bytes(), expected.as_bytes())) {
        *sim.inner.unauthorized.lock().unwrap() += 1;
        return error(
            StatusCode::UNAUTHORIZED,
            "werkzeug.exceptions.Unauthorized",
            "Invalid apikey",
        );
    }
    let Some(&(model, key_field)) = MODELS.iter().find(|(name, _)| *name == model) else {
        return error(
            StatusCode::NOT_FOUND,
            "werkzeug.exceptions.NotFound",
            &format!("no model {model}"),
        );
    };
    let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "werkzeug.exceptions.BadRequest",
            "the body is not a JSON object",
        );
    };
    match method.as_str() {
        "hub_upsert" => upsert(&sim, model, key_field, &args),
        "search_read" => search_read(&sim, model, &args),
        other => error(
            StatusCode::NOT_FOUND,
            "werkzeug.exceptions.NotFound",
            &format!("{model} has no method {other}"),
        ),
    }
}

fn upsert(sim: &OdooSim, model: &'static str, key_field: &str, args: &Map<String, Value>) -> Response {
    let Some(vals_list) = args.get("vals_list").and_then(Value::as_array) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "TypeError",
            "hub_upsert() missing 1 required positional argument: 'vals_list'",
        );
    };
    let mut staged = Vec::with_capacity(vals_list.len());
    for vals in vals_list {
        let Some(key) = vals.get(key_field).and_then(Value::as_str).filter(|k| !k.is_empty()) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "odoo.exceptions.ValidationError",
                &format!("every record of {model} needs {key_field}"),
            );
        };
        let Some(vals) = vals.as_object() else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "odoo.exceptions.ValidationError",
                "vals must be objects",
            );
        };
        staged.push((key.to_string(), vals.clone()));
    }
    // One transaction: every row is checked before any is written.
    let mut rows = sim.inner.rows.lock().unwrap();
    let table = rows.entry(model).or_default();
    let mut ids = Vec::with_capacity(staged.len());
    for (key, vals) in staged {
        let row = table.entry(key).or_insert_with(|| {
            let mut next = sim.inner.next_id.lock().unwrap();
            let mut row = Map::new();
            row.insert("id".into(), json!(*next));
            *next += 1;
            row
        });
        row.extend(vals);
        ids.push(row["id"].clone());
    }
    axum::Json(Value::Array(ids)).into_response()
}

fn search_read(sim: &OdooSim, model: &str, args: &Map<String, Value>) -> Response {
    let domain: Vec<(String, Value)> = (args.get("domain").and_then(Value::as_array).into_iter().flatten())
        .filter_map(|term| match term.as_array().map(Vec::as_slice) {
            Some([Value::String(field), Value::String(op), value]) if op == "=" => Some((field.clone(), value.clone())),
            _ => None,
        })
        .collect();
    let fields: Option<Vec<&str>> =
        (args.get("fields").and_then(Value::as_array)).map(|fields| fields.iter().filter_map(Value::as_str).collect());
    let found: Vec<Value> = (sim.rows(model).into_iter())
        .filter(|row| domain.iter().all(|(field, value)| row.get(field) == Some(value)))
        .map(|row| match &fields {
            Some(fields) => {
                let mut picked: Map<String, Value> = Map::new();
                picked.insert("id".into(), row["id"].clone());
                for field in fields {
                    picked.insert(
                        field.to_string(),
                        row.get(*field).cloned().unwrap_or(Value::Bool(false)),
                    );
                }
                Value::Object(picked)
            }
            None => row,
        })
        .collect();
    axum::Json(Value::Array(found)).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(base: &str, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn an_upsert_sent_twice_keeps_one_row_and_a_wrong_key_is_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = OdooSim::new("key-1");
        let running = crate::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = running.base_url();
        let vals = json!({ "vals_list": [{ "x_run_id": "r1", "x_status": "succeeded" }] });
        let (status, ids) = post(&base, "key-1", "/json/2/x_sdmk.sync/hub_upsert", vals.clone()).await;
        assert_eq!((status, ids.clone()), (StatusCode::OK, json!([1])));
        let (_, again) = post(&base, "key-1", "/json/2/x_sdmk.sync/hub_upsert", vals).await;
        assert_eq!(again, ids);
        assert_eq!(sim.rows("x_sdmk.sync").len(), 1);

        let domain = json!({ "domain": [["x_run_id", "=", "r1"]], "fields": ["x_status"] });
        let (_, found) = post(&base, "key-1", "/json/2/x_sdmk.sync/search_read", domain).await;
        assert_eq!(found, json!([{ "id": 1, "x_status": "succeeded" }]));

        let (status, body) = post(&base, "key-2", "/json/2/x_sdmk.sync/search_read", json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["message"], "Invalid apikey");
        assert_eq!(sim.unauthorized(), 1);
    }
}
