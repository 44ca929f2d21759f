//! `/`: every connector with its health, last and next run and open alerts, beside the job
//! queue's backlog, its dead jobs and the practitioners stored. `/events` streams the same
//! part of the page again whenever it changes (Server-Sent Events), so a running sync's
//! counts grow on screen.

use super::layout::{self, badge, took, when};
use super::{PageError, Signed, i18n::Lang};
use crate::api::AppState;
use crate::api::connectors::ConnectorView;
use crate::store::Timestamp;
use axum::extract::State;
use axum::response::sse::Sse;
use futures::Stream;
use maud::{Markup, html};

/// Connectors the overview lists (a hub has one per external system: tens, not hundreds).
const MAX_CONNECTORS: i64 = 500;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Markup, PageError> {
    let text = signed.lang.text();
    let live = live(&state, signed.lang).await?;
    Ok(layout::page(
        &signed,
        "/",
        text.overview,
        html! { div #live data-live="/events" { (live) } },
    ))
}

pub async fn events(State(state): State<AppState>, signed: Signed) -> Sse<impl Stream<Item = super::LiveEvent>> {
    super::live_stream(state, signed, |state, lang| async move { live(&state, lang).await })
}

/// The part of the page that changes.
async fn live(state: &AppState, lang: Lang) -> Result<Markup, PageError> {
    let text = lang.text();
    let db = state.manager.db();
    let connectors = db.list_connectors(None, MAX_CONNECTORS).await?;
    let views = crate::api::connectors::views(state, &connectors).await?;
    let backlog = db.job_backlog(Timestamp::now()).await?;
    let waiting: i64 = backlog.iter().filter(|b| b.status != "dead").map(|b| b.count).sum();
    let dead: i64 = backlog.iter().filter(|b| b.status == "dead").map(|b| b.count).sum();
    let stored = db.count_practitioners().await?;
    let alerts: i64 = views.iter().map(|v| v.health.open_alerts).sum();
    Ok(html! {
        dl.cards {
            div { dt { (text.jobs_waiting) } dd #jobs-waiting { (waiting) } }
            div.warn[dead > 0] { dt { (text.dead_jobs) } dd #dead-jobs { (dead) } }
            div.warn[alerts > 0] { dt { (text.open_alerts) } dd #open-alerts { (alerts) } }
            div { dt { (text.practitioners_stored) } dd #practitioners-stored { (stored) } }
        }
        table #connectors {
            caption { (text.connectors) }
            thead {
                tr {
                    th scope="col" { (text.connector) }
                    th scope="col" { (text.health) }
                    th scope="col" { (text.state) }
                    th scope="col" { (text.last_run) }
                    th scope="col" { (text.duration) }
                    th scope="col" { (text.next_run) }
                    th scope="col" { (text.open_alerts) }
                }
            }
            tbody {
                @for view in &views {
                    (row(view, lang))
                }
            }
        }
    })
}

fn row(view: &ConnectorView, lang: Lang) -> Markup {
    let text = lang.text();
    let last = view.health.last_run.as_ref();
    html! {
        tr data-connector=(view.name) {
            th scope="row" {
                a href={ "/connectors/" (view.id) } { (view.name) }
                @if let Some(plugin) = &view.plugin {
                    br; small { (plugin.name) " " (plugin.version) }
                }
            }
            td data-label=(text.health) { (badge(lang, view.health.status)) br; small { (view.health.reason) } }
            td.state data-label=(text.state) { (if view.enabled { text.enabled } else { text.disabled }) }
            td data-label=(text.last_run) {
                @match last {
                    Some(run) => {
                        (badge(lang, &run.status))
                        @if run.status == "running" { " " (text.running_so_far) }
                        br;
                        (run_counts(run, lang))
                    }
                    None => { (text.never) }
                }
            }
            td data-label=(text.duration) { @if let Some(run) = last { (took(run.started_at.as_ref(), run.finished_at.as_ref())) } }
            td data-label=(text.next_run) {
                @match &view.next_run_at {
                    Some(at) => (when(at)),
                    None => (text.not_scheduled),
                }
            }
            td data-label=(text.open_alerts) { (view.health.open_alerts) }
        }
    }
}

/// A run's counts in words: `5000 received · 4738 created · 262 rejected`, zeros left out.
pub fn counts_text(run: &crate::store::runs::RunRecord, lang: Lang) -> String {
    let text = lang.text();
    let counts = [
        (run.records_received, text.received),
        (run.records_created, text.created),
        (run.records_updated, text.updated),
        (run.records_unchanged, text.unchanged),
        (run.records_rejected, text.rejected),
        (run.records_held, text.held),
    ];
    // Received always, the others when there are any.
    counts
        .iter()
        .enumerate()
        .filter(|(i, (n, _))| *i == 0 || *n > 0)
        .map(|(_, (n, what))| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub fn run_counts(run: &crate::store::runs::RunRecord, lang: Lang) -> Markup {
    html! { span.counts { (counts_text(run, lang)) } }
}
