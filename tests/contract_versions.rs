//! Plugins built against an older contract keep running: the fixtures
//! `plugins/fixtures/contract-v0-1-0` and `contract-v0-2-1` are built with wit-bindgen alone
//! against the frozen contracts 0.1.0 (`host/wit/since_v0_1_0`, whose `handle-webhook` takes
//! one request a call) and 0.2.1 (`host/wit/since_v0_2_1`, without 0.3.0's `deliver`). Both
//! backends.

use hub_e2e::{Backend, TestHub, backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A valid NIK of a woman born 1 January 1980 in Bandung (the fixture's birth data).
fn nik(serial: usize) -> String {
    format!("327301410180{serial:04}")
}

/// A connector of the fixture `plugin` with `config`, and the secret 0.1.0's asks for.
async fn legacy_connector(hub: &TestHub, plugin: &str, config: Value) -> String {
    let fixture = hub::bundled::fixture(plugin).unwrap();
    hub.hub.manager.install_bundled(&fixture).await.unwrap();
    let secrets = match plugin {
        "contract-v0-1-0" => json!({ "granted": "a-granted-secret" }),
        _ => json!({}),
    };
    let (status, body) = hub
        .post(
            "/api/v1/connectors",
            json!({
                "name": "legacy",
                "plugin": plugin,
                "config": config,
                "secrets": secrets,
                "enabled": true,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn practitioner_by_str(hub: &TestHub, str_number: &str) -> Vec<Value> {
    hub.get(&format!("/api/v1/practitioners?str={str_number}")).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_contract_0_1_0_still_syncs_with_every_import() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let config = json!({ "nik": nik(1), "str": "LEGACY-0001", "name": "Siti Rahma" });
        let connector = legacy_connector(&hub, "contract-v0-1-0", config).await;
        let plugins = hub.get("/api/v1/plugins").await;
        let listed = plugins["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "contract-v0-1-0")
            .cloned()
            .unwrap();
        assert_eq!(listed["contract"], "0.1.0", "{listed}");

        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        assert_eq!(run["records_created"], 1, "{run}");
        assert_eq!(practitioner_by_str(&hub, "LEGACY-0001").await.len(), 1);
        let logs = hub.get(&format!("/api/v1/connectors/{connector}/logs")).await;
        let line = logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["message"] == "synced by a 0.1.0 plugin")
            .unwrap_or_else(|| panic!("the plugin's log line is missing: {logs}"));
        // The length of the granted secret, stored in state and read back.
        assert_eq!(line["fields"]["seen"], "16", "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_contract_0_2_1_still_syncs_through_records_queue() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let config = json!({ "nik": nik(2), "str": "LEGACY-0002", "name": "Nur Aisyah" });
        let connector = legacy_connector(&hub, "contract-v0-2-1", config).await;
        let plugins = hub.get("/api/v1/plugins").await;
        let listed = (plugins["items"].as_array().unwrap().iter())
            .find(|p| p["name"] == "contract-v0-2-1")
            .cloned()
            .unwrap();
        assert_eq!(listed["contract"], "0.2.1", "{listed}");

        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        assert_eq!(run["records_created"], 1, "{run}");
        assert_eq!(practitioner_by_str(&hub, "LEGACY-0002").await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_reach_a_0_1_0_plugin_one_call_each_and_each_job_gets_its_own_outcome() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let connector = legacy_connector(&hub, "contract-v0-1-0", json!({})).await;
        let (secret, url) = hub.webhook_secret(&connector).await;
        let sender = hub_sim::events::EventSender::default();
        sender.subscribe(&url, &secret).unwrap();
        let mut jobs = Vec::new();
        for i in 0..30 {
            // Every tenth one has no STR: the plugin answers invalid-input for it alone. Each
            // is another person with a name of their own (the fixture gives everyone one birth
            // date and place, and that under another NIK is held for identity review).
            let body = if i % 10 == 9 {
                json!({ "nik": nik(100 + i), "name": "Tanpa STR" })
            } else {
                json!({ "nik": nik(100 + i), "str": format!("LEGACY-W{i:03}"), "name": format!("Dewi Lestari {i}") })
            };
            let delivery = sender
                .deliver(
                    &format!("msg_legacy_{i}"),
                    chrono::Utc::now().timestamp(),
                    body.to_string().as_bytes(),
                )
                .await
                .unwrap();
            assert_eq!(delivery.status, 202, "{}", delivery.body);
            let queued: Value = serde_json::from_str(&delivery.body).unwrap();
            jobs.push(queued["job_id"].as_str().unwrap().to_string());
        }
        for (i, job) in jobs.iter().enumerate() {
            let job = hub.wait_for_job(job).await;
            if i % 10 == 9 {
                assert_eq!(job["status"], "dead", "{backend:?}: {job}");
                assert!(job["error"].as_str().unwrap().contains("no \"str\""), "{job}");
            } else {
                assert_eq!(job["status"], "succeeded", "{backend:?}: {job}");
                assert_eq!(job["attempts"], 1, "{job}");
                assert_eq!(practitioner_by_str(&hub, &format!("LEGACY-W{i:03}")).await.len(), 1);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installing_refuses_a_manifest_that_names_another_contract_than_its_component() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let fixture = hub::bundled::fixture("contract-v0-1-0").unwrap();
    let manifest = fixture
        .manifest_text
        .replace("contract = \"0.1.0\"", "contract = \"0.2.0\"");
    let mislabelled = hub_registry::Package::new(&manifest, fixture.component.clone()).unwrap();
    let error = hub
        .hub
        .manager
        .install_bundled(&mislabelled)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("says contract 0.2.0 but the component exports contract 0.1.0"),
        "{error}"
    );
    assert!(error.contains("set `contract = \"0.1.0\"`"), "{error}");
    let plugins = hub.get("/api/v1/plugins").await;
    assert!(
        !plugins["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "contract-v0-1-0"),
        "{plugins}"
    );
}
