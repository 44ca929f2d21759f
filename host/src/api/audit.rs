//! `/api/v1/audit`: the audit trail, oldest first.

use super::extract::Query;
use super::problem::Problem;
use super::{AppState, Page};
use crate::store::audit::AuditRow;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Entries after this sequence number (the `next_cursor` of the previous page).
    pub cursor: Option<i64>,
    pub limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<AuditRow>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let entries = state.manager.db().audit_entries(q.cursor.unwrap_or(0), limit).await?;
    Ok(axum::Json(Page::new(entries, limit, |e| e.seq.to_string())))
}

/// What checking the chain found.
#[derive(serde::Serialize, JsonSchema)]
pub struct ChainStatus {
    /// The last entry checked: every entry up to it is as written, in order, and the head
    /// seals it.
    pub verified_through: i64,
}

/// Walks the whole audit log and checks every MAC, the numbering and the head (as
/// `hub audit verify` does); 409 names the first entry found edited, deleted or cut off.
pub async fn verify(State(state): State<AppState>) -> Result<axum::Json<ChainStatus>, Problem> {
    match state.manager.audit().verify().await {
        Ok(verified_through) => Ok(axum::Json(ChainStatus { verified_through })),
        Err(crate::audit::AuditError::Chain(broken)) => Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            format!("the audit log has been tampered with: {broken}"),
        )),
        Err(crate::audit::AuditError::Store(error)) => Err(error.into()),
    }
}
