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
    pub status: Option<JobStatus>,
    pub connector_id: Option<String>,
    pub kind: Option<crate::jobs::JobKind>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Where a job is.
#[derive(Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    /// Failed its last attempt (`POST /api/v1/jobs/{id}/retry` queues it again).
    Dead,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
        }
    }
}

/// Newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<JobRecord>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let filter = JobFilter {
        status: q.status.map(JobStatus::as_str),
        connector_id: q.connector_id.as_deref(),
        kind: q.kind.map(crate::jobs::JobKind::as_str),
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
    let job = state.manager.runs().retry_job(&id, &caller.actor).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)))
}
