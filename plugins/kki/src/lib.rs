//! KKI connector: doctors' STR registrations, certification status and training history.
//!
//! - `sync`: the daily listing, paginated and incremental (`updated_since`), authenticated
//!   with the API token KKI issued (the granted secret `api-token`, sent as `x-api-key`);
//! - `handle-webhooks`: `str.revoked` / `str.updated` events, signed by KKI and verified by the
//!   host before they reach the plugin, carrying the changed registration in full.

use healthforce_sdk::events::{self, Event};
use healthforce_sdk::http::HttpClient;
use healthforce_sdk::listing::{Lenient, LenientList, Paging, Text, pull_typed_listing};
use healthforce_sdk::{
    CanonicalRecord, Connector, Error, Practitioner, Registration, SourceRef, SyncRequest, SyncSummary, Training,
    WebhookRequest, WebhookResponse,
};
use serde::Deserialize;

const SYSTEM: &str = "kki";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    base_url: String,
    #[serde(default = "default_per_page")]
    per_page: u32,
}

fn default_per_page() -> u32 {
    500
}

struct Kki;

impl Connector for Kki {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let config: Config = healthforce_sdk::config(&request.config)?;
        let token = healthforce_sdk::secrets::get("api-token")?;
        let client = HttpClient::new(&config.base_url)?.with_header("x-api-key", &token);
        pull_typed_listing(
            &request,
            &client,
            "/api/v1/str",
            Paging::pages(config.per_page),
            |row: &Row| row.diperbarui_pada.0.clone(),
            to_practitioner,
        )
    }

    fn handle_webhooks(requests: Vec<WebhookRequest>) -> Vec<Result<WebhookResponse, Error>> {
        events::store_each(&requests, "KKI", |event: Event<Row>| match event.kind.as_str() {
            "str.revoked" | "str.updated" => Some(to_practitioner(event.data)),
            _ => None,
        })
    }
}

healthforce_sdk::export_connector!(Kki);

/// A KKI registration as listed and as carried by its webhooks. Every field is lenient
/// ([`Text`], [`Lenient`], [`LenientList`]): the host validates and keeps bad rows as rejects with a reason.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Row {
    id_registrasi: Text,
    nik: Text,
    nama: Text,
    tempat_lahir: Text,
    tanggal_lahir: Text,
    jenis_kelamin: Text,
    nomor_str: Text,
    status_str: Text,
    tanggal_terbit: Text,
    berlaku_sampai: Text,
    diperbarui_pada: Text,
    sertifikasi: LenientList<Certification>,
    pelatihan: LenientList<Course>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Certification {
    nama: Text,
    status: Text,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Course {
    nama: Text,
    penyelenggara: Text,
    tanggal: Text,
    jpl: Lenient<u32>,
}

/// One KKI registration as the canonical practitioner: the STR with its status, the
/// certifications as registrations of kind `certificate`, and the training history.
fn to_practitioner(row: Row) -> CanonicalRecord {
    let str_number = row.nomor_str.0;
    let mut registrations = vec![Registration {
        kind: "str".into(),
        number: str_number.clone().unwrap_or_default(),
        status: status(row.status_str.0.as_deref()),
        issuer: Some("KKI".into()),
        valid_from: row.tanggal_terbit.0,
        valid_until: row.berlaku_sampai.0,
    }];
    registrations.extend(row.sertifikasi.0.into_iter().map(|c| Registration {
        kind: "certificate".into(),
        number: c.nama.0.unwrap_or_default(),
        status: match c.status.0.as_deref() {
            Some("berlaku") => "active".into(),
            other => status(other),
        },
        issuer: Some("KKI".into()),
        valid_from: None,
        valid_until: None,
    }));
    let trainings = row
        .pelatihan
        .0
        .into_iter()
        .map(|t| Training {
            name: t.nama.0.unwrap_or_default(),
            provider: t.penyelenggara.0,
            completed_on: t.tanggal.0,
            hours: t.jpl.0,
        })
        .collect();
    CanonicalRecord::Practitioner(Practitioner {
        nik: row.nik.0,
        str_number,
        full_name: row.nama.0,
        birth_place: row.tempat_lahir.0,
        birth_date: row.tanggal_lahir.0,
        gender: healthforce_sdk::gender_from_code(row.jenis_kelamin.0.as_deref()),
        profession: Some("Dokter".into()),
        registrations,
        trainings,
        // KKI's own record id, never the STR number: source ids are stored in clear.
        source: SourceRef {
            system: SYSTEM.into(),
            id: row.id_registrasi.0.unwrap_or_default(),
            updated_at: row.diperbarui_pada.0,
        },
        ..healthforce_sdk::empty_practitioner()
    })
}
fn status(raw: Option<&str>) -> String {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        Some("aktif") => "active",
        Some("dicabut") => "revoked",
        Some("kedaluwarsa") => "expired",
        Some("dibekukan") => "suspended",
        _ => "unknown",
    }
    .into()
}
