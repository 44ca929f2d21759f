//! `Observation` (a device's vital sign, following the FHIR vital-signs profiles) and
//! `Device` (the sensor). Who was measured is sealed in the stored observation: the subject
//! goes only to callers with `pii:read` (else it is left out, the resource is labelled
//! REDACTED and claims no profile, as the profiles require a subject), and those reads are
//! audited.

use super::bundle;
use super::element::Element;
use super::search::{self, DateValue, ParamType, SearchParam, Searchable, Token};
use super::{BASE, Reply};
use crate::api::practitioners::audit_personal_read;
use crate::api::{AppState, Problem};
use crate::auth::Caller;
use crate::pipeline::derive;
use crate::pipeline::observations::{self, Details};
use crate::store::observations::{Condition, ObservationRecord};
use crate::store::search::Search;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const SUBJECT_SYSTEM: &str = "urn:healthforce-hub:fhir:subject";
const DEVICE_SYSTEM: &str = "urn:healthforce-hub:fhir:device";
const PROFILES: &str = "http://hl7.org/fhir/StructureDefinition/";

/// The vital signs the hub knows: LOINC code, name, and the profile of FHIR's vital-signs
/// set that an observation of it follows. SpO2 by pulse oximetry is also coded 2708-6, as
/// the oxygensat profile requires.
const VITAL_SIGNS: &[(&str, &str, &str)] = &[
    ("8867-4", "Heart rate", "heartrate"),
    (
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
        "oxygensat",
    ),
    ("2708-6", "Oxygen saturation in Arterial blood", "oxygensat"),
    ("8310-5", "Body temperature", "bodytemp"),
    ("9279-1", "Respiratory rate", "resprate"),
    ("85354-9", "Blood pressure panel with all children optional", "bp"),
    ("8480-6", "Systolic blood pressure", "vitalsigns"),
    ("8462-4", "Diastolic blood pressure", "vitalsigns"),
];

pub const SEARCH: Searchable = Searchable {
    params: &[
        search::ID,
        SearchParam {
            name: "code",
            kind: ParamType::Token,
            definition: "http://hl7.org/fhir/SearchParameter/clinical-code",
            documentation: "A LOINC code, as http://loinc.org|code or code alone",
            identifying: false,
            modifier: None,
        },
        SearchParam {
            name: "date",
            kind: ParamType::Date,
            definition: "http://hl7.org/fhir/SearchParameter/clinical-date",
            documentation: "When it was measured, with the prefixes eq, ne, gt, lt, ge, le, sa and eb",
            identifying: false,
            modifier: None,
        },
        SearchParam {
            name: "device",
            kind: ParamType::Reference,
            definition: "http://hl7.org/fhir/SearchParameter/Observation-device",
            documentation: "The sensor, as Device/id or id",
            identifying: false,
            modifier: None,
        },
        SearchParam {
            name: "subject",
            kind: ParamType::Reference,
            definition: "http://hl7.org/fhir/SearchParameter/Observation-subject",
            documentation: "Who was measured, by identifier only (subject:identifier=urn:healthforce-hub:fhir:subject|value, \
                or the value alone), matched by blind index. Needs pii:read",
            identifying: true,
            modifier: Some("identifier"),
        },
    ],
    includes: &[],
};

/// `GET /Observation/{id}`.
pub async fn read(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Reply, Problem> {
    let search = Search {
        all_of: vec![vec![Condition::Id(id.clone())]],
        after: None,
    };
    let (rows, _) = state.manager.db().search_observations(&search, 1, false).await?;
    let Some(row) = rows.first() else {
        return Err(Problem::not_found(format!("no Observation {id}")));
    };
    let resources = answer(&state, &caller, "fhir:Observation/read", &rows).await?;
    Ok(Reply {
        resource: resources.into_iter().next().expect("one observation"),
        version: Some(1),
        last_modified: Some(row.created_at),
    })
}

/// `GET /Observation?…`.
pub async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Reply, Problem> {
    let request = search::parse("Observation", query.as_deref(), &SEARCH, caller.pii_read)?;
    let blind = &state.manager.keys().blind;
    let store_search = request.to_store(|name, value, any_of| {
        match name {
            "_id" => any_of.push(Condition::Id(value.to_string())),
            "code" => {
                let token = Token::parse(value);
                if matches!(token.system, None | Some(LOINC)) {
                    any_of.push(Condition::Code(token.code.to_string()));
                }
            }
            "date" => any_of.push(Condition::EffectiveAt(DateValue::parse(name, value)?.selects())),
            "device" => {
                let id = search::reference(name, value, "Device")?;
                any_of.push(Condition::Device(super::id::key(id)));
            }
            "subject" => {
                let token = Token::parse(value);
                if matches!(token.system, None | Some(SUBJECT_SYSTEM)) {
                    any_of.push(Condition::SubjectKey(derive::subject_key(blind, token.code)));
                }
            }
            _ => unreachable!("every supported parameter is handled"),
        }
        Ok(())
    })?;
    let (rows, total) = state
        .manager
        .db()
        .search_observations(&store_search, request.limit(), request.wants_total())
        .await?;
    let matches = answer(&state, &caller, &request.lookup("Observation"), &rows).await?;
    let base = format!("{}{BASE}", state.public_url);
    let last = rows.last().map(|r| r.id.as_str());
    Ok(Reply::new(bundle::searchset(
        &base,
        "Observation",
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

/// The rows as Observations; with their subjects (audited) for a caller with `pii:read`.
async fn answer(
    state: &AppState,
    caller: &Caller,
    lookup: &str,
    rows: &[ObservationRecord],
) -> Result<Vec<Element>, Problem> {
    let cipher = state.manager.keys().cipher();
    let masked = !caller.pii_read;
    let resources = rows
        .iter()
        .map(|row| {
            let details = observations::open(&cipher, row)?;
            Ok(resource(row, &details, masked))
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let with_subject: Vec<&str> = (rows.iter().zip(&resources))
        .filter(|(_, r)| r.get("subject").is_some())
        .map(|(row, _)| row.id.as_str())
        .collect();
    if !with_subject.is_empty() {
        audit_personal_read(state, caller, "observations", lookup, &with_subject, false).await?;
    }
    Ok(resources)
}

fn resource(row: &ObservationRecord, sealed: &Details, masked: bool) -> Element {
    let subject = sealed.subject.as_ref().filter(|_| !masked).map(|subject| {
        Element::object().with("type", "Patient").with(
            "identifier",
            Element::object().with("system", SUBJECT_SYSTEM).with("value", subject),
        )
    });
    // The profiles require a subject: one without it (unknown, or masked) claims none.
    let profile = subject.as_ref().map(|_| {
        let name = VITAL_SIGNS
            .iter()
            .find(|(c, ..)| *c == row.code)
            .map_or("vitalsigns", |(.., p)| *p);
        vec![Element::from(format!("{PROFILES}{name}"))]
    });
    let mut meta = Element::object()
        .with("versionId", "1")
        .with("lastUpdated", row.created_at.to_string())
        .with("source", format!("urn:healthforce-hub:source:{}", row.source_system))
        .with_some("profile", profile);
    if masked && sealed.subject.is_some() {
        meta = meta.with("security", vec![super::label("REDACTED", "redacted")]);
    }
    let category = Element::object()
        .with(
            "coding",
            vec![
                Element::object()
                    .with("system", "http://terminology.hl7.org/CodeSystem/observation-category")
                    .with("code", "vital-signs")
                    .with("display", "Vital Signs"),
            ],
        )
        .with("text", "Vital Signs");
    let value = row
        .value
        .map(|value| quantity(value, row.unit.as_deref().unwrap_or_default()));
    let components: Vec<Element> = (sealed.components.iter())
        .map(|c| {
            Element::object()
                .with("code", code(&c.code))
                .with("valueQuantity", quantity(c.value, &c.unit))
        })
        .collect();
    Element::resource("Observation")
        .with("id", &row.id)
        .with("meta", meta)
        .with("status", "final")
        .with("category", vec![category])
        .with("code", code(&row.code))
        .with_some("subject", subject)
        .with("effectiveDateTime", row.effective_at.to_string())
        .with("issued", row.created_at.to_string())
        .with_some("valueQuantity", value)
        .with(
            "device",
            Element::object().with("reference", format!("Device/{}", super::id::of(&row.device_id))),
        )
        .with("component", components)
}

/// A LOINC code as a CodeableConcept; SpO2 by pulse oximetry with 2708-6 as well.
fn code(loinc: &str) -> Element {
    let coding = |code: &str| {
        let display = VITAL_SIGNS.iter().find(|(c, ..)| *c == code).map(|(_, d, _)| *d);
        Element::object()
            .with("system", LOINC)
            .with("code", code)
            .with_some("display", display)
    };
    let mut codings = vec![coding(loinc)];
    if loinc == "59408-5" {
        codings.push(coding("2708-6"));
    }
    let text = VITAL_SIGNS.iter().find(|(c, ..)| *c == loinc).map(|(_, d, _)| *d);
    Element::object().with("coding", codings).with_some("text", text)
}

fn quantity(value: f64, unit: &str) -> Element {
    Element::object()
        .with("value", value)
        .with("unit", unit)
        .with("system", UCUM)
        .with("code", unit)
}

/// `GET /Device/{id}`: a sensor that has sent observations.
pub async fn read_device(State(state): State<AppState>, Path(id): Path<String>) -> Result<Reply, Problem> {
    let search = Search {
        all_of: vec![vec![Condition::Device(super::id::key(&id))]],
        after: None,
    };
    let (rows, _) = state.manager.db().search_observations(&search, 1, false).await?;
    let Some(row) = rows.first() else {
        return Err(Problem::not_found(format!(
            "no Device {id}: no sensor of that id has sent an observation"
        )));
    };
    let device = Element::resource("Device")
        .with("id", super::id::of(&row.device_id))
        .with(
            "meta",
            Element::object()
                .with("versionId", "1")
                .with("source", format!("urn:healthforce-hub:source:{}", row.source_system)),
        )
        .with(
            "identifier",
            vec![
                Element::object()
                    .with("system", DEVICE_SYSTEM)
                    .with("value", &row.device_id),
            ],
        )
        .with("status", "active")
        .with(
            "deviceName",
            vec![
                Element::object()
                    .with("name", &row.device_id)
                    .with("type", "user-friendly-name"),
            ],
        );
    // What the hub knows of a sensor (its id and source) never changes: version 1.
    Ok(Reply {
        resource: device,
        version: Some(1),
        last_modified: None,
    })
}
