//! RegNakes connector: an incremental, paginated pull of health workers (nakes) with their STR
//! and SIP, authenticated with OAuth2 client credentials that the host holds.
//!
//! The cursor is saved after every page, so a run that stops half-way resumes where it was;
//! a finished run leaves `updated_since` at the newest change it saw.

use healthforce_sdk::http::{HttpClient, encode_query_value};
use healthforce_sdk::listing::{Lenient, LenientList, Paging, Text, pull_typed_listing};
use healthforce_sdk::{
    CanonicalRecord, Connector, Employment, Error, Practitioner, Registration, SourceRef, SyncRequest, SyncSummary,
};
use serde::Deserialize;

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
        pull_typed_listing(
            &request,
            &client,
            &path,
            Paging::pages(config.per_page),
            |row: &Row| row.diperbarui_pada.0.clone(),
            to_practitioner,
        )
    }
}

healthforce_sdk::export_connector!(RegNakes);

/// A RegNakes row as listed. Every field is lenient ([`Text`], [`Lenient`], [`LenientList`]): nothing is
/// dropped here, the host validates and keeps bad rows as rejects with their reason.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Row {
    id: Text,
    nik: Text,
    nama: Text,
    tempat_lahir: Text,
    tanggal_lahir: Text,
    jenis_kelamin: Text,
    profesi: Text,
    no_hp: Text,
    email: Text,
    diperbarui_pada: Text,
    #[serde(rename = "str")]
    str_doc: Lenient<StrDoc>,
    sip: LenientList<Sip>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct StrDoc {
    nomor: Text,
    status: Text,
    tanggal_terbit: Text,
    berlaku_sampai: Text,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Sip {
    nomor: Text,
    berlaku_sampai: Text,
    fasyankes: Text,
}

/// Maps one RegNakes row onto the canonical practitioner.
fn to_practitioner(row: Row) -> CanonicalRecord {
    let sips = row.sip.0;
    let str_number = row.str_doc.0.as_ref().and_then(|s| s.nomor.0.clone());
    let mut registrations: Vec<Registration> = row
        .str_doc
        .0
        .map(|s| Registration {
            kind: "str".into(),
            number: s.nomor.0.unwrap_or_default(),
            status: status(s.status.0.as_deref()),
            issuer: Some("KKI".into()),
            valid_from: s.tanggal_terbit.0,
            valid_until: s.berlaku_sampai.0,
        })
        .into_iter()
        .collect();
    let employments = sips
        .iter()
        .filter_map(|sip| sip.fasyankes.0.clone())
        .map(|facility_name| Employment {
            facility_code: None,
            facility_name,
            position: row.profesi.0.clone(),
            start_date: None,
            end_date: None,
        })
        .collect();
    registrations.extend(sips.into_iter().map(|sip| Registration {
        kind: "sip".into(),
        number: sip.nomor.0.unwrap_or_default(),
        status: "active".into(),
        issuer: None,
        valid_from: None,
        valid_until: sip.berlaku_sampai.0,
    }));
    CanonicalRecord::Practitioner(Practitioner {
        nik: row.nik.0,
        str_number,
        full_name: row.nama.0,
        birth_place: row.tempat_lahir.0,
        birth_date: row.tanggal_lahir.0,
        gender: healthforce_sdk::gender_from_code(row.jenis_kelamin.0.as_deref()),
        profession: row.profesi.0,
        phone: row.no_hp.0,
        email: row.email.0,
        registrations,
        employments,
        source: SourceRef {
            system: SYSTEM.into(),
            id: row.id.0.unwrap_or_default(),
            updated_at: row.diperbarui_pada.0,
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
