//! The secrets API: values go in and are used by the connector, but never come back out —
//! not in answers, the audit trail or errors.

use hub_e2e::{Backend, Keeper, TestHub, keepers, regnakes};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_set_rotated_listed_and_deleted_without_their_values_showing() {
    for keeper in keepers() {
        set_rotate_list_delete(keeper).await;
    }
}

async fn set_rotate_list_delete(keeper: Keeper) {
    let hub = TestHub::start_kept(Backend::Sqlite, keeper, |_| {}).await;
    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 200,
        ..Default::default()
    })
    .await;
    let id = hub
        .regnakes_connector("secrets", &server.base_url(), sim.config())
        .await;
    let path = format!("/api/v1/connectors/{id}/secrets");
    let value = sim.config().client_secret.clone();

    let listed = hub.get(&path).await;
    assert_eq!(listed["items"][0]["name"], "client_secret");
    assert_eq!(listed["items"][0]["version"], 1);

    // A wrong value breaks the credential; rotating to the right one fixes it.
    let (status, body) = hub
        .call(
            Method::PUT,
            &format!("{path}/client_secret"),
            Some(json!({ "value": "wrong-secret-value" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    let failed = hub.run_to_end(&id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(!failed.to_string().contains("wrong-secret-value"), "{failed}");
    let (status, body) = hub
        .call(
            Method::PUT,
            &format!("{path}/client_secret"),
            Some(json!({ "value": value })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 3);
    assert!(body.get("value").is_none(), "{body}");
    let run = hub.run_to_end(&id).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let (status, body) = hub
        .call(
            Method::PUT,
            &format!("{path}/client_secret"),
            Some(json!({ "value": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/value", "{body}");
    let (status, body) = hub
        .call(
            Method::PUT,
            &format!("{path}/Bad%20Name"),
            Some(json!({ "value": "x" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = hub.call(Method::DELETE, &format!("{path}/client_secret"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = hub.call(Method::DELETE, &format!("{path}/client_secret"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(hub.get(&path).await["items"].as_array().unwrap().len(), 0);

    let audit = hub.all_pages("/api/v1/audit").await;
    let text = serde_json::to_string(&audit).unwrap();
    assert!(
        !text.contains(&value) && !text.contains("wrong-secret-value"),
        "a secret value reached the audit trail"
    );
    let sets: Vec<_> = audit.iter().filter(|e| e["action"] == "secret.set").collect();
    assert_eq!(sets.len(), 2);
    assert!(audit.iter().any(|e| e["action"] == "secret.delete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_asking_for_a_secret_it_was_not_granted_is_refused_and_audited() {
    for keeper in keepers() {
        // The manifest declares `granted`; `stolen` is stored for the same connector.
        let (hub, id) = hostile(
            keeper,
            json!({ "mode": "secret", "secret": "stolen" }),
            json!({ "granted": "granted-value-A", "stolen": "stolen-value-B" }),
        )
        .await;
        let id = id.as_str();
        let run = hub.run_to_end(id).await;
        assert_eq!(run["status"], "failed", "{keeper:?}: {run}");
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .contains("not declared in this plugin's manifest"),
            "{keeper:?}: {run}"
        );
        assert_eq!(run["attempts"], 1, "a refusal is not retried: {run}");
        let logs = hub.get(&format!("/api/v1/connectors/{id}/logs")).await;
        let everything = format!("{run}{logs}");
        assert!(
            !everything.contains("stolen-value-B") && !everything.contains("granted-value-A"),
            "{keeper:?}: a secret value reached the run or its log"
        );
        let audit = hub.all_pages("/api/v1/audit").await;
        let denied: Vec<&Value> = audit.iter().filter(|e| e["action"] == "secret.denied").collect();
        assert_eq!(denied.len(), 1, "{keeper:?}: {audit:?}");
        assert_eq!(denied[0]["actor"], format!("connector:{id}"));
        assert_eq!(denied[0]["target"], run["id"]);
        assert_eq!(denied[0]["details"]["name"], "stolen");
        assert!(!serde_json::to_string(&audit).unwrap().contains("stolen-value-B"));
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_a_plugin_tries_to_leak_is_redacted_from_its_log_and_error() {
    for keeper in keepers() {
        let (hub, id) = hostile(
            keeper,
            json!({ "mode": "leak" }),
            json!({ "granted": "granted-secret-value-123" }),
        )
        .await;
        let id = id.as_str();
        let run = hub.run_to_end(id).await;
        assert_eq!(run["status"], "failed", "{keeper:?}: {run}");
        // As it is, reversed, base64 and upper-cased: every form is scrubbed.
        assert_eq!(
            run["error"], "invalid input: leaked [redacted] [redacted] [redacted] [redacted]",
            "{keeper:?}: {run}"
        );
        let logs = hub.get(&format!("/api/v1/connectors/{id}/logs")).await;
        let leak = logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["origin"] == "plugin")
            .unwrap_or_else(|| panic!("the plugin's line is kept: {logs}"));
        assert_eq!(
            leak["message"], "the secret is [redacted], backwards [redacted]",
            "{leak}"
        );
        for field in ["secret", "encoded", "upper"] {
            assert_eq!(leak["fields"][field], "[redacted]", "{leak}");
        }
        let text = logs.to_string();
        for form in [
            "granted-secret-value-123",
            "321-eulav-terces-detnarg",
            "Z3JhbnRlZC1zZWNyZXQtdmFsdWUtMTIz",
        ] {
            assert!(!text.contains(form), "{keeper:?}: {form} in {logs}");
        }
        hub.hub.stop().await;
    }
}

/// A hub with the hostile fixture installed and one enabled connector of it.
async fn hostile(keeper: Keeper, config: Value, secrets: Value) -> (TestHub, String) {
    let hub = TestHub::start_kept(Backend::Sqlite, keeper, |_| {}).await;
    hub.hub
        .manager
        .install_bundled(&hub::bundled::fixture("hostile").unwrap())
        .await
        .unwrap();
    let (status, body) = hub
        .post(
            "/api/v1/connectors",
            json!({ "name": "hostile", "plugin": "hostile", "enabled": true, "config": config, "secrets": secrets }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    (hub, id)
}
