//! The shared test environment: a hub in-process on a fresh database (SQLite, and
//! PostgreSQL when `HUB_TEST_DATABASE_URL` is set), simulators on real ports, and an API
//! client speaking real HTTP.
//!
//! Under `CI=true` a missing `HUB_TEST_DATABASE_URL` is an error: no test may skip in CI.

pub mod hostile;

use hub::Hub;
use hub::config::HubConfig;
use hub::jobs::{JobsConfig, RetryPolicy};
use hub::runtime::Limits;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tempfile::TempDir;

/// A database backend a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends every storage test must pass on.
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if service_configured("HUB_TEST_DATABASE_URL", "PostgreSQL") {
        backends.push(Backend::Postgres);
    }
    backends
}

/// Whether the service a test variable names is configured. Under `CI=true` a missing one is
/// an error: no test may skip in CI.
fn service_configured(var: &str, service: &str) -> bool {
    match std::env::var(var) {
        Ok(_) => true,
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but {var} is not set: {service} tests may not be skipped in CI")
        }
        Err(_) => {
            eprintln!("{var} not set: {service} runs skipped (allowed outside CI only)");
            false
        }
    }
}

/// Whether the program `name` is on PATH. Under `CI=true` a missing one is an error
/// (`.ci/run` installs it from `package`).
pub fn program_installed(name: &str, package: &str) -> bool {
    let found =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    match found {
        true => true,
        false if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but {name} is not on PATH: install {package} (.ci/run does)")
        }
        false => {
            eprintln!("{name} not on PATH: its tests are skipped (allowed outside CI only; install {package})");
            false
        }
    }
}

/// The directory `tests/<dir>` of node scripts when node and the npm `packages` they need
/// are installed there; `None` (outside CI only) when some are missing. Under `CI=true` a
/// missing one is an error (`.ci/run` runs `npm ci --prefix tests/<dir>`).
pub fn node_scripts(dir: &str, packages: &[&str]) -> Option<std::path::PathBuf> {
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    if !program_installed("node", "nodejs") {
        return None;
    }
    let missing: Vec<&str> = (packages.iter().copied())
        .filter(|p| !scripts.join("node_modules").join(p).is_dir())
        .collect();
    if missing.is_empty() {
        return Some(scripts);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but tests/{dir}/node_modules lacks {}: run `npm ci --prefix tests/{dir}` (.ci/run does)",
        missing.join(", ")
    );
    eprintln!(
        "tests/{dir}/node_modules lacks {}: its tests are skipped (allowed outside CI only)",
        missing.join(", ")
    );
    None
}

/// The hub's MQTT settings for the broker at `host:port`, with a client id and share group
/// of their own so that tests running at once do not take each other's messages.
pub fn mqtt_config(host: &str, port: u16) -> (hub::triggers::MqttConfig, String) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let config = hub::triggers::MqttConfig {
        host: host.to_string(),
        port,
        client_id: format!("hub-test-{run}"),
        share_group: format!("g{run}"),
        ..Default::default()
    };
    (config, format!("hub-test/{run}"))
}

/// The MQTT broker (`HUB_TEST_MQTT_ADDR`, `host:port`; required under `CI=true`).
pub fn mqtt_broker() -> Option<(String, u16)> {
    if !service_configured("HUB_TEST_MQTT_ADDR", "MQTT (Mosquitto)") {
        return None;
    }
    let addr = std::env::var("HUB_TEST_MQTT_ADDR").unwrap();
    let (host, port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("HUB_TEST_MQTT_ADDR={addr:?} is not host:port"));
    Some((host.to_string(), port.parse().expect("HUB_TEST_MQTT_ADDR port")))
}

/// The RabbitMQ broker's `host:port` (`HUB_TEST_AMQP_ADDR`; required under `CI=true`),
/// whose user `guest` the tests connect as.
pub fn rabbitmq() -> Option<String> {
    service_configured("HUB_TEST_AMQP_ADDR", "RabbitMQ").then(|| std::env::var("HUB_TEST_AMQP_ADDR").unwrap())
}

/// Where a test's secrets and key-encryption key live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keeper {
    /// The local backend: secrets in the database, data keys wrapped by `master.key`.
    Local,
    /// OpenBao: secrets in KV v2, data keys wrapped by a transit key.
    OpenBao,
}

/// The keepers every secrets and keys test must pass on: local, and OpenBao when
/// `HUB_TEST_VAULT_ADDR` is set (required under `CI=true`).
pub fn keepers() -> Vec<Keeper> {
    let mut keepers = vec![Keeper::Local];
    if service_configured("HUB_TEST_VAULT_ADDR", "OpenBao") {
        keepers.push(Keeper::OpenBao);
    }
    keepers
}

/// The test OpenBao's address and root token (`HUB_TEST_VAULT_TOKEN`, default `root` as
/// `bao server -dev -dev-root-token-id=root` sets it).
pub fn openbao() -> (String, String) {
    let addr = std::env::var("HUB_TEST_VAULT_ADDR").expect("HUB_TEST_VAULT_ADDR");
    let token = std::env::var("HUB_TEST_VAULT_TOKEN").unwrap_or_else(|_| "root".into());
    (addr, token)
}

/// A call to the test OpenBao's HTTP API as root; returns status and JSON body.
pub async fn openbao_call(method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (addr, token) = openbao();
    hub::manager::credentials::install_tls_provider();
    let mut request = reqwest::Client::new()
        .request(method, format!("{addr}/v1/{path}"))
        .header("x-vault-token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("OpenBao at HUB_TEST_VAULT_ADDR is not reachable: {e}"));
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Mounts `path` of `kind` (`transit`, or `approle` under `sys/auth`) unless it is there.
pub async fn openbao_enable(sys: &str, path: &str, kind: &str) {
    let (status, body) = openbao_call(
        reqwest::Method::POST,
        &format!("sys/{sys}/{path}"),
        Some(json!({ "type": kind })),
    )
    .await;
    let already = body.to_string().contains("already in use");
    assert!(
        status.is_success() || already,
        "enabling {kind} at {path}: {status} {body}"
    );
}

/// Points `config` at the test OpenBao with the root token: secrets in KV v2 under a fresh
/// prefix, data keys wrapped by a fresh transit key.
pub async fn use_openbao(config: &mut HubConfig) {
    let (address, token) = openbao();
    openbao_enable("mounts", "transit", "transit").await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    config.vault = Some(hub::vault::VaultConfig {
        address,
        namespace: None,
        role_id: None,
        approle_mount: "approle".into(),
        timeout_secs: 10,
        token: Some(hub::config::SecretString::new(token)),
        secret_id: None,
    });
    config.secrets.backend = hub::secrets::SecretsBackend::Vault;
    config.secrets.path_prefix = format!("hub-test/{run}");
    config.keys.kek = hub::crypto::KekKind::Transit;
    config.keys.transit_key = format!("hub-test-{run}");
}

/// A fresh, empty PostgreSQL database for one test, created next to the one in
/// `HUB_TEST_DATABASE_URL`.
pub async fn fresh_postgres() -> String {
    let base = std::env::var("HUB_TEST_DATABASE_URL").expect("HUB_TEST_DATABASE_URL");
    let name = format!("hub_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to HUB_TEST_DATABASE_URL: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    format!("{prefix}/{name}")
}

/// Test settings: fast retries, a short deadline, a small memory cap.
pub fn test_config(data_dir: &std::path::Path, database_url: Option<String>) -> HubConfig {
    HubConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        database_url,
        admin_key: Some(hub::config::SecretString::new(ADMIN_KEY)),
        limits: Limits {
            call_deadline_secs: 60,
            run_deadline_secs: 300,
            cpu_secs: 30,
            memory_mib: 64,
            max_instances: 16,
        },
        quotas: Default::default(),
        retry: RetryPolicy {
            base_delay_ms: 50,
            max_delay_ms: 400,
            default_attempts: 3,
        },
        jobs: JobsConfig {
            poll_ms: 50,
            lease_secs: 5,
            ..Default::default()
        },
        webhooks: Default::default(),
        mqtt: None,
        plugins: Default::default(),
        // Tests scrape `/metrics` without a token; tests/metrics.rs checks the token and
        // a hub with neither.
        auth: hub::auth::AuthConfig {
            metrics_public: true,
            ..Default::default()
        },
        vault: None,
        secrets: Default::default(),
        keys: hub::crypto::KeysConfig {
            reload_secs: 1,
            ..Default::default()
        },
        backup: Default::default(),
        observations: Default::default(),
        alerts: Default::default(),
        events: Default::default(),
    }
}

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

/// A hub running in this process, its data directory and an API client.
pub struct TestHub {
    pub hub: Hub,
    pub backend: Backend,
    /// What the hub was started with (a second replica starts from it).
    pub config: HubConfig,
    pub data_dir: TempDir,
    pub http: reqwest::Client,
}

impl TestHub {
    /// See [`raw_pool`].
    pub async fn raw_sql(&self) -> sqlx::AnyPool {
        raw_pool(&self.config.database_url()).await
    }

    /// Once every event is out, sink `name` rests: no hub writes its row (not even its
    /// lease) while nothing new is in the outbox.
    pub async fn assert_sink_rests(&self, name: &str) {
        let pool = self.raw_sql().await;
        let row = || async {
            sqlx::query_as::<_, (i64, Option<String>, String)>(
                "SELECT delivered_through, CAST(lease_until AS TEXT), CAST(updated_at AS TEXT) FROM event_sinks WHERE name = $1",
            )
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
        };
        // A few polls (50 ms in tests) for the last batch's end to be written.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let before = row().await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        assert_eq!(row().await, before, "sink {name} was written while nothing was new");
    }

    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut HubConfig)) -> Self {
        Self::start_kept(backend, Keeper::Local, adjust).await
    }

    /// A hub whose secrets and key-encryption key live with `keeper`.
    pub async fn start_kept(backend: Backend, keeper: Keeper, adjust: impl FnOnce(&mut HubConfig)) -> Self {
        hub::telemetry::init().expect("telemetry from the test environment");
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres().await),
        };
        let mut config = test_config(data_dir.path(), database_url);
        if keeper == Keeper::OpenBao {
            use_openbao(&mut config).await;
        }
        adjust(&mut config);
        Self::start_on(backend, config, data_dir).await
    }

    /// A hub started from `config`, whose data directory `data_dir` lives as long as it.
    pub async fn start_on(backend: Backend, config: HubConfig, data_dir: TempDir) -> Self {
        hub::telemetry::init().expect("telemetry from the test environment");
        let hub = Hub::start(config.clone()).await.expect("hub starts");
        Self {
            hub,
            backend,
            config,
            data_dir,
            http: reqwest::Client::new(),
        }
    }

    /// A new data directory holding this hub's master key, as a replica's or a restore's.
    pub fn data_dir_sharing_keys(&self) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(self.data_dir.path().join("master.key"), dir.path().join("master.key")).unwrap();
        dir
    }

    /// A second hub on this hub's database, sharing its master key as replicas do; its data
    /// directory lives as long as the returned `TempDir`.
    pub async fn start_replica(&self) -> (Hub, TempDir) {
        let dir = self.data_dir_sharing_keys();
        let mut config = self.config.clone();
        config.database_url = Some(self.config.database_url());
        config.data_dir = dir.path().to_path_buf();
        // Its own MQTT client ids, as every replica needs: with the same ones the broker
        // would drop each hub's session whenever the other connects.
        if let Some(mqtt) = &mut config.mqtt {
            mqtt.client_id = format!("{}-replica", mqtt.client_id);
        }
        (Hub::start(config).await.expect("replica starts"), dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub.url())
    }

    /// An API call with the bootstrap admin key; returns status and JSON body (Null when
    /// empty).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(ADMIN_KEY, method, path, body).await
    }

    /// An API call with `credential` (an API key or a JWT).
    pub async fn call_as(
        &self,
        credential: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(credential);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API reachable");
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Uploads a package file; returns status and JSON body.
    pub async fn upload(&self, credential: &str, package: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/api/v1/plugins"))
            .bearer_auth(credential)
            .header("content-type", "application/octet-stream")
            .body(package)
            .send()
            .await
            .expect("API reachable");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A new API key with `role` (and `pii:read` when asked), created through the API.
    pub async fn api_key(&self, name: &str, role: &str, pii_read: bool) -> String {
        let permissions: Vec<&str> = if pii_read { vec!["pii:read"] } else { vec![] };
        let (status, body) = self
            .post(
                "/api/v1/api-keys",
                json!({ "name": name, "role": role, "permissions": permissions }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["key"].as_str().unwrap().to_string()
    }

    /// A RegNakes simulator of `people`, served, and an enabled connector `registry` on this
    /// hub reading it: the simulator, its server and the connector's id.
    pub async fn registry(&self, people: usize) -> (hub_sim::RegnakesSim, hub_sim::Running, String) {
        let (sim, server) = regnakes(hub_sim::RegnakesConfig {
            people,
            ..Default::default()
        })
        .await;
        let connector = self
            .regnakes_connector("registry", &server.base_url(), sim.config())
            .await;
        (sim, server, connector)
    }

    /// Creates and enables a RegNakes connector pointed at `sim`; returns its id.
    pub async fn regnakes_connector(&self, name: &str, sim_url: &str, sim: &hub_sim::RegnakesConfig) -> String {
        let authority = sim_url.trim_start_matches("http://");
        let (status, body) = self
            .post(
                "/api/v1/connectors",
                json!({
                    "name": name,
                    "plugin": "regnakes",
                    "config": { "base_url": sim_url, "per_page": 250 },
                    "egress": [authority],
                    "credentials": { "regnakes": {
                        "token_url": format!("{sim_url}/oauth/token"),
                        "client_id": sim.client_id,
                        "client_secret": "client_secret",
                    }},
                    "secrets": { "client_secret": sim.client_secret },
                    "enabled": true,
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Sets `connector`'s secret `name` to `value`.
    pub async fn set_secret(&self, connector: &str, name: &str, value: &str) {
        let path = format!("/api/v1/connectors/{connector}/secrets/{name}");
        let (status, body) = self
            .call(reqwest::Method::PUT, &path, Some(json!({ "value": value })))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Takes every host off `connector`'s egress allow-list and gives it one attempt: its
    /// next run fails on its first request, refused by the sandbox.
    pub async fn refuse_egress(&self, connector: &str) {
        let (status, body) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v1/connectors/{connector}"),
                Some(json!({ "egress": ["registry.invalid"], "max_attempts": 1 })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Creates and enables an SSO connector pulling accounts from the simulator at `sso_url`;
    /// returns its id.
    pub async fn sso_connector(&self, name: &str, sso_url: &str) -> String {
        let config = hub_sim::SsoConfig::default();
        let (status, body) = self
            .post(
                "/api/v1/connectors",
                json!({
                    "name": name,
                    "plugin": "sso",
                    "config": { "base_url": sso_url, "per_page": 50 },
                    "egress": [sso_url.trim_start_matches("http://")],
                    "credentials": { "sso": {
                        "token_url": format!("{sso_url}/oauth/token"),
                        "client_id": config.client_id,
                        "client_secret": "sso_secret",
                    }},
                    "secrets": { "sso_secret": config.client_secret },
                    "enabled": true,
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// An enabled connector of a registry plugin authenticated with an API token (`kki`,
    /// `sisdmk`) on the simulator at `url`; its id.
    pub async fn token_connector(&self, name: &str, plugin: &str, url: &str, api_token: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/connectors",
                json!({
                    "name": name,
                    "plugin": plugin,
                    "config": { "base_url": url, "per_page": 200 },
                    "egress": [url.trim_start_matches("http://")],
                    "secrets": { "api-token": api_token },
                    "enabled": true,
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Creates a webhook secret for `connector`; returns the `whsec_…` secret and the URL a
    /// sender posts to.
    pub async fn webhook_secret(&self, connector: &str) -> (String, String) {
        let (status, secret) = self
            .post(&format!("/api/v1/connectors/{connector}/webhook-secret"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{secret}");
        (
            secret["secret"].as_str().unwrap().to_string(),
            self.url(&format!("/webhooks/{connector}")),
        )
    }

    /// Waits until job `job_id` has succeeded or is dead; returns it.
    pub async fn wait_for_job(&self, job_id: &str) -> Value {
        for _ in 0..600 {
            let job = self.get(&format!("/api/v1/jobs/{job_id}")).await;
            if job["status"] == "succeeded" || job["status"] == "dead" {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("job {job_id} did not finish within 60 s");
    }

    /// Starts a run and waits until it ends; returns the run.
    pub async fn run_to_end(&self, connector_id: &str) -> Value {
        let (status, run) = self
            .post(&format!("/api/v1/connectors/{connector_id}/run"), json!({}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        self.wait_for_run(run["id"].as_str().unwrap()).await
    }

    pub async fn wait_for_run(&self, run_id: &str) -> Value {
        for _ in 0..1200 {
            let run = self.get(&format!("/api/v1/runs/{run_id}")).await;
            if run["status"] == "succeeded" || run["status"] == "failed" {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("run {run_id} did not finish within 120 s");
    }

    /// POSTs `size` bytes to `path` over a plain socket (with `credential`, if any), writing
    /// the whole body before reading, as most clients do; the answer's head and body as
    /// text. Panics if the hub reset the connection while the body was being written.
    /// Writes `request` as raw bytes on a new connection and reads until the hub closes it
    /// (or 10 s pass).
    pub async fn raw_exchange(&self, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url("").trim_start_matches("http://").to_string();
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    pub async fn post_whole_body_then_read(&self, path: &str, credential: Option<&str>, size: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url("").trim_start_matches("http://").to_string();
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let auth = credential
            .map(|c| format!("authorization: Bearer {c}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\n{auth}content-length: {size}\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket
            .write_all(&vec![b' '; size])
            .await
            .expect("the hub reads (and drops) the whole body instead of resetting the connection");
        let mut answer = vec![0; 4096];
        let n = socket.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..n]).into_owned()
    }

    /// Every page of a list endpoint.
    /// `GET /metrics` without credentials, parsed.
    pub async fn metrics(&self) -> Scraped {
        let response = self.http.get(self.url("/metrics")).send().await.expect("API reachable");
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        Scraped::parse(&response.text().await.unwrap())
    }

    pub async fn all_pages(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=500&cursor={c}"),
                None => format!("{path}{sep}limit=500"),
            };
            let page = self.get(&url).await;
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return items,
            }
        }
    }
}

/// One sample of a `/metrics` answer: name, labels sorted by name, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// A `/metrics` answer: every sample by name and labels.
pub struct Scraped {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scraped {
    /// Parses the Prometheus text format (what the hub writes of it: no escaped quotes in
    /// label values, no timestamps).
    pub fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line {line:?}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("labels in {line:?}"));
                    let mut labels: Vec<(String, String)> = inner
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("label in {line:?}"));
                            (k.to_string(), v.trim_end_matches('"').to_string())
                        })
                        .collect();
                    labels.sort();
                    (name.to_string(), labels)
                }
                None => (series.to_string(), Vec::new()),
            };
            samples.push((name, labels, value));
        }
        Self {
            text: text.to_string(),
            samples,
        }
    }

    /// The value of the sample `name` whose labels include `labels`, summed over the
    /// samples that match (0 when none does).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, _, v)| v).sum()
    }

    /// Whether some sample `name` has all of `labels`.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.matching(name, labels).next().is_some()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |(n, l, _)| {
            n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }
}

/// A RegNakes simulator on a free local port.
pub async fn regnakes(config: hub_sim::RegnakesConfig) -> (hub_sim::RegnakesSim, hub_sim::Running) {
    let sim = hub_sim::RegnakesSim::new(config);
    let running = serve(sim.router()).await;
    (sim, running)
}

impl TestHub {
    /// An enabled iot-sensors connector on the topics `<prefix>/+/vitals`, once the hub has
    /// taken a probe's message from them (the subscription starts within a couple of
    /// seconds). The probe's observations are dated 2020.
    pub async fn iot_connector(&self, host: &str, port: u16, prefix: &str) -> String {
        let (status, connector) = self
            .post(
                "/api/v1/connectors",
                json!({
                    "name": "iot", "plugin": "iot-sensors",
                    "config": { "topics": [format!("{prefix}/+/vitals")] },
                    "enabled": true,
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{connector}");
        let probe = hub_sim::IotSim::new(hub_sim::IotConfig {
            devices: 1,
            topic_prefix: prefix.to_string(),
            anomaly_rate: 0.0,
            fault_rate: 0.0,
            malformed_rate: 0.0,
            ..Default::default()
        });
        for attempt in 0..100 {
            let at = "2020-01-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap()
                + chrono::Duration::seconds(attempt);
            probe.publish(host, port, 1, None, at).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let stored = self.get("/api/v1/observations?limit=1").await;
            if !stored["items"].as_array().unwrap().is_empty() {
                return connector["id"].as_str().unwrap().to_string();
            }
        }
        panic!("the hub never took a message from {prefix}");
    }
}

/// A KKI simulator on a free local port.
pub async fn kki(config: hub_sim::KkiConfig) -> (hub_sim::KkiSim, hub_sim::Running) {
    let sim = hub_sim::KkiSim::new(config);
    let running = serve(sim.router()).await;
    (sim, running)
}

/// A SISDMK simulator on a free local port.
pub async fn sisdmk(config: hub_sim::SisdmkConfig) -> (hub_sim::SisdmkSim, hub_sim::Running) {
    let sim = hub_sim::SisdmkSim::new(config);
    let running = serve(sim.router()).await;
    (sim, running)
}

/// A simulator's router on a free local port.
pub async fn serve(router: axum::Router) -> hub_sim::Running {
    hub_sim::serve(router, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// The SSO simulator, served, with its issuer set.
pub async fn sso() -> (hub_sim::SsoSim, hub_sim::Running) {
    let sso = hub_sim::SsoSim::new(hub_sim::SsoConfig::default());
    let running = serve(sso.router()).await;
    sso.set_issuer(&running.base_url());
    (sso, running)
}

impl TestHub {
    /// A hub that accepts `sso`'s tokens and signs console users in with it, its config
    /// `adjust`ed.
    pub async fn start_with_console_sso(
        backend: Backend,
        sso: &hub_sim::SsoSim,
        adjust: impl FnOnce(&mut HubConfig),
    ) -> Self {
        let (issuer, audience) = (sso.issuer(), sso.audience().to_string());
        Self::start_with(backend, move |config| {
            adjust(config);
            config.auth.oidc = Some(hub::auth::OidcConfig {
                issuer,
                audience,
                roles_claim: "roles".into(),
                jwks_min_refresh_secs: 0,
                console_client_id: Some(hub_sim::sso::CONSOLE_CLIENT.into()),
            });
        })
        .await
    }
}

/// The SQLite database file and its WAL in `dir`, by name.
pub fn sqlite_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("hub.db") {
            files.push((name, std::fs::read(&path).unwrap()));
        }
    }
    assert!(files.iter().any(|(n, _)| n == "hub.db"), "database file present");
    files
}

/// A pool of the test's own on a hub's database, for reading or tampering with rows
/// directly: the hub's pool is typed per engine, this one runs the same SQL on either.
pub async fn raw_pool(database_url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(database_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the hub's database: {e}"))
}

/// Every row of `tables` as text (PostgreSQL's row-to-text cast), concatenated.
pub async fn postgres_dump(hub: &TestHub, tables: &[&str]) -> Vec<u8> {
    use sqlx::Row;
    let pool = hub.raw_sql().await;
    let mut dump = Vec::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(t.* AS TEXT) AS row FROM {table} t"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        for row in rows {
            dump.extend_from_slice(row.try_get::<String, _>("row").unwrap().as_bytes());
        }
    }
    dump
}
