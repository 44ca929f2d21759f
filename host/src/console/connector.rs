//! `/connectors/{id}`: one connector's health and run history (with charts of records by
//! outcome and of duration), its settings and secrets (names and versions, never values), its
//! log filtered by level and run, and the buttons for what the signed-in role may do.

use super::layout::{self, api_button, badge, took, when};
use super::overview::{counts_text, run_counts};
use super::{PageError, Signed, i18n::Lang};
use crate::api::AppState;
use crate::store::logs::LEVELS;
use crate::store::runs::RunRecord;
use axum::extract::{Path, Query, State};
use axum::http::Method;
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
    let connector = state.manager.connector(&id).await?;
    let view = crate::api::connectors::views(&state, std::slice::from_ref(&connector))
        .await?
        .pop()
        .expect("one view per connector");
    let secrets = state.manager.secrets().list(&id).await?;
    // The other installed versions of its plugin, for an upgrade (or a move back).
    let versions: Vec<String> = match &view.plugin {
        Some(current) => state
            .manager
            .db()
            .list_plugins(None, 500)
            .await?
            .into_iter()
            .filter(|p| p.name == current.name && p.version != current.version)
            .map(|p| p.version)
            .collect(),
        None => Vec::new(),
    };
    let live = live(&state, &id, lang).await?;
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
        .await?;
    // Each listed run's trace id, so a log line leads to its trace.
    let mut traces = std::collections::HashMap::new();
    for run_id in lines.iter().filter_map(|l| l.run_id.as_deref()) {
        if !traces.contains_key(run_id)
            && let Some(run) = state.manager.db().run(run_id).await?
        {
            traces.insert(run_id.to_string(), run.trace_id);
        }
    }
    let body = html! {
        section aria-labelledby="actions-title" {
            h2 #actions-title { (text.actions) }
            div.actions {
                @if view.enabled {
                    (api_button(&signed, Method::POST, "/api/v1/connectors/{id}/disable", &id, text.disable, None))
                } @else {
                    (api_button(&signed, Method::POST, "/api/v1/connectors/{id}/enable", &id, text.enable, None))
                }
                (api_button(&signed, Method::POST, "/api/v1/connectors/{id}/run", &id, text.run_now, None))
                (api_button(&signed, Method::POST, "/api/v1/connectors/{id}/state/reset", &id, text.reset_cursor, Some(text.reset_cursor_confirm)))
                (api_button(&signed, Method::POST, "/api/v1/connectors/{id}/webhook-secret", &id, text.rotate_webhook_secret, Some(text.rotate_webhook_secret_confirm)))
                @if view.previous_plugin.is_some() {
                    (api_button(&signed, Method::POST, "/api/v1/connectors/{id}/rollback", &id, text.rollback, Some(text.rollback_confirm)))
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
            @if signed.may_call(&Method::PUT, "/api/v1/connectors/{id}/secrets/{name}") {
                form.create data-api={ "/api/v1/connectors/" (id) "/secrets/{name}" } data-method="PUT" {
                    h3 { (text.set_secret) }
                    label for="secret-name" { (text.name) }
                    input #secret-name name="name" required autocomplete="off";
                    label for="secret-value" { (text.value) }
                    input #secret-value name="value" type="password" required autocomplete="new-password";
                    button type="submit" { (text.save) }
                }
            }
            @if signed.may_call(&Method::POST, "/api/v1/connectors/{id}/upgrade") && !versions.is_empty() {
                form.create data-api={ "/api/v1/connectors/" (id) "/upgrade" } {
                    h3 { (text.upgrade) }
                    label for="upgrade-version" { (text.version) }
                    select #upgrade-version name="version" {
                        @for version in &versions { option value=(version) { (version) } }
                    }
                    button type="submit" { (text.upgrade) }
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
                        th scope="col" { (text.trace) }
                    } }
                    tbody {
                        @for line in &lines {
                            tr {
                                td { (when(&line.at)) }
                                td { (badge(lang, &line.level)) }
                                td { (line.message) }
                                td { @if let Some(run) = &line.run_id { a href={ "?run_id=" (run) } { code { (short(run)) } } } }
                                td { @if let Some(trace) = line.run_id.as_ref().and_then(|r| traces.get(r)) { code title=(trace) { (short(trace)) } } }
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
        p.health { (text.health) ": " (badge(lang, health.status)) " " (health.reason) " · " (text.open_alerts) ": " (health.open_alerts) }
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
                                td { (badge(lang, &run.status)) @if let Some(error) = &run.error { br; small { (error) } } }
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

/// A bar's part: what it counts (its CSS class), top and height.
type Segment = (&'static str, f64, f64);
/// A bar: its title (read by screen readers and shown on hover) and its parts.
type Bar = (String, Vec<Segment>);

const CHART_HEIGHT: f64 = 120.0;

/// The latest runs as two bar charts, oldest on the left, drawn on the server (no chart
/// library, nothing to fetch): records by outcome, stacked, and how long each run took.
fn chart(runs: &[RunRecord], lang: Lang) -> Markup {
    let text = lang.text();
    let oldest_first: Vec<&RunRecord> = runs.iter().rev().collect();
    let outcomes = |r: &RunRecord| {
        [
            (r.records_created, "created"),
            (r.records_updated, "updated"),
            (r.records_unchanged, "unchanged"),
            (r.records_rejected, "rejected"),
            (r.records_held, "held"),
        ]
    };
    let most = oldest_first
        .iter()
        .map(|r| outcomes(r).iter().map(|(n, _)| n).sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let label =
        |run: &RunRecord, what: String| format!("{}: {what}", when(run.started_at.as_ref().unwrap_or(&run.queued_at)));
    let records: Vec<Bar> = oldest_first
        .iter()
        .map(|run| {
            let mut top = CHART_HEIGHT;
            let segments = outcomes(run)
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, class)| {
                    let height = n as f64 / most * (CHART_HEIGHT - 4.0);
                    top -= height;
                    (class, top, height)
                })
                .collect();
            (label(run, counts_text(run, lang)), segments)
        })
        .collect();
    let millis = |r: &RunRecord| match (&r.started_at, &r.finished_at) {
        (Some(start), Some(end)) => (end.as_datetime() - start.as_datetime()).num_milliseconds().max(0),
        _ => 0,
    };
    let longest = oldest_first.iter().map(|r| millis(r)).max().unwrap_or(0).max(1) as f64;
    let durations: Vec<Bar> = oldest_first
        .iter()
        .map(|run| {
            let height = millis(run) as f64 / longest * (CHART_HEIGHT - 4.0);
            let took = took(run.started_at.as_ref(), run.finished_at.as_ref());
            (label(run, took), vec![("duration", CHART_HEIGHT - height, height)])
        })
        .collect();
    html! {
        div.charts {
            figure.chart {
                (bars("records-chart", text.runs_chart, &records))
                figcaption.legend {
                    @for (label, class) in [(text.created, "created"), (text.updated, "updated"), (text.unchanged, "unchanged"), (text.rejected, "rejected"), (text.held, "held")] {
                        span { span class={ "swatch " (class) } {} " " (label) }
                    }
                }
            }
            figure.chart {
                (bars("durations-chart", text.durations_chart, &durations))
                figcaption.legend { span { span class="swatch duration" {} " " (text.duration) } }
            }
        }
    }
}

fn bars(id: &str, title: &str, bars: &[Bar]) -> Markup {
    const WIDTH: usize = 24;
    let width = bars.len() * WIDTH;
    html! {
        svg role="img" aria-labelledby=(id) viewBox={ "0 0 " (width) " " (CHART_HEIGHT) } width=(width) height=(CHART_HEIGHT) {
            title #(id) { (title) }
            @for (i, (label, segments)) in bars.iter().enumerate() {
                g {
                    title { (label) }
                    @for (class, top, height) in segments {
                        rect class=(class) x=(i * WIDTH + 3) y=(format!("{top:.1}")) width=(WIDTH - 6) height=(format!("{height:.1}")) {}
                    }
                }
            }
        }
    }
}

/// The first 8 characters of an id: enough to tell runs apart on a page.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
