//! A load generator for the hub's HTTP benchmarks: GETs at a given concurrency, their wall
//! time and latencies, and a RegNakes connector to fill the hub with practitioners.

use futures::StreamExt;
use hub::manager::{CredentialSpec, NewConnector};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `count` GETs, `concurrency` at a time, with `key` as bearer token, cycling through
/// `urls`; the wall time and each one's latency, sorted.
pub async fn load(urls: &[String], key: &str, count: usize, concurrency: usize) -> (Duration, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..count)
        .map(|i| {
            let request = client.get(&urls[i % urls.len()]).bearer_auth(key);
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
    latencies.sort();
    (started.elapsed(), latencies)
}

/// "N requests/s; p50 …, p99 …" of a [`load`].
pub fn summary(count: usize, took: Duration, latencies: &[Duration]) -> String {
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    format!(
        "{:.0} requests/s; p50 {:.1} ms, p99 {:.1} ms",
        count as f64 / took.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
    )
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A hub on `database_url` with its data in `dir`, on a free port, with `key` as its admin
/// key (which holds `pii:read`).
pub async fn start_hub(database_url: Option<String>, dir: &std::path::Path, key: &str) -> hub::Hub {
    hub::Hub::start(hub::config::HubConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        database_url,
        admin_key: Some(hub::config::SecretString::new(key)),
        ..hub::config::HubConfig::default()
    })
    .await
    .unwrap()
}

/// A RegNakes connector named `name` on the simulator at `server`.
pub fn regnakes(name: &str, server: &hub_sim::Running, sim: &hub_sim::RegnakesConfig) -> NewConnector {
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

/// Runs `connector` once, to its end.
pub async fn sync(hub: &hub::Hub, connector: &str) {
    let run = hub.manager.runs().request(connector, "bench", "bench").await.unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let run = hub.manager.db().run(&run.id).await.unwrap().unwrap();
        if run.status == "succeeded" || run.status == "failed" {
            assert_eq!(run.status, "succeeded", "{:?}", run.error);
            return;
        }
    }
}
