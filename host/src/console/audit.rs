//! `/audit`: the audit trail, newest first, filtered by actor and action, with a button that
//! checks the whole chain (`GET /api/v1/audit/verify`).

use super::layout::{self, when};
use super::{PageError, Signed};
use crate::api::AppState;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

/// Entries a page shows.
const SHOWN: i64 = 100;

#[derive(Deserialize)]
pub struct Filter {
    actor: Option<String>,
    action: Option<String>,
    /// Entries before this sequence number (the next page).
    before: Option<i64>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(filter): Query<Filter>,
) -> Result<Markup, PageError> {
    signed.must_read("/api/v1/audit")?;
    let text = signed.lang.text();
    let actor = filter.actor.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let action = filter.action.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let entries = state
        .manager
        .db()
        .audit_entries_newest(actor, action, filter.before.unwrap_or(i64::MAX), SHOWN)
        .await?;
    let next = (entries.len() as i64 == SHOWN)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let body = html! {
        div.actions {
            button type="button" data-get="/api/v1/audit/verify" data-say=(text.chain_verified) { (text.verify_chain) }
        }
        form.filter method="get" {
            label for="actor" { (text.actor) }
            input #actor name="actor" value=(actor.unwrap_or_default());
            label for="action" { (text.action) }
            input #action name="action" value=(action.unwrap_or_default()) placeholder="auth.login";
            button type="submit" { (text.filter) }
        }
        table #audit {
            thead { tr {
                th scope="col" { "#" } th scope="col" { (text.time) } th scope="col" { (text.actor) }
                th scope="col" { (text.action) } th scope="col" { (text.target) } th scope="col" { (text.outcome) }
                th scope="col" { (text.details) }
            } }
            tbody {
                @for entry in &entries {
                    tr {
                        td { (entry.seq) }
                        td { (when(&entry.entry.at)) }
                        td { (entry.entry.actor) }
                        td { code { (entry.entry.action) } }
                        td { (entry.entry.target) }
                        td { (entry.entry.outcome) }
                        td { code.details { (entry.entry.details) } }
                    }
                }
            }
        }
        @if let Some(before) = next {
            p { a href={ "?before=" (before) "&actor=" (actor.unwrap_or_default()) "&action=" (action.unwrap_or_default()) } { (text.older) } }
        }
    };
    Ok(layout::page(&signed, "/audit", text.audit, body))
}
