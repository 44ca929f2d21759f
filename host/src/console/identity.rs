//! `/identity`: the identity review queue: records held because they are probably, not
//! surely, a stored person, with which identifying fields agree (never the values, so the
//! page reads no personal data) and the buttons that decide.

use super::layout::{self, api_button, badge, when};
use super::{PageError, Signed};
use crate::api::AppState;
use axum::extract::State;
use axum::http::Method;
use maud::{Markup, html};

/// Candidates listed, oldest first.
const SHOWN: i64 = 100;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Markup, PageError> {
    signed.must_read("/api/v1/identity/candidates")?;
    let text = signed.lang.text();
    let candidates = state.manager.candidates(Some("open"), None, SHOWN, false).await?;
    let body = html! {
        @if candidates.is_empty() {
            p { (text.no_candidates) }
        }
        @for candidate in &candidates {
            article.candidate aria-labelledby={ "candidate-" (candidate.id) } {
                h2 id={ "candidate-" (candidate.id) } { (candidate.system) " " code { (candidate.record_id) } }
                p { (text.why_held) ": " code { (candidate.kind) } " · " (when(&candidate.created_at)) }
                table {
                    thead { tr { th scope="col" { (text.field) } th scope="col" { (text.verdict) } th scope="col" { (text.note) } } }
                    tbody {
                        @for field in &candidate.fields {
                            tr { td { code { (field.field) } } td { (badge(signed.lang, field.verdict)) } td { (field.note.as_deref().unwrap_or("")) } }
                        }
                    }
                }
                div.actions {
                    (api_button(&signed, Method::POST, "/api/v1/identity/candidates/{id}/merge", &candidate.id, text.merge, Some(text.merge_confirm)))
                    (api_button(&signed, Method::POST, "/api/v1/identity/candidates/{id}/keep-apart", &candidate.id, text.keep_apart, None))
                }
            }
        }
    };
    Ok(layout::page(&signed, "/identity", text.identity_review, body))
}
