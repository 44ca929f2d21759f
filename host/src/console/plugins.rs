//! `/plugins`: installed plugin versions, and a form that uploads a signed package
//! (`POST /api/v1/plugins`) for those who may install.

use super::layout::{self, when};
use super::{PageError, Signed};
use crate::api::AppState;
use axum::extract::State;
use axum::http::Method;
use maud::{Markup, html};

/// Versions listed.
const SHOWN: i64 = 500;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Markup, PageError> {
    signed.must_read("/api/v1/plugins")?;
    let text = signed.lang.text();
    let plugins = state.manager.db().list_plugins(None, SHOWN).await?;
    let views: Vec<crate::api::plugins::PluginView> = plugins.iter().map(Into::into).collect();
    let body = html! {
        @if signed.may_call(&Method::POST, "/api/v1/plugins") {
            form.upload data-upload="/api/v1/plugins" {
                label for="package" { (text.package_file) }
                input #package type="file" name="package" accept=".hfpkg" required;
                button type="submit" { (text.install) }
            }
        }
        table #plugins {
            thead { tr {
                th scope="col" { (text.plugin) } th scope="col" { (text.version) } th scope="col" { (text.contract) }
                th scope="col" { (text.publisher) } th scope="col" { (text.installed) }
            } }
            tbody {
                @for plugin in &views {
                    tr {
                        th scope="row" { (plugin.name) br; small { (plugin.description) } }
                        td { (plugin.version) }
                        td { code { (plugin.contract) } }
                        td { (plugin.publisher.as_deref().unwrap_or("—")) }
                        td { (when(&plugin.installed_at)) }
                    }
                }
            }
        }
    };
    Ok(layout::page(&signed, "/plugins", text.plugins, body))
}
