//! `PractitionerRole`: one employment of a practitioner — the facility as organization and
//! location, the position, the period (docs/fhir.md#practitionerrole). Which facility a role
//! is at is stored in clear (`practitioner_roles`); position and period are opened from the
//! sealed golden record, so every read is audited as a read of the practitioner. A role
//! holds no identifying element; `_include=PractitionerRole:practitioner` adds the
//! Practitioner, masked and audited as its own search would be.

use super::bundle;
use super::element::Element;
use super::search::{self, DateValue, ParamType, SearchParam, SearchRequest, Searchable};
use super::{BASE, Reply, facility};
use crate::api::practitioners::{Shown, audit_personal_read, audit_read, views};
use crate::api::{AppState, Problem};
use crate::auth::{Caller, smart};
use crate::model::Employment;
use crate::pipeline::derive;
use crate::store::facilities::{RoleCondition, RoleLink};
use crate::store::practitioners::SealedPractitioner;
use crate::store::search::Search;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeSet, HashMap};

pub const SEARCH: Searchable = Searchable {
    params: &[
        search::ID,
        SearchParam {
            name: "practitioner",
            kind: ParamType::Reference,
            definition: "http://hl7.org/fhir/SearchParameter/PractitionerRole-practitioner",
            documentation: "The practitioner, as Practitioner/id or id",
            identifying: false,
            modifier: None,
        },
        SearchParam {
            name: "organization",
            kind: ParamType::Reference,
            definition: "http://hl7.org/fhir/SearchParameter/PractitionerRole-organization",
            documentation: "The facility, as Organization/id or id",
            identifying: false,
            modifier: None,
        },
        SearchParam {
            name: "location",
            kind: ParamType::Reference,
            definition: "http://hl7.org/fhir/SearchParameter/PractitionerRole-location",
            documentation: "The facility, as Location/id or id",
            identifying: false,
            modifier: None,
        },
        SearchParam {
            name: "_lastUpdated",
            kind: ParamType::Date,
            definition: "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
            documentation: "When the practitioner's golden record last changed, with the prefixes eq, ne, gt, lt, ge, le, sa and eb",
            identifying: false,
            modifier: None,
        },
    ],
    includes: &["practitioner", "organization", "location"],
};

/// `GET /PractitionerRole/{id}`.
pub async fn read(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let missing = || Problem::not_found(format!("no PractitionerRole {id}"));
    let search = Search {
        all_of: vec![vec![RoleCondition::Id(id.clone())]],
        after: None,
    };
    let (links, _) = state.manager.db().search_roles(&search, 1, false).await?;
    let link = links.first().ok_or_else(missing)?;
    let rows = state
        .manager
        .db()
        .practitioners_by_id(std::slice::from_ref(&link.practitioner_id))
        .await?;
    let row = rows.first().ok_or_else(missing)?;
    if let Some(not_modified) = super::unchanged(&headers, row.version_id) {
        return Ok(not_modified);
    }
    let mut resources = resources(&state, &links, &rows)?;
    audit_personal_read(
        &state,
        &caller,
        "practitioners",
        "fhir:PractitionerRole/read",
        &[row.id.as_str()],
        true,
    )
    .await?;
    // The record changed since the role was listed, and no longer has that employment.
    let resource = resources.pop().ok_or_else(missing)?;
    Ok(Reply {
        resource,
        version: Some(row.version_id),
        last_modified: Some(link.updated_at),
    }
    .into_response())
}

/// `GET /PractitionerRole?…`.
pub async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Reply, Problem> {
    let request = search::parse("PractitionerRole", query.as_deref(), &SEARCH, caller.pii_read)?;
    // What an include adds is read as its own type: a token's scopes must allow that too.
    for param in &request.includes {
        let included = match *param {
            "practitioner" => "Practitioner",
            "organization" => "Organization",
            _ => "Location",
        };
        if let Some(scopes) = &caller.smart
            && !scopes.allow(included, smart::Access::Read)
        {
            let target = format!("GET {BASE}/PractitionerRole?_include=PractitionerRole:{param}");
            return Err(super::beyond_scopes(&state, Some(&caller), included, smart::Access::Read, target).await);
        }
    }
    let db = state.manager.db();
    let (links, total) = db
        .search_roles(&conditions(&request)?, request.limit(), request.wants_total())
        .await?;
    let practitioner_ids: Vec<String> = (links.iter().map(|l| l.practitioner_id.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = db.practitioners_by_id(&practitioner_ids).await?;
    let matches = resources(&state, &links, &rows)?;
    let lookup = request.lookup("PractitionerRole");
    let opened: Vec<&str> = practitioner_ids.iter().map(String::as_str).collect();
    if !opened.is_empty() {
        audit_personal_read(&state, &caller, "practitioners", &lookup, &opened, true).await?;
    }
    let wants = |param| request.includes.contains(&param);
    let mut included = Vec::new();
    if wants("practitioner") && !rows.is_empty() {
        let masked = !caller.pii_read;
        let items = views(&state, &rows, Shown::fhir(masked)).await?;
        audit_read(&state, &caller, &format!("{lookup}&_include"), &items, masked).await?;
        included.extend(
            (items.iter().zip(&rows)).map(|(view, row)| super::practitioner::resource(view, row.version_id, masked)),
        );
    }
    if wants("organization") || wants("location") {
        let facility_ids: Vec<String> = (links.iter().filter_map(|l| l.facility_id.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let facilities = db.facilities_by_id(&facility_ids).await?;
        if wants("organization") {
            included.extend(facilities.iter().map(facility::organization));
        }
        if wants("location") {
            included.extend(facilities.iter().map(facility::location));
        }
    }
    let base = format!("{}{BASE}", state.public_url);
    Ok(Reply::new(bundle::searchset(
        &base,
        "PractitionerRole",
        query.as_deref(),
        &request,
        bundle::Page {
            matches,
            included,
            last_id: links.last().map(|l| l.id.as_str()),
            total,
        },
    )))
}

fn conditions(request: &SearchRequest) -> Result<Search<RoleCondition>, Problem> {
    request.to_store(|name, value, any_of| {
        any_of.push(match name {
            "_id" => RoleCondition::Id(value.to_string()),
            "practitioner" => RoleCondition::Practitioner(search::reference(name, value, "Practitioner")?.into()),
            "organization" => RoleCondition::Facility(super::id::key(search::reference(name, value, "Organization")?)),
            "location" => RoleCondition::Facility(super::id::key(search::reference(name, value, "Location")?)),
            "_lastUpdated" => RoleCondition::UpdatedAt(DateValue::parse(name, value)?.selects()),
            _ => unreachable!("every supported parameter is handled"),
        });
        Ok(())
    })
}

/// `links` as PractitionerRoles, in order, each with its employment opened from its
/// practitioner's golden record (one of `rows`). A role whose record no longer has that
/// employment (it changed since the role was read) is left out.
fn resources(state: &AppState, links: &[RoleLink], rows: &[SealedPractitioner]) -> Result<Vec<Element>, Problem> {
    let keys = state.manager.keys();
    let cipher = keys.cipher();
    let mut employments: HashMap<&str, (&SealedPractitioner, Vec<Employment>)> = HashMap::new();
    for row in rows {
        let opened = derive::employments(&cipher, row).map_err(|e| Problem::internal(&e))?;
        employments.insert(row.id.as_str(), (row, opened));
    }
    let today = chrono::Utc::now().date_naive().to_string();
    Ok(links
        .iter()
        .filter_map(|link| {
            let (row, list) = employments.get(link.practitioner_id.as_str())?;
            let employment = list
                .iter()
                .find(|e| derive::role_id(&keys.blind, &row.id, e) == link.id)?;
            Some(resource(link, employment, row.version_id, &today))
        })
        .collect())
}

fn resource(link: &RoleLink, employment: &Employment, version: i64, today: &str) -> Element {
    // A period that ends at a year or month ends with it: `2026` is still running in 2026.
    let active = (employment.end_date.as_deref()).is_none_or(|end| end >= &today[..end.len().min(today.len())]);
    let facility = |resource_type: &str| {
        let reference = (link.facility_id.as_deref()).map(|code| format!("{resource_type}/{}", super::id::of(code)));
        Element::object()
            .with_some("reference", reference)
            .with("display", &employment.facility_name)
    };
    let position = (employment.position.as_ref()).map(|p| vec![Element::object().with("text", p)]);
    Element::resource("PractitionerRole")
        .with("id", &link.id)
        .with(
            "meta",
            Element::object()
                .with("versionId", version.to_string())
                .with("lastUpdated", link.updated_at.to_string()),
        )
        .with("active", active)
        .with(
            "period",
            Element::object()
                .with_some("start", employment.start_date.as_deref())
                .with_some("end", employment.end_date.as_deref()),
        )
        .with(
            "practitioner",
            Element::object().with("reference", format!("Practitioner/{}", link.practitioner_id)),
        )
        .with("organization", facility("Organization"))
        .with_some("code", position)
        .with_some(
            "location",
            link.facility_id.is_some().then(|| vec![facility("Location")]),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_facility_named_without_its_code_is_a_display_with_no_reference_and_no_location() {
        let link = RoleLink {
            id: "p-1".into(),
            practitioner_id: "p".into(),
            facility_id: None,
            updated_at: crate::store::Timestamp::now(),
        };
        let employment = Employment {
            facility_code: None,
            facility_name: "RSUD Dr. Soetomo".into(),
            position: None,
            start_date: None,
            end_date: None,
        };
        let role = serde_json::to_value(resource(&link, &employment, 3, "2026-12-02")).unwrap();
        assert_eq!(
            role["organization"],
            serde_json::json!({ "display": "RSUD Dr. Soetomo" })
        );
        assert!(role.get("location").is_none() && role.get("code").is_none(), "{role}");
        assert_eq!(role["meta"]["versionId"], "3");
    }

    #[test]
    fn a_role_is_active_until_the_end_of_its_period_at_the_precision_it_is_given() {
        let link = RoleLink {
            id: "p-1".into(),
            practitioner_id: "p".into(),
            facility_id: Some("3578015".into()),
            updated_at: crate::store::Timestamp::now(),
        };
        let active = |end: Option<&str>| {
            let employment = Employment {
                facility_code: Some("3578015".into()),
                facility_name: "RSUD Dr. Soetomo".into(),
                position: Some("perawat".into()),
                start_date: Some("2019".into()),
                end_date: end.map(str::to_string),
            };
            resource(&link, &employment, 1, "2026-12-02").get("active").cloned()
        };
        assert_eq!(active(None), Some(Element::Bool(true)));
        assert_eq!(active(Some("2026")), Some(Element::Bool(true)));
        assert_eq!(active(Some("2026-12")), Some(Element::Bool(true)));
        assert_eq!(active(Some("2026-12-02")), Some(Element::Bool(true)));
        assert_eq!(active(Some("2026-12-01")), Some(Element::Bool(false)));
        assert_eq!(active(Some("2025")), Some(Element::Bool(false)));
    }
}
