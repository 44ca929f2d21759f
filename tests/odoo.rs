//! The Odoo connector (plugins/odoo), an outbound plugin the hub hands its events to: a sync
//! reaches the Odoo simulator's SDMK dashboard with its counts and trace id, and the
//! practitioners it created; Odoo down → retried, delivered once it is back; a wrong API key
//! → a credentials alert, cleared once the key is fixed.

use hub_e2e::{Backend, TestHub, backends};
use hub_sim::{Faults, OdooSim};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const KEY: &str = "odoo-api-key-0123456789";

/// A hub that looks at its outbound connectors every 50 ms and tries a dead batch again
/// after a second.
async fn hub(backend: Backend) -> TestHub {
    TestHub::start_with(backend, |config| {
        config.events.poll_ms = 50;
        config.events.outbound_pause_secs = 1;
    })
    .await
}

/// An Odoo simulator served, and an Odoo connector on `hub` sending to it with `key`.
async fn odoo(hub: &TestHub, key: &str) -> (OdooSim, hub_sim::Running, String) {
    let sim = OdooSim::new(KEY);
    let running = hub_e2e::serve(sim.router()).await;
    let url = running.base_url();
    let (status, body) = hub
        .post(
            "/api/v1/connectors",
            json!({
                "name": "odoo",
                "plugin": "odoo",
                "config": { "base_url": url },
                "egress": [url.trim_start_matches("http://")],
                "secrets": { "api_key": key },
                "enabled": true,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (sim, running, body["id"].as_str().unwrap().to_string())
}

/// A sync of a RegNakes simulator of `people` on `hub`, run to its end.
async fn sync(hub: &TestHub, people: usize) -> (Value, hub_sim::Running) {
    let (_sim, server, connector) = hub.registry(people).await;
    let run = hub.run_to_end(&connector).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    (run, server)
}

/// Waits until Odoo holds the dashboard row of `run`; the row.
async fn synced_in_odoo(odoo: &OdooSim, run: &Value, within: Duration) -> Value {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if let Some(row) = (odoo.rows("x_sdmk.sync").into_iter()).find(|row| row["x_run_id"] == run["id"]) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {} did not reach Odoo within {within:?}", run["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_reaches_the_odoo_dashboard_with_its_counts_trace_id_and_practitioners() {
    for backend in backends() {
        let hub = hub(backend).await;
        let (odoo, _odoo_server, connector) = odoo(&hub, KEY).await;
        let (run, _registry) = sync(&hub, 300).await;

        let row = synced_in_odoo(&odoo, &run, Duration::from_secs(30)).await;
        assert_eq!(row["x_status"], "succeeded", "{backend:?}: {row}");
        assert_eq!(row["x_received"], run["records_received"], "{row}");
        assert_eq!(row["x_created"], run["records_created"], "{row}");
        assert_eq!(row["x_trace_id"], run["trace_id"], "{row}");
        assert!(row["x_trace_id"].as_str().is_some_and(|t| t.len() == 32), "{row}");
        let practitioners = odoo.rows("x_sdmk.practitioner");
        assert_eq!(
            practitioners.len() as u64,
            run["records_created"].as_u64().unwrap(),
            "{backend:?}: one dashboard row per practitioner created"
        );
        assert!(
            practitioners
                .iter()
                .all(|p| p["x_source"] == "regnakes" && p["x_last_change"] == "created")
        );
        // Ids and counts only: nothing identifying leaves for Odoo.
        let sent = serde_json::to_string(&practitioners).unwrap();
        assert!(!sent.contains("\"nik\"") && !sent.contains("full_name"), "{sent}");
        assert_eq!(odoo.unauthorized(), 0);
        hub.assert_sink_rests(&format!("connector:{connector}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_down_is_retried_and_gets_the_sync_once_it_is_back() {
    let hub = hub(Backend::Sqlite).await;
    let (odoo, _odoo_server, connector) = odoo(&hub, KEY).await;
    odoo.faults().set(Faults {
        outage: true,
        ..Default::default()
    });
    let (run, _registry) = sync(&hub, 50).await;
    // The batch's job retries with backoff, dies, and is queued again after the pause.
    let jobs = format!("/api/v1/jobs?kind=deliver&connector_id={connector}");
    let mut tried = false;
    for _ in 0..200 {
        let listed = hub.get(&jobs).await;
        if (listed["items"].as_array().unwrap().iter()).any(|j| j["attempts"].as_i64().unwrap_or(0) >= 2) {
            tried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tried, "the delivery to Odoo was not retried: {}", hub.get(&jobs).await);
    assert!(odoo.rows("x_sdmk.sync").is_empty());

    odoo.faults().set(Faults::default());
    let row = synced_in_odoo(&odoo, &run, Duration::from_secs(30)).await;
    assert_eq!(row["x_status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_odoo_key_raises_an_alert_until_the_key_is_fixed() {
    let hub = hub(Backend::Sqlite).await;
    let (odoo, _odoo_server, connector) = odoo(&hub, "not-the-key").await;
    let (run, _registry) = sync(&hub, 20).await;
    let alerts = format!("/api/v1/alerts?connector_id={connector}&open=true");
    let open = open_alerts_once(&hub, &alerts, |items| !items.is_empty()).await;
    assert_eq!(open["items"][0]["kind"], "credentials", "{open}");
    assert!(!open.to_string().contains("not-the-key"), "{open}");
    assert!(odoo.unauthorized() > 0);

    hub.set_secret(&connector, "api_key", KEY).await;
    synced_in_odoo(&odoo, &run, Duration::from_secs(30)).await;
    // Resolved when the delivery's plugin call returns, just after Odoo stored the row.
    let open = open_alerts_once(&hub, &alerts, <[Value]>::is_empty).await;
    assert!(open["items"].as_array().unwrap().is_empty(), "{open}");
}

/// The alerts at `url` once `holds` says so of them, or as they are after ten seconds.
async fn open_alerts_once(hub: &TestHub, url: &str, holds: impl Fn(&[Value]) -> bool) -> Value {
    let mut open = hub.get(url).await;
    for _ in 0..200 {
        if holds(open["items"].as_array().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        open = hub.get(url).await;
    }
    open
}
