//! `/api/v1/connectors/{id}/runs` and `/api/v1/runs/{id}`.

use super::AppState;
use super::extract::{Path, Query, page};
use super::problem::Problem;
use crate::store::runs::RunRecord;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Newest first.
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Value>, Problem> {
    state.manager.connector(&id).await?;
    let limit = crate::store::clamp_limit(q.limit);
    let runs = state.manager.db().list_runs(&id, q.cursor.as_deref(), limit).await?;
    Ok(axum::Json(page(runs, limit, |r| r.id.clone())))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<axum::Json<RunRecord>, Problem> {
    let run = state
        .manager
        .db()
        .run(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("run {id:?} does not exist")))?;
    Ok(axum::Json(run))
}
