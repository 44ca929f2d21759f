//! `/practitioners?q=`: search by NIK or STR, for `pii:read` holders only. Identifying fields
//! are masked on the server; "Reveal" fetches the practitioner from the API
//! (`GET /api/v1/practitioners/{id}`), which audits that read. The search itself is audited
//! too, as a masked read: it tells whether someone with that NIK is stored.

use super::layout::{self, when};
use super::{PageError, Signed};
use crate::api::AppState;
use crate::api::practitioners::{Lookup, PractitionerView, audit_read, find, provenance_by_field};
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

/// Matches a search shows.
const SHOWN: i64 = 20;

#[derive(Deserialize)]
pub struct Search {
    q: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(search): Query<Search>,
) -> Result<Markup, PageError> {
    let lang = signed.lang;
    let text = lang.text();
    signed.must_read("/api/v1/practitioners")?;
    let query = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let found = match query {
        Some(q) => {
            // A NIK is 16 digits; anything else is taken for an STR number.
            let lookup = if q.len() == 16 && q.bytes().all(|b| b.is_ascii_digit()) {
                Lookup::Nik(q)
            } else {
                Lookup::Str {
                    str_number: q,
                    nik: None,
                }
            };
            let items = find(&state, &lookup, SHOWN).await?;
            audit_read(&state, &signed.caller, lookup.name(), &items, true).await?;
            Some(items)
        }
        None => None,
    };
    let body = html! {
        form.search method="get" role="search" {
            label for="q" { (text.nik_or_str) }
            input #q name="q" value=(query.unwrap_or_default()) autocomplete="off" aria-describedby="q-hint" required;
            button type="submit" { (text.search) }
            p #q-hint.hint { (text.search_hint) }
        }
        @if let Some(items) = &found {
            @if items.is_empty() {
                p role="status" { (text.no_match) }
            }
            @for item in items {
                (card(item, &signed))
            }
        }
    };
    Ok(layout::page(&signed, "/practitioners", text.search_practitioners, body))
}

fn card(p: &PractitionerView, signed: &Signed) -> Markup {
    let text = signed.lang.text();
    let birth = match (&p.birth_place, &p.birth_date) {
        (None, None) => None,
        (place, date) => Some(format!(
            "{}, {}",
            place.as_deref().map(mask).unwrap_or_default(),
            date.as_deref().map(mask).unwrap_or_default()
        )),
    };
    html! {
        article.practitioner data-practitioner=(p.id) aria-labelledby={ "name-" (p.id) } {
            h2 id={ "name-" (p.id) } data-field="full_name" { (p.full_name.as_deref().map(mask_name).unwrap_or_default()) }
            dl.settings {
                dt { (text.nik) } dd data-field="nik" { (p.nik.as_deref().map(mask).unwrap_or_default()) }
                dt { (text.str_number) } dd data-field="str_number" { (p.str_number.as_deref().map(mask).unwrap_or_default()) }
                dt { (text.birth) } dd data-field="birth" { (birth.unwrap_or_default()) }
                dt { (text.profession) } dd { (p.profession.as_deref().unwrap_or("—")) }
                dt { (text.sources) }
                dd { @for (i, s) in p.sources.iter().enumerate() { @if i > 0 { ", " } (s.source_system) } }
            }
            button type="button" data-reveal={ "/api/v1/practitioners/" (p.id) } { (text.reveal) }
            details {
                summary { (text.provenance) }
                table.provenance {
                    thead { tr { th scope="col" { (text.field) } th scope="col" { (text.source) } th scope="col" { (text.time) } } }
                    tbody {
                        @for (field, origin) in provenance_by_field(&p.provenance) {
                            tr { td { code { (field) } } td { (origin.source) } td { (origin.at) } }
                        }
                    }
                }
                p { small { (text.updated) ": " (when(&p.updated_at)) } }
            }
        }
    }
}

/// Most of a value hidden: its first two and last two characters stay, so a person can
/// tell two records apart without reading the value.
fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 6 {
        return "•".repeat(chars.len().max(4));
    }
    let hidden = chars.len() - 4;
    format!(
        "{}{}{}",
        chars[..2].iter().collect::<String>(),
        "•".repeat(hidden),
        chars[chars.len() - 2..].iter().collect::<String>()
    )
}

/// A name as initials: `S••• W•••`.
fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .map(|word| word.chars().next().map(|c| format!("{c}•••")).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_the_ends_of_a_long_value_and_nothing_of_a_short_one() {
        assert_eq!(mask("3201234567890001"), "32••••••••••••01");
        assert_eq!(mask("12345"), "•••••");
        assert_eq!(mask("ab"), "••••");
        assert_eq!(mask_name("Siti Wulandari"), "S••• W•••");
    }
}
