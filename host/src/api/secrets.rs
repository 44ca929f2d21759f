//! `/api/v1/connectors/{id}/secrets`: set, rotate, delete and list a connector's secrets.
//! Values go in, never out: answers, logs, audit entries and errors carry names and versions.

use super::extract::{Json, Path};
use super::problem::Problem;
use super::{AppState, Page};
use crate::auth::Caller;
use crate::secrets::SecretInfo;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;

/// `{"value": "..."}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// Stored encrypted; never returned. At most 64 KiB (in UTF-8 bytes).
    #[schemars(length(min = 1))]
    pub value: String,
}

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Page<SecretInfo>>, Problem> {
    let items = state.manager.secrets().list(&id).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, name)): Path<(String, String)>,
    Json(body): Json<SecretValue>,
) -> Result<axum::Json<SecretInfo>, Problem> {
    let info = state
        .manager
        .secrets()
        .set(&id, &name, &body.value, &caller.actor)
        .await?;
    Ok(axum::Json(info))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    state.manager.secrets().delete(&id, &name, &caller.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
