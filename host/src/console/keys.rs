//! `/keys`: what wraps the data keys, their versions, and the last rotation's progress, with
//! the button that starts a rotation. Admins only, as the API has it.

use super::layout::{self, api_button, badge, when};
use super::{PageError, Signed};
use crate::api::AppState;
use axum::extract::State;
use axum::http::Method;
use maud::{Markup, html};

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Markup, PageError> {
    signed.must_read("/api/v1/keys")?;
    let text = signed.lang.text();
    let status = state.manager.keys_status().await?;
    let body = html! {
        div.actions {
            (api_button(&signed, Method::POST, "/api/v1/keys/rotate", "", text.rotate_keys, Some(text.rotate_keys_confirm)))
        }
        dl.settings {
            dt { (text.kek) } dd { code { (status.kek) } }
            dt { (text.secrets_backend) } dd { code { (status.secrets_backend) } }
            dt { (text.active_version) } dd { (status.active_version) }
        }
        table #key-versions {
            thead { tr { th scope="col" { (text.version) } th scope="col" { (text.status) } th scope="col" { (text.created) } } }
            tbody {
                @for version in &status.versions {
                    tr { td { (version.version) } td { (badge(signed.lang, &version.status)) } td { (when(&version.created_at)) } }
                }
            }
        }
        @if let Some(rotation) = &status.rotation {
            h2 { (text.rotation) }
            p #rotation {
                (badge(signed.lang, &rotation.status)) " → v" (rotation.to_version) ": "
                progress max=(rotation.total.max(1)) value=(rotation.done) aria-label=(text.rotation) {}
                " " (rotation.done) " / " (rotation.total)
                " · " (when(&rotation.started_at)) " · " (rotation.requested_by)
                @if let Some(error) = &rotation.error { br; span.error { (error) } }
            }
        }
    };
    Ok(layout::page(&signed, "/keys", text.keys, body))
}
