//! Webhooks accepted durably per second, with latency, and jobs worked per second.
//!
//! A load generator in this process sends distinct signed KKI events over HTTP to a running
//! hub (`POST /webhooks/{id}`), `HUB_BENCH_CONCURRENCY` at a time (default 256); each answer
//! comes after the group commit that stored it. Every event carries a real record: a
//! `str.updated` with a doctor's whole registration from the KKI simulator's data, which
//! creates a practitioner; then, separately, as many events the hub rejects (a malformed
//! NIK), each dead-lettered with its reason. Jobs worked are timed twice: from the first
//! send to the last job done, and from the last accept to the last job done (the workers
//! alone, with nothing else to do). On PostgreSQL, once more with a second hub on the same
//! database.
//!
//! `cargo bench -p hub --bench webhooks` (PostgreSQL when `HUB_TEST_DATABASE_URL` is set;
//! `HUB_BENCH_WEBHOOKS` sets the count, default 20,000).

#[path = "common/allocator.rs"]
mod allocator;
#[path = "common/backends.rs"]
mod backends;
#[path = "../tests/common/database.rs"]
mod database;

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
        let secret = hub.webhook_secrets.rotate(&connector.id, "bench").await.unwrap();
        let key = base64_decode(secret.secret.trim_start_matches("whsec_"));
        let url = format!("{}/webhooks/{}", hub.url(), connector.id);

        let doctors = hub_sim::KkiSim::new(hub_sim::KkiConfig {
            people: count,
            expired_rate: 0.0,
            ..Default::default()
        });
        let event = |i: usize, valid: bool, training: bool| {
            let mut data = doctors.json(i);
            if !valid {
                data["nik"] = serde_json::json!("12345");
            }
            if training {
                data["pelatihan"].as_array_mut().unwrap().push(serde_json::json!({
                    "nama": "Pelatihan Gawat Darurat", "penyelenggara": "PB IDI", "tanggal": "2026-11-01", "jpl": 16
                }));
            }
            serde_json::json!({ "type": "str.updated", "timestamp": chrono::Utc::now().to_rfc3339(), "data": data })
                .to_string()
                .into_bytes()
        };

        let bodies: Vec<Vec<u8>> = (0..count).map(|i| event(i, true, false)).collect();
        let worked = burst(&hub, &url, &key, "a", bodies, concurrency, "succeeded").await;
        worked.print(name, "1 hub, records stored (one practitioner created per event)");
        let bodies: Vec<Vec<u8>> = (0..count).map(|i| event(i, false, false)).collect();
        let rejected = burst(&hub, &url, &key, "r", bodies, concurrency, "dead").await;
        rejected.print(name, "1 hub, records rejected (each job dead-lettered with its reason)");

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
            let bodies: Vec<Vec<u8>> = (0..count).map(|i| event(i, true, true)).collect();
            let updated = burst(&hub, &url, &key, "b", bodies, concurrency, "succeeded").await;
            updated.print(name, "2 hubs, records stored (each practitioner updated)");
            replica.stop().await;
        }
        hub.stop().await;
    }
}

/// What one burst came to.
struct Burst {
    count: usize,
    concurrency: usize,
    sent: Duration,
    latencies: Vec<Duration>,
    /// From the first send to the last job done.
    worked: Duration,
    /// Jobs still to do when the last webhook was accepted, and how long they took.
    after_send: (i64, Duration),
}

impl Burst {
    fn print(&self, name: &str, what: &str) {
        let pct = |p: f64| self.latencies[((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1)];
        println!(
            "{name}: {what}: {} webhooks accepted in {:.2} s = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} in flight)",
            self.count,
            self.sent.as_secs_f64(),
            self.count as f64 / self.sent.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(*self.latencies.last().unwrap()),
            self.concurrency,
        );
        let (left, took) = self.after_send;
        println!(
            "{name}: {what}: sent and worked in {:.2} s = {:.0} jobs/s; after the last accept, {left} jobs worked in {:.2} s = {:.0} jobs/s",
            self.worked.as_secs_f64(),
            self.count as f64 / self.worked.as_secs_f64(),
            took.as_secs_f64(),
            left as f64 / took.as_secs_f64().max(1e-9),
        );
    }
}

/// Sends one signed webhook per body, `concurrency` at a time, and waits until the hub has
/// brought that many more jobs to `status`.
async fn burst(
    hub: &Hub,
    url: &str,
    key: &[u8],
    prefix: &str,
    bodies: Vec<Vec<u8>>,
    concurrency: usize,
    status: &str,
) -> Burst {
    let count = bodies.len();
    let before = jobs_in(hub, status).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, body)| {
            let client = client.clone();
            let url = url.to_string();
            async move {
                let id = format!("msg_{prefix}{i:08}");
                let now = chrono::Utc::now().timestamp();
                let signature = hub_sim::events::sign(key, &id, now, &body);
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", now.to_string())
                    .header("webhook-signature", format!("v1,{signature}"))
                    .body(body)
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
    let sent = started.elapsed();
    latencies.sort();
    let target = before + count as i64;
    let left = target - jobs_in(hub, status).await;
    let last_accept = Instant::now();
    while jobs_in(hub, status).await < target {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Burst {
        count,
        concurrency,
        sent,
        latencies,
        worked: started.elapsed(),
        after_send: (left, last_accept.elapsed()),
    }
}

async fn jobs_in(hub: &Hub, status: &str) -> i64 {
    let counts = hub.manager.db().job_counts().await.unwrap();
    counts.iter().filter(|(s, _)| s == status).map(|(_, n)| n).sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}
