//! MQTT ingest against the local Mosquitto: the IoT simulator publishes vitals with QoS 1,
//! the hub's shared subscription batches them into durable jobs and acks them after each
//! store, and the iot-sensors plugin turns them into LOINC/UCUM observations. Both backends.

use hub_e2e::{TestHub, backends, mqtt_broker, mqtt_config};
use hub_sim::{IotConfig, IotSim};
use serde_json::Value;
use std::time::Duration;

/// Observations stored by the hub, without the probe's (timestamped in 2020).
async fn stored(hub: &TestHub) -> Vec<Value> {
    hub.all_pages("/api/v1/observations")
        .await
        .into_iter()
        .filter(|o| !o["effective_at"].as_str().unwrap().starts_with("2020"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_vitals_become_observations_once_each() {
    let Some((host, port)) = mqtt_broker() else { return };
    for backend in backends() {
        let (mqtt, prefix) = mqtt_config(&host, port);
        let hub = TestHub::start_with(backend, |config| config.mqtt = Some(mqtt)).await;
        let connector = hub.iot_connector(&host, port, &prefix).await;

        let sim = IotSim::new(IotConfig {
            devices: 10,
            topic_prefix: prefix.clone(),
            ..Default::default()
        });
        let published = sim.publish(&host, port, 30, None, chrono::Utc::now()).await.unwrap();
        assert_eq!(published.messages, 300);
        assert!(
            published.malformed > 0 && published.faults > 0 && published.anomalies > 0,
            "{published:?}"
        );

        let mut observations = Vec::new();
        for _ in 0..300 {
            observations = stored(&hub).await;
            if observations.len() >= published.observations {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(observations.len(), published.observations, "{published:?}");
        let heart_rates: Vec<&Value> = observations.iter().filter(|o| o["code"] == "8867-4").collect();
        assert!(heart_rates.iter().all(|o| o["unit"] == "/min"));
        // Abnormal values are findings: kept.
        assert!(heart_rates.iter().any(|o| o["value"].as_f64().unwrap() >= 150.0));
        for (code, unit) in [("59408-5", "%"), ("8310-5", "Cel"), ("9279-1", "/min")] {
            let of_code: Vec<&Value> = observations.iter().filter(|o| o["code"] == code).collect();
            assert!(
                !of_code.is_empty() && of_code.iter().all(|o| o["unit"] == unit),
                "{code}"
            );
        }
        let panels = observations.iter().filter(|o| o["code"] == "85354-9").count();
        assert_eq!(panels, 300 - published.malformed);
        // Sensor faults never reach storage.
        assert!(
            observations
                .iter()
                .all(|o| o["code"] != "8310-5" || o["value"].as_f64().unwrap() < 45.0)
        );

        let jobs = hub
            .all_pages(&format!("/api/v1/jobs?connector_id={connector}&kind=messages"))
            .await;
        assert!(jobs.iter().all(|j| j["status"] == "succeeded"), "{jobs:?}");
        let logs = hub
            .all_pages(&format!("/api/v1/connectors/{connector}/logs?level=warn"))
            .await;
        let skipped = logs
            .iter()
            .filter(|l| l["message"].as_str().unwrap().contains("not a vitals reading"))
            .count();
        assert_eq!(skipped, published.malformed, "{logs:?}");
    }
}
