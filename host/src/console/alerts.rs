//! `/alerts`: alerts raised for connectors (refused credentials, reject rates over 20 %)
//! and webhook subscriptions (disabled by the hub), open ones first.

use super::layout::{self, when};
use super::{PageError, Signed};
use crate::api::AppState;
use axum::extract::State;
use maud::{Markup, html};

/// Alerts listed.
const SHOWN: i64 = 200;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Markup, PageError> {
    signed.must_read("/api/v1/alerts")?;
    let text = signed.lang.text();
    let mut alerts = state.manager.db().list_alerts(None, false, None, SHOWN).await?;
    // Open ones first, each group newest first (the list is newest first already).
    alerts.sort_by_key(|a| a.resolved_at.is_some());
    let names = super::ConnectorNames::load(&state).await?;
    let body = html! {
        @if alerts.is_empty() {
            p { (text.no_alerts) }
        } @else {
            table #alerts {
                thead { tr {
                    th scope="col" { (text.raised) } th scope="col" { (text.alert_about) } th scope="col" { (text.kind) }
                    th scope="col" { (text.message) } th scope="col" { (text.resolved) }
                } }
                tbody {
                    @for alert in &alerts {
                        tr {
                            td { (when(&alert.raised_at)) }
                            td {
                                @match (&alert.connector_id, &alert.subscription_id) {
                                    (Some(id), _) => a href={ "/connectors/" (id) } { (names.of(id)) },
                                    (None, Some(id)) => { (text.webhook_subscription) " " code { (id) } }
                                    (None, None) => {}
                                }
                            }
                            td { (alert.kind) }
                            td { (alert.message) }
                            td { @match &alert.resolved_at { Some(at) => (when(at)), None => strong { (text.still_open) } } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&signed, "/alerts", text.alerts, body))
}
