//! Webhooks accepted durably per second, with latency, and jobs worked per second.
//!
//! A load generator in this process sends distinct signed webhooks over HTTP to a running
//! hub (`POST /webhooks/{id}`, KKI connector), `HUB_BENCH_CONCURRENCY` at a time
//! (default 256); each answer comes after the group commit that stored it. Then the time for
//! the hub's workers to run every queued job (the KKI plugin's `handle-webhook`), with one
//! hub and, on PostgreSQL, with a second hub on the same database.
//!
//! `cargo bench -p hub --bench webhooks` (PostgreSQL when `HUB_TEST_DATABASE_URL` is set;
//! `HUB_BENCH_WEBHOOKS` sets the count, default 20,000).

#[path = "common/backends.rs"]
mod backends;
#[path = "../tests/common/postgres.rs"]
mod postgres;

use futures::StreamExt;
use hub::Hub;
use hub::config::HubConfig;
use hub::manager::NewConnector;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let count = env("HUB_BENCH_WEBHOOKS", 20_000);
    let concurrency = env("HUB_BENCH_CONCURRENCY", 256);
    hub::manager::credentials::install_tls_provider();
    for (name, base) in backends::backends() {
        let database_url = backends::database_url(&base).await;
        let dir = tempfile::tempdir().unwrap();
        let config = HubConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            database_url,
            admin_key: Some(hub::config::SecretString::new("bench-admin-key-0123456789abcdef")),
            ..HubConfig::default()
        };
        let hub = Hub::start(config.clone()).await.unwrap();
        let connector = hub
            .manager
            .create_connector(
                NewConnector {
                    config: serde_json::json!({ "base_url": "http://127.0.0.1:9" }),
                    egress: Some(vec![]),
                    secrets: BTreeMap::from([("api-token".to_string(), "unused-token".to_string())]),
                    enabled: true,
                    ..NewConnector::new("kki", "kki")
                },
                "bench",
            )
            .await
            .unwrap();
        let secret = hub.manager.rotate_webhook_secret(&connector.id, "bench").await.unwrap();
        let key = base64_decode(secret.secret.trim_start_matches("whsec_"));
        let url = format!("{}/webhooks/{}", hub.url(), connector.id);

        let started = Instant::now();
        let (took, mut latencies) = send(&url, &key, "a", count, concurrency).await;
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "{name}: {count} webhooks accepted in {:.2} s = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({concurrency} in flight)",
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(*latencies.last().unwrap()),
        );
        let drained = drain(&hub, count as i64, started).await;
        println!(
            "{name}: 1 hub, {count} webhooks sent and their jobs worked in {:.2} s = {:.0} jobs/s",
            drained.as_secs_f64(),
            count as f64 / drained.as_secs_f64()
        );

        if base.is_some() {
            // A second hub on the same database (sharing the master key, as replicas do).
            let replica_dir = tempfile::tempdir().unwrap();
            std::fs::copy(dir.path().join("master.key"), replica_dir.path().join("master.key")).unwrap();
            let replica = Hub::start(HubConfig {
                data_dir: replica_dir.path().to_path_buf(),
                ..config.clone()
            })
            .await
            .unwrap();
            let started = Instant::now();
            send(&url, &key, "b", count, concurrency).await;
            let drained = drain(&hub, 2 * count as i64, started).await;
            println!(
                "{name}: 2 hubs, {count} webhooks sent and their jobs worked in {:.2} s = {:.0} jobs/s",
                drained.as_secs_f64(),
                count as f64 / drained.as_secs_f64()
            );
            replica.stop().await;
        }
        hub.stop().await;
    }
}

/// Sends `count` distinct signed webhooks, `concurrency` at a time; returns the wall time
/// and each request's latency.
async fn send(url: &str, key: &[u8], prefix: &str, count: usize, concurrency: usize) -> (Duration, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let body = br#"{"type":"bench.ping","data":{}}"#;
    let started = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let url = url.to_string();
            async move {
                let id = format!("msg_{prefix}{i:08}");
                let now = chrono::Utc::now().timestamp();
                let signature = hub_sim::events::sign(key, &id, now, body);
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", now.to_string())
                    .header("webhook-signature", format!("v1,{signature}"))
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202, "{}", response.text().await.unwrap_or_default());
                sent.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (started.elapsed(), latencies)
}

/// Waits until `total` jobs have succeeded; the time since `since`.
async fn drain(hub: &Hub, total: i64, since: Instant) -> Duration {
    loop {
        let counts = hub.manager.db().job_counts().await.unwrap();
        let done: i64 = counts
            .iter()
            .filter(|(status, _)| status == "succeeded")
            .map(|(_, n)| n)
            .sum();
        if done >= total {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}
