//! Crash safety with a real `kill -9`: the hub binary runs as its own process, the KKI
//! simulator sends a burst of signed webhooks, the hub is killed in the middle of it and
//! started again. Every webhook the hub acknowledged must then be processed, once.
//!
//! SQLite always; PostgreSQL too when `HUB_TEST_DATABASE_URL` is set.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

const ADMIN_KEY: &str = "crash-test-admin-key-0123456789abcdef";
const DOCTORS: usize = 240;
const TRAINING: &str = "Pelatihan Pasca Insiden";

struct HubProcess {
    child: Child,
}

impl HubProcess {
    /// `hub serve` with `config`; waits until it answers `/readyz`.
    async fn start(config: &Path, url: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["serve", "--config"])
            .arg(config)
            .env("HUB_ADMIN_KEY", ADMIN_KEY)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("starts the hub binary");
        let hub = Self { child };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(response) = client.get(format!("{url}/readyz")).send().await
                && response.status().is_success()
            {
                return hub;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the hub at {url} did not become ready within 30 s");
    }

    /// SIGKILL: no shutdown, no handing back of jobs.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn all_jobs(&self, connector: &str) -> Vec<Value> {
        let mut jobs = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/api/v1/jobs?connector_id={connector}&kind=webhook&limit=500{cursor}");
            let (status, page) = self.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            jobs.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return jobs,
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn fresh_postgres(base: &str) -> String {
    let name = format!("hub_crash_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_webhook_acknowledged_before_a_kill_9_is_processed_once_after_restart() {
    hub::manager::credentials::install_tls_provider();
    let mut databases = vec![None];
    match std::env::var("HUB_TEST_DATABASE_URL") {
        Ok(base) => databases.push(Some(fresh_postgres(&base).await)),
        Err(_) => assert!(
            std::env::var("CI").is_err(),
            "CI must set HUB_TEST_DATABASE_URL so the PostgreSQL case runs"
        ),
    }
    for database_url in databases {
        burst_kill_restart(database_url).await;
    }
}

async fn burst_kill_restart(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let database = database_url
        .map(|u| format!("database_url = {u:?}\n"))
        .unwrap_or_default();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "listen = {:?}\ndata_dir = {:?}\n{database}\n[jobs]\nlease_secs = 3\npoll_ms = 50\n",
            url.trim_start_matches("http://"),
            dir.path().join("data")
        ),
    )
    .unwrap();
    let mut hub = HubProcess::start(&config, &url).await;
    let api = Api {
        http: reqwest::Client::new(),
        url: url.clone(),
    };

    let sim = hub_sim::KkiSim::new(hub_sim::KkiConfig {
        people: DOCTORS,
        // Every event then updates or creates its practitioner; none is rejected.
        expired_rate: 0.0,
        ..Default::default()
    });
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (status, connector) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/connectors",
            Some(json!({
                "name": "kki", "plugin": "kki",
                "config": { "base_url": server.base_url() },
                "egress": [server.addr.to_string()],
                "secrets": { "api-token": sim.config().api_token },
                "enabled": true,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{connector}");
    let connector = connector["id"].as_str().unwrap().to_string();
    let (_, secret) = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/connectors/{connector}/webhook-secret"),
            None,
        )
        .await;
    sim.subscribe(
        &format!("{url}/webhooks/{connector}"),
        secret["secret"].as_str().unwrap(),
    )
    .unwrap();

    // The burst: one str.updated per doctor, 16 in flight; the hub dies part-way.
    let (acks, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let burst = tokio::spawn({
        let sim = sim.clone();
        async move {
            use futures::StreamExt;
            futures::stream::iter(0..DOCTORS)
                .for_each_concurrent(16, |index| {
                    let sim = sim.clone();
                    let acks = acks.clone();
                    async move {
                        if let Ok(delivery) = sim.add_training(index, TRAINING).await
                            && delivery.status == 202
                        {
                            let _ = acks.send((index, delivery.webhook_id));
                        }
                    }
                })
                .await;
        }
    });
    let mut acked = Vec::new();
    while acked.len() < DOCTORS / 3 {
        acked.push(
            acked_rx
                .recv()
                .await
                .expect("webhooks are acknowledged before the kill"),
        );
    }
    hub.kill_9();
    burst.await.unwrap();
    while let Ok(ack) = acked_rx.try_recv() {
        acked.push(ack);
    }
    assert!(acked.len() < DOCTORS, "the kill came before the burst ended");

    // Restarted, the hub works off what it acknowledged, including jobs the dead process
    // held (their lease lapses; on SQLite they are queued again at start).
    let _hub = HubProcess::start(&config, &url).await;
    let jobs = loop {
        let jobs = api.all_jobs(&connector).await;
        if jobs.iter().all(|j| j["status"] == "succeeded" || j["status"] == "dead") {
            break jobs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stored: HashSet<&str> = jobs.iter().map(|j| j["dedup_key"].as_str().unwrap()).collect();
    assert_eq!(stored.len(), jobs.len(), "one job per webhook-id");
    for (_, webhook_id) in &acked {
        assert!(
            stored.contains(webhook_id.as_str()),
            "acknowledged webhook {webhook_id} was lost"
        );
    }
    let dead: Vec<&Value> = jobs.iter().filter(|j| j["status"] == "dead").collect();
    assert!(dead.is_empty(), "{dead:?}");

    // Each acknowledged change is stored once: one practitioner with the training once.
    for (index, _) in &acked {
        let person = sim.person(*index);
        let (status, found) = api
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/practitioners?str={}", person.str_number),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        let items = found["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{found}");
        let trainings = items[0]["trainings"].as_array().unwrap();
        assert_eq!(trainings.iter().filter(|t| t["name"] == TRAINING).count(), 1, "{found}");
    }
}
