//! Search requests (https://hl7.org/fhir/R4/search.html): the parameters a resource type
//! declares, the result parameters, token and date values. Strict: a parameter, modifier or
//! prefix the server does not support is a 400 naming it, never silently ignored, since an
//! ignored filter answers with more records than the client asked for.

use super::element::Element;
use crate::api::Problem;
use crate::store::Timestamp;
use crate::store::search::{Search, TimeRange};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    Token,
    Date,
    Reference,
    String,
}

impl ParamType {
    pub fn code(self) -> &'static str {
        match self {
            ParamType::Token => "token",
            ParamType::Date => "date",
            ParamType::Reference => "reference",
            ParamType::String => "string",
        }
    }
}

/// A search parameter a resource type supports.
pub struct SearchParam {
    pub name: &'static str,
    pub kind: ParamType,
    /// The canonical URL of its SearchParameter definition.
    pub definition: &'static str,
    pub documentation: &'static str,
    /// Searching by it needs `pii:read`: it matches identifying data, so even an empty
    /// answer tells something about a person.
    pub identifying: bool,
    /// The one modifier it is searched with, when it takes no other form
    /// (`subject:identifier`).
    pub modifier: Option<&'static str>,
}

/// What a search of a resource type takes.
pub struct Searchable {
    pub params: &'static [SearchParam],
    /// The reference parameters `_include` follows (`_include=PractitionerRole:organization`).
    pub includes: &'static [&'static str],
}

impl Searchable {
    /// The parameter a parsed search names.
    pub fn param(&self, name: &str) -> &SearchParam {
        (self.params.iter())
            .find(|p| p.name == name)
            .expect("parsed parameters are supported")
    }
}

/// Page sizes: `_count` defaults to 50 and is at most 1,000.
pub const DEFAULT_COUNT: i64 = 50;
pub const MAX_COUNT: i64 = 1000;

/// A parsed search.
#[derive(Debug, Default)]
pub struct SearchRequest {
    /// Each parameter as given, in order: name and its comma-separated values.
    pub params: Vec<(&'static str, Vec<String>)>,
    pub count: i64,
    /// `_summary=count` (or `_count=0`): the total only.
    pub count_only: bool,
    /// `_elements`: the top-level elements to return (besides the mandatory ones).
    pub elements: Option<Vec<String>>,
    /// `_cursor`: where the page starts (from a `next` link).
    pub cursor: Option<String>,
    /// `_total=none`: no total, so nothing is counted.
    pub no_total: bool,
    /// `_include`: the reference parameters whose targets the Bundle includes.
    pub includes: Vec<&'static str>,
}

impl SearchRequest {
    /// The most matches a page may hold (0 for the total only).
    pub fn limit(&self) -> i64 {
        if self.count_only { 0 } else { self.count }
    }

    /// Whether the answer says the total.
    pub fn wants_total(&self) -> bool {
        self.count_only || !self.no_total
    }

    /// The store's search for this one: a parameter's values are alternatives, and every
    /// parameter must hold. `each` adds the conditions one value of parameter `name` stands
    /// for to that parameter's alternatives; adding none, the value matches nothing (a code
    /// of a system the server keeps no values of).
    pub fn to_store<C>(
        &self,
        mut each: impl FnMut(&'static str, &str, &mut Vec<C>) -> Result<(), Problem>,
    ) -> Result<Search<C>, Problem> {
        let mut search = Search {
            all_of: Vec::with_capacity(self.params.len()),
            after: self.cursor.clone(),
        };
        for (name, values) in &self.params {
            let mut any_of = Vec::new();
            for value in values {
                each(name, value, &mut any_of)?;
            }
            search.all_of.push(any_of);
        }
        Ok(search)
    }

    /// What the audit log records of a search of `resource`: the parameters' names, never
    /// their values.
    pub fn lookup(&self, resource: &str) -> String {
        let names: Vec<&str> = self.params.iter().map(|(name, _)| *name).collect();
        format!("fhir:{resource}?{}", names.join(","))
    }
}

/// The `_id` parameter, which every resource type takes.
pub const ID: SearchParam = SearchParam {
    name: "_id",
    kind: ParamType::Token,
    definition: "http://hl7.org/fhir/SearchParameter/Resource-id",
    documentation: "The resource's id",
    identifying: false,
    modifier: None,
};

/// Result parameters the server reads itself, and those `render` reads.
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_summary",
    "_elements",
    "_cursor",
    "_total",
    "_include",
    "_format",
    "_pretty",
];

/// Parses a search on a resource type that supports `supported`, by a caller who may
/// (`pii_read`) or may not search by identifying parameters (403).
pub fn parse(
    resource: &str,
    query: Option<&str>,
    supported: &'static Searchable,
    pii_read: bool,
) -> Result<SearchRequest, Problem> {
    let mut request = SearchRequest {
        count: DEFAULT_COUNT,
        ..Default::default()
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let (name, modifier) = match key.split_once(':') {
            Some((name, modifier)) => (name, Some(modifier)),
            None => (&*key, None),
        };
        let declared = supported.params.iter().find(|p| p.name == name).map(|p| p.modifier);
        match (declared, modifier) {
            (Some(Some(needed)), given) if given != Some(needed) => {
                return Err(Problem::bad_request(format!(
                    "{name} is searched by {name}:{needed} only: search {name}:{needed}=…"
                )));
            }
            (Some(None) | None, Some(given)) => {
                return Err(Problem::bad_request(format!(
                    "the modifier :{given} of {name} is not supported: search {name} without it"
                )));
            }
            _ => {}
        }
        match name {
            "_count" => {
                let count: i64 = value
                    .parse()
                    .ok()
                    .filter(|c| (0..=MAX_COUNT).contains(c))
                    .ok_or_else(|| {
                        Problem::bad_request(format!("_count={value} is not a page size: give 0 to {MAX_COUNT}"))
                    })?;
                request.count = count;
                request.count_only |= count == 0;
            }
            "_summary" => match &*value {
                "count" => request.count_only = true,
                "false" => {}
                other => {
                    return Err(Problem::bad_request(format!(
                        "_summary={other} is not supported: use _summary=count for the total only, or _elements to choose elements"
                    )));
                }
            },
            "_elements" => {
                request.elements = Some(
                    value
                        .split(',')
                        .map(|e| e.trim().to_string())
                        .filter(|e| !e.is_empty())
                        .collect(),
                );
            }
            "_cursor" => request.cursor = Some(value.into_owned()),
            "_total" => match &*value {
                "none" => request.no_total = true,
                // The total is always counted exactly: an estimate would cost the same.
                "estimate" | "accurate" => request.no_total = false,
                other => {
                    return Err(Problem::bad_request(format!(
                        "_total={other} is not one of none, estimate, accurate"
                    )));
                }
            },
            "_include" => {
                let include = (value.strip_prefix(resource))
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(|rest| rest.split_once(':').map_or(rest, |(param, _target)| param))
                    .and_then(|param| supported.includes.iter().find(|i| **i == param));
                match include {
                    Some(param) => request.includes.push(param),
                    None if supported.includes.is_empty() => {
                        return Err(Problem::bad_request(format!(
                            "_include={value} is not supported: a search of {resource} includes nothing"
                        )));
                    }
                    None => {
                        let names: Vec<String> =
                            (supported.includes.iter()).map(|i| format!("{resource}:{i}")).collect();
                        return Err(Problem::bad_request(format!(
                            "_include={value} is not supported: a search of {resource} includes {}",
                            names.join(", ")
                        )));
                    }
                }
            }
            _ if RESULT_PARAMS.contains(&name) => {}
            _ => {
                let param = supported.params.iter().find(|p| p.name == name).ok_or_else(|| {
                    let names: Vec<&str> = supported.params.iter().map(|p| p.name).collect();
                    Problem::bad_request(format!(
                        "{name} is not a search parameter of {resource} on this server: use one of {} (GET /fhir/r4/metadata lists them)",
                        names.join(", ")
                    ))
                })?;
                let values: Vec<String> = value.split(',').map(str::to_string).collect();
                if values.iter().any(String::is_empty) {
                    return Err(Problem::bad_request(format!("{name} has an empty value: give one")));
                }
                request.params.push((param.name, values));
            }
        }
    }
    if let Some((name, _)) = (request.params.iter()).find(|(name, _)| supported.param(name).identifying)
        && !pii_read
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "searching by {name} matches identifying data, so it needs the pii:read permission, which this caller lacks"
            ),
        ));
    }
    Ok(request)
}

/// The id in the value of a reference parameter to `resource_type`: `id`, `Type/id` or a URL
/// ending in it. A reference to another type is a 400, as it could match nothing.
pub fn reference<'v>(name: &str, value: &'v str, resource_type: &str) -> Result<&'v str, Problem> {
    let mut parts = value.rsplitn(3, '/');
    let id = parts.next().unwrap_or_default();
    match parts.next() {
        None => Ok(id),
        Some(given) if given == resource_type && !id.is_empty() => Ok(id),
        Some(_) => Err(Problem::bad_request(format!(
            "{name}={value} is not a reference to a {resource_type}: give {resource_type}/<id> or the id alone"
        ))),
    }
}

/// `resource` with only the `elements` asked for besides the mandatory ones (`id`, `meta`),
/// tagged SUBSETTED as `_elements` asks.
pub fn subset(resource: Element, elements: &[String]) -> Element {
    let Element::Object(fields) = resource else {
        return resource;
    };
    let subsetted = super::label("SUBSETTED", "subsetted");
    let fields = fields
        .into_iter()
        .filter(|(name, _)| ["resourceType", "id", "meta"].contains(name) || elements.iter().any(|e| e == name))
        .map(|(name, value)| match (name, value) {
            ("meta", Element::Object(mut meta)) => {
                match meta.iter_mut().find(|(n, _)| *n == "tag") {
                    Some((_, Element::Array(tags))) => tags.push(subsetted.clone()),
                    _ => meta.push(("tag", Element::Array(vec![subsetted.clone()]))),
                }
                (name, Element::Object(meta))
            }
            other => other,
        })
        .collect();
    Element::Object(fields)
}

/// A token value: `system|code`, `|code` (no system) or `code` (any system).
#[derive(Debug, PartialEq, Eq)]
pub struct Token<'a> {
    /// `None`: any system; `Some("")`: no system.
    pub system: Option<&'a str>,
    pub code: &'a str,
}

impl<'a> Token<'a> {
    pub fn parse(value: &'a str) -> Self {
        match value.split_once('|') {
            Some((system, code)) => Token {
                system: Some(system),
                code,
            },
            None => Token {
                system: None,
                code: value,
            },
        }
    }
}

/// How a date value compares (https://hl7.org/fhir/R4/search.html#prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
}

/// A date search value: its prefix and the time range its precision covers, `[start, end)`.
#[derive(Debug, PartialEq, Eq)]
pub struct DateValue {
    pub prefix: Prefix,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl DateValue {
    pub fn parse(name: &str, value: &str) -> Result<Self, Problem> {
        let invalid = || {
            Problem::bad_request(format!(
                "{name}={value} is not a date: give [prefix]YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 time, with an \
                 optional prefix eq, ne, gt, lt, ge, le, sa or eb"
            ))
        };
        let (prefix, date) = match value.get(..2).filter(|p| p.chars().all(|c| c.is_ascii_lowercase())) {
            Some(p) => (
                match p {
                    "eq" => Prefix::Eq,
                    "ne" => Prefix::Ne,
                    "gt" => Prefix::Gt,
                    "lt" => Prefix::Lt,
                    "ge" => Prefix::Ge,
                    "le" => Prefix::Le,
                    "sa" => Prefix::Sa,
                    "eb" => Prefix::Eb,
                    "ap" => {
                        return Err(Problem::bad_request(format!(
                            "{name}: the prefix ap (approximately) is not supported: give a range with ge and le"
                        )));
                    }
                    _ => return Err(invalid()),
                },
                &value[2..],
            ),
            None => (Prefix::Eq, value),
        };
        let (start, end) = date_range(date).ok_or_else(invalid)?;
        Ok(DateValue {
            prefix,
            start: start.into(),
            end: end.into(),
        })
    }

    /// The times this value selects.
    pub fn selects(&self) -> TimeRange {
        let (from, until, inside) = match self.prefix {
            Prefix::Eq => (Some(self.start), Some(self.end), true),
            Prefix::Ne => (Some(self.start), Some(self.end), false),
            Prefix::Gt | Prefix::Sa => (Some(self.end), None, true),
            Prefix::Ge => (Some(self.start), None, true),
            Prefix::Lt | Prefix::Eb => (None, Some(self.start), true),
            Prefix::Le => (None, Some(self.end), true),
        };
        TimeRange { from, until, inside }
    }
}

/// The range a date or time covers at its precision: `2026` is the whole year, a time to the
/// second that second. A time without offset is taken as UTC.
fn date_range(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let day = |y: i32, m: u32, d: u32| {
        let midnight = NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(0, 0, 0)?;
        Some(Utc.from_utc_datetime(&midnight))
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let parts: Vec<&str> = text.splitn(3, '-').collect();
    match parts.as_slice() {
        [y] if y.len() == 4 && digits(y) => {
            let y: i32 = y.parse().ok()?;
            Some((day(y, 1, 1)?, day(y + 1, 1, 1)?))
        }
        [y, m] if y.len() == 4 && m.len() == 2 && digits(y) && digits(m) => {
            let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
            let next = if m == 12 { day(y + 1, 1, 1)? } else { day(y, m + 1, 1)? };
            Some((day(y, m, 1)?, next))
        }
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 && digits(y) && digits(m) && digits(d) => {
            let start = day(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
            Some((start, start + Duration::days(1)))
        }
        _ => {
            if text.len() < 16 || !text.is_ascii() || text.as_bytes()[10] != b'T' {
                return None;
            }
            let with_offset = if text.ends_with('Z') || text[10..].contains(['+', '-']) {
                text.to_string()
            } else {
                format!("{text}Z")
            };
            let seconds = if with_offset.len() > 16 && with_offset.as_bytes().get(16) == Some(&b':') {
                with_offset
            } else {
                // hh:mm: the whole minute.
                let (time, offset) = with_offset.split_at(16);
                format!("{time}:00{offset}")
            };
            let start = DateTime::parse_from_rfc3339(&seconds).ok()?.with_timezone(&Utc);
            let precision = match seconds.get(19..20) {
                Some(".") => {
                    let fraction = seconds[20..].chars().take_while(char::is_ascii_digit).count() as u32;
                    Duration::nanoseconds(10i64.pow(9 - fraction.min(9)))
                }
                _ if text.len() > 16 && text.as_bytes().get(16) == Some(&b':') => Duration::seconds(1),
                _ => Duration::minutes(1),
            };
            Some((start, start + precision))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> (String, String) {
        let v = DateValue::parse("_lastUpdated", value).unwrap();
        (v.start.to_string(), v.end.to_string())
    }

    #[test]
    fn a_date_covers_the_range_of_its_precision() {
        assert_eq!(
            range("2026"),
            ("2026-01-01T00:00:00.000Z".into(), "2027-01-01T00:00:00.000Z".into())
        );
        assert_eq!(
            range("2026-12"),
            ("2026-12-01T00:00:00.000Z".into(), "2027-01-01T00:00:00.000Z".into())
        );
        assert_eq!(
            range("ge2026-02-28"),
            ("2026-02-28T00:00:00.000Z".into(), "2026-03-01T00:00:00.000Z".into())
        );
        assert_eq!(
            range("lt2026-12-01T10:00:00+07:00"),
            ("2026-12-01T03:00:00.000Z".into(), "2026-12-01T03:00:01.000Z".into())
        );
        assert_eq!(
            range("2026-12-01T10:00Z"),
            ("2026-12-01T10:00:00.000Z".into(), "2026-12-01T10:01:00.000Z".into())
        );
        assert_eq!(
            range("2026-12-01T10:00:00.5Z"),
            ("2026-12-01T10:00:00.500Z".into(), "2026-12-01T10:00:00.600Z".into())
        );
    }

    #[test]
    fn a_value_that_is_no_date_or_has_an_unknown_prefix_is_refused() {
        for value in [
            "",
            "26",
            "2026-13",
            "2026-02-30",
            "xx2026",
            "ap2026",
            "2026-12-01T25:00:00Z",
            "2026-12-01T",
        ] {
            assert!(DateValue::parse("_lastUpdated", value).is_err(), "{value}");
        }
    }

    #[test]
    fn unknown_parameters_modifiers_and_includes_are_refused_rather_than_ignored() {
        const PARAMS: &Searchable = &Searchable {
            params: &[SearchParam {
                name: "gender",
                kind: ParamType::Token,
                definition: "http://hl7.org/fhir/SearchParameter/individual-gender",
                documentation: "",
                identifying: false,
                modifier: None,
            }],
            includes: &["organization"],
        };
        let parsed = parse(
            "Practitioner",
            Some("gender=male,female&_count=10&_format=xml"),
            PARAMS,
            true,
        )
        .unwrap();
        assert_eq!(
            parsed.params,
            vec![("gender", vec!["male".to_string(), "female".to_string()])]
        );
        assert_eq!(parsed.count, 10);
        assert!(
            parse("Practitioner", Some("_total=none"), PARAMS, true)
                .unwrap()
                .no_total
        );
        for include in ["Practitioner:organization", "Practitioner:organization:Organization"] {
            let query = format!("_include={include}");
            let parsed = parse("Practitioner", Some(&query), PARAMS, true).unwrap();
            assert_eq!(parsed.includes, vec!["organization"]);
        }
        for query in [
            "_include=Practitioner:location",
            "_include=*",
            "_include=PractitionerRole:organization",
            "family=x",
            "gender:not=male",
            "_count=1001",
            "_summary=true",
            "gender=",
            "_total=some",
        ] {
            assert!(parse("Practitioner", Some(query), PARAMS, true).is_err(), "{query}");
        }
    }

    #[test]
    fn a_reference_value_is_an_id_or_ends_in_the_type_and_id() {
        for value in ["f1", "Organization/f1", "http://hub/fhir/r4/Organization/f1"] {
            assert_eq!(reference("organization", value, "Organization").unwrap(), "f1");
        }
        for value in ["Location/f1", "Organization/", "http://hub/fhir/r4/Location/f1"] {
            assert!(reference("organization", value, "Organization").is_err(), "{value}");
        }
    }
}
