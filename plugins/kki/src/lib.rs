//! KKI connector: doctors' STR registrations, certification status and training history.
//!
//! - `sync`: the daily listing, paginated and incremental (`updated_since`), authenticated
//!   with the API token KKI issued (the granted secret `api-token`, sent as `x-api-key`);
//! - `handle-webhook`: `str.revoked` / `str.updated` events, signed by KKI and verified by the
//!   host before they reach the plugin, carrying the changed registration in full.

use healthforce_sdk::http::{HttpClient, encode_query_value};
use healthforce_sdk::{
    CanonicalRecord, Connector, Error, Gender, Page, Practitioner, Registration, SourceRef, SyncRequest, SyncSummary,
    Training, WebhookRequest, WebhookResponse, pull_pages,
};
use serde::{Deserialize, Serialize};
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

#[derive(Serialize, Deserialize, Default)]
struct Cursor {
    /// Registrations changed after this instant are listed; `None` lists all.
    since: Option<String>,
    page: u32,
    high_water: Option<String>,
}

#[derive(Deserialize)]
struct Listing {
    data: Vec<Value>,
    meta: Meta,
}

#[derive(Deserialize)]
struct Meta {
    total_pages: u32,
}

/// A KKI event: `str.revoked` or `str.updated`, with the registration as it is now.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    data: Value,
}

struct Kki;

impl Connector for Kki {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let config: Config = healthforce_sdk::config(&request.config)?;
        let token = healthforce_sdk::secrets::get("api-token")?;
        let client = HttpClient::new(&config.base_url)?.with_header("x-api-key", &token);
        let start: Cursor = healthforce_sdk::cursor(&request)?.unwrap_or_default();
        pull_pages(start, |cursor| {
            let page = cursor.page.max(1);
            let mut path = format!("/api/v1/str?page={page}&per_page={}", config.per_page);
            if let Some(since) = &cursor.since {
                path.push_str(&format!("&updated_since={}", encode_query_value(since)));
            }
            let listing: Listing = client.get_json(&path)?;
            let high_water = listing
                .data
                .iter()
                .filter_map(|row| text(row, "diperbarui_pada"))
                .chain(cursor.high_water.clone())
                .max();
            let more = page < listing.meta.total_pages;
            let checkpoint = if more {
                Cursor {
                    since: cursor.since.clone(),
                    page: page + 1,
                    high_water,
                }
            } else {
                Cursor {
                    since: high_water.or_else(|| cursor.since.clone()),
                    page: 1,
                    high_water: None,
                }
            };
            Ok(Page {
                records: listing.data.iter().map(to_practitioner).collect(),
                checkpoint,
                more,
            })
        })
    }

    fn handle_webhook(request: WebhookRequest) -> Result<WebhookResponse, Error> {
        let event: Event = serde_json::from_slice(&request.body)
            .map_err(|e| Error::InvalidInput(format!("KKI event is not the expected JSON: {e}")))?;
        match event.kind.as_str() {
            "str.revoked" | "str.updated" => {
                let outcome = healthforce_sdk::records::emit(&[to_practitioner(&event.data)])?;
                if let Some(rejected) = outcome.rejected.first() {
                    return Err(Error::InvalidInput(format!(
                        "{} rejected: {}",
                        event.kind, rejected.reason
                    )));
                }
                Ok(WebhookResponse {
                    status: 200,
                    body: Vec::new(),
                })
            }
            // Events this connector does not use are acknowledged, not failed.
            _ => Ok(WebhookResponse {
                status: 202,
                body: format!("event type {} ignored", event.kind).into_bytes(),
            }),
        }
    }
}

healthforce_sdk::export_connector!(Kki);

fn text(row: &Value, key: &str) -> Option<String> {
    match row.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

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
        str_number: str_number.clone(),
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
        source: SourceRef {
            system: SYSTEM.into(),
            id: str_number.unwrap_or_default(),
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
