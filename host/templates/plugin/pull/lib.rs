//! {{name}}: pulls the people a registry changed since the last sync, page by page.
//!
//! The registry answers `GET /people?limit=N[&cursor=…][&updated_since=…]` with
//! `{"data": [...], "meta": {"next_cursor": "…"}}`; change `Paging` for `?page=` or `?offset=`
//! listings, and `to_record` for the registry's fields.

use healthforce_sdk::http::HttpClient;
use healthforce_sdk::listing::{Paging, pull_json_listing, text};
use healthforce_sdk::{
    CanonicalRecord, Connector, Error, Practitioner, SourceRef, SyncRequest, SyncSummary,
};
use serde::Deserialize;
use serde_json::Value;

/// The source system's name in every record's provenance.
const SYSTEM: &str = "{{name}}";

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

struct {{type}};

impl Connector for {{type}} {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let config: Config = healthforce_sdk::config(&request.config)?;
        let key = healthforce_sdk::secrets::get("api_key")?;
        let client = HttpClient::new(&config.base_url)?.with_header("x-api-key", &key);
        pull_json_listing(
            &request,
            &client,
            "/people",
            Paging::cursor(config.per_page),
            "updated_at",
            to_record,
        )
    }
}

healthforce_sdk::export_connector!({{type}});

/// One listed row as the hub's record; the hub validates it and keeps a bad one as a reject
/// with its reason, so nothing is dropped here.
fn to_record(row: &Value) -> CanonicalRecord {
    CanonicalRecord::Practitioner(Practitioner {
        nik: text(row, "nik"),
        full_name: text(row, "name"),
        birth_place: text(row, "birth_place"),
        birth_date: text(row, "birth_date"),
        str_number: text(row, "str"),
        source: SourceRef {
            system: SYSTEM.into(),
            id: text(row, "id").unwrap_or_default(),
            updated_at: text(row, "updated_at"),
        },
        ..healthforce_sdk::empty_practitioner()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use healthforce_sdk::testing::FakeHost;
    use serde_json::json;

    #[test]
    fn a_sync_follows_the_cursor_and_saves_the_newest_change() {
        let base = "https://registry.example";
        let row = |id: &str, at: &str| json!({"id": id, "nik": "3174014506850001", "name": "Siti Rahayu", "updated_at": at});
        let first =
            json!({"data": [row("p-1", "2026-11-01T00:00:00Z")], "meta": {"next_cursor": "c2"}});
        let last = json!({"data": [row("p-2", "2026-11-02T00:00:00Z")], "meta": {}});
        let host = FakeHost::new()
            .secret("api_key", "test-key")
            .respond(
                "GET",
                &format!("{base}/people?limit=500"),
                200,
                first.to_string(),
            )
            .respond(
                "GET",
                &format!("{base}/people?limit=500&cursor=c2"),
                200,
                last.to_string(),
            );

        let summary = host
            .run(|| {{type}}::sync(host.sync_request(json!({ "base_url": base }))))
            .expect("the sync succeeds");
        assert_eq!(summary.records_emitted, 2);
        assert_eq!(host.records().len(), 2);
        assert!(
            host.saved_cursor()
                .unwrap()
                .contains("2026-11-02T00:00:00Z")
        );
    }

    /// Each cassette in `cassettes/` (`hub plugin run --record cassettes/NAME.json`) replays
    /// to the records and cursor it recorded.
    #[test]
    fn recorded_syncs_replay_as_recorded() {
        let replayed = healthforce_sdk::testing::replay_all::<{{type}}>("cassettes");
        eprintln!("{replayed} cassettes replayed");
    }
}
