//! `/api/v1/connectors/{id}/runs` and `/api/v1/runs/{id}`.

use super::extract::{Path, Query};
use super::problem::Problem;
use super::{AppState, Page, PageQuery};
use crate::store::runs::RunRecord;
use axum::extract::State;

/// Newest first.
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Page<RunRecord>>, Problem> {
    state.manager.connector(&id).await?;
    let limit = crate::store::clamp_limit(q.limit);
    let runs = state.manager.db().list_runs(&id, q.cursor.as_deref(), limit).await?;
    Ok(axum::Json(Page::new(runs, limit, |r| r.id.clone())))
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
