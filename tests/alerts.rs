//! Alerts an operator relies on (seed 002): refused credentials stop the run as
//! `unauthorized` and raise an alert that clears on the next good run; a batch with more
//! than 20 % rejects raises one too.

use hub_e2e::{Backend, Keeper, TestHub, keepers, regnakes};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_run_and_raise_an_alert_until_fixed() {
    for keeper in keepers() {
        refused_credentials(keeper).await;
    }
}

async fn refused_credentials(keeper: Keeper) {
    let hub = TestHub::start_kept(Backend::Sqlite, keeper, |_| {}).await;
    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 200,
        ..Default::default()
    })
    .await;
    let id = hub.regnakes_connector("alerts", &server.base_url(), sim.config()).await;
    let secret = format!("/api/v1/connectors/{id}/secrets/client_secret");
    let (status, _) = hub
        .call(Method::PUT, &secret, Some(json!({ "value": "not-the-secret" })))
        .await;
    assert_eq!(status, StatusCode::OK);

    let run = hub.run_to_end(&id).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["attempts"], 1, "refused credentials are not retried: {run}");
    assert!(run["error"].as_str().unwrap().starts_with("unauthorized:"), "{run}");
    let open = hub.get(&format!("/api/v1/alerts?connector_id={id}&open=true")).await;
    let alerts = open["items"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{open}");
    assert_eq!(alerts[0]["kind"], "credentials");
    assert_eq!(alerts[0]["run_id"], run["id"]);
    assert!(!open.to_string().contains("not-the-secret"));
    let connector = hub.get(&format!("/api/v1/connectors/{id}")).await;
    assert_eq!(connector["health"]["status"], "failing", "{connector}");
    assert_eq!(connector["health"]["open_alerts"], 1, "{connector}");

    let (status, _) = hub
        .call(
            Method::PUT,
            &secret,
            Some(json!({ "value": sim.config().client_secret })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hub.run_to_end(&id).await["status"], "succeeded");
    let open = hub.get(&format!("/api/v1/alerts?connector_id={id}&open=true")).await;
    assert_eq!(open["items"].as_array().unwrap().len(), 0, "{open}");
    let all = hub.get(&format!("/api/v1/alerts?connector_id={id}")).await;
    assert!(all["items"][0]["resolved_at"].is_string(), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_twenty_percent_rejected_raises_an_alert() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (clean, clean_server) = regnakes(hub_sim::RegnakesConfig {
        people: 300,
        ..Default::default()
    })
    .await;
    let (dirty, dirty_server) = regnakes(hub_sim::RegnakesConfig {
        people: 300,
        malformed_rate: 0.35,
        ..Default::default()
    })
    .await;
    let clean_id = hub
        .regnakes_connector("clean", &clean_server.base_url(), clean.config())
        .await;
    let dirty_id = hub
        .regnakes_connector("dirty", &dirty_server.base_url(), dirty.config())
        .await;
    assert_eq!(hub.run_to_end(&clean_id).await["status"], "succeeded");
    let run = hub.run_to_end(&dirty_id).await;
    assert_eq!(run["status"], "succeeded", "rejects do not fail a run: {run}");

    let clean_alerts = hub.get(&format!("/api/v1/alerts?connector_id={clean_id}")).await;
    assert_eq!(clean_alerts["items"].as_array().unwrap().len(), 0, "{clean_alerts}");
    let dirty_alerts = hub.get(&format!("/api/v1/alerts?connector_id={dirty_id}")).await;
    let items = dirty_alerts["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{dirty_alerts}");
    assert!(
        items
            .iter()
            .all(|a| a["kind"] == "reject-rate" && a["run_id"] == run["id"])
    );
    assert!(
        items[0]["message"].as_str().unwrap().contains("over 20 %"),
        "{dirty_alerts}"
    );
}
