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
use healthforce_sdk::listing::{LenientList, Paging, Text, pull_typed_listing};
use healthforce_sdk::{
    CanonicalRecord, Connector, Education, Employment, Error, Practitioner, SourceRef, SyncRequest, SyncSummary,
    WebhookRequest, WebhookResponse,
};
use serde::Deserialize;

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
        pull_typed_listing(
            &request,
            &client,
            "/api/v1/sdmk",
            Paging::pages(config.per_page),
            |row: &Row| row.diperbarui_pada.0.clone(),
            to_practitioner,
        )
    }

    fn handle_webhooks(requests: Vec<WebhookRequest>) -> Vec<Result<WebhookResponse, Error>> {
        events::store_each(&requests, "SISDMK", |event: Event<Row>| match event.kind.as_str() {
            "pegawai.mutasi" | "pegawai.diperbarui" => Some(to_practitioner(event.data)),
            _ => None,
        })
    }
}

healthforce_sdk::export_connector!(Sisdmk);

/// A SISDMK worker as listed and as carried by its webhooks. Every field is lenient
/// ([`Text`], [`LenientList`]): the host validates and keeps bad rows as rejects with a reason.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Row {
    id_sdmk: Text,
    nik: Text,
    nomor_str: Text,
    nama: Text,
    tempat_lahir: Text,
    tanggal_lahir: Text,
    jenis_kelamin: Text,
    jenis_sdmk: Text,
    no_hp: Text,
    email: Text,
    diperbarui_pada: Text,
    riwayat_pekerjaan: LenientList<Post>,
    riwayat_pendidikan: LenientList<School>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Post {
    kode_fasyankes: Text,
    nama_fasyankes: Text,
    jabatan: Text,
    tmt_mulai: Text,
    tmt_selesai: Text,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct School {
    institusi: Text,
    jenjang: Text,
    program_studi: Text,
    tahun_lulus: Text,
}

/// One SISDMK worker as the canonical practitioner: personal data, every post held
/// (`riwayat_pekerjaan`) and the education history (`riwayat_pendidikan`). SISDMK carries
/// the STR number but not its status; the registries own that.
fn to_practitioner(row: Row) -> CanonicalRecord {
    let employments = row
        .riwayat_pekerjaan
        .0
        .into_iter()
        .map(|post| Employment {
            facility_code: post.kode_fasyankes.0,
            facility_name: post.nama_fasyankes.0.unwrap_or_default(),
            position: post.jabatan.0,
            start_date: post.tmt_mulai.0,
            end_date: post.tmt_selesai.0,
        })
        .collect();
    let educations = row
        .riwayat_pendidikan
        .0
        .into_iter()
        .map(|school| Education {
            institution: school.institusi.0.unwrap_or_default(),
            degree: school.jenjang.0,
            major: school.program_studi.0,
            graduated_on: school.tahun_lulus.0,
        })
        .collect();
    CanonicalRecord::Practitioner(Practitioner {
        nik: row.nik.0,
        str_number: row.nomor_str.0,
        full_name: row.nama.0,
        birth_place: row.tempat_lahir.0,
        birth_date: row.tanggal_lahir.0,
        gender: healthforce_sdk::gender_from_code(row.jenis_kelamin.0.as_deref()),
        profession: row.jenis_sdmk.0,
        phone: row.no_hp.0,
        email: row.email.0,
        employments,
        educations,
        source: SourceRef {
            system: SYSTEM.into(),
            id: row.id_sdmk.0.unwrap_or_default(),
            updated_at: row.diperbarui_pada.0,
        },
        ..healthforce_sdk::empty_practitioner()
    })
}
