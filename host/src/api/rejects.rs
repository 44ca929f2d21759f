//! `/api/v1/rejects`: rows the pipeline refused, with their reason (the rows themselves stay
//! sealed).

use super::AppState;
use super::extract::{Query, page};
use super::problem::Problem;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    connector_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Newest first.
pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<axum::Json<Value>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let rejects = state
        .manager
        .db()
        .list_rejects(q.connector_id.as_deref(), q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(page(rejects, limit, |r| r.id.clone())))
}
