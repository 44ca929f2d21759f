//! RegNakes connector: an incremental, paginated pull of health workers (nakes) with their STR
//! and SIP, authenticated with OAuth2 client credentials that the host holds.
//!
//! The cursor is saved after every page, so a run that stops half-way resumes where it was;
//! a finished run leaves `updated_since` at the newest change it saw.

use healthforce_sdk::http::{HttpClient, encode_query_value};
use healthforce_sdk::{
    CanonicalRecord, Connector, Employment, Error, Gender, Page, Practitioner, Registration, SourceRef, SyncRequest,
    SyncSummary, pull_pages,
};
use serde::{Deserialize, Serialize};
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

#[derive(Serialize, Deserialize, Default)]
struct Cursor {
    /// Rows changed after this instant (RFC 3339) are listed; `None` lists everything.
    since: Option<String>,
    /// Next page of the listing in progress (1 when no listing is in progress).
    page: u32,
    /// Newest `diperbarui_pada` seen by the listing in progress.
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

struct RegNakes;

impl Connector for RegNakes {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let config: Config = healthforce_sdk::config(&request.config)?;
        let client = HttpClient::new(&config.base_url)?.with_credential(&config.credential);
        let start: Cursor = healthforce_sdk::cursor(&request)?.unwrap_or_default();
        pull_pages(start, |cursor| {
            let page = cursor.page.max(1);
            let mut path = format!("/api/v1/nakes?page={page}&per_page={}", config.per_page);
            if let Some(since) = &cursor.since {
                path.push_str(&format!("&updated_since={}", encode_query_value(since)));
            }
            if let Some(profession) = &config.profession {
                path.push_str(&format!("&profession={}", encode_query_value(profession)));
            }
            let listing: Listing = client.get_json(&path)?;
            // RegNakes writes every timestamp in one format (UTC, microseconds), so the
            // newest is the greatest string.
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
}

healthforce_sdk::export_connector!(RegNakes);

/// A string field, tolerating numbers (some rows carry NIKs as numbers).
fn text(row: &Value, key: &str) -> Option<String> {
    match row.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

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
