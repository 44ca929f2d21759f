//! `Practitioner`: a golden record as FHIR (docs/fhir.md#practitioner). Identifying elements
//! (identifiers, name, telecom, birth date, registration numbers) go only to callers with
//! `pii:read`; for others they are left out and the resource carries the security label
//! REDACTED. Every read and search is audited as the REST API's practitioner reads are.

use super::bundle;
use super::element::Element;
use super::history;
use super::search::{self, DateValue, ParamType, Prefix, SearchParam, SearchRequest, Searchable, Token};
use super::{BASE, Reply};
use crate::api::practitioners::{PractitionerView, Shown, audit_read, opened, views};
use crate::api::{AppState, Problem};
use crate::auth::Caller;
use crate::model::Registration;
use crate::pipeline::{derive, normalize};
use crate::store::practitioners::{Condition, SealedPractitioner};
use crate::store::search::Search;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The NIK, as SATUSEHAT names it.
pub const NIK_SYSTEM: &str = "https://fhir.kemkes.go.id/id/nik";
/// STR numbers (Surat Tanda Registrasi). SATUSEHAT publishes no system for them; this one
/// follows its pattern.
pub const STR_SYSTEM: &str = "https://fhir.kemkes.go.id/id/str";
/// SIP numbers (Surat Izin Praktik), as [`STR_SYSTEM`].
pub const SIP_SYSTEM: &str = "https://fhir.kemkes.go.id/id/sip";
/// The hub's own code systems and extensions: URNs, as the hub publishes no definitions.
const REGISTRATION_KIND: &str = "urn:healthforce-hub:fhir:registration-kind";
const QUALIFICATION_STATUS: &str = "urn:healthforce-hub:fhir:qualification-status";
const SOURCE_SYSTEM: &str = "urn:healthforce-hub:fhir:source-system";
const STALE_SOURCE: &str = "urn:healthforce-hub:fhir:stale-source";
const GENDER_SYSTEM: &str = "http://hl7.org/fhir/administrative-gender";

pub const SEARCH: Searchable = Searchable {
    params: &[
        search::ID,
        SearchParam {
            name: "identifier",
            kind: ParamType::Token,
            definition: "http://hl7.org/fhir/SearchParameter/Practitioner-identifier",
            documentation: "A NIK (system https://fhir.kemkes.go.id/id/nik) or an STR number the practitioner holds or held \
                        (https://fhir.kemkes.go.id/id/str), as system|value or value alone; matched by blind index. Needs pii:read",
            identifying: true,
            modifier: None,
        },
        SearchParam {
            name: "name",
            kind: ParamType::String,
            definition: "http://hl7.org/fhir/SearchParameter/Practitioner-name",
            documentation: "Whole words of the name, each matched by blind index after the normalization identity matching \
                            uses (titles and degrees dropped, old spellings modernized, case ignored); every word given \
                            must be in the name. Needs pii:read",
            identifying: true,
            modifier: None,
        },
        SearchParam {
            name: "birthdate",
            kind: ParamType::Date,
            definition: "http://hl7.org/fhir/SearchParameter/individual-birthdate",
            documentation: "A whole birth date, YYYY-MM-DD (eq only), matched by blind index. Needs pii:read",
            identifying: true,
            modifier: None,
        },
        SearchParam {
            name: "gender",
            kind: ParamType::Token,
            definition: "http://hl7.org/fhir/SearchParameter/individual-gender",
            documentation: "male, female or unknown",
            identifying: false,
            modifier: None,
        },
        SearchParam {
            name: "_lastUpdated",
            kind: ParamType::Date,
            definition: "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
            documentation: "When the golden record last changed, with the prefixes eq, ne, gt, lt, ge, le, sa and eb",
            identifying: false,
            modifier: None,
        },
    ],
    includes: &[],
};

/// `GET /Practitioner/{id}`.
pub async fn read(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let row = current(&state, &id).await?;
    if let Some(not_modified) = super::unchanged(&headers, row.version_id) {
        return Ok(not_modified);
    }
    let items = views(&state, std::slice::from_ref(&row), Shown::fhir(!caller.pii_read)).await?;
    one_version(&state, &caller, "fhir:Practitioner/read", &row, items).await
}

/// `GET /Practitioner/{id}/_history`: the current version, then the earlier ones newest
/// first (those superseded since migration 0022; older ones were not kept).
pub async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Reply, Problem> {
    let request = history::parse(query.as_deref())?;
    let db = state.manager.db();
    let current = current(&state, &id).await?;
    let mut rows = Vec::new();
    let before = match request.before {
        Some(before) => before,
        None => {
            rows.push(current.clone());
            current.version_id
        }
    };
    let earlier = (request.count - rows.len() as i64).max(0);
    let versions = db.practitioner_versions(&id, Some(before), earlier).await?;
    rows.extend(versions.into_iter().map(SealedPractitioner::from));
    // The current version with its sources now; earlier ones as they were stored.
    let masked = !caller.pii_read;
    let shown = Shown::fhir(masked);
    let mut items = match request.before {
        Some(_) => Vec::new(),
        None => views(&state, std::slice::from_ref(&current), shown).await?,
    };
    items.extend(opened(&state, &rows[items.len()..], shown)?);
    audit_read(&state, &caller, "fhir:Practitioner/_history", &items, masked).await?;
    let versions = (items.iter().zip(&rows))
        .map(|(view, row)| history::Version {
            resource: resource(view, row.version_id, masked),
            version: row.version_id,
            updated_at: view.updated_at,
        })
        .collect();
    let base = format!("{}{BASE}", state.public_url);
    Ok(Reply::new(history::bundle(
        &base,
        "Practitioner",
        &id,
        &request,
        versions,
    )))
}

/// `GET /Practitioner/{id}/_history/{version}`: one version, current or earlier.
pub async fn vread(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let current = current(&state, &id).await?;
    let missing = || {
        Problem::not_found(format!(
            "Practitioner {id} has no version {version}: GET {BASE}/Practitioner/{id}/_history lists those kept"
        ))
    };
    let version: i64 = version.parse().map_err(|_| missing())?;
    let is_current = version == current.version_id;
    let row = if is_current {
        current
    } else {
        let earlier = state
            .manager
            .db()
            .practitioner_versions(&id, Some(version + 1), 1)
            .await?;
        let found = earlier.into_iter().find(|v| v.version_id == version);
        SealedPractitioner::from(found.ok_or_else(missing)?)
    };
    if let Some(not_modified) = super::unchanged(&headers, row.version_id) {
        return Ok(not_modified);
    }
    let rows = std::slice::from_ref(&row);
    let shown = Shown::fhir(!caller.pii_read);
    let items = match is_current {
        true => views(&state, rows, shown).await?,
        false => opened(&state, rows, shown)?,
    };
    one_version(&state, &caller, "fhir:Practitioner/vread", &row, items).await
}

/// The answer of a read of one version (`row`, opened as `items`), audited as `lookup`.
async fn one_version(
    state: &AppState,
    caller: &Caller,
    lookup: &str,
    row: &SealedPractitioner,
    items: Vec<PractitionerView>,
) -> Result<Response, Problem> {
    let masked = !caller.pii_read;
    audit_read(state, caller, lookup, &items, masked).await?;
    let view = items.first().expect("one practitioner");
    Ok(Reply {
        resource: resource(view, row.version_id, masked),
        version: Some(row.version_id),
        last_modified: Some(view.updated_at),
    }
    .into_response())
}

/// Practitioner `id` as stored now, or 404.
async fn current(state: &AppState, id: &str) -> Result<SealedPractitioner, Problem> {
    let rows = state.manager.db().practitioners_by_id(&[id.to_string()]).await?;
    rows.into_iter()
        .next()
        .ok_or_else(|| Problem::not_found(format!("no Practitioner {id}")))
}

/// `GET /Practitioner?…`.
pub async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Reply, Problem> {
    search_by(&state, &caller, query).await
}

/// `POST /Practitioner/_search`: the parameters in a form body (and the query string), for
/// clients that keep search values out of URLs and the logs that record them.
pub async fn search_form(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Reply, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.split(';').next().map(str::trim) != Some("application/x-www-form-urlencoded") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "a search body must be application/x-www-form-urlencoded, not {}: send the parameters as a form",
                if content_type.is_empty() {
                    "untyped"
                } else {
                    content_type
                }
            ),
        ));
    }
    let form = std::str::from_utf8(&body)
        .map_err(|_| Problem::bad_request("the search form is not UTF-8: encode it as UTF-8"))?;
    let query = [query.as_deref().unwrap_or_default(), form]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    search_by(&state, &caller, Some(query)).await
}

async fn search_by(state: &AppState, caller: &Caller, query: Option<String>) -> Result<Reply, Problem> {
    let request = search::parse("Practitioner", query.as_deref(), &SEARCH, caller.pii_read)?;
    let store_search = conditions(state, &request)?;
    let (rows, total) = state
        .manager
        .db()
        .search_practitioners(&store_search, request.limit(), request.wants_total())
        .await?;
    let masked = !caller.pii_read;
    let items = views(state, &rows, Shown::fhir(masked)).await?;
    audit_read(state, caller, &request.lookup("Practitioner"), &items, masked).await?;
    let matches = (items.iter().zip(&rows))
        .map(|(view, row)| resource(view, row.version_id, masked))
        .collect();
    let base = format!("{}{BASE}", state.public_url);
    let last = rows.last().map(|r| r.id.as_str());
    Ok(Reply::new(bundle::searchset(
        &base,
        "Practitioner",
        query.as_deref(),
        &request,
        bundle::Page {
            matches,
            included: Vec::new(),
            last_id: last,
            total,
        },
    )))
}

/// The store's search for a FHIR one.
fn conditions(state: &AppState, request: &SearchRequest) -> Result<Search<Condition>, Problem> {
    let blind = &state.manager.keys().blind;
    request.to_store(|name, value, any_of| {
        match name {
            "_id" => any_of.push(Condition::Id(value.to_string())),
            "identifier" => {
                let token = Token::parse(value);
                if matches!(token.system, None | Some(NIK_SYSTEM)) {
                    any_of.push(Condition::NikIndex(blind.nik(token.code)));
                }
                if matches!(token.system, None | Some(STR_SYSTEM)) {
                    any_of.push(Condition::StrIndex(blind.str_number(token.code)));
                }
            }
            "name" => {
                let words = normalize::name(value);
                if words.is_empty() {
                    return Err(Problem::bad_request(format!(
                        "name={value} has no word to search by (titles and degrees are left out): give a word of the name"
                    )));
                }
                let keys = words.split(' ').map(|w| derive::name_word_key(blind, w)).collect();
                any_of.push(Condition::SearchKeys(keys));
            }
            "birthdate" => {
                let date = DateValue::parse(name, value)?;
                let (start, end) = (date.start.as_datetime(), date.end.as_datetime());
                let whole_day = end - start == chrono::Duration::days(1) && start.time() == chrono::NaiveTime::MIN;
                if date.prefix != Prefix::Eq || !whole_day {
                    return Err(Problem::bad_request(format!(
                        "birthdate={value} is not one whole day: birth dates are sealed and matched by blind index, \
                         so give a date as YYYY-MM-DD without a prefix (a range would need the dates in clear)"
                    )));
                }
                let day = start.date_naive().to_string();
                any_of.push(Condition::SearchKeys(vec![derive::birth_date_key(blind, &day)]));
            }
            "gender" => {
                let token = Token::parse(value);
                if !matches!(token.system, None | Some(GENDER_SYSTEM)) {
                    return Ok(());
                }
                match token.code {
                    "male" | "female" | "unknown" => any_of.push(Condition::Gender(token.code.to_string())),
                    // A gender no stored record has.
                    "other" => {}
                    code => {
                        return Err(Problem::bad_request(format!(
                            "gender={code} is no administrative gender: give male, female, other or unknown"
                        )));
                    }
                }
            }
            "_lastUpdated" => {
                any_of.push(Condition::UpdatedAt(DateValue::parse(name, value)?.selects()));
            }
            _ => unreachable!("every supported parameter is handled"),
        }
        Ok(())
    })
}

/// A golden record as a Practitioner, without its identifying elements when `masked`.
pub fn resource(view: &PractitionerView, version: i64, masked: bool) -> Element {
    let registrations: Vec<Registration> = (view.registrations.as_deref())
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default();
    let mut meta = Element::object()
        .with("versionId", version.to_string())
        .with("lastUpdated", view.updated_at.to_string())
        .with("source", format!("urn:healthforce-hub:source:{}", view.source.system));
    if masked {
        meta = meta.with("security", vec![super::label("REDACTED", "redacted")]);
    }
    let sources = view.sources.iter().map(|s| coding(SOURCE_SYSTEM, &s.source_system));
    let stale = view.stale_sources.iter().map(|s| coding(STALE_SOURCE, s));
    meta = meta.with("tag", sources.chain(stale).collect::<Vec<_>>());
    let mut practitioner = Element::resource("Practitioner")
        .with("id", &view.id)
        .with("meta", meta);
    if !masked {
        let nik = view.nik.as_ref().map(|nik| {
            Element::object()
                .with("use", "official")
                .with("system", NIK_SYSTEM)
                .with("value", nik)
        });
        let str_number = view.str_number.as_ref().map(|n| identifier(STR_SYSTEM, n));
        let sips = registrations
            .iter()
            .filter(|r| r.kind == "sip")
            .map(|r| identifier(SIP_SYSTEM, &r.number));
        let identifiers: Vec<Element> = nik.into_iter().chain(str_number).chain(sips).collect();
        let telecom = [("phone", &view.phone), ("email", &view.email)]
            .into_iter()
            .filter_map(|(system, value)| {
                value.as_ref().map(|v| {
                    Element::object()
                        .with("system", system)
                        .with("value", v)
                        .with("use", "work")
                })
            })
            .collect::<Vec<_>>();
        practitioner = practitioner
            .with("identifier", identifiers)
            .with_some(
                "name",
                view.full_name
                    .as_ref()
                    .map(|name| vec![Element::object().with("use", "official").with("text", name)]),
            )
            .with("telecom", telecom);
    }
    practitioner = practitioner.with("gender", view.gender.as_str());
    if !masked {
        practitioner = practitioner.with_some("birthDate", view.birth_date.as_deref());
    }
    let qualifications: Vec<Element> = registrations.iter().map(|r| qualification(r, masked)).collect();
    practitioner.with("qualification", qualifications)
}

/// A registration as a qualification: its number (unless masked), kind, status and period.
fn qualification(registration: &Registration, masked: bool) -> Element {
    let system = match registration.kind.as_str() {
        "str" => Some(STR_SYSTEM),
        "sip" => Some(SIP_SYSTEM),
        _ => None,
    };
    let number = (!masked).then(|| {
        vec![match system {
            Some(system) => identifier(system, &registration.number),
            None => Element::object().with("value", &registration.number),
        }]
    });
    let status = Element::object()
        .with("url", QUALIFICATION_STATUS)
        .with("valueCode", &registration.status);
    let period = Element::object()
        .with_some("start", registration.valid_from.as_deref())
        .with_some("end", registration.valid_until.as_deref());
    Element::object()
        .with("extension", vec![status])
        .with_some("identifier", number)
        .with(
            "code",
            Element::object()
                .with("coding", vec![coding(REGISTRATION_KIND, &registration.kind)])
                .with("text", registration_name(&registration.kind)),
        )
        .with("period", period)
        .with_some(
            "issuer",
            registration
                .issuer
                .as_ref()
                .map(|issuer| Element::object().with("display", issuer)),
        )
}

fn registration_name(kind: &str) -> &str {
    match kind {
        "str" => "Surat Tanda Registrasi (STR)",
        "sip" => "Surat Izin Praktik (SIP)",
        "certificate" => "Sertifikat kompetensi",
        other => other,
    }
}

fn identifier(system: &str, value: &str) -> Element {
    Element::object().with("system", system).with("value", value)
}

fn coding(system: &str, code: &str) -> Element {
    Element::object().with("system", system).with("code", code)
}
