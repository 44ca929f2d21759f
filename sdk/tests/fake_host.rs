//! A connector's whole `sync`, run natively against `testing::FakeHost`: what an integrator's
//! own `cargo test` does with the SDK.

use healthforce_sdk::http::HttpClient;
use healthforce_sdk::listing::{Paging, SinceCursor, pull_json_listing, text};
use healthforce_sdk::testing::FakeHost;
use healthforce_sdk::{CanonicalRecord, Connector, Error, Event, Practitioner, SourceRef, SyncRequest, SyncSummary};
use serde_json::{Value, json};

/// A staff registry behind an API key, paged by cursor.
struct StaffRegistry;

impl Connector for StaffRegistry {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let config: Value = healthforce_sdk::config(&request.config)?;
        let base_url = config["base_url"].as_str().unwrap_or_default();
        let key = healthforce_sdk::secrets::get("api_key")?;
        let client = HttpClient::new(base_url)?.with_header("x-api-key", &key);
        pull_json_listing(&request, &client, "/staff", Paging::cursor(2), "updated_at", to_record)
    }
}

fn to_record(row: &Value) -> CanonicalRecord {
    CanonicalRecord::Practitioner(Practitioner {
        nik: text(row, "nik"),
        full_name: text(row, "name"),
        source: SourceRef {
            system: "staff".into(),
            id: text(row, "id").unwrap_or_default(),
            updated_at: text(row, "updated_at"),
        },
        ..healthforce_sdk::empty_practitioner()
    })
}

fn person(id: &str, updated_at: &str) -> Value {
    json!({"id": id, "nik": "3174014506850001", "name": "Siti Aminah", "updated_at": updated_at})
}

fn ids(records: &[CanonicalRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| match r {
            CanonicalRecord::Practitioner(p) => p.source.id.clone(),
            _ => panic!("practitioners only"),
        })
        .collect()
}

#[test]
fn a_cursor_paged_sync_emits_every_page_and_the_next_run_asks_only_for_changes() {
    let base = "https://staff.example";
    let page_one = json!({"data": [person("s-1", "2026-11-01T00:00:00Z"), person("s-2", "2026-11-03T00:00:00Z")],
                          "meta": {"next_cursor": "after-s-2"}});
    let page_two = json!({"data": [person("s-3", "2026-11-02T00:00:00Z")], "meta": {"next_cursor": null}});
    let host = FakeHost::new()
        .secret("api_key", "k-123")
        .respond("GET", &format!("{base}/staff?limit=2"), 200, page_one.to_string())
        .respond(
            "GET",
            &format!("{base}/staff?limit=2&cursor=after-s-2"),
            200,
            page_two.to_string(),
        );

    let request = host.sync_request(json!({ "base_url": base }));
    let summary = host.run(|| StaffRegistry::sync(request)).expect("the sync succeeds");
    assert_eq!((summary.pages, summary.records_emitted), (2, 3));
    assert_eq!(ids(&host.records()), ["s-1", "s-2", "s-3"]);
    assert!(
        host.requests()
            .iter()
            .all(|r| r.header("x-api-key").as_deref() == Some("k-123"))
    );
    let saved: SinceCursor = serde_json::from_str(&host.saved_cursor().unwrap()).unwrap();
    assert_eq!(
        saved.since.as_deref(),
        Some("2026-11-03T00:00:00Z"),
        "the newest change seen"
    );
    assert_eq!(saved.next, None, "the listing is done");

    // The next run starts from that cursor and lists only what changed since.
    let since = "2026-11-03T00%3A00%3A00Z";
    let host = host.respond(
        "GET",
        &format!("{base}/staff?limit=2&updated_since={since}"),
        200,
        json!({"data": [], "meta": {}}).to_string(),
    );
    let request = host.sync_request(json!({ "base_url": base }));
    let summary = host
        .run(|| StaffRegistry::sync(request))
        .expect("the second sync succeeds");
    assert_eq!(summary.records_emitted, 0);
    assert_eq!(
        host.requests().last().unwrap().url,
        format!("{base}/staff?limit=2&updated_since={since}")
    );
}

#[test]
fn a_request_the_test_gave_no_answer_for_fails_naming_it() {
    let host = FakeHost::new().secret("api_key", "k");
    let request = host.sync_request(json!({ "base_url": "https://staff.example" }));
    match host.run(|| StaffRegistry::sync(request)) {
        Err(Error::Config(message)) => {
            assert!(message.contains("GET https://staff.example/staff?limit=2"), "{message}")
        }
        other => panic!("expected a config error, got {:?}", other.map(|s| s.pages)),
    }
    let request = FakeHost::new().sync_request(json!({ "base_url": "https://staff.example" }));
    match FakeHost::new().run(|| StaffRegistry::sync(request)) {
        Err(Error::Config(message)) => assert!(message.contains("\"api_key\" is not granted"), "{message}"),
        other => panic!("an ungranted secret is refused, got {:?}", other.map(|s| s.pages)),
    }
}

/// An outbound connector: the hub's run events, upserted on a dashboard.
struct Dashboard;

#[derive(serde::Deserialize)]
struct Config {
    base_url: String,
}

impl Connector for Dashboard {
    fn deliver(events: Vec<Event>, config: String) -> Result<(), Error> {
        let config: Config = healthforce_sdk::config(&config)?;
        let runs: Vec<Value> = events
            .iter()
            .filter(|e| e.kind.starts_with("run."))
            .map(|e| json!({ "event_id": e.id, "kind": e.kind, "data": e.data }))
            .collect();
        let api = HttpClient::new(&config.base_url)?.with_credential("dashboard");
        let _: Value = api.post_json("/runs/upsert", &runs)?;
        Ok(())
    }
}

#[test]
fn an_outbound_connector_sends_the_events_it_wants_and_a_refusal_is_unauthorized() {
    let event = |seq: i64, kind: &str| Event {
        id: format!("e{seq}"),
        seq,
        kind: kind.into(),
        subject: format!("run/r{seq}"),
        connector_id: Some("c1".into()),
        occurred_at: "2026-12-02T10:00:00.000Z".into(),
        data: json!({ "run_id": format!("r{seq}") }).to_string(),
    };
    let events = || vec![event(1, "practitioner.created"), event(2, "run.succeeded")];
    let url = "https://dashboard.example/runs/upsert";
    let config = json!({ "base_url": "https://dashboard.example" }).to_string();
    let host = FakeHost::new()
        .credential("dashboard", "t-1")
        .respond("POST", url, 200, "{}");
    host.run(|| Dashboard::deliver(events(), config.clone()))
        .expect("delivered");
    let sent = &host.requests()[0];
    assert_eq!(sent.header("authorization").as_deref(), Some("Bearer t-1"));
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body.as_array().unwrap().len(), 1, "the run's event only: {body}");
    assert_eq!(body[0]["event_id"], "e2");

    let refused = FakeHost::new()
        .credential("dashboard", "t-1")
        .respond("POST", url, 401, "{}");
    match refused.run(|| Dashboard::deliver(events(), config)) {
        Err(Error::Unauthorized(message)) => assert!(message.contains("401"), "{message}"),
        other => panic!("a 401 is unauthorized, got {other:?}"),
    }
}

#[test]
fn the_integrator_guide_shows_this_files_code() {
    let guide = include_str!("../../docs/plugins.md");
    let this_file = include_str!("fake_host.rs");
    let blocks: Vec<&str> = guide
        .split("```rust\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 2, "the guide has its code blocks");
    for block in blocks {
        assert!(
            this_file.contains(block),
            "docs/plugins.md shows code this test does not run:\n{block}"
        );
    }
}
