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
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

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

/// A listing answered as `{"data": [...], "meta": {"total_pages": n, ...}}`, rows as `T`.
#[derive(Deserialize)]
pub struct JsonListing<T = Value> {
    pub data: Vec<T>,
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
    pull_typed_listing(
        request,
        client,
        path,
        per_page,
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
    per_page: u32,
    changed_at: impl Fn(&T) -> Option<String>,
    to_record: impl Fn(T) -> CanonicalRecord,
) -> Result<SyncSummary, Error> {
    let start: SinceCursor = crate::cursor(request)?.unwrap_or_default();
    let separator = if path.contains('?') { '&' } else { '?' };
    pull_updated_since(start, |since, page| {
        let mut url = format!("{path}{separator}page={page}&per_page={per_page}");
        if let Some(since) = since {
            url.push_str(&format!("&updated_since={}", encode_query_value(since)));
        }
        let listing: JsonListing<T> = client.get_json(&url)?;
        Ok(ListedPage {
            newest: listing.data.iter().filter_map(&changed_at).max(),
            records: listing.data.into_iter().map(&to_record).collect(),
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
    use super::{JsonListing, Lenient, LenientList, Text};
    use serde::Deserialize;

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
