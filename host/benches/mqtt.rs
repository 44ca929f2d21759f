//! MQTT ingest: a burst of QoS 1 messages published by `mosquitto_pub -l` (one message per
//! line, as fast as it goes) to the local Mosquitto with its default settings, read by a
//! running hub through a shared subscription, stored in batches as jobs and acked after
//! each store, then turned into observations by the iot-sensors plugin.
//!
//! Reported: the publisher's time, the time until every message was stored (one job per
//! batch; the messages in them are counted after decryption), and the time until every
//! message became its five observations. Any message lost makes the bench fail.
//!
//! `cargo bench -p hub --bench mqtt` (PostgreSQL when `HUB_TEST_DATABASE_URL` is set;
//! `HUB_BENCH_MESSAGES` sets the burst, default 20,000; `HUB_BENCH_MQTT_CONNECTIONS` the
//! hub's connections per connector, default the hub's default; `HUB_TEST_MQTT_ADDR` the
//! broker, default 127.0.0.1:1883).

#[path = "common/allocator.rs"]
mod allocator;
#[path = "../tests/common/database.rs"]
mod database;

use hub::Hub;
use hub::config::HubConfig;
use hub::manager::NewConnector;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEVICES: usize = 100;

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("HUB_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let connections: Option<usize> = std::env::var("HUB_BENCH_MQTT_CONNECTIONS")
        .ok()
        .map(|v| v.parse().expect("HUB_BENCH_MQTT_CONNECTIONS is a number"));
    let broker = std::env::var("HUB_TEST_MQTT_ADDR").unwrap_or_else(|_| "127.0.0.1:1883".into());
    let (host, port) = broker.rsplit_once(':').expect("HUB_TEST_MQTT_ADDR is host:port");
    let port: u16 = port.parse().unwrap();
    let database_url = match std::env::var("HUB_TEST_DATABASE_URL") {
        Ok(base) => Some(database::fresh_postgres(&base).await),
        Err(_) => None,
    };
    let name = if database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = HubConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url,
        admin_key: Some(hub::config::SecretString::new("bench-admin-key-0123456789abcdef")),
        mqtt: Some(hub::triggers::MqttConfig {
            host: host.into(),
            port,
            client_id: format!("bench-{run}"),
            share_group: format!("bench{run}"),
            connections: connections.unwrap_or(hub::triggers::MqttConfig::default().connections),
            ..Default::default()
        }),
        ..HubConfig::default()
    };
    let database_url = config.database_url();
    let hub = Hub::start(config).await.unwrap();
    let topic = format!("bench/{run}/vitals");
    hub.manager
        .create_connector(
            NewConnector {
                config: serde_json::json!({ "topics": [topic] }),
                egress: Some(vec![]),
                enabled: true,
                ..NewConnector::new("iot", "iot-sensors")
            },
            "bench",
        )
        .await
        .unwrap();
    // The subscriber starts within the reconcile interval (2 s) and connects.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let start = chrono::Utc::now() - chrono::Duration::days(1);
    let lines: String = (0..count)
        .map(|i| {
            let at = start + chrono::Duration::seconds((i / DEVICES) as i64);
            format!(
                "{{\"device_id\":\"bench-{:03}\",\"ts\":\"{}\",\"hr\":72,\"spo2\":97,\"temp\":36.8,\"bp\":{{\"sys\":118,\"dia\":76}},\"rr\":15}}\n",
                i % DEVICES,
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        })
        .collect();
    let started = Instant::now();
    let mut publisher = Command::new("mosquitto_pub")
        .args(["-h", host, "-p", &port.to_string(), "-q", "1", "-t", &topic, "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub (Debian package mosquitto-clients) runs");
    publisher.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    assert!(publisher.wait().unwrap().success());
    let published = started.elapsed();

    // A pool of the bench's own: the hub's is typed per engine.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database_url).await.unwrap();
    let expected = (count * 5) as i64;
    let mut stored_at = None;
    let mut counted: std::collections::HashMap<String, usize> = Default::default();
    // Lost messages never arrive: the bench fails once nothing has moved for this long.
    let mut progress = (0, 0, Instant::now());
    let processed = loop {
        // Messages stored: those in the `messages` jobs (each job is one acked batch).
        let rows = sqlx::query("SELECT id, payload FROM jobs WHERE kind = 'messages'")
            .fetch_all(&pool)
            .await
            .unwrap();
        for row in rows {
            let id: String = sqlx::Row::get(&row, "id");
            if let std::collections::hash_map::Entry::Vacant(entry) = counted.entry(id) {
                let payload: Vec<u8> = sqlx::Row::get(&row, "payload");
                let batch: hub::jobs::MessagesPayload =
                    hub::jobs::open_payload(&hub.manager.keys().cipher(), entry.key(), &payload).unwrap();
                entry.insert(batch.messages.len());
            }
        }
        let stored: usize = counted.values().sum();
        if stored_at.is_none() && stored >= count {
            stored_at = Some(started.elapsed());
        }
        let observations: i64 = sqlx::Row::get(
            &sqlx::query("SELECT COUNT(*) AS n FROM observations")
                .fetch_one(&pool)
                .await
                .unwrap(),
            "n",
        );
        if observations >= expected {
            break started.elapsed();
        }
        if (stored, observations) != (progress.0, progress.1) {
            progress = (stored, observations, Instant::now());
        }
        assert!(
            progress.2.elapsed() < Duration::from_secs(20),
            "{} of {count} messages lost: {stored} stored, {observations} of {expected} observations, nothing more for 20 s",
            count - stored.min(count)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stored = stored_at.unwrap_or(processed);
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    println!(
        "{name}: {count} QoS 1 messages published by mosquitto_pub -l in {:.2} s ({:.0}/s)",
        published.as_secs_f64(),
        rate(published)
    );
    println!(
        "{name}: all {count} stored (acked) after {:.2} s = {:.0} messages/s",
        stored.as_secs_f64(),
        rate(stored)
    );
    println!(
        "{name}: all {} observations stored after {:.2} s = {:.0} messages/s end to end",
        expected,
        processed.as_secs_f64(),
        rate(processed)
    );
    hub.stop().await;
}
