//! `/api/v1/practitioners?str=&nik=`: decrypted practitioners, looked up by blind index.
//! Needs the `pii:read` grant (checked by the route table); every read is audited.

use super::extract::{Path, Query};
use super::problem::Problem;
use super::{AppState, Page};
use crate::audit::Event;
use crate::auth::Caller;
use crate::crypto::CryptoError;
use crate::pipeline::golden::{Origin, Provenance};
use crate::store::Timestamp;
use crate::store::practitioners::{IndexColumn, SealedPractitioner, SourceLink};
use axum::Extension;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// STR number (exact, any formatting).
    #[serde(rename = "str")]
    pub str_number: Option<String>,
    /// NIK (16 digits).
    pub nik: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<PractitionerView>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let lookup = Lookup::of(q.str_number.as_deref(), q.nik.as_deref(), q.cursor.as_deref());
    let items = find(&state, &lookup, limit).await?;
    audit_read(&state, &caller, lookup.name(), &items, false).await?;
    Ok(axum::Json(Page::new(items, limit, |v| v.id.clone())))
}

/// `/api/v1/practitioners/{id}`: one practitioner, decrypted (audited).
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<PractitionerView>, Problem> {
    let lookup = Lookup::Id(&id);
    let items = find(&state, &lookup, 1).await?;
    if items.is_empty() {
        return Err(Problem::not_found(format!("no practitioner {id}")));
    }
    audit_read(&state, &caller, lookup.name(), &items, false).await?;
    Ok(axum::Json(items.into_iter().next().expect("one practitioner")))
}

/// How practitioners are looked up: by blind index (never by the clear value).
pub enum Lookup<'a> {
    Str {
        str_number: &'a str,
        nik: Option<&'a str>,
    },
    Nik(&'a str),
    Id(&'a str),
    /// Every practitioner, a page after `cursor`.
    All {
        cursor: Option<&'a str>,
    },
}

impl<'a> Lookup<'a> {
    pub fn of(str_number: Option<&'a str>, nik: Option<&'a str>, cursor: Option<&'a str>) -> Self {
        match (str_number, nik) {
            (Some(str_number), nik) => Lookup::Str { str_number, nik },
            (None, Some(nik)) => Lookup::Nik(nik),
            (None, None) => Lookup::All { cursor },
        }
    }

    /// What the audit log records: how the caller looked, never the value.
    pub fn name(&self) -> &'static str {
        match self {
            Lookup::Str { nik: Some(_), .. } => "str+nik",
            Lookup::Str { nik: None, .. } => "str",
            Lookup::Nik(_) => "nik",
            Lookup::Id(_) => "id",
            Lookup::All { .. } => "list",
        }
    }
}

/// The practitioners a lookup finds, decrypted, with their sources and stale fields marked.
/// The caller audits the read before anything leaves the hub.
pub(crate) async fn find(state: &AppState, lookup: &Lookup<'_>, limit: i64) -> Result<Vec<PractitionerView>, Problem> {
    let db = state.manager.db();
    let blind = &state.manager.keys().blind;
    let rows = match lookup {
        Lookup::Str { str_number, nik } => {
            let rows = db
                .practitioners_by_index(IndexColumn::Str, &blind.str_number(str_number), limit)
                .await?;
            let nik_index = nik.map(|n| blind.nik(n));
            rows.into_iter()
                .filter(|r| nik_index.is_none() || r.nik_index == nik_index)
                .collect()
        }
        Lookup::Nik(nik) => {
            db.practitioners_by_index(IndexColumn::Nik, &blind.nik(nik), limit)
                .await?
        }
        Lookup::Id(id) => db.practitioners_by_id(&[id.to_string()]).await?,
        Lookup::All { cursor } => db.list_practitioners(*cursor, limit).await?,
    };
    views(state, &rows, Shown::All).await
}

/// The sealed fields a reply shows. The others are never decrypted: a caller without
/// `pii:read` has no identifying value of theirs opened in the hub's memory at all, and a
/// 100-resource FHIR page does not open the 100 birth places it leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shown {
    /// Every field (the REST API, `pii:read`).
    All,
    /// What a FHIR `Practitioner` holds: all but the birth place.
    Fhir,
    /// Nothing identifying: only the details, for the registrations' kinds, statuses and
    /// periods (their numbers are left out of the reply).
    Unidentified,
}

impl Shown {
    /// A FHIR reply's fields: without identifying ones when `masked`.
    pub(crate) fn fhir(masked: bool) -> Self {
        if masked { Shown::Unidentified } else { Shown::Fhir }
    }

    fn opens(self, column: &str) -> bool {
        match self {
            Shown::All => true,
            Shown::Fhir => column != "birth_place",
            Shown::Unidentified => column == "details",
        }
    }
}

/// Stored practitioners decrypted as far as `shown`, in the same order, with their sources
/// and stale fields marked. The caller audits the read before anything leaves the hub.
pub(crate) async fn views(
    state: &AppState,
    rows: &[SealedPractitioner],
    shown: Shown,
) -> Result<Vec<PractitionerView>, Problem> {
    let mut items = opened(state, rows, shown)?;
    mark_stale(state, &mut items).await?;
    add_sources(state, &mut items).await?;
    Ok(items)
}

/// The rows decrypted as far as `shown` as they are stored, without what [`views`] adds of
/// their sources now: as an earlier version of a record was.
pub(crate) fn opened(
    state: &AppState,
    rows: &[SealedPractitioner],
    shown: Shown,
) -> Result<Vec<PractitionerView>, Problem> {
    (rows.iter().map(|row| open(state, row, shown)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Problem::internal(&e))
}

/// Records that `caller` read `items` (`masked`: with identifying fields hidden); no audit
/// entry, no data.
pub(crate) async fn audit_read(
    state: &AppState,
    caller: &Caller,
    lookup: &str,
    items: &[PractitionerView],
    masked: bool,
) -> Result<(), Problem> {
    let ids: Vec<&str> = items.iter().map(|v| v.id.as_str()).collect();
    audit_personal_read(state, caller, "practitioners", lookup, &ids, masked).await
}

/// Records that `caller` read the rows `ids` of `table`, which hold personal data, found by
/// `lookup` (how, never the values); `masked`: with identifying fields hidden.
pub(crate) async fn audit_personal_read(
    state: &AppState,
    caller: &Caller,
    table: &str,
    lookup: &str,
    ids: &[&str],
    masked: bool,
) -> Result<(), Problem> {
    let mut details = json!({ "lookup": lookup, "count": ids.len(), "ids": ids });
    if masked {
        details["masked"] = json!(true);
    }
    let event = Event::new(&caller.actor, "pii.read", table).details(details);
    state.manager.audit().try_record(&event).await?;
    Ok(())
}

/// A practitioner's golden record, decrypted (`pii:read`).
#[derive(Serialize, JsonSchema)]
pub struct PractitionerView {
    pub id: String,
    pub nik: Option<String>,
    pub str_number: Option<String>,
    pub full_name: Option<String>,
    pub birth_place: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    pub gender: String,
    pub profession: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// STR and SIP registrations: number, status and period (docs/golden-record.md).
    #[schemars(with = "Value")]
    pub registrations: Option<Box<RawValue>>,
    #[schemars(with = "Value")]
    pub trainings: Option<Box<RawValue>>,
    #[schemars(with = "Value")]
    pub employments: Option<Box<RawValue>>,
    #[schemars(with = "Value")]
    pub educations: Option<Box<RawValue>>,
    /// The source of the record's last change.
    pub source: LastSource,
    /// Where each field came from: field name (or `registrations.<kind>`) → its source.
    #[schemars(with = "BTreeMap<String, FieldOrigin>")]
    #[serde(serialize_with = "by_field")]
    pub provenance: Vec<SourceOfFields>,
    /// Systems whose connector's last finished sync failed and that gave a field here: those
    /// fields are the last data the hub has and may be out of date.
    pub stale_sources: BTreeSet<String>,
    /// Every source system whose latest record this golden record is merged from, and the
    /// matching tier that joined it (docs/golden-record.md).
    pub sources: Vec<SourceLink>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Serialize, JsonSchema)]
pub struct LastSource {
    pub system: String,
    pub id: String,
    /// As the source wrote it.
    pub updated_at: Option<String>,
}

/// A source of a practitioner's fields, as stored, and whether it may be out of date.
pub struct SourceOfFields {
    pub origin: Origin,
    /// That connector's last finished sync failed.
    pub stale: bool,
}

/// Where a golden field came from.
#[derive(Clone, Serialize, JsonSchema)]
pub struct FieldOrigin<'a> {
    /// The system: `regnakes`, `kki`, `sisdmk`, ….
    pub source: &'a str,
    /// The connector that brought it.
    pub connector_id: &'a str,
    /// When the source changed it (or the hub received it).
    pub at: &'a str,
    /// Present and true when that connector's last finished sync failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

/// Field name (or `registrations.<kind>`) → where it came from.
pub fn provenance_by_field(sources: &[SourceOfFields]) -> BTreeMap<&str, FieldOrigin<'_>> {
    (sources.iter())
        .flat_map(|s| {
            let origin = FieldOrigin {
                source: &s.origin.source,
                connector_id: &s.origin.connector_id,
                at: &s.origin.at,
                stale: s.stale,
            };
            (s.origin.fields.iter()).map(move |field| (field.as_str(), origin.clone()))
        })
        .collect()
}

fn by_field<S: serde::Serializer>(sources: &[SourceOfFields], serializer: S) -> Result<S::Ok, S::Error> {
    provenance_by_field(sources).serialize(serializer)
}

/// Marks the fields whose connector's last finished sync failed (`provenance.<field>.stale`)
/// and lists their systems in `stale_sources`: the hub keeps serving the last data it has
/// (seed 001: fall back to the local copy) and says it may be out of date.
async fn mark_stale(state: &AppState, items: &mut [PractitionerView]) -> Result<(), Problem> {
    let connectors: BTreeSet<&str> = items
        .iter()
        .flat_map(|p| p.provenance.iter().map(|s| s.origin.connector_id.as_str()))
        .collect();
    let connectors: Vec<String> = connectors.into_iter().map(String::from).collect();
    let stale: BTreeSet<String> = (state.shared.failing_connectors)
        .get(connectors.clone(), || async {
            let ids: Vec<&str> = connectors.iter().map(String::as_str).collect();
            state.manager.db().failing_connectors(&ids).await.map_err(Problem::from)
        })
        .await?
        .into_iter()
        .collect();
    for item in items {
        for source in &mut item.provenance {
            if stale.contains(&source.origin.connector_id) {
                source.stale = true;
                item.stale_sources.insert(source.origin.source.clone());
            }
        }
    }
    Ok(())
}

async fn add_sources(state: &AppState, items: &mut [PractitionerView]) -> Result<(), Problem> {
    let ids: Vec<String> = items.iter().map(|p| p.id.clone()).collect();
    let mut conn = state.manager.db().acquire().await?;
    let mut links = crate::store::practitioners::source_links(&mut conn, &ids).await?;
    drop(conn);
    links.sort_by(|a, b| a.source_system.cmp(&b.source_system));
    let at: HashMap<String, usize> = ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect();
    for link in links {
        if let Some(&i) = at.get(&link.practitioner_id) {
            items[i].sources.push(link);
        }
    }
    Ok(())
}

/// The lists a practitioner's sealed `details` hold, passed on as stored: a view parses
/// none of them (a 100-resource page parsed each into a tree of maps it wrote straight
/// back out), and a FHIR resource parses only what it shows.
#[derive(Default, Deserialize)]
struct Details {
    registrations: Option<Box<RawValue>>,
    trainings: Option<Box<RawValue>>,
    employments: Option<Box<RawValue>>,
    educations: Option<Box<RawValue>>,
}

/// Decrypts the fields of a stored practitioner that `shown` holds into the canonical field
/// names; the others are `None`.
fn open(state: &AppState, row: &SealedPractitioner, shown: Shown) -> Result<PractitionerView, CryptoError> {
    let cipher = state.manager.keys().cipher();
    let field = |column: &str, sealed: &Option<Vec<u8>>| -> Result<Option<String>, CryptoError> {
        (sealed.as_ref().filter(|_| shown.opens(column)))
            .map(|bytes| cipher.decrypt_str("practitioners", column, &row.id, bytes))
            .transpose()
    };
    let details: Details = match &row.details {
        Some(bytes) => {
            serde_json::from_str(&cipher.decrypt_str("practitioners", "details", &row.id, bytes)?).unwrap_or_default()
        }
        None => Details::default(),
    };
    let provenance: Provenance = row
        .provenance
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    Ok(PractitionerView {
        id: row.id.clone(),
        nik: field("nik", &row.nik)?,
        str_number: field("str_number", &row.str_number)?,
        full_name: field("full_name", &row.full_name)?,
        birth_place: field("birth_place", &row.birth_place)?,
        birth_date: field("birth_date", &row.birth_date)?,
        gender: row.gender.clone(),
        profession: row.profession.clone(),
        phone: field("phone", &row.phone)?,
        email: field("email", &row.email)?,
        registrations: details.registrations,
        trainings: details.trainings,
        employments: details.employments,
        educations: details.educations,
        source: LastSource {
            system: row.source_system.clone(),
            id: row.source_id.clone(),
            updated_at: row.source_updated_at.clone(),
        },
        provenance: (provenance.into_origins().into_iter())
            .map(|origin| SourceOfFields { origin, stale: false })
            .collect(),
        stale_sources: BTreeSet::new(),
        sources: Vec::new(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
