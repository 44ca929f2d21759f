//! The admin API under concurrent clients: requests per second and latency of the
//! connectors list (five connectors with run history), a practitioners page (50 rows
//! decrypted, one audit entry a request) and an audit page, at 16 and 256 clients.
//!
//! `cargo bench -p hub --bench api` (PostgreSQL too when `HUB_TEST_DATABASE_URL` is set;
//! `HUB_BENCH_REQUESTS` sets the requests per measurement, default 2,000).

#[path = "common/backends.rs"]
mod backends;
#[path = "../tests/common/database.rs"]
mod database;

use futures::StreamExt;
use hub::Hub;
use hub::config::HubConfig;
use hub::manager::{CredentialSpec, NewConnector};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const KEY: &str = "bench-admin-key-0123456789abcdef";
const CONNECTORS: usize = 5;

#[tokio::main]
async fn main() {
    let requests: usize = std::env::var("HUB_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    hub::manager::credentials::install_tls_provider();
    let sim = hub_sim::RegnakesSim::new(hub_sim::RegnakesConfig {
        people: 2_000,
        ..Default::default()
    });
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for (name, base) in backends::backends() {
        let database_url = backends::database_url(&base).await;
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::start(HubConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            database_url,
            admin_key: Some(hub::config::SecretString::new(KEY)),
            ..HubConfig::default()
        })
        .await
        .unwrap();
        // Five connectors, each with a run behind it (the first stores 2,000 practitioners).
        for i in 0..CONNECTORS {
            let connector = hub
                .manager
                .create_connector(regnakes(&format!("regnakes-{i}"), &server, sim.config()), "bench")
                .await
                .unwrap();
            let run = hub
                .manager
                .runs()
                .request(&connector.id, "bench", "bench")
                .await
                .unwrap();
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let run = hub.manager.db().run(&run.id).await.unwrap().unwrap();
                if run.status == "succeeded" || run.status == "failed" {
                    break;
                }
            }
        }
        for concurrency in [16, 256] {
            for path in [
                "/api/v1/connectors",
                "/api/v1/practitioners?limit=50",
                "/api/v1/audit?limit=50",
            ] {
                let url = format!("{}{path}", hub.url());
                let (took, mut latencies) = load(&url, requests, concurrency).await;
                latencies.sort();
                let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
                println!(
                    "{name}: GET {path}, {concurrency} clients: {:.0} requests/s; p50 {:.1} ms, p99 {:.1} ms",
                    requests as f64 / took.as_secs_f64(),
                    ms(pct(0.50)),
                    ms(pct(0.99)),
                );
            }
        }
        hub.stop().await;
    }
}

fn regnakes(name: &str, server: &hub_sim::Running, sim: &hub_sim::RegnakesConfig) -> NewConnector {
    let base_url = server.base_url();
    NewConnector {
        config: serde_json::json!({ "base_url": base_url, "per_page": 500 }),
        egress: Some(vec![server.addr.to_string()]),
        credentials: BTreeMap::from([(
            "regnakes".to_string(),
            CredentialSpec {
                token_url: format!("{base_url}/oauth/token"),
                client_id: sim.client_id.clone(),
                client_secret: "secret".into(),
                scope: None,
            },
        )]),
        secrets: BTreeMap::from([("secret".to_string(), sim.client_secret.clone())]),
        enabled: true,
        ..NewConnector::new(name, "regnakes")
    }
}

/// `count` GETs of `url`, `concurrency` at a time; the wall time and each one's latency.
async fn load(url: &str, count: usize, concurrency: usize) -> (Duration, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let latencies = futures::stream::iter(0..count)
        .map(|_| {
            let request = client.get(url).bearer_auth(KEY);
            async move {
                let sent = Instant::now();
                let response = request.send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.unwrap();
                sent.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (started.elapsed(), latencies)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
