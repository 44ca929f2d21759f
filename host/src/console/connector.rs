//! `/connectors/{id}`: one connector's health and run history (with a chart of records by
//! outcome), its settings and secrets (names and versions, never values), its log filtered
//! by level and run, and the buttons for what the signed-in role may do.

use super::layout::{self, badge, took, when};
use super::overview::{counts_text, run_counts};
use super::{PageError, Signed, i18n::Lang};
use crate::api::AppState;
use crate::auth::Permission;
use crate::store::logs::LEVELS;
use crate::store::runs::RunRecord;
use axum::extract::{Path, Query, State};
use axum::response::sse::Sse;
use futures::Stream;
use maud::{Markup, html};
use serde::Deserialize;

/// Runs the page lists and charts.
const RUNS_SHOWN: i64 = 20;
/// Log lines the page lists.
const LOG_LINES_SHOWN: i64 = 100;

#[derive(Deserialize)]
pub struct LogFilter {
    level: Option<String>,
    run_id: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(filter): Query<LogFilter>,
) -> Result<Markup, PageError> {
    let lang = signed.lang;
    let text = lang.text();
    let in_lang = |e: PageError| e.in_lang(lang);
    let connector = state
        .manager
        .connector(&id)
        .await
        .map_err(PageError::from)
        .map_err(in_lang)?;
    let view = crate::api::connectors::views(&state, std::slice::from_ref(&connector))
        .await
        .map_err(PageError::from)
        .map_err(in_lang)?
        .pop()
        .expect("one view per connector");
    let secrets = state
        .manager
        .secrets()
        .list(&id)
        .await
        .map_err(PageError::from)
        .map_err(in_lang)?;
    let live = live(&state, &id, lang).await.map_err(in_lang)?;
    // A level shows that level and the more severe ones, as the API's `?level=` does.
    let level = filter
        .level
        .as_deref()
        .and_then(|l| LEVELS.iter().position(|known| *known == l));
    let run_id = filter.run_id.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let levels = level.map_or(LEVELS, |at| &LEVELS[..=at]);
    let lines = state
        .manager
        .db()
        .list_logs(&id, run_id, levels, i64::MAX, LOG_LINES_SHOWN)
        .await
        .map_err(PageError::from)
        .map_err(in_lang)?;
    let api = format!("/api/v1/connectors/{id}");
    let body = html! {
        section aria-labelledby="actions-title" {
            h2 #actions-title { (text.actions) }
            div.actions {
                @if signed.may(Permission::Operate) {
                    @if view.enabled {
                        button type="button" data-api={ (api) "/disable" } { (text.disable) }
                    } @else {
                        button type="button" data-api={ (api) "/enable" } { (text.enable) }
                    }
                    button type="button" data-api={ (api) "/run" } { (text.run_now) }
                    button type="button" data-api={ (api) "/state/reset" } data-body="{}" data-confirm=(text.reset_cursor_confirm) { (text.reset_cursor) }
                }
                @if signed.may(Permission::Integrate) {
                    button type="button" data-api={ (api) "/webhook-secret" } data-confirm=(text.rotate_webhook_secret_confirm) data-show="secret" { (text.rotate_webhook_secret) }
                    @if view.previous_plugin.is_some() {
                        button type="button" data-api={ (api) "/rollback" } data-confirm=(text.rollback_confirm) { (text.rollback) }
                    }
                }
            }
        }
        div #live data-live={ "/connectors/" (id) "/events" } { (live) }
        section aria-labelledby="settings-title" {
            h2 #settings-title { (text.settings) }
            dl.settings {
                dt { (text.state) } dd #connector-state { (if view.enabled { text.enabled } else { text.disabled }) }
                dt { (text.plugin) }
                dd { @if let Some(plugin) = &view.plugin { (plugin.name) " " (plugin.version) } }
                dt { (text.schedule) } dd { code { (view.schedule.as_deref().unwrap_or("—")) } }
                dt { (text.timezone) } dd { (view.timezone) }
                dt { (text.next_run) }
                dd { @match &view.next_run_at { Some(at) => (when(at)), None => (text.not_scheduled) } }
            }
            h3 { (text.config) }
            pre.config { (serde_json::to_string_pretty(&view.config).unwrap_or_default()) }
            h3 { (text.secrets) }
            @if secrets.is_empty() {
                p { (text.no_secrets) }
            } @else {
                ul.secrets {
                    @for secret in &secrets {
                        li { code { (secret.name) } " — " (text.secret_version) " " (secret.version) ", " (when(&secret.updated_at)) }
                    }
                }
            }
        }
        section aria-labelledby="logs-title" {
            h2 #logs-title { (text.logs) }
            form.filter method="get" {
                label for="level" { (text.level) }
                select #level name="level" {
                    option value="" { (text.any_level) }
                    @for (at, name) in LEVELS.iter().enumerate() {
                        option value=(name) selected[level == Some(at)] { (name) }
                    }
                }
                label for="run_id" { (text.run_id) }
                input #run_id name="run_id" value=(run_id.unwrap_or_default()) size="36";
                button type="submit" { (text.filter) }
            }
            @if lines.is_empty() {
                p { (text.no_logs) }
            } @else {
                table.logs {
                    thead { tr {
                        th scope="col" { (text.time) } th scope="col" { (text.level) }
                        th scope="col" { (text.message) } th scope="col" { (text.run_id) }
                    } }
                    tbody {
                        @for line in &lines {
                            tr {
                                td { (when(&line.at)) }
                                td { (badge(&line.level)) }
                                td { (line.message) }
                                td { @if let Some(run) = &line.run_id { a href={ "?run_id=" (run) } { code { (short(run)) } } } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        &signed,
        &format!("/connectors/{id}"),
        &connector.name,
        body,
    ))
}

pub async fn events(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Sse<impl Stream<Item = super::LiveEvent>> {
    super::live_stream(state, signed, move |state, lang| {
        let id = id.clone();
        async move { live(&state, &id, lang).await }
    })
}

/// Health and run history: the part of the page that changes while runs go.
async fn live(state: &AppState, id: &str, lang: Lang) -> Result<Markup, PageError> {
    let text = lang.text();
    let connector = state.manager.connector(id).await?;
    let health = state
        .manager
        .health_of(std::slice::from_ref(&connector))
        .await?
        .pop()
        .expect("one health per connector");
    let runs = state.manager.db().list_runs(id, None, RUNS_SHOWN).await?;
    Ok(html! {
        p.health { (text.health) ": " (badge(health.status)) " " (health.reason) " · " (text.open_alerts) ": " (health.open_alerts) }
        section aria-labelledby="runs-title" {
            h2 #runs-title { (text.runs) }
            @if runs.is_empty() {
                p { (text.no_runs) }
            } @else {
                (chart(&runs, lang))
                table #runs {
                    thead { tr {
                        th scope="col" { (text.started) } th scope="col" { (text.status) }
                        th scope="col" { (text.trigger) } th scope="col" { (text.records) }
                        th scope="col" { (text.duration) } th scope="col" { (text.trace) }
                    } }
                    tbody {
                        @for run in &runs {
                            tr data-run=(run.id) {
                                td { (when(run.started_at.as_ref().unwrap_or(&run.queued_at))) }
                                td { (badge(&run.status)) @if let Some(error) = &run.error { br; small { (error) } } }
                                td { (run.trigger) }
                                td { (run_counts(run, lang)) }
                                td { (took(run.started_at.as_ref(), run.finished_at.as_ref())) }
                                td { a href={ "?run_id=" (run.id) "#logs-title" } { code { (short(&run.trace_id)) } } }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// A bar's part: outcome (its CSS class), top and height.
type Segment = (&'static str, f64, f64);

/// The latest runs as stacked bars of records by outcome, oldest on the left, drawn on the
/// server (no chart library, nothing to fetch). Each bar has a title a screen reader reads.
fn chart(runs: &[RunRecord], lang: Lang) -> Markup {
    const BAR: usize = 24;
    const HEIGHT: f64 = 120.0;
    let text = lang.text();
    let outcomes = |r: &RunRecord| {
        [
            (r.records_created, "created"),
            (r.records_updated, "updated"),
            (r.records_unchanged, "unchanged"),
            (r.records_rejected, "rejected"),
            (r.records_held, "held"),
        ]
    };
    let most = runs
        .iter()
        .map(|r| outcomes(r).iter().map(|(n, _)| n).sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    // Each run's segments, stacked from the bottom.
    let bars: Vec<(&RunRecord, Vec<Segment>)> = runs
        .iter()
        .rev()
        .map(|run| {
            let mut top = HEIGHT;
            let segments = outcomes(run)
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, class)| {
                    let height = n as f64 / most * (HEIGHT - 4.0);
                    top -= height;
                    (class, top, height)
                })
                .collect();
            (run, segments)
        })
        .collect();
    let width = runs.len() * BAR;
    html! {
        figure.chart {
            svg role="img" aria-labelledby="chart-title" viewBox={ "0 0 " (width) " " (HEIGHT) } width=(width) height=(HEIGHT) {
                title #chart-title { (text.runs_chart) }
                @for (i, (run, segments)) in bars.iter().enumerate() {
                    g {
                        title { (when(run.started_at.as_ref().unwrap_or(&run.queued_at))) ": " (counts_text(run, lang)) }
                        @for (class, top, height) in segments {
                            rect class=(class) x=(i * BAR + 3) y=(format!("{top:.1}")) width=(BAR - 6) height=(format!("{height:.1}")) {}
                        }
                    }
                }
            }
            figcaption.legend {
                @for (label, class) in [(text.created, "created"), (text.updated, "updated"), (text.unchanged, "unchanged"), (text.rejected, "rejected"), (text.held, "held")] {
                    span { span class={ "swatch " (class) } {} " " (label) }
                }
            }
        }
    }
}

/// The first 8 characters of an id: enough to tell runs apart on a page.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
