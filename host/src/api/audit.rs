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
