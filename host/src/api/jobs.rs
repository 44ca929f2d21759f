//! `/api/v1/jobs`: the durable job queue — what is waiting, running, done or dead — and
//! retrying dead jobs.

use super::extract::{Path, Query};
use super::problem::Problem;
use super::{AppState, Page};
use crate::auth::Caller;
use crate::store::jobs::{JobFilter, JobRecord};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `queued`, `running`, `succeeded` or `dead`.
    pub status: Option<String>,
    pub connector_id: Option<String>,
    /// `sync`, `webhook` or `messages`.
    pub kind: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

const STATUSES: &[&str] = &["queued", "running", "succeeded", "dead"];

/// Newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<JobRecord>>, Problem> {
    if let Some(status) = q.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(Problem::bad_request(format!(
            "status {status:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    if let Some(kind) = q.kind.as_deref().filter(|k| crate::jobs::JobKind::parse(k).is_none()) {
        return Err(Problem::bad_request(format!(
            "kind {kind:?} is not one of sync, webhook, messages"
        )));
    }
    let limit = crate::store::clamp_limit(q.limit);
    let filter = JobFilter {
        status: q.status.as_deref(),
        connector_id: q.connector_id.as_deref(),
        kind: q.kind.as_deref(),
    };
    let jobs = state
        .manager
        .db()
        .list_jobs(&filter, q.cursor.as_deref().filter(|c| !c.is_empty()), limit)
        .await?;
    Ok(axum::Json(Page::new(jobs, limit, |j| j.id.clone())))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<axum::Json<JobRecord>, Problem> {
    let job = state.manager.db().job(&id).await?;
    Ok(axum::Json(job.ok_or_else(|| {
        Problem::not_found(format!("job {id:?} does not exist"))
    })?))
}

/// Queues a dead job again with a fresh set of attempts.
pub async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<JobRecord>), Problem> {
    let job = state.manager.retry_job(&id, &caller.actor).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)))
}
