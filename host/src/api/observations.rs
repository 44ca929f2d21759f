//! `/api/v1/observations`: device vital signs, newest first. The subject (who was measured)
//! and the components stay sealed; code, value, unit, device and time are shown.

use super::extract::Query;
use super::problem::Problem;
use super::{AppState, Page};
use crate::store::observations::ObservationRecord;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub device_id: Option<String>,
    /// LOINC code, e.g. `8867-4` (heart rate).
    pub code: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<ObservationRecord>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let observations = state
        .manager
        .db()
        .list_observations(
            q.device_id.as_deref(),
            q.code.as_deref(),
            q.cursor.as_deref().filter(|c| !c.is_empty()),
            limit,
        )
        .await?;
    Ok(axum::Json(Page::new(observations, limit, |o| o.id.clone())))
}
