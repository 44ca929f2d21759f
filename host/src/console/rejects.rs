//! `/rejects`: rows the pipeline refused, grouped by connector and reason (the largest groups
//! first), and the latest of one group with a button to run each through the pipeline again.

use super::layout::{self, api_button, when};
use super::{PageError, Signed};
use crate::api::AppState;
use axum::extract::{Query, State};
use axum::http::Method;
use maud::{Markup, html};
use serde::Deserialize;

/// Groups listed, and rejects of one group.
const SHOWN: i64 = 50;

#[derive(Deserialize)]
pub struct Filter {
    reason: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(filter): Query<Filter>,
) -> Result<Markup, PageError> {
    signed.must_read("/api/v1/rejects")?;
    let text = signed.lang.text();
    let db = state.manager.db();
    let groups = db.reject_reasons(SHOWN).await?;
    let names = super::ConnectorNames::load(&state).await?;
    let reason = filter.reason.as_deref().filter(|r| !r.is_empty());
    let rejects = match reason {
        Some(reason) => db.list_rejects(None, Some(reason), None, SHOWN).await?,
        None => Vec::new(),
    };
    let body = html! {
        @if groups.is_empty() {
            p { (text.no_rejects) }
        } @else {
            table #reject-groups {
                caption { (text.rejects_by_reason) }
                thead { tr {
                    th scope="col" { (text.reason) } th scope="col" { (text.connector) }
                    th scope="col" { (text.count) } th scope="col" { (text.latest) }
                } }
                tbody {
                    @for group in &groups {
                        tr {
                            td { a href={ "?reason=" (urlencode(&group.reason)) } { (group.reason) } }
                            td { (names.of(&group.connector_id)) }
                            td { (group.count) }
                            td { (when(&group.latest)) }
                        }
                    }
                }
            }
        }
        @if let Some(reason) = reason {
            h2 { (text.reason) ": " (reason) }
            table #rejects {
                thead { tr {
                    th scope="col" { (text.time) } th scope="col" { (text.source) }
                    th scope="col" { (text.connector) } th scope="col" { span.visually-hidden { (text.actions) } }
                } }
                tbody {
                    @for reject in &rejects {
                        tr {
                            td { (when(&reject.created_at)) }
                            td { (reject.source_system) " " code { (reject.source_id) } }
                            td { (names.of(&reject.connector_id)) }
                            td { (api_button(&signed, Method::POST, "/api/v1/rejects/{id}/reprocess", &reject.id, text.reprocess, None)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&signed, "/rejects", text.rejects, body))
}

/// A reason as a query value.
fn urlencode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}
