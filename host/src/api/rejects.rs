//! `/api/v1/rejects`: rows the pipeline refused, with their reason (the rows themselves stay
//! sealed).

use super::extract::{Path, Query};
use super::problem::Problem;
use super::{AppState, Page};
use crate::auth::Caller;
use crate::manager::Reprocessed;
use crate::store::rejects::RejectRecord;
use axum::Extension;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only rejects of this connector.
    pub connector_id: Option<String>,
    /// Only rejects for exactly this reason.
    pub reason: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<RejectRecord>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let rejects = state
        .manager
        .db()
        .list_rejects(
            q.connector_id.as_deref(),
            q.reason.as_deref(),
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(axum::Json(Page::new(rejects, limit, |r| r.id.clone())))
}

/// Runs a rejected row through the pipeline again.
pub async fn reprocess(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<Reprocessed>, Problem> {
    Ok(axum::Json(
        state.manager.runs().reprocess_reject(&id, &caller.actor).await?,
    ))
}
