//! `/api/v1/alerts`: what an operator must act on, newest first.

use super::extract::Query;
use super::problem::Problem;
use super::{AppState, Page};
use crate::store::alerts::AlertRecord;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this connector's alerts.
    pub connector_id: Option<String>,
    /// Only alerts not yet resolved.
    #[serde(default)]
    pub open: bool,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<AlertRecord>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let alerts = state
        .manager
        .db()
        .list_alerts(q.connector_id.as_deref(), q.open, q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(Page::new(alerts, limit, |a| a.id.clone())))
}
