//! Incremental listings: the common shape of a pull from a registry that lists rows changed
//! after a time (`?updated_since=…`), page by page: by page number (`?page=3&per_page=500`),
//! by offset (`?offset=1000&limit=500`) or by an opaque cursor the registry hands out with
//! each page (`?cursor=eyJpZCI6…&limit=500`).
//!
//! [`pull_updated_since`] keeps the connector's cursor: where the listing in progress goes on,
//! and once the listing is done, the newest change it saw, so the next run lists only what
//! changed after it. A run cut off part-way resumes at its next page with the same `since`.
//! [`pull_json_listing`] is the whole pull for the usual JSON API answering
//! `{"data": [...], "meta": {...}}`:
//!
//! ```no_run
//! # use healthforce_sdk::{http::HttpClient, CanonicalRecord, Error, SyncRequest, SyncSummary};
//! # use healthforce_sdk::listing::{pull_json_listing, Paging};
//! # fn to_record(row: &serde_json::Value) -> CanonicalRecord { unimplemented!() }
//! fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
//!     let client = HttpClient::new("https://registry.example")?.with_header("x-api-key", "…");
//!     // `?cursor=…&limit=500`, the next page's cursor in `meta.next_cursor`.
//!     pull_json_listing(&request, &client, "/people", Paging::cursor(500), "updated_at", to_record)
//! }
//! ```

use crate::http::{HttpClient, encode_query_value};
use crate::{CanonicalRecord, Error, Page, SyncSummary, pull_pages};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Where an incremental listing stands; saved as the connector's cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinceCursor {
    /// Rows changed after this instant are listed; `None` lists everything.
    pub since: Option<String>,
    /// Next page of a page-number listing in progress (1, or 0, when none is).
    #[serde(default)]
    pub page: u32,
    /// Rows of an offset listing in progress read so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// The next page's token in a cursor listing in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Newest change seen by the listing in progress.
    pub high_water: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a listing goes on after a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextPage {
    /// Page number `n` (counting from 1).
    Number(u32),
    /// After this many rows.
    Offset(u64),
    /// The token the registry gave for the next page.
    Token(String),
}

/// One page as fetched.
pub struct ListedPage {
    pub records: Vec<CanonicalRecord>,
    /// The newest change time on the page. Times must be in one format (UTC, same
    /// precision), so the newest is the greatest string.
    pub newest: Option<String>,
    /// Where the listing goes on; `None` after its last page.
    pub next: Option<NextPage>,
}

/// How a listing pages, and the names of its query parameters.
#[derive(Clone, Debug)]
pub struct Paging {
    style: Style,
    size: u32,
    position_param: String,
    size_param: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Number,
    Offset,
    Token,
}

impl Paging {
    /// `?page=N&per_page=SIZE`, N from 1. The listing ends at `meta.total_pages` when the
    /// answer has it, else at a page with fewer than SIZE rows.
    pub fn pages(per_page: u32) -> Self {
        Self::new(Style::Number, per_page, "page", "per_page")
    }

    /// `?offset=N&limit=SIZE`, N from 0. The listing ends at `meta.total` rows when the
    /// answer has it, else at a page with fewer than SIZE rows.
    pub fn offset(limit: u32) -> Self {
        Self::new(Style::Offset, limit, "offset", "limit")
    }

    /// `?limit=SIZE`, then `&cursor=TOKEN` with the token of the page before, which the
    /// answer carries in `meta.next_cursor` (or `meta.next`). The listing ends at a page
    /// without one.
    pub fn cursor(limit: u32) -> Self {
        Self::new(Style::Token, limit, "cursor", "limit")
    }

    /// Other names for the position and size parameters: `Paging::cursor(100)
    /// .with_params("after", "page_size")` sends `?page_size=100&after=…`.
    pub fn with_params(mut self, position: &str, size: &str) -> Self {
        self.position_param = position.to_string();
        self.size_param = size.to_string();
        self
    }

    fn new(style: Style, size: u32, position: &str, size_param: &str) -> Self {
        Self {
            style,
            size: size.max(1),
            position_param: position.to_string(),
            size_param: size_param.to_string(),
        }
    }

    /// The query of the page `cursor` points at, without `?` or `&` before it.
    fn query(&self, cursor: &SinceCursor) -> String {
        let (position, size) = (&self.position_param, &self.size_param);
        let mut query = format!("{size}={}", self.size);
        match self.style {
            Style::Number => query.push_str(&format!("&{position}={}", cursor.page.max(1))),
            Style::Offset => query.push_str(&format!("&{position}={}", cursor.offset)),
            Style::Token => {
                if let Some(token) = &cursor.next {
                    query.push_str(&format!("&{position}={}", encode_query_value(token)));
                }
            }
        }
        query
    }

    /// Where the listing goes on after the page `cursor` pointed at, which had `rows` rows.
    fn next(&self, cursor: &SinceCursor, rows: usize, meta: &JsonListingMeta) -> Result<Option<NextPage>, Error> {
        let full = rows as u64 >= u64::from(self.size);
        Ok(match self.style {
            Style::Number => {
                let page = cursor.page.max(1);
                let more = meta.total_pages.map_or(full, |total| page < total);
                more.then_some(NextPage::Number(page + 1))
            }
            Style::Offset => {
                let read = cursor.offset + rows as u64;
                let more = rows > 0 && meta.total.map_or(full, |total| read < total);
                more.then_some(NextPage::Offset(read))
            }
            Style::Token => match meta.next_cursor.0.clone() {
                Some(token) if cursor.next.as_ref() == Some(&token) => {
                    return Err(Error::InvalidInput(format!(
                        "the listing answered the next-page cursor {token:?} for the page that cursor fetched; \
                         stopping, as the listing would never end"
                    )));
                }
                token => token.map(NextPage::Token),
            },
        })
    }
}

/// A listing answered as `{"data": [...], "meta": {...}}`, rows as `T`.
#[derive(Deserialize)]
pub struct JsonListing<T = Value> {
    pub data: Vec<T>,
    #[serde(default)]
    pub meta: JsonListingMeta,
}

/// What a listing says about itself, as far as paging needs: any of these may be missing.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct JsonListingMeta {
    pub total_pages: Option<u32>,
    /// Rows in the whole listing.
    pub total: Option<u64>,
    /// The next page's token; blank or missing after the last page.
    #[serde(alias = "next")]
    pub next_cursor: Text,
}

/// Runs an incremental listing from `start`: `fetch(cursor)` gets the page `cursor` points at
/// (its `since`, and its `page`, `offset` or `next` token); records are emitted and the
/// cursor saved after each page (see [`pull_pages`]).
pub fn pull_updated_since(
    start: SinceCursor,
    mut fetch: impl FnMut(&SinceCursor) -> Result<ListedPage, Error>,
) -> Result<SyncSummary, Error> {
    pull_pages(start, |cursor| {
        let listed = fetch(cursor)?;
        let high_water = listed.newest.into_iter().chain(cursor.high_water.clone()).max();
        let more = listed.next.is_some();
        let checkpoint = match listed.next {
            Some(next) => {
                let going = SinceCursor {
                    since: cursor.since.clone(),
                    high_water,
                    ..SinceCursor::default()
                };
                match next {
                    NextPage::Number(page) => SinceCursor { page, ..going },
                    NextPage::Offset(offset) => SinceCursor { offset, ..going },
                    NextPage::Token(token) => SinceCursor {
                        next: Some(token),
                        ..going
                    },
                }
            }
            None => SinceCursor {
                since: high_water.or_else(|| cursor.since.clone()),
                ..SinceCursor::default()
            },
        };
        Ok(Page {
            records: listed.records,
            checkpoint,
            more,
        })
    })
}

/// The common case in full: `GET path?…&updated_since=…` (added to any query `path` has)
/// paged as `paging` says, answered as a [`JsonListing`], each row's change time in field
/// `changed_at`, each row mapped by `to_record`; resumes from the cursor the last run saved.
pub fn pull_json_listing(
    request: &crate::SyncRequest,
    client: &HttpClient,
    path: &str,
    paging: Paging,
    changed_at: &str,
    to_record: impl Fn(&Value) -> CanonicalRecord,
) -> Result<SyncSummary, Error> {
    pull_typed_listing(
        request,
        client,
        path,
        paging,
        |row: &Value| text(row, changed_at),
        |row| to_record(&row),
    )
}

/// [`pull_json_listing`] with each row read straight into `T` (no JSON tree in between),
/// its change time given by `changed_at`. Make `T` `#[serde(default)]` with [`Text`],
/// [`Lenient`] and [`LenientList`] fields, so that a missing or odd field does not fail the
/// page: the host rejects that row, with its reason.
pub fn pull_typed_listing<T: DeserializeOwned>(
    request: &crate::SyncRequest,
    client: &HttpClient,
    path: &str,
    paging: Paging,
    changed_at: impl Fn(&T) -> Option<String>,
    to_record: impl Fn(T) -> CanonicalRecord,
) -> Result<SyncSummary, Error> {
    let start: SinceCursor = crate::cursor(request)?.unwrap_or_default();
    let separator = if path.contains('?') { '&' } else { '?' };
    pull_updated_since(start, |cursor| {
        let mut url = format!("{path}{separator}{}", paging.query(cursor));
        if let Some(since) = &cursor.since {
            url.push_str(&format!("&updated_since={}", encode_query_value(since)));
        }
        let listing: JsonListing<T> = client.get_json(&url)?;
        Ok(ListedPage {
            newest: listing.data.iter().filter_map(&changed_at).max(),
            next: paging.next(cursor, listing.data.len(), &listing.meta)?,
            records: listing.data.into_iter().map(&to_record).collect(),
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

/// A text field read the way registries send it: trimmed text, or a number as its digits
/// (NIKs come both ways); blank, null, missing (with `#[serde(default)]`) or any other JSON
/// is `None`, so one odd field never fails a page: the host rejects the row with a reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyJson;

        impl<'de> Visitor<'de> for AnyJson {
            type Value = Text;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                let s = s.trim();
                Ok(Text((!s.is_empty()).then(|| s.to_string())))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Text, E> {
                Ok(Text(Some(n.to_string())))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Text, E> {
                Ok(Text(Some(n.to_string())))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Text, E> {
                Ok(Text(serde_json::Number::from_f64(n).map(|n| n.to_string())))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text, E> {
                Ok(Text(None))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(None))
            }

            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(None))
            }

            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text, D::Error> {
                Text::deserialize(deserializer)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }

        deserializer.deserialize_any(AnyJson)
    }
}

/// A nested field that is `T` when it has `T`'s shape and `None` otherwise (`"str": "-"`
/// where an object was expected): like [`Text`], an odd field never fails a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape<T> {
            Fits(T),
            Other(de::IgnoredAny),
        }
        Ok(Lenient(match Shape::deserialize(deserializer)? {
            Shape::Fits(value) => Some(value),
            Shape::Other(_) => None,
        }))
    }
}

/// A list field as the registry sends it: not a list reads as empty, and an entry without
/// `T`'s shape reads as `T::default()`, so it still reaches the host, which rejects the row
/// with its reason instead of the entry vanishing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LenientList<T>(pub Vec<T>);

impl<T> Default for LenientList<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for LenientList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = Lenient::<Vec<Lenient<T>>>::deserialize(deserializer)?;
        Ok(LenientList(
            list.0
                .unwrap_or_default()
                .into_iter()
                .map(|entry| entry.0.unwrap_or_default())
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{JsonListing, JsonListingMeta, Lenient, LenientList, NextPage, Paging, SinceCursor, Text};
    use serde::Deserialize;

    fn meta(json: &str) -> JsonListingMeta {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_cursor_listing_follows_the_token_each_page_hands_out_and_ends_without_one() {
        let paging = Paging::cursor(500);
        let start = SinceCursor::default();
        assert_eq!(paging.query(&start), "limit=500");
        let next = paging.next(&start, 500, &meta(r#"{"next_cursor": "eyJpZCI6NTAwfQ=="}"#));
        assert_eq!(next.unwrap(), Some(NextPage::Token("eyJpZCI6NTAwfQ==".into())));
        let going = SinceCursor {
            next: Some("eyJpZCI6NTAwfQ==".into()),
            ..SinceCursor::default()
        };
        assert_eq!(paging.query(&going), "limit=500&cursor=eyJpZCI6NTAwfQ%3D%3D");
        assert_eq!(paging.next(&going, 20, &meta(r#"{"next": null}"#)).unwrap(), None);
        assert_eq!(paging.next(&going, 0, &meta("{}")).unwrap(), None);
        let stuck = paging.next(&going, 500, &meta(r#"{"next_cursor": "eyJpZCI6NTAwfQ=="}"#));
        assert!(matches!(stuck, Err(crate::Error::InvalidInput(m)) if m.contains("would never end")));
        let renamed = Paging::cursor(100).with_params("after", "page_size");
        assert_eq!(renamed.query(&going), "page_size=100&after=eyJpZCI6NTAwfQ%3D%3D");
    }

    #[test]
    fn offset_and_page_listings_end_at_their_total_or_at_a_short_page() {
        let offset = Paging::offset(500);
        let at = |offset: u64| SinceCursor {
            offset,
            ..SinceCursor::default()
        };
        assert_eq!(offset.query(&at(0)), "limit=500&offset=0");
        assert_eq!(
            offset.next(&at(0), 500, &meta("{}")).unwrap(),
            Some(NextPage::Offset(500))
        );
        assert_eq!(offset.next(&at(500), 499, &meta("{}")).unwrap(), None);
        assert_eq!(offset.next(&at(500), 500, &meta(r#"{"total": 1000}"#)).unwrap(), None);
        assert_eq!(offset.next(&at(500), 0, &meta("{}")).unwrap(), None);

        let pages = Paging::pages(100);
        let page = |page: u32| SinceCursor {
            page,
            ..SinceCursor::default()
        };
        assert_eq!(pages.query(&page(0)), "per_page=100&page=1");
        let two = meta(r#"{"total_pages": 2}"#);
        assert_eq!(pages.next(&page(1), 100, &two).unwrap(), Some(NextPage::Number(2)));
        assert_eq!(pages.next(&page(2), 100, &two).unwrap(), None);
        assert_eq!(
            pages.next(&page(3), 100, &meta("{}")).unwrap(),
            Some(NextPage::Number(4))
        );
        assert_eq!(pages.next(&page(4), 7, &meta("{}")).unwrap(), None);
    }

    #[test]
    fn a_cursor_saved_before_offset_and_token_paging_still_reads() {
        let saved: SinceCursor =
            serde_json::from_str(r#"{"since": "2026-11-01T00:00:00Z", "page": 3, "high_water": null}"#).unwrap();
        assert_eq!((saved.page, saved.offset, saved.next), (3, 0, None));
        let written = serde_json::to_string(&SinceCursor::default()).unwrap();
        assert_eq!(written, r#"{"since":null,"page":0,"high_water":null}"#);
    }

    #[derive(Deserialize)]
    struct Row {
        #[serde(default)]
        nik: Text,
        #[serde(default)]
        name: Text,
        #[serde(default)]
        licence: Lenient<Licence>,
        #[serde(default)]
        posts: LenientList<Licence>,
    }

    #[derive(Default, Deserialize)]
    struct Licence {
        #[serde(default)]
        number: Text,
    }

    #[test]
    fn odd_fields_of_a_typed_row_read_as_missing_and_the_page_still_reads() {
        let page: JsonListing<Row> = serde_json::from_str(
            r#"{"data": [
                {"nik": 3174014506850001, "name": "  Siti ", "licence": {"number": "STR1"}, "posts": [{"number": "P1"}, 7]},
                {"nik": ["x"], "name": "", "licence": "-", "posts": "none"},
                {"licence": {"number": {"odd": true}}}
            ], "meta": {"total_pages": 1}}"#,
        )
        .unwrap();
        let [first, second, third] = &page.data[..] else {
            panic!("three rows")
        };
        assert_eq!(first.nik.0.as_deref(), Some("3174014506850001"));
        assert_eq!(first.name.0.as_deref(), Some("Siti"));
        assert_eq!(
            first.licence.0.as_ref().and_then(|l| l.number.0.as_deref()),
            Some("STR1")
        );
        assert_eq!(
            (&second.nik.0, &second.name.0, second.licence.0.is_none()),
            (&None, &None, true)
        );
        assert_eq!(third.licence.0.as_ref().map(|l| l.number.0.is_none()), Some(true));
        let posts: Vec<_> = first.posts.0.iter().map(|p| p.number.0.as_deref()).collect();
        assert_eq!(
            posts,
            [Some("P1"), None],
            "an odd entry is kept, empty, for the host to reject"
        );
        assert!(second.posts.0.is_empty() && third.posts.0.is_empty());
        assert_eq!(third.nik, Text(None));
    }
}
