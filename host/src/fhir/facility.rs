//! `Organization` and `Location`: a health facility (fasilitas pelayanan kesehatan) as the
//! provider that employs practitioners and as the place they work (docs/fhir.md#facilities).
//! Both come from the `facilities` table, which the pipeline keeps from the employments
//! sources report; a facility's code and name are public, so nothing here is audited.

use super::bundle;
use super::element::Element;
use super::search::{self, DateValue, ParamType, SearchParam, SearchRequest, Searchable, Token};
use super::{BASE, Reply};
use crate::api::{AppState, Problem};
use crate::auth::Caller;
use crate::store::facilities::{Facility, FacilityCondition};
use crate::store::search::Search;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};

/// Facility codes (kode fasyankes, as the ministry's facility registry gives them).
/// SATUSEHAT publishes no system for them; this one follows the NIK's pattern.
pub const FACILITY_SYSTEM: &str = "https://fhir.kemkes.go.id/id/kode-fasyankes";

const IDENTIFIER: SearchParam = SearchParam {
    name: "identifier",
    kind: ParamType::Token,
    definition: "http://hl7.org/fhir/SearchParameter/Organization-identifier",
    documentation: "The facility code (https://fhir.kemkes.go.id/id/kode-fasyankes), as system|value or value alone",
    identifying: false,
    modifier: None,
};
const LAST_UPDATED: SearchParam = SearchParam {
    name: "_lastUpdated",
    kind: ParamType::Date,
    definition: "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
    documentation: "When a source last gave the facility's name, with the prefixes eq, ne, gt, lt, ge, le, sa and eb",
    identifying: false,
    modifier: None,
};

pub const ORGANIZATION_SEARCH: Searchable = Searchable {
    params: &[
        search::ID,
        IDENTIFIER,
        SearchParam {
            name: "name",
            kind: ParamType::String,
            definition: "http://hl7.org/fhir/SearchParameter/Organization-name",
            documentation: "The start of the facility's name, ignoring case",
            identifying: false,
            modifier: None,
        },
        LAST_UPDATED,
    ],
    includes: &[],
};

pub const LOCATION_SEARCH: Searchable = Searchable {
    params: &[
        search::ID,
        SearchParam {
            definition: "http://hl7.org/fhir/SearchParameter/Location-identifier",
            ..IDENTIFIER
        },
        SearchParam {
            name: "name",
            kind: ParamType::String,
            definition: "http://hl7.org/fhir/SearchParameter/Location-name",
            documentation: "The start of the facility's name, ignoring case",
            identifying: false,
            modifier: None,
        },
        SearchParam {
            name: "organization",
            kind: ParamType::Reference,
            definition: "http://hl7.org/fhir/SearchParameter/Location-organization",
            documentation: "The facility as an Organization, as Organization/id or id",
            identifying: false,
            modifier: None,
        },
        LAST_UPDATED,
    ],
    includes: &[],
};

/// Which resource a facility is shown as.
#[derive(Clone, Copy)]
enum Shown {
    Organization,
    Location,
}

impl Shown {
    fn name(self) -> &'static str {
        match self {
            Shown::Organization => "Organization",
            Shown::Location => "Location",
        }
    }

    fn searchable(self) -> &'static Searchable {
        match self {
            Shown::Organization => &ORGANIZATION_SEARCH,
            Shown::Location => &LOCATION_SEARCH,
        }
    }

    fn resource(self, facility: &Facility) -> Element {
        match self {
            Shown::Organization => organization(facility),
            Shown::Location => location(facility),
        }
    }
}

pub async fn read_organization(State(state): State<AppState>, Path(id): Path<String>) -> Result<Reply, Problem> {
    read(&state, &id, Shown::Organization).await
}

pub async fn read_location(State(state): State<AppState>, Path(id): Path<String>) -> Result<Reply, Problem> {
    read(&state, &id, Shown::Location).await
}

pub async fn search_organizations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Reply, Problem> {
    search_as(&state, &caller, query, Shown::Organization).await
}

pub async fn search_locations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Reply, Problem> {
    search_as(&state, &caller, query, Shown::Location).await
}

async fn read(state: &AppState, id: &str, shown: Shown) -> Result<Reply, Problem> {
    let facilities = state.manager.db().facilities_by_id(&[super::id::key(id)]).await?;
    let Some(facility) = facilities.first() else {
        return Err(Problem::not_found(format!(
            "no {} {id}: no source has named a facility with that code",
            shown.name()
        )));
    };
    Ok(Reply {
        resource: shown.resource(facility),
        version: Some(facility.version_id),
        last_modified: Some(facility.updated_at),
    })
}

async fn search_as(state: &AppState, caller: &Caller, query: Option<String>, shown: Shown) -> Result<Reply, Problem> {
    let request = search::parse(shown.name(), query.as_deref(), shown.searchable(), caller.pii_read)?;
    let (rows, total) = state
        .manager
        .db()
        .search_facilities(&conditions(&request)?, request.limit(), request.wants_total())
        .await?;
    let base = format!("{}{BASE}", state.public_url);
    Ok(Reply::new(bundle::searchset(
        &base,
        shown.name(),
        query.as_deref(),
        &request,
        bundle::Page {
            matches: rows.iter().map(|f| shown.resource(f)).collect(),
            included: Vec::new(),
            last_id: rows.last().map(|f| f.id.as_str()),
            total,
        },
    )))
}

/// The store's search for a FHIR one, of either resource.
fn conditions(request: &SearchRequest) -> Result<Search<FacilityCondition>, Problem> {
    request.to_store(|name, value, any_of| {
        match name {
            "_id" => any_of.push(FacilityCondition::Id(super::id::key(value))),
            "identifier" => {
                let token = Token::parse(value);
                if matches!(token.system, None | Some(FACILITY_SYSTEM)) {
                    any_of.push(FacilityCondition::Id(token.code.to_string()));
                }
            }
            "name" => any_of.push(FacilityCondition::NameStarts(value.to_string())),
            "organization" => {
                let id = search::reference(name, value, "Organization")?;
                any_of.push(FacilityCondition::Id(super::id::key(id)));
            }
            "_lastUpdated" => any_of.push(FacilityCondition::UpdatedAt(DateValue::parse(name, value)?.selects())),
            _ => unreachable!("every supported parameter is handled"),
        }
        Ok(())
    })
}

fn meta(facility: &Facility) -> Element {
    Element::object()
        .with("versionId", facility.version_id.to_string())
        .with("lastUpdated", facility.updated_at.to_string())
}

fn identifier(facility: &Facility) -> Vec<Element> {
    vec![
        Element::object()
            .with("use", "official")
            .with("system", FACILITY_SYSTEM)
            .with("value", &facility.id),
    ]
}

/// The facility as the provider organization.
pub fn organization(facility: &Facility) -> Element {
    let provider = Element::object()
        .with("system", "http://terminology.hl7.org/CodeSystem/organization-type")
        .with("code", "prov")
        .with("display", "Healthcare Provider");
    Element::resource("Organization")
        .with("id", super::id::of(&facility.id))
        .with("meta", meta(facility))
        .with("identifier", identifier(facility))
        .with("active", true)
        .with("type", vec![Element::object().with("coding", vec![provider])])
        .with("name", &facility.name)
}

/// The facility as the place, managed by itself as an organization.
pub fn location(facility: &Facility) -> Element {
    let id = super::id::of(&facility.id);
    Element::resource("Location")
        .with("id", &id)
        .with("meta", meta(facility))
        .with("identifier", identifier(facility))
        .with("status", "active")
        .with("name", &facility.name)
        .with("mode", "instance")
        .with(
            "managingOrganization",
            Element::object()
                .with("reference", format!("Organization/{id}"))
                .with("display", &facility.name),
        )
}
