//! The frame every console page shares: skip link, navigation, language switch, who is
//! signed in, and the live region where the script says what a button did.

use super::Signed;
use super::i18n::Lang;
use crate::store::Timestamp;
use axum::http::Method;
use maud::{DOCTYPE, Markup, html};

/// A page for a signed-in browser; `path` is where it lives (for the language switch).
pub fn page(signed: &Signed, path: &str, title: &str, body: Markup) -> Markup {
    let text = signed.lang.text();
    let other = other_language(signed.lang);
    document(
        signed.lang,
        title,
        Some(&signed.csrf),
        html! {
            header.top {
                nav aria-label=(text.menu) {
                    a.brand href="/" { "HealthForce Hub" }
                    @for (href, label, template) in [
                        ("/", text.overview, "/api/v1/connectors"),
                        ("/rejects", text.rejects, "/api/v1/rejects"),
                        ("/jobs", text.jobs, "/api/v1/jobs"),
                        ("/alerts", text.alerts, "/api/v1/alerts"),
                        ("/identity", text.identity_review, "/api/v1/identity/candidates"),
                        ("/plugins", text.plugins, "/api/v1/plugins"),
                        ("/practitioners", text.practitioners, "/api/v1/practitioners"),
                        ("/audit", text.audit, "/api/v1/audit"),
                        ("/api-keys", text.api_keys, "/api/v1/api-keys"),
                        ("/keys", text.keys, "/api/v1/keys"),
                    ] {
                        // Only the pages this role may read.
                        @if signed.may_call(&Method::GET, template) {
                            a href=(href) aria-current=[(path == href).then_some("page")] { (label) }
                        }
                    }
                }
                div.who {
                    a href={ "/lang/" (other.code()) "?next=" (path) } lang=(other.code()) { (text.other_language) }
                    span { (text.signed_in_as) " " strong { (signed.caller.actor) } " (" (signed.caller.role) ")" }
                    form method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        button type="submit" { (text.sign_out) }
                    }
                }
            }
            main #main {
                h1 { (title) }
                p #status role="status" aria-live="polite" {}
                (body)
            }
        },
    )
}

/// A page for a browser that is not signed in (sign-in, errors).
pub fn bare(lang: Lang, title: &str, body: Markup) -> Markup {
    let other = other_language(lang);
    document(
        lang,
        title,
        None,
        html! {
            header.top {
                span.brand { "HealthForce Hub" }
                div.who {
                    a href={ "/lang/" (other.code()) "?next=/login" } lang=(other.code()) { (lang.text().other_language) }
                }
            }
            main #main .narrow { (body) }
        },
    )
}

fn document(lang: Lang, title: &str, csrf: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(csrf) = csrf {
                    meta name="csrf-token" content=(csrf);
                }
                title { (title) " · HealthForce Hub" }
                // No icon, so the browser asks for no /favicon.ico.
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { (lang.text().skip_to_content) }
                (body)
            }
        }
    }
}

fn other_language(lang: Lang) -> Lang {
    match lang {
        Lang::Id => Lang::En,
        Lang::En => Lang::Id,
    }
}

/// A point in time as people read it: `2026-12-01 14:03:22 UTC`.
pub fn when(at: &Timestamp) -> String {
    at.as_datetime().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How long a run took, or has been going.
pub fn took(started: Option<&Timestamp>, finished: Option<&Timestamp>) -> String {
    let Some(started) = started else {
        return "—".into();
    };
    let end = finished.map_or_else(chrono::Utc::now, Timestamp::as_datetime);
    let ms = (end - started.as_datetime()).num_milliseconds().max(0);
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 600_000 {
        format!("{} s", ms / 1000)
    } else {
        format!("{} min", ms / 60_000)
    }
}

/// A health or run status as a labelled badge (colour is never the only signal: the word is
/// there too).
pub fn badge(lang: Lang, status: &str) -> Markup {
    html! { span class={ "badge " (status) } { (lang.status_word(status)) } }
}

/// A button that calls the API route `method template` with `{id}` filled in, shown only when
/// the caller may call it; `confirm` asks first.
pub fn api_button(
    signed: &Signed,
    method: Method,
    template: &str,
    id: &str,
    label: &str,
    confirm: Option<&str>,
) -> Markup {
    if !signed.may_call(&method, template) {
        return html! {};
    }
    let path = template.replace("{id}", id);
    let other_method = (method != Method::POST).then(|| method.as_str());
    html! { button type="button" data-api=(path) data-method=[other_method] data-confirm=[confirm] { (label) } }
}
