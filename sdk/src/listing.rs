//! Incremental listings: the common shape of a pull from a registry that lists rows changed
//! after a time, page by page (`?updated_since=…&page=…`).
//!
//! [`pull_updated_since`] keeps the cursor: the page in progress, and once the listing is
//! done, the newest change it saw, so the next run lists only what changed after it. A run
//! cut off part-way resumes at its next page with the same `since`. [`pull_json_listing`]
//! is the whole pull for the usual `?page=&per_page=&updated_since=` JSON API:
//!
//! ```no_run
//! # use healthforce_sdk::{http::HttpClient, CanonicalRecord, Error, SyncRequest, SyncSummary};
//! # fn to_record(row: &serde_json::Value) -> CanonicalRecord { unimplemented!() }
//! fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
//!     let client = HttpClient::new("https://registry.example")?.with_credential("registry");
//!     healthforce_sdk::listing::pull_json_listing(&request, &client, "/people", 500, "updated_at", to_record)
//! }
//! ```

use crate::http::{HttpClient, encode_query_value};
use crate::{CanonicalRecord, Error, Page, SyncSummary, pull_pages};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where an incremental listing stands; saved as the connector's cursor.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SinceCursor {
    /// Rows changed after this instant are listed; `None` lists everything.
    pub since: Option<String>,
    /// Next page of the listing in progress (1 when none is in progress).
    pub page: u32,
    /// Newest change seen by the listing in progress.
    pub high_water: Option<String>,
}

/// One page as fetched.
pub struct ListedPage {
    pub records: Vec<CanonicalRecord>,
    /// The newest change time on the page. Times must be in one format (UTC, same
    /// precision), so the newest is the greatest string.
    pub newest: Option<String>,
    pub total_pages: u32,
}

/// A listing answered as `{"data": [...], "meta": {"total_pages": n, ...}}`.
#[derive(Deserialize)]
pub struct JsonListing {
    pub data: Vec<Value>,
    pub meta: JsonListingMeta,
}

#[derive(Deserialize)]
pub struct JsonListingMeta {
    pub total_pages: u32,
}

/// Runs an incremental listing from `start`: `fetch(since, page)` gets one page; records are
/// emitted and the cursor saved after each (see [`pull_pages`]).
pub fn pull_updated_since(
    start: SinceCursor,
    mut fetch: impl FnMut(Option<&str>, u32) -> Result<ListedPage, Error>,
) -> Result<SyncSummary, Error> {
    pull_pages(start, |cursor| {
        let page = cursor.page.max(1);
        let listed = fetch(cursor.since.as_deref(), page)?;
        let high_water = listed.newest.into_iter().chain(cursor.high_water.clone()).max();
        let more = page < listed.total_pages;
        let checkpoint = if more {
            SinceCursor {
                since: cursor.since.clone(),
                page: page + 1,
                high_water,
            }
        } else {
            SinceCursor {
                since: high_water.or_else(|| cursor.since.clone()),
                page: 1,
                high_water: None,
            }
        };
        Ok(Page {
            records: listed.records,
            checkpoint,
            more,
        })
    })
}

/// The common case in full: `GET path?page=…&per_page=…&updated_since=…` (added to any query
/// `path` has) answered as a [`JsonListing`], each row's change time in field `changed_at`,
/// each row mapped by `to_record`; resumes from the cursor the last run saved.
pub fn pull_json_listing(
    request: &crate::SyncRequest,
    client: &HttpClient,
    path: &str,
    per_page: u32,
    changed_at: &str,
    to_record: impl Fn(&Value) -> CanonicalRecord,
) -> Result<SyncSummary, Error> {
    let start: SinceCursor = crate::cursor(request)?.unwrap_or_default();
    let separator = if path.contains('?') { '&' } else { '?' };
    pull_updated_since(start, |since, page| {
        let mut url = format!("{path}{separator}page={page}&per_page={per_page}");
        if let Some(since) = since {
            url.push_str(&format!("&updated_since={}", encode_query_value(since)));
        }
        let listing: JsonListing = client.get_json(&url)?;
        Ok(ListedPage {
            newest: listing.data.iter().filter_map(|row| text(row, changed_at)).max(),
            records: listing.data.iter().map(&to_record).collect(),
            total_pages: listing.meta.total_pages,
        })
    })
}

/// A JSON field as trimmed text, tolerating numbers (registries send NIKs both ways); `None`
/// when missing or blank.
pub fn text(row: &Value, key: &str) -> Option<String> {
    match row.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
