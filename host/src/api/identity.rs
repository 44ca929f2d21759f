//! `/api/v1/identity/candidates`: the identity review queue (docs/golden-record.md,
//! "Review"), and `/api/v1/practitioners/{id}/split`. Which fields agree is shown to any
//! reader; the values only to callers with `pii:read`, and that read is audited. Deciding
//! and splitting take `operate`.

use super::extract::{Json, Path, Query};
use super::problem::Problem;
use super::{AppState, Page};
use crate::audit::Event;
use crate::auth::{Caller, Permission};
use crate::manager::Reprocessed;
use crate::manager::review::{CandidateView, Split, Verdict};
use axum::Extension;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` (the default), `merged`, `kept-apart` or `all`.
    #[schemars(regex(pattern = r"^(open|merged|kept-apart|all)$"))]
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Oldest first: the queue in the order it filled.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<CandidateView>>, Problem> {
    let status = match q.status.as_deref().unwrap_or("open") {
        "all" => None,
        status @ ("open" | "merged" | "kept-apart") => Some(status),
        other => {
            return Err(Problem::bad_request(format!(
                "status {other:?} is not one of open, merged, kept-apart, all"
            )));
        }
    };
    let limit = crate::store::clamp_limit(q.limit);
    let with_values = caller.may(Permission::PiiRead);
    let items = state
        .manager
        .candidates(status, q.cursor.as_deref(), limit, with_values)
        .await?;
    if with_values {
        let ids: Vec<&str> = items.iter().map(|c| c.id.as_str()).collect();
        let event = Event::new(&caller.actor, "pii.read", "identity-candidates")
            .details(json!({ "count": items.len(), "ids": ids }));
        // No audit entry, no data.
        state.manager.audit().try_record(&event).await?;
    }
    Ok(axum::Json(Page::new(items, limit, |c| c.id.clone())))
}

/// The held record is the person's: it is merged into them, and so is every later version.
pub async fn merge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<Reprocessed>, Problem> {
    Ok(axum::Json(
        state.manager.decide(&id, Verdict::Merge, &caller.actor).await?,
    ))
}

/// The held record is not the person's: it goes on as if they did not match, and is never
/// proposed against them again.
pub async fn keep_apart(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<Reprocessed>, Problem> {
    Ok(axum::Json(
        state.manager.decide(&id, Verdict::KeepApart, &caller.actor).await?,
    ))
}

/// `POST /api/v1/practitioners/{id}/split`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    /// The source system whose record becomes a person of its own (`sources[].system`).
    #[schemars(length(min = 1, max = 64))]
    pub system: String,
}

/// Takes one source's record back out of a practitioner into a person of its own.
pub async fn split(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(request): Json<SplitRequest>,
) -> Result<axum::Json<Split>, Problem> {
    Ok(axum::Json(
        state.manager.split(&id, &request.system, &caller.actor).await?,
    ))
}
