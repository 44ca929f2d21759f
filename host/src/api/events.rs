//! `/api/v1/events`: the outbox, oldest first: every change the hub made, as subscribers get
//! it (docs/events.md).

use super::extract::Query;
use super::problem::Problem;
use super::{AppState, Page};
use crate::events::Event;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Deserialize;

/// `?limit=&cursor=` of the events list.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Events per page, 1-500 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page: the seq of the last event read.
    pub cursor: Option<i64>,
}

/// A page of events after the cursor. Paging on from the last cursor misses none: seqs
/// become visible in order (`store::events`).
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<Event>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let events = state.manager.db().events_after(q.cursor.unwrap_or(0), limit).await?;
    let events: Vec<Event> = events.into_iter().map(Event::from).collect();
    Ok(axum::Json(Page::new(events, limit, |e| e.seq.to_string())))
}
