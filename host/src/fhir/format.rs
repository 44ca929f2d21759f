//! Content negotiation (https://hl7.org/fhir/R4/http.html#mime-type): `_format` wins over
//! `Accept`; either may name the FHIR JSON or XML media type, their generic forms, or the
//! short `json`/`xml`. A request that accepts neither is answered 406.

use super::element::Element;
use crate::api::Problem;
use crate::store::Timestamp;
use axum::http::{HeaderMap, StatusCode, header};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/fhir+json; charset=utf-8",
            Format::Xml => "application/fhir+xml; charset=utf-8",
        }
    }

    fn named(name: &str) -> Option<Format> {
        let essence = name.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "json" | "application/fhir+json" | "application/json" | "application/json+fhir" => Some(Format::Json),
            "xml" | "application/fhir+xml" | "application/xml" | "text/xml" | "application/xml+fhir" => {
                Some(Format::Xml)
            }
            _ => None,
        }
    }

    /// The format a request asks for.
    pub fn of(query: Option<&str>, headers: &HeaderMap) -> Result<Format, Problem> {
        if let Some(asked) = query_value(query, "_format") {
            return Format::named(&asked).ok_or_else(|| {
                Problem::new(
                    StatusCode::NOT_ACCEPTABLE,
                    format!("_format={asked} is not a format this server writes: ask for json or xml"),
                )
            });
        }
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Ok(Format::Json);
        };
        // The first acceptable range, in the client's order of preference.
        let mut ranges: Vec<(f32, usize, &str)> = accept
            .split(',')
            .enumerate()
            .map(|(i, range)| {
                let q = range
                    .split(';')
                    .skip(1)
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                (q, i, range.trim())
            })
            .filter(|(q, _, _)| *q > 0.0)
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, range) in ranges {
            let essence = range.split(';').next().unwrap_or_default().trim();
            if matches!(essence, "*/*" | "application/*") {
                return Ok(Format::Json);
            }
            if let Some(format) = Format::named(range) {
                return Ok(format);
            }
        }
        Err(Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Accept: {accept} names no format this server writes: accept application/fhir+json or application/fhir+xml"
            ),
        ))
    }

    pub fn write(self, resource: &Element, pretty: bool) -> String {
        match (self, pretty) {
            (Format::Json, false) => serde_json::to_string(resource),
            (Format::Json, true) => serde_json::to_string_pretty(resource),
            (Format::Xml, _) => Ok(super::xml::document(resource)),
        }
        .expect("an element serializes")
    }
}

/// `_pretty=true`.
pub fn pretty(query: Option<&str>) -> bool {
    query_value(query, "_pretty").as_deref() == Some("true")
}

/// The first value of parameter `name` in a query string, decoded.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The weak ETag of a version: `W/"3"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Whether an `If-None-Match` value names `version`, weak or strong (a weak comparison,
/// RFC 9110 §13.1.2), or is `*`.
pub fn matches_etag(if_none_match: &str, version: i64) -> bool {
    let wanted = format!("\"{version}\"");
    (if_none_match.split(',').map(str::trim)).any(|tag| tag == "*" || tag.trim_start_matches("W/") == wanted)
}

/// An HTTP date (RFC 9110 §5.6.7): `Tue, 01 Dec 2026 23:20:27 GMT`.
pub fn http_date(at: Timestamp) -> String {
    at.as_datetime().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn asked(query: Option<&str>, accept: Option<&str>) -> Result<Format, StatusCode> {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        }
        Format::of(query, &headers).map_err(|p| p.status)
    }

    #[test]
    fn the_format_comes_from_format_then_accept_and_anything_else_is_not_acceptable() {
        assert_eq!(asked(None, None), Ok(Format::Json));
        assert_eq!(asked(None, Some("application/fhir+xml")), Ok(Format::Xml));
        assert_eq!(
            asked(None, Some("text/html, application/xml;q=0.9, */*;q=0.8")),
            Ok(Format::Xml)
        );
        assert_eq!(
            asked(None, Some("application/fhir+json;q=0.5, application/fhir+xml")),
            Ok(Format::Xml)
        );
        assert_eq!(
            asked(Some("_format=xml"), Some("application/fhir+json")),
            Ok(Format::Xml)
        );
        assert_eq!(asked(Some("_format=application%2Ffhir%2Bjson"), None), Ok(Format::Json));
        assert_eq!(asked(None, Some("text/html")), Err(StatusCode::NOT_ACCEPTABLE));
        assert_eq!(asked(Some("_format=csv"), None), Err(StatusCode::NOT_ACCEPTABLE));
    }

    #[test]
    fn if_none_match_matches_the_version_weak_or_strong() {
        assert!(matches_etag("W/\"3\"", 3));
        assert!(matches_etag("\"3\"", 3));
        assert!(matches_etag("W/\"1\", W/\"3\"", 3));
        assert!(matches_etag("*", 3));
        assert!(!matches_etag("W/\"2\"", 3));
    }
}
