//! `/api-keys`: API keys (never the keys themselves), a form that creates one (shown once) and
//! a button that revokes each. Admins only, as the API has it.

use super::layout::{self, api_button, when};
use super::{PageError, Signed};
use crate::api::AppState;
use crate::auth::Role;
use axum::extract::State;
use axum::http::Method;
use maud::{Markup, html};

/// Keys listed.
const SHOWN: i64 = 500;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Markup, PageError> {
    signed.must_read("/api/v1/api-keys")?;
    let text = signed.lang.text();
    let keys = state.manager.db().list_api_keys(None, SHOWN).await?;
    let body = html! {
        @if signed.may_call(&Method::POST, "/api/v1/api-keys") {
            form.create data-api="/api/v1/api-keys" {
                h2 { (text.new_api_key) }
                label for="key-name" { (text.name) }
                input #key-name name="name" required pattern="[A-Za-z0-9._\\-]{1,64}";
                label for="key-role" { (text.role) }
                select #key-role name="role" {
                    @for role in Role::ALL { option value=(role.as_str()) { (role.as_str()) } }
                }
                label { input type="checkbox" name="permissions" value="pii:read" data-list; " " (text.grant_pii_read) }
                button type="submit" { (text.create) }
            }
        }
        table #api-keys {
            thead { tr {
                th scope="col" { (text.name) } th scope="col" { (text.role) } th scope="col" { (text.grants) }
                th scope="col" { (text.created) } th scope="col" { (text.revoked) } th scope="col" { span.visually-hidden { (text.actions) } }
            } }
            tbody {
                @for key in &keys {
                    tr {
                        th scope="row" { (key.name) }
                        td { (key.role) }
                        td { (key.permissions.join(", ")) }
                        td { (when(&key.created_at)) @if let Some(by) = &key.created_by { br; small { (by) } } }
                        td { @if let Some(at) = &key.revoked_at { (when(at)) } }
                        td {
                            @if key.revoked_at.is_none() {
                                (api_button(&signed, Method::DELETE, "/api/v1/api-keys/{id}", &key.id, text.revoke, Some(text.revoke_confirm)))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&signed, "/api-keys", text.api_keys, body))
}
