//! `/jobs`: the job queue's backlog by kind and status, and its dead jobs (attempts used up)
//! with a button to queue each again.

use super::layout::{self, api_button, badge, when};
use super::{PageError, Signed};
use crate::api::AppState;
use crate::store::Timestamp;
use crate::store::jobs::JobFilter;
use axum::extract::State;
use axum::http::Method;
use maud::{Markup, html};

/// Dead jobs listed.
const SHOWN: i64 = 100;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Markup, PageError> {
    signed.must_read("/api/v1/jobs")?;
    let text = signed.lang.text();
    let db = state.manager.db();
    let backlog = db.job_backlog(Timestamp::now()).await?;
    let dead_filter = JobFilter {
        status: Some("dead"),
        connector_id: None,
        kind: None,
    };
    let dead = db.list_jobs(&dead_filter, None, SHOWN).await?;
    let names = super::ConnectorNames::load(&state).await?;
    let body = html! {
        table #backlog {
            caption { (text.backlog_by_kind) }
            thead { tr { th scope="col" { (text.kind) } th scope="col" { (text.status) } th scope="col" { (text.count) } th scope="col" { (text.oldest_due) } } }
            tbody {
                @for row in &backlog {
                    tr {
                        td { (row.kind) } td { (badge(signed.lang, &row.status)) } td { (row.count) }
                        td { @if let Some(at) = &row.oldest_due { (when(at)) } }
                    }
                }
            }
        }
        h2 { (text.dead_jobs) }
        @if dead.is_empty() {
            p { (text.no_dead_jobs) }
        } @else {
            table #dead-jobs-list {
                thead { tr {
                    th scope="col" { (text.time) } th scope="col" { (text.connector) } th scope="col" { (text.kind) }
                    th scope="col" { (text.attempts) } th scope="col" { (text.error) } th scope="col" { span.visually-hidden { (text.actions) } }
                } }
                tbody {
                    @for job in &dead {
                        tr {
                            td { (when(job.finished_at.as_ref().unwrap_or(&job.created_at))) }
                            td { (names.of(&job.connector_id)) }
                            td { (job.kind) }
                            td { (job.attempts) " / " (job.max_attempts) }
                            td { (job.error.as_deref().unwrap_or("")) }
                            td { (api_button(&signed, Method::POST, "/api/v1/jobs/{id}/retry", &job.id, text.retry, None)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&signed, "/jobs", text.jobs, body))
}
