//! `/api/v1/alerts`: what an operator must act on, newest first.

use super::extract::Query;
use super::problem::Problem;
use super::{AppState, Page};
use crate::store::alerts::{AlertRecord, Concern};
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this connector's alerts.
    pub connector_id: Option<String>,
    /// Only this webhook subscription's alerts (not with `connector_id`).
    pub subscription_id: Option<String>,
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
    let concern = match (q.connector_id.as_deref(), q.subscription_id.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "an alert concerns a connector or a subscription: give connector_id or subscription_id, not both",
            ));
        }
        (Some(id), None) => Some(Concern::Connector(id)),
        (None, Some(id)) => Some(Concern::Subscription(id)),
        (None, None) => None,
    };
    let alerts = (state.manager.db())
        .list_alerts(concern, q.open, q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(Page::new(alerts, limit, |a| a.id.clone())))
}
