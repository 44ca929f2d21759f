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
    hub.set_secret(&id, "client_secret", "not-the-secret").await;

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

    hub.set_secret(&id, "client_secret", &sim.config().client_secret).await;
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

/// What a local alert receiver got: `(path, status it answered, body)`.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, u16, serde_json::Value)>>>;

/// A receiver for `/slack` and `/json` whose JSON endpoint is down (503) for its first
/// `down_for` requests.
async fn alert_receiver(down_for: usize) -> (Received, hub_sim::Running) {
    let received = Received::default();
    let log = received.clone();
    let router = axum::Router::new().route(
        "/{receiver}",
        axum::routing::post(
            move |axum::extract::Path(receiver): axum::extract::Path<String>,
                  axum::Json(body): axum::Json<serde_json::Value>| {
                let log = log.clone();
                async move {
                    let mut log = log.lock().unwrap();
                    let earlier = log.iter().filter(|(path, ..)| *path == receiver).count();
                    let status = if receiver == "json" && earlier < down_for {
                        503
                    } else {
                        200
                    };
                    log.push((receiver, status, body));
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            },
        ),
    );
    (received, hub_e2e::serve(router).await)
}

/// The bodies `receiver` accepted (answered 200).
fn accepted(received: &Received, receiver: &str) -> Vec<serde_json::Value> {
    let log = received.lock().unwrap();
    log.iter()
        .filter(|(path, status, _)| path == receiver && *status == 200)
        .map(|(.., body)| body.clone())
        .collect()
}

async fn wait_for_deliveries(received: &Received, receiver: &str, count: usize) -> Vec<serde_json::Value> {
    for _ in 0..300 {
        let bodies = accepted(received, receiver);
        if bodies.len() >= count {
            return bodies;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{receiver} got {:?}, not {count} deliveries",
        accepted(received, receiver)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_slack_and_json_receivers_once_per_change_and_a_down_receiver_gets_them_later() {
    let (received, receiver) = alert_receiver(2).await;
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.alerts.slack_url = Some(hub::config::SecretString::new(format!("{}/slack", receiver.base_url())));
        config.alerts.json_url = Some(format!("{}/json", receiver.base_url()));
    })
    .await;
    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 50,
        ..Default::default()
    })
    .await;
    let id = hub
        .regnakes_connector("alerts-out", &server.base_url(), sim.config())
        .await;
    hub.set_secret(&id, "client_secret", "not-the-secret").await;
    assert_eq!(hub.run_to_end(&id).await["status"], "failed");

    let slack = wait_for_deliveries(&received, "slack", 1).await;
    let text = slack[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("[FIRING] credentials alert on connector alerts-out: unauthorized:"),
        "{text}"
    );
    assert!(!text.contains("not-the-secret"), "{text}");
    // The JSON receiver answered 503 twice; the third attempt got through.
    let json = wait_for_deliveries(&received, "json", 1).await;
    assert_eq!(json[0]["state"], "firing");
    assert_eq!(json[0]["connector"], "alerts-out");
    assert_eq!(json[0]["alert"]["kind"], "credentials");
    assert_eq!(json[0]["alert"]["connector_id"], id.as_str());
    assert!(json[0]["alert"]["resolved_at"].is_null());

    hub.set_secret(&id, "client_secret", &sim.config().client_secret).await;
    assert_eq!(hub.run_to_end(&id).await["status"], "succeeded");
    let slack = wait_for_deliveries(&received, "slack", 2).await;
    assert!(
        slack[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED] credentials alert on connector alerts-out")
    );
    let json = wait_for_deliveries(&received, "json", 2).await;
    assert_eq!(json[1]["state"], "resolved");
    assert!(json[1]["alert"]["resolved_at"].is_string());

    // Once per change: a third good run resolves nothing more, and nothing is sent again.
    assert_eq!(hub.run_to_end(&id).await["status"], "succeeded");
    let jobs = hub.all_pages("/api/v1/jobs?kind=alert").await;
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    assert!(jobs.iter().all(|job| job["status"] == "succeeded"), "{jobs:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(accepted(&received, "slack").len(), 2);
    assert_eq!(accepted(&received, "json").len(), 2);
    let json_requests = received
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, ..)| path == "json")
        .count();
    assert_eq!(json_requests, 4, "two refused, then one per change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_subscription_the_hub_disables_raises_an_alert_that_resuming_or_deleting_it_resolves() {
    for backend in hub_e2e::backends() {
        subscription_alerts(backend).await;
    }
}

/// The open alerts about subscription `id`.
async fn open_alerts(hub: &TestHub, id: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/alerts?subscription_id={id}&open=true");
    hub.get(&path).await["items"].as_array().unwrap().clone()
}

async fn subscription_alerts(backend: Backend) {
    let (received, receiver) = alert_receiver(0).await;
    let hub = TestHub::start_with(backend, |config| {
        config.alerts.slack_url = Some(hub::config::SecretString::new(format!("{}/slack", receiver.base_url())));
        config.alerts.json_url = Some(format!("{}/json", receiver.base_url()));
        config.events.poll_ms = 50;
    })
    .await;
    let subscriber = hub_sim::subscriber::SubscriberSim::new();
    let endpoint = hub_e2e::serve(subscriber.router()).await;
    let subscription = json!({ "url": format!("{}/hooks/hub", endpoint.base_url()), "description": "dashboard" });
    let (status, created) = hub.post("/api/v1/subscriptions", subscription).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // The endpoint says it is gone: the hub disables the subscription and raises an alert.
    subscriber.answer_always(hub_sim::subscriber::Answer::Status(410, None));
    let (sim, _server, connector) = hub.registry(5).await;
    assert_eq!(hub.run_to_end(&connector).await["status"], "succeeded");
    let slack = wait_for_deliveries(&received, "slack", 1).await;
    let text = slack[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("[FIRING] subscription-disabled alert on webhook subscription dashboard: the hub disabled"),
        "{backend:?}: {text}"
    );
    assert!(text.contains("410 Gone"), "{text}");
    assert!(
        !text.contains(&endpoint.base_url()),
        "an endpoint's URL may hold a credential: {text}"
    );
    let json = wait_for_deliveries(&received, "json", 1).await;
    assert_eq!(json[0]["state"], "firing");
    assert_eq!(json[0]["subscription"], "dashboard");
    assert!(json[0].get("connector").is_none_or(|c| c.is_null()), "{}", json[0]);
    let alerts = open_alerts(&hub, &id).await;
    assert_eq!(alerts.len(), 1, "{backend:?}: {alerts:?}");
    assert_eq!(alerts[0]["kind"], "subscription-disabled");
    assert_eq!(alerts[0]["subscription_id"], id.as_str());
    assert!(alerts[0]["connector_id"].is_null(), "{}", alerts[0]);
    let view = hub.get(&format!("/api/v1/subscriptions/{id}")).await;
    assert_eq!(view["status"], "disabled", "{view}");
    let labels = [("subscription", id.as_str()), ("kind", "subscription-disabled")];
    assert_eq!(hub.metrics().await.sum("hub_alerts_open", &labels), 1.0, "{backend:?}");
    let both = format!("/api/v1/alerts?connector_id={connector}&subscription_id={id}");
    let (status, problem) = hub.call(Method::GET, &both, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("not both"), "{problem}");
    let raised = (hub.all_pages("/api/v1/events").await.into_iter())
        .find(|e| e["type"] == "alert.raised")
        .expect("the alert's event is in the outbox");
    assert_eq!(raised["data"]["subscription_id"], id.as_str(), "{raised}");

    // Resumed once the endpoint is fixed: the alert resolves and the events that waited go.
    subscriber.answer_always(hub_sim::subscriber::Answer::Accept);
    let (status, _) = hub.post(&format!("/api/v1/subscriptions/{id}/resume"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(open_alerts(&hub, &id).await.is_empty(), "{backend:?}");
    let json = wait_for_deliveries(&received, "json", 2).await;
    assert_eq!(json[1]["state"], "resolved");
    assert_eq!(json[1]["alert"]["subscription_id"], id.as_str());
    assert_eq!(hub.metrics().await.sum("hub_alerts_open", &labels), 0.0, "{backend:?}");

    // Disabled again, then deleted: deleting it resolves its alert too.
    subscriber.answer_always(hub_sim::subscriber::Answer::Status(410, None));
    sim.mutate(1);
    assert_eq!(hub.run_to_end(&connector).await["status"], "succeeded");
    wait_for_deliveries(&received, "json", 3).await;
    assert_eq!(open_alerts(&hub, &id).await.len(), 1, "{backend:?}");
    let (status, _) = hub
        .call(Method::DELETE, &format!("/api/v1/subscriptions/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(open_alerts(&hub, &id).await.is_empty(), "{backend:?}");
    let json = wait_for_deliveries(&received, "json", 4).await;
    assert_eq!(json[3]["state"], "resolved");
    let jobs = hub.all_pages("/api/v1/jobs?kind=alert").await;
    assert_eq!(
        jobs.len(),
        8,
        "two alerts, each raised and resolved, to two receivers: {jobs:?}"
    );
}
