//! The hub binary as its own process, and its API over HTTP (included with `#[path]` by the
//! tests that run `hub serve`).
#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

pub const ADMIN_KEY: &str = "process-test-admin-key-0123456789abcdef";

pub struct HubProcess {
    child: Child,
}

impl HubProcess {
    /// `hub serve` with `config`; waits until it answers `/readyz`.
    pub async fn start(config: &Path, url: &str) -> Self {
        Self::start_with(config, url, &[("RUST_LOG", "warn")], None).await
    }

    /// [`HubProcess::start`] with environment variables `env`, writing its log to `log`
    /// when given.
    pub async fn start_with(config: &Path, url: &str, env: &[(&str, &str)], log: Option<&Path>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hub"));
        command
            .args(["serve", "--config"])
            .arg(config)
            .env("HUB_ADMIN_KEY", ADMIN_KEY)
            .envs(env.iter().copied());
        if let Some(log) = log {
            command.stdout(std::fs::File::create(log).expect("log file"));
        }
        let child = command.spawn().expect("starts the hub binary");
        let hub = Self { child };
        let client = client();
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
    pub fn kill_9(&mut self) {
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

pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
}

impl Api {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
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

    /// Every page of a list endpoint (`path` has a query string already).
    pub async fn all_pages(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = self
                .call(reqwest::Method::GET, &format!("{path}&limit=500{cursor}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return items,
            }
        }
    }

    /// The connector's jobs of `kind`, once none is queued or running.
    pub async fn settled_jobs(&self, connector: &str, kind: &str) -> Vec<Value> {
        loop {
            let jobs = self
                .all_pages(&format!("/api/v1/jobs?connector_id={connector}&kind={kind}"))
                .await;
            if jobs.iter().all(|j| j["status"] == "succeeded" || j["status"] == "dead") {
                return jobs;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Uploads a package (`POST /api/v1/plugins`); panics unless it is installed.
    pub async fn install(&self, package: Vec<u8>) {
        let installed = (self.http.post(format!("{}/api/v1/plugins", self.url)))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/octet-stream")
            .body(package)
            .send()
            .await
            .unwrap();
        let status = installed.status();
        assert_eq!(status, StatusCode::CREATED, "{}", installed.text().await.unwrap());
    }

    /// Starts a run of connector `id` and waits for its end; the finished run.
    pub async fn run_to_end(&self, id: &str) -> Value {
        let run = self
            .create(&format!("/api/v1/connectors/{id}/run"), serde_json::json!({}))
            .await;
        let path = format!("/api/v1/runs/{}", run["id"].as_str().unwrap());
        loop {
            let (status, run) = self.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{run}");
            if !run["finished_at"].is_null() {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, created) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {created}");
        created
    }
}

/// A `hub.toml` in `dir` for a hub on a free port (short job leases, fast polling, then
/// `extra`); returns its path and the hub's URL.
pub fn hub_config(dir: &Path, database_url: Option<&str>, extra: &str) -> (std::path::PathBuf, String) {
    let url = format!("http://127.0.0.1:{}", free_port());
    let database = database_url
        .map(|u| format!("database_url = {u:?}\n"))
        .unwrap_or_default();
    let config = dir.join(format!("hub-{}.toml", url.rsplit(':').next().unwrap()));
    std::fs::write(
        &config,
        format!(
            "listen = {:?}\ndata_dir = {:?}\n{database}\n[jobs]\nlease_secs = 3\npoll_ms = 50\n{extra}",
            url.trim_start_matches("http://"),
            dir.join("data")
        ),
    )
    .unwrap();
    (config, url)
}

pub fn api(url: &str) -> Api {
    Api {
        http: client(),
        url: url.to_string(),
    }
}

/// An HTTP client (reqwest's TLS needs the process's crypto provider first).
fn client() -> reqwest::Client {
    hub::manager::credentials::install_tls_provider();
    reqwest::Client::new()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
