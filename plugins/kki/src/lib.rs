//! KKI connector: doctors' STR registrations, certification status and training history.
//!
//! - `sync`: the daily listing, paginated and incremental (`updated_since`), authenticated
//!   with the API token KKI issued (the granted secret `api-token`, sent as `x-api-key`);
//! - `handle-webhooks`: `str.revoked` / `str.updated` events, signed by KKI and verified by the
//!   host before they reach the plugin, carrying the changed registration in full.

use healthforce_sdk::events::{self, Event};
use healthforce_sdk::http::HttpClient;
use healthforce_sdk::listing::{pull_json_listing, text};
use healthforce_sdk::{
    CanonicalRecord, Connector, Error, Gender, Practitioner, Registration, SourceRef, SyncRequest, SyncSummary,
    Training, WebhookRequest, WebhookResponse,
};
use serde::Deserialize;
use serde_json::Value;

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
        pull_json_listing(
            &request,
            &client,
            "/api/v1/str",
            config.per_page,
            "diperbarui_pada",
            to_practitioner,
        )
    }

    fn handle_webhooks(requests: Vec<WebhookRequest>) -> Vec<Result<WebhookResponse, Error>> {
        events::store_each(&requests, "KKI", |event: &Event| match event.kind.as_str() {
            "str.revoked" | "str.updated" => Some(to_practitioner(&event.data)),
            _ => None,
        })
    }
}

healthforce_sdk::export_connector!(Kki);

/// One KKI registration as the canonical practitioner: the STR with its status, the
/// certifications as registrations of kind `certificate`, and the training history.
fn to_practitioner(row: &Value) -> CanonicalRecord {
    let list = |key: &str| row.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let str_number = text(row, "nomor_str");
    let mut registrations = vec![Registration {
        kind: "str".into(),
        number: str_number.clone().unwrap_or_default(),
        status: status(text(row, "status_str").as_deref()),
        issuer: Some("KKI".into()),
        valid_from: text(row, "tanggal_terbit"),
        valid_until: text(row, "berlaku_sampai"),
    }];
    registrations.extend(list("sertifikasi").iter().map(|c| Registration {
        kind: "certificate".into(),
        number: text(c, "nama").unwrap_or_default(),
        status: match text(c, "status").as_deref() {
            Some("berlaku") => "active".into(),
            other => status(other),
        },
        issuer: Some("KKI".into()),
        valid_from: None,
        valid_until: None,
    }));
    let trainings = list("pelatihan")
        .iter()
        .map(|t| Training {
            name: text(t, "nama").unwrap_or_default(),
            provider: text(t, "penyelenggara"),
            completed_on: text(t, "tanggal"),
            hours: t.get("jpl").and_then(Value::as_u64).map(|h| h as u32),
        })
        .collect();
    CanonicalRecord::Practitioner(Practitioner {
        nik: text(row, "nik"),
        str_number,
        full_name: text(row, "nama"),
        birth_place: text(row, "tempat_lahir"),
        birth_date: text(row, "tanggal_lahir"),
        gender: match text(row, "jenis_kelamin").as_deref() {
            Some("L") => Gender::Male,
            Some("P") => Gender::Female,
            _ => Gender::Unknown,
        },
        profession: Some("Dokter".into()),
        registrations,
        trainings,
        // KKI's own record id, never the STR number: source ids are stored in clear.
        source: SourceRef {
            system: SYSTEM.into(),
            id: text(row, "id_registrasi").unwrap_or_default(),
            updated_at: text(row, "diperbarui_pada"),
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
