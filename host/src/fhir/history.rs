//! A resource's history (`GET /<type>/<id>/_history`): its versions newest first, as a
//! history Bundle cut into pages by version.

use super::bundle::link;
use super::element::Element;
use super::format;
use super::search::{DEFAULT_COUNT, MAX_COUNT};
use crate::api::Problem;
use crate::store::Timestamp;

/// A parsed history request.
#[derive(Debug, PartialEq, Eq)]
pub struct HistoryRequest {
    /// Versions per page.
    pub count: i64,
    /// `_cursor`: the page holds versions below this one (from a `next` link).
    pub before: Option<i64>,
}

/// Parses a history request's query: `_count` and, from a `next` link, `_cursor`.
pub fn parse(query: Option<&str>) -> Result<HistoryRequest, Problem> {
    let mut request = HistoryRequest {
        count: DEFAULT_COUNT,
        before: None,
    };
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "_count" => {
                request.count = (value.parse().ok())
                    .filter(|c| (1..=MAX_COUNT).contains(c))
                    .ok_or_else(|| {
                        Problem::bad_request(format!("_count={value} is not a page size: give 1 to {MAX_COUNT}"))
                    })?;
            }
            "_cursor" => {
                request.before = Some(value.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "_cursor={value} is not where a page of this history starts: follow the Bundle's next link"
                    ))
                })?);
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(Problem::bad_request(format!(
                    "{other} is not supported in a history: give _count, and follow the Bundle's next link for more"
                )));
            }
        }
    }
    Ok(request)
}

/// One version of the resource.
pub struct Version {
    pub resource: Element,
    pub version: i64,
    pub updated_at: Timestamp,
}

/// The history Bundle of resource `resource_type/id` on the server at `base`: `versions`
/// newest first, and a `next` link after the last when the page is full.
pub fn bundle(base: &str, resource_type: &str, id: &str, request: &HistoryRequest, versions: Vec<Version>) -> Element {
    let url = format!("{base}/{resource_type}/{id}");
    let page = |cursor: Option<i64>| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("_count", &request.count.to_string());
        if let Some(cursor) = cursor {
            query.append_pair("_cursor", &cursor.to_string());
        }
        format!("{url}/_history?{}", query.finish())
    };
    let mut links = vec![link("self", &page(request.before))];
    if versions.len() as i64 == request.count
        && let Some(last) = versions.last().filter(|v| v.version > 1)
    {
        links.push(link("next", &page(Some(last.version))));
    }
    let entries: Vec<Element> = versions
        .into_iter()
        .map(|v| {
            // Version 1 is the record's creation, every later one an update of it.
            let (method, request_url, status) = if v.version == 1 {
                ("POST", resource_type.to_string(), "201 Created")
            } else {
                ("PUT", format!("{resource_type}/{id}"), "200 OK")
            };
            Element::object()
                .with("fullUrl", url.as_str())
                .with("resource", v.resource)
                .with(
                    "request",
                    Element::object().with("method", method).with("url", request_url),
                )
                .with(
                    "response",
                    Element::object()
                        .with("status", status)
                        .with("etag", format::etag(v.version))
                        .with("lastModified", v.updated_at.to_string()),
                )
        })
        .collect();
    Element::resource("Bundle")
        .with("type", "history")
        .with("link", links)
        .with("entry", entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_takes_a_page_size_and_a_cursor_and_refuses_anything_else() {
        assert_eq!(
            parse(Some("_count=2&_cursor=7&_format=xml")).unwrap(),
            HistoryRequest {
                count: 2,
                before: Some(7)
            }
        );
        assert_eq!(parse(None).unwrap().count, DEFAULT_COUNT);
        for refused in [
            "_count=0",
            "_count=1001",
            "_cursor=abc",
            "_cursor=0",
            "_since=2026-01-01",
        ] {
            assert!(parse(Some(refused)).is_err(), "{refused}");
        }
    }
}
