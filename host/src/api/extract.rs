//! Extractors whose rejections are problem+json.

use super::problem::Problem;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A JSON body, checked against the JSON Schema of `T` — the schema the OpenAPI document
/// shows for it — before it is read into `T`. A body that breaks the documented schema
/// (type, enum, pattern, length, range, required or unknown field) is a 400 naming each
/// field; 422 is left for rules beyond the schema.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let axum::Json(mut value) = axum::Json::<Value>::from_request(request, state).await?;
        integral_numbers_as_integers(&mut value);
        let errors = crate::json_schema::validate(&schema_of::<T>(), &value);
        if !errors.is_empty() {
            let fields: Vec<String> = errors.iter().map(|e| format!("{} {}", e.pointer, e.message)).collect();
            return Err(Problem {
                status: StatusCode::BAD_REQUEST,
                detail: format!(
                    "the body does not match this route's schema in /openapi.json: {}",
                    fields.join("; ")
                ),
                errors,
            });
        }
        serde_json::from_value(value)
            .map(Json)
            .map_err(|e| Problem::bad_request(format!("request body: {e}")))
    }
}

/// JSON does not tell `10` from `10.0` and JSON Schema calls both integers; serde does, so
/// whole numbers are made integers before the body is checked and read.
fn integral_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15)
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

/// The JSON Schema of `T`, generated once per type.
fn schema_of<T: JsonSchema + 'static>() -> Arc<Value> {
    static SCHEMAS: OnceLock<Mutex<HashMap<TypeId, Arc<Value>>>> = OnceLock::new();
    let mut schemas = SCHEMAS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    schemas
        .entry(TypeId::of::<T>())
        .or_insert_with(|| Arc::new(schemars::schema_for!(T).to_value()))
        .clone()
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

/// Refuses with 400 a request whose path parameters break the patterns the route table
/// declares for them (and /openapi.json shows), before its handler runs.
pub fn check_path_patterns(
    handler: axum::routing::MethodRouter<super::AppState>,
    patterns: &'static [(&'static str, &'static str)],
) -> axum::routing::MethodRouter<super::AppState> {
    if patterns.is_empty() {
        return handler;
    }
    handler.route_layer(axum::middleware::from_fn(
        move |params: axum::extract::RawPathParams, request: Request, next: axum::middleware::Next| async move {
            for (name, value) in params.iter() {
                let broken = patterns
                    .iter()
                    .find(|(n, _)| *n == name)
                    .filter(|(_, pattern)| !crate::json_schema::matches(pattern, value));
                if let Some((_, pattern)) = broken {
                    return Problem::bad_request(format!("path parameter {name} must match {pattern}")).into_response();
                }
            }
            next.run(request).await
        },
    ))
}
