//! The hub's own record model: what plugins emit, as the pipeline, the store and the API use
//! it. It is decoupled from the plugin contract's bindings (`runtime::bindings` converts at
//! the edge), so a contract change touches the edge and not the data path, and the JSON of
//! records kept sealed in the database (each source's record, rejects) keeps its shape across
//! contract versions: that shape is this file's serde derive, pinned by a test below.
//!
//! Dates are ISO 8601 strings (`YYYY-MM-DD`; dates of history may be `YYYY` or `YYYY-MM`),
//! instants RFC 3339 strings; the pipeline's `boundary` and `validate` stages check them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gender {
    Male,
    Female,
    Unknown,
}

/// Where a record came from: the external system, its identifier there, and when that system
/// last changed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    pub system: String,
    pub id: String,
    pub updated_at: Option<String>,
}

/// A registration, licence or certificate: STR, SIP, a competency certificate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// `str`, `sip`, `certificate`, ...
    pub kind: String,
    pub number: String,
    /// `active`, `inactive`, `expired`, `revoked`, `suspended`.
    pub status: String,
    pub issuer: Option<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Training {
    pub name: String,
    pub provider: Option<String>,
    pub completed_on: Option<String>,
    pub hours: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Employment {
    pub facility_code: Option<String>,
    pub facility_name: String,
    pub position: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Education {
    pub institution: String,
    pub degree: Option<String>,
    pub major: Option<String>,
    pub graduated_on: Option<String>,
}

/// A health worker (tenaga kesehatan). NIK, names, birth data and contacts are identifying:
/// sealed before they touch storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Practitioner {
    pub nik: Option<String>,
    pub str_number: Option<String>,
    pub full_name: Option<String>,
    pub birth_place: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Gender,
    pub profession: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub registrations: Vec<Registration>,
    pub trainings: Vec<Training>,
    pub employments: Vec<Employment>,
    pub educations: Vec<Education>,
    pub source: SourceRef,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationComponent {
    /// LOINC code.
    pub code: String,
    pub value: f64,
    /// UCUM unit.
    pub unit: String,
}

/// A device measurement (vital sign), FHIR-shaped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub device_id: String,
    /// The subject (a practitioner or patient identifier), when known.
    pub subject: Option<String>,
    /// LOINC code.
    pub code: String,
    pub value: Option<f64>,
    /// UCUM unit.
    pub unit: Option<String>,
    pub components: Vec<ObservationComponent>,
    pub effective_at: String,
    pub source: SourceRef,
}

/// An SSO account and its link to a practitioner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub subject: String,
    pub username: String,
    pub email: Option<String>,
    /// NIK of the linked practitioner, when the SSO knows it.
    pub nik: Option<String>,
    pub roles: Vec<String>,
    pub active: bool,
    pub source: SourceRef,
}

/// One record a plugin emitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CanonicalRecord {
    Practitioner(Practitioner),
    Observation(Observation),
    Account(Account),
}

#[cfg(test)]
impl Practitioner {
    /// A valid practitioner from RegNakes: a woman born 5 June 1985 in Jakarta with an active
    /// STR, for tests.
    pub(crate) fn sample() -> Self {
        Practitioner {
            nik: Some("3174014506850001".into()),
            str_number: Some("STR-1".into()),
            full_name: Some("Siti Rahayu".into()),
            birth_place: Some("Jakarta".into()),
            birth_date: Some("1985-06-05".into()),
            gender: Gender::Female,
            profession: None,
            phone: None,
            email: None,
            registrations: vec![Registration {
                kind: "str".into(),
                number: "STR-1".into(),
                status: "active".into(),
                issuer: None,
                valid_from: None,
                valid_until: Some("2030-01-01".into()),
            }],
            trainings: vec![],
            employments: vec![],
            educations: vec![],
            source: SourceRef {
                system: "regnakes".into(),
                id: "r-1".into(),
                updated_at: Some("2026-11-30T00:00:00Z".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CanonicalRecord;

    /// Records as contract 0.1.0's bindings serialized them into `practitioner_sources.record`
    /// and `rejects.record`: they must read back, and write out, exactly so.
    const STORED: &[&str] = &[
        r#"{"Practitioner":{"nik":"3174014506850001","str_number":"STR1","full_name":"Siti","birth_place":"Bandung","birth_date":"1985-06-05","gender":"Female","profession":"dokter","phone":null,"email":"s@x.id","registrations":[{"kind":"str","number":"STR1","status":"active","issuer":"KKI","valid_from":null,"valid_until":"2029-01-01"}],"trainings":[{"name":"PPI","provider":null,"completed_on":"2023","hours":16}],"employments":[{"facility_code":"F1","facility_name":"RS","position":null,"start_date":null,"end_date":null}],"educations":[{"institution":"UI","degree":"S1","major":null,"graduated_on":null}],"source":{"system":"kki","id":"K1","updated_at":"2026-01-01T00:00:00Z"}}}"#,
        r#"{"Observation":{"device_id":"d1","subject":null,"code":"8867-4","value":72.5,"unit":"/min","components":[{"code":"8480-6","value":120.0,"unit":"mm[Hg]"}],"effective_at":"2026-01-01T00:00:00.000Z","source":{"system":"iot","id":"m1","updated_at":null}}}"#,
        r#"{"Account":{"subject":"u1","username":"siti","email":null,"nik":"3174014506850001","roles":["nakes"],"active":true,"source":{"system":"sso","id":"u1","updated_at":null}}}"#,
    ];

    #[test]
    fn records_stored_by_earlier_versions_read_back_and_serialize_the_same() {
        for stored in STORED {
            let record: CanonicalRecord = serde_json::from_str(stored).unwrap();
            assert_eq!(serde_json::to_string(&record).unwrap(), *stored);
        }
    }
}
