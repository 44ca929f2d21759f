//! `/healthz`, `/readyz`, `/openapi.json`: public, no credentials.

use super::AppState;
use super::problem::Problem;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    state.manager.db().ping().await.map_err(|error| {
        tracing::warn!(%error, "not ready: the database does not answer");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer; see the hub log",
        )
    })?;
    Ok(Json(json!({ "status": "ready" })))
}

/// Built once: the document depends only on the code.
pub async fn openapi() -> Json<Value> {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    Json(DOCUMENT.get_or_init(super::openapi::document).clone())
}
