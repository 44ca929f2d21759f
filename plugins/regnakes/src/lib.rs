//! RegNakes connector: an incremental, paginated pull of health workers (nakes) with their STR
//! and SIP, authenticated with OAuth2 client credentials that the host holds.
//!
//! The cursor is saved after every page, so a run that stops half-way resumes where it was;
//! a finished run leaves `updated_since` at the newest change it saw.

use healthforce_sdk::http::{HttpClient, encode_query_value};
use healthforce_sdk::listing::{pull_json_listing, text};
use healthforce_sdk::{
    CanonicalRecord, Connector, Employment, Error, Gender, Practitioner, Registration, SourceRef, SyncRequest,
    SyncSummary,
};
use serde::Deserialize;
use serde_json::Value;

const SYSTEM: &str = "regnakes";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    base_url: String,
    #[serde(default = "default_per_page")]
    per_page: u32,
    /// Only this profession (`Perawat`, `Bidan`, ...), when set.
    profession: Option<String>,
    /// Name of the host-held OAuth2 credential.
    #[serde(default = "default_credential")]
    credential: String,
}

fn default_per_page() -> u32 {
    500
}

fn default_credential() -> String {
    SYSTEM.into()
}

struct RegNakes;

impl Connector for RegNakes {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let config: Config = healthforce_sdk::config(&request.config)?;
        let client = HttpClient::new(&config.base_url)?.with_credential(&config.credential);
        let path = match &config.profession {
            Some(profession) => format!("/api/v1/nakes?profession={}", encode_query_value(profession)),
            None => "/api/v1/nakes".to_string(),
        };
        // RegNakes writes every timestamp in one format (UTC, microseconds).
        pull_json_listing(
            &request,
            &client,
            &path,
            config.per_page,
            "diperbarui_pada",
            to_practitioner,
        )
    }
}

healthforce_sdk::export_connector!(RegNakes);

/// Maps one RegNakes row onto the canonical practitioner. Nothing is dropped here: the host
/// validates and keeps bad rows as rejects with their reason.
fn to_practitioner(row: &Value) -> CanonicalRecord {
    let str_doc = row.get("str").filter(|v| v.is_object());
    let mut registrations: Vec<Registration> = str_doc
        .map(|s| Registration {
            kind: "str".into(),
            number: text(s, "nomor").unwrap_or_default(),
            status: status(text(s, "status").as_deref()),
            issuer: Some("KKI".into()),
            valid_from: text(s, "tanggal_terbit"),
            valid_until: text(s, "berlaku_sampai"),
        })
        .into_iter()
        .collect();
    let sips = row.get("sip").and_then(Value::as_array).cloned().unwrap_or_default();
    registrations.extend(sips.iter().map(|sip| Registration {
        kind: "sip".into(),
        number: text(sip, "nomor").unwrap_or_default(),
        status: "active".into(),
        issuer: None,
        valid_from: None,
        valid_until: text(sip, "berlaku_sampai"),
    }));
    let employments = sips
        .iter()
        .filter_map(|sip| text(sip, "fasyankes"))
        .map(|facility_name| Employment {
            facility_code: None,
            facility_name,
            position: text(row, "profesi"),
            start_date: None,
            end_date: None,
        })
        .collect();
    CanonicalRecord::Practitioner(Practitioner {
        nik: text(row, "nik"),
        str_number: str_doc.and_then(|s| text(s, "nomor")),
        full_name: text(row, "nama"),
        birth_place: text(row, "tempat_lahir"),
        birth_date: text(row, "tanggal_lahir"),
        gender: match text(row, "jenis_kelamin").as_deref() {
            Some("L") => Gender::Male,
            Some("P") => Gender::Female,
            _ => Gender::Unknown,
        },
        profession: text(row, "profesi"),
        phone: text(row, "no_hp"),
        email: text(row, "email"),
        registrations,
        employments,
        source: SourceRef {
            system: SYSTEM.into(),
            id: text(row, "id").unwrap_or_default(),
            updated_at: text(row, "diperbarui_pada"),
        },
        ..healthforce_sdk::empty_practitioner()
    })
}

fn status(raw: Option<&str>) -> String {
    match raw.map(str::to_ascii_uppercase).as_deref() {
        Some("AKTIF") => "active",
        Some("NONAKTIF") | Some("TIDAK AKTIF") => "inactive",
        Some("DICABUT") => "revoked",
        Some("KEDALUWARSA") => "expired",
        _ => "unknown",
    }
    .into()
}
