//! Helpers for tests with the hostile fixture (`plugins/fixtures/hostile`): a hub with it
//! installed, its connectors, and a watch on the hub's health and memory while they run.

use crate::{Backend, TestHub};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn sim_config(people: usize) -> hub_sim::RegnakesConfig {
    hub_sim::RegnakesConfig {
        people,
        malformed_rate: 0.0,
        inactive_rate: 0.0,
        ..Default::default()
    }
}

/// A well-behaved RegNakes connector of 300 people on `hub`, to sync alongside hostile ones;
/// its id, and the simulator (keep it alive while the connector runs).
pub async fn well_behaved(hub: &TestHub) -> (String, (hub_sim::RegnakesSim, hub_sim::Running)) {
    let (sim, server) = crate::regnakes(sim_config(300)).await;
    let id = hub
        .regnakes_connector("regnakes", &server.base_url(), sim.config())
        .await;
    (id, (sim, server))
}

/// A hub with the hostile fixture installed.
pub async fn hostile_hub(backend: Backend, adjust: impl FnOnce(&mut hub::config::HubConfig)) -> TestHub {
    let hub = TestHub::start_with(backend, adjust).await;
    let fixture = hub::bundled::fixture("hostile").unwrap();
    hub.hub.manager.install_bundled(&fixture).await.unwrap();
    hub
}

/// An enabled connector of the hostile fixture; its id.
pub async fn hostile(hub: &TestHub, name: &str, config: Value, extra: Value) -> String {
    let mut body = json!({ "name": name, "plugin": "hostile", "enabled": true, "config": config });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, body) = hub.post("/api/v1/connectors", body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

pub async fn start_run(hub: &TestHub, connector: &str) -> String {
    let (status, run) = hub
        .post(&format!("/api/v1/connectors/{connector}/run"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    run["id"].as_str().unwrap().to_string()
}

/// No job is dead but those of `allowed` connectors.
pub async fn no_other_dead_jobs(hub: &TestHub, allowed: &[&str]) {
    let dead = hub.all_pages("/api/v1/jobs?status=dead").await;
    for job in &dead {
        assert!(
            allowed.contains(&job["connector_id"].as_str().unwrap()),
            "another connector's job was dead-lettered: {job}"
        );
    }
}

/// A TCP server that accepts connections and never answers.
pub async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// Watches the hub while a test runs: the slowest `/healthz` answer and the highest RSS of
/// this process (the hub runs in it) over what it was when the watch started.
pub struct Watch {
    stop: Arc<AtomicBool>,
    rss_before_kib: u64,
    slowest_ms: Arc<AtomicU64>,
    peak_rss_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    pub fn start(hub: &TestHub) -> Self {
        let stop: Arc<AtomicBool> = Arc::default();
        let (slowest_ms, peak_rss_kib): (Arc<AtomicU64>, Arc<AtomicU64>) = (Arc::default(), Arc::default());
        let (s, slow, peak) = (Arc::clone(&stop), Arc::clone(&slowest_ms), Arc::clone(&peak_rss_kib));
        let (http, url) = (hub.http.clone(), hub.url("/healthz"));
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let answer = tokio::time::timeout(Duration::from_secs(5), http.get(&url).send()).await;
                let ms = asked.elapsed().as_millis() as u64;
                assert!(
                    matches!(answer, Ok(Ok(ref r)) if r.status() == StatusCode::OK),
                    "/healthz did not answer 200"
                );
                slow.fetch_max(ms, Ordering::Relaxed);
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            stop,
            rss_before_kib: rss_kib(),
            slowest_ms,
            peak_rss_kib,
            task,
        }
    }

    /// Stops watching; the slowest `/healthz` in ms and how far RSS rose over its start, in
    /// MiB.
    pub async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the watch held");
        let peak = self.peak_rss_kib.load(Ordering::Relaxed);
        (
            self.slowest_ms.load(Ordering::Relaxed),
            peak.saturating_sub(self.rss_before_kib) / 1024,
        )
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
