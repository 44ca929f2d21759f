//! SISDMK connector: health workers' personal data, employment at health facilities and
//! education history, from the Ministry of Health's SDMK information system.
//!
//! - `sync`: the incremental listing (`updated_since`, paginated), authenticated with the
//!   bearer token SISDMK issued (the granted secret `api-token`);
//! - `handle-webhook`: `pegawai.mutasi` (moved facility) and `pegawai.diperbarui` (personal
//!   data changed) events, signed by SISDMK and verified by the host, carrying the worker in
//!   full.

use healthforce_sdk::events::{self, Event};
use healthforce_sdk::http::HttpClient;
use healthforce_sdk::listing::{pull_json_listing, text};
use healthforce_sdk::{
    CanonicalRecord, Connector, Education, Employment, Error, Gender, Practitioner, SourceRef, SyncRequest,
    SyncSummary, WebhookRequest, WebhookResponse,
};
use serde::Deserialize;
use serde_json::Value;

const SYSTEM: &str = "sisdmk";

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

struct Sisdmk;

impl Connector for Sisdmk {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let config: Config = healthforce_sdk::config(&request.config)?;
        let token = healthforce_sdk::secrets::get("api-token")?;
        let client = HttpClient::new(&config.base_url)?.with_header("authorization", &format!("Bearer {token}"));
        pull_json_listing(
            &request,
            &client,
            "/api/v1/sdmk",
            config.per_page,
            "diperbarui_pada",
            to_practitioner,
        )
    }

    fn handle_webhooks(requests: Vec<WebhookRequest>) -> Vec<Result<WebhookResponse, Error>> {
        events::store_each(&requests, "SISDMK", |event: &Event| match event.kind.as_str() {
            "pegawai.mutasi" | "pegawai.diperbarui" => Some(to_practitioner(&event.data)),
            _ => None,
        })
    }
}

healthforce_sdk::export_connector!(Sisdmk);

/// One SISDMK worker as the canonical practitioner: personal data, every post held
/// (`riwayat_pekerjaan`) and the education history (`riwayat_pendidikan`). SISDMK carries
/// the STR number but not its status; the registries own that.
fn to_practitioner(row: &Value) -> CanonicalRecord {
    let list = |key: &str| row.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let employments = list("riwayat_pekerjaan")
        .iter()
        .map(|job| Employment {
            facility_code: text(job, "kode_fasyankes"),
            facility_name: text(job, "nama_fasyankes").unwrap_or_default(),
            position: text(job, "jabatan"),
            start_date: text(job, "tmt_mulai"),
            end_date: text(job, "tmt_selesai"),
        })
        .collect();
    let educations = list("riwayat_pendidikan")
        .iter()
        .map(|school| Education {
            institution: text(school, "institusi").unwrap_or_default(),
            degree: text(school, "jenjang"),
            major: text(school, "program_studi"),
            graduated_on: text(school, "tahun_lulus"),
        })
        .collect();
    CanonicalRecord::Practitioner(Practitioner {
        nik: text(row, "nik"),
        str_number: text(row, "nomor_str"),
        full_name: text(row, "nama"),
        birth_place: text(row, "tempat_lahir"),
        birth_date: text(row, "tanggal_lahir"),
        gender: match text(row, "jenis_kelamin").as_deref() {
            Some("L") => Gender::Male,
            Some("P") => Gender::Female,
            _ => Gender::Unknown,
        },
        profession: text(row, "jenis_sdmk"),
        phone: text(row, "no_hp"),
        email: text(row, "email"),
        employments,
        educations,
        source: SourceRef {
            system: SYSTEM.into(),
            id: text(row, "id_sdmk").unwrap_or_default(),
            updated_at: text(row, "diperbarui_pada"),
        },
        ..healthforce_sdk::empty_practitioner()
    })
}
