//! The shipped monitoring config against a real Prometheus scraping a real hub: every
//! alert rule in `deploy/prometheus/alerts.yml` loads and evaluates, every query of
//! `deploy/grafana/dashboard.json` parses and returns data once the hub has synced, taken
//! webhooks and MQTT messages, been refused a request and lost its Vault token; and the
//! alerts for a batch over 20 % rejected and a failed run fire.

use hub_e2e::{Backend, Keeper, TestHub, mqtt_broker, openbao_call, program_installed, regnakes};
use hub_sim::{IotConfig, IotSim};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(path)
}

/// The metrics token the hub asks Prometheus for.
const METRICS_TOKEN: &str = "prometheus-test-metrics-token";

/// A Prometheus server scraping `target` every second with [`METRICS_TOKEN`]; killed when
/// dropped.
struct Prometheus {
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: healthforce-hub
    authorization:
      credentials: {METRICS_TOKEN}
    static_configs:
      - targets: ['{target}']
"#,
            rules = deploy("prometheus/alerts.yml").display()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Prometheus at {} does not answer: {e}", self.url));
        response.json().await.unwrap()
    }

    /// The result of an instant query; panics when Prometheus refuses the expression.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let answer = self.api("query", &[("query", expr)]).await;
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
        answer["data"]["result"].as_array().unwrap().clone()
    }

    /// Waits up to a minute until `expr` returns something (Prometheus started, scraped a
    /// series twice for a rate, evaluated a rule); what it returned last.
    async fn data(&self, expr: &str) -> Vec<Value> {
        let mut result = Vec::new();
        for _ in 0..240 {
            if let Ok(response) = self
                .http
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", expr)])
                .send()
                .await
                && let Ok(answer) = response.json::<Value>().await
            {
                assert_ne!(answer["status"], "error", "{expr}: {answer}");
                result = answer["data"]["result"].as_array().cloned().unwrap_or_default();
                if !result.is_empty() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        result
    }

    async fn wait_for(&self, expr: &str) -> Vec<Value> {
        let result = self.data(expr).await;
        assert!(!result.is_empty(), "Prometheus never answered {expr} with data");
        result
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every query of the dashboard as `(panel title, expression)`, Grafana's variables given
/// the values a user sees by default (all connectors).
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(deploy("grafana/dashboard.json")).unwrap())
        .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap().to_string();
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let expr = expr.replace("$connector", ".*").replace("$__rate_interval", "1m");
            queries.push((title.clone(), expr));
        }
    }
    queries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answers_every_dashboard_panel_and_fires_the_alerts_a_bad_batch_and_a_failed_run_raise() {
    if !program_installed("prometheus", "the Debian package prometheus") {
        return;
    }
    let Some((mqtt_host, mqtt_port)) = mqtt_broker() else {
        return;
    };
    if !hub_e2e::keepers().contains(&Keeper::OpenBao) {
        return;
    }
    // The hub's own Vault token, so the test can revoke it later.
    let (status, token) = openbao_call(
        reqwest::Method::POST,
        "auth/token/create",
        Some(json!({ "ttl": "1h", "policies": ["root"] })),
    )
    .await;
    assert!(status.is_success(), "{token}");
    let hub_token = token["auth"]["client_token"].as_str().unwrap().to_string();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let topic_prefix = format!("hub-test/{run}");
    let hub = TestHub::start_kept(Backend::Sqlite, Keeper::OpenBao, |config| {
        config.vault.as_mut().unwrap().token = Some(hub::config::SecretString::new(hub_token.clone()));
        config.auth.metrics_token = Some(hub::config::SecretString::new(METRICS_TOKEN));
        config.mqtt = Some(hub::triggers::MqttConfig {
            host: mqtt_host.clone(),
            port: mqtt_port,
            client_id: format!("hub-test-{run}"),
            share_group: format!("g{run}"),
            ..Default::default()
        });
    })
    .await;

    // Connectors first, so Prometheus scrapes their counters at 0 before they move.
    let bad_batches = hub_sim::RegnakesConfig {
        people: 1_000,
        malformed_rate: 0.3,
        ..Default::default()
    };
    let (_sim, server) = regnakes(bad_batches.clone()).await;
    let registry = hub
        .regnakes_connector("regnakes", &server.base_url(), &bad_batches)
        .await;
    let fenced = hub
        .regnakes_connector("regnakes-fenced", &server.base_url(), &bad_batches)
        .await;
    hub.refuse_egress(&fenced).await;
    let (status, body) = hub
        .post(
            "/api/v1/connectors",
            json!({
                "name": "iot", "plugin": "iot-sensors",
                "config": { "topics": [format!("{topic_prefix}/+/vitals")] }, "enabled": true,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let prometheus = Prometheus::start(hub.url("").trim_start_matches("http://"));
    prometheus
        .wait_for(r#"hub_records_total{connector="regnakes", outcome="rejected"} == 0"#)
        .await;

    // A sync with 30 % malformed rows, a run refused its requests, a webhook for a connector
    // that takes none, MQTT messages, and a Vault call with a revoked token.
    let synced = hub.run_to_end(&registry).await;
    assert_eq!(synced["status"], "succeeded", "{synced}");
    let refused = hub.run_to_end(&fenced).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    let webhook = hub
        .http
        .post(hub.url(&format!("/webhooks/{registry}")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), StatusCode::NOT_FOUND);
    let iot = IotSim::new(IotConfig {
        devices: 2,
        topic_prefix,
        ..Default::default()
    });
    for _ in 0..100 {
        iot.publish(&mqtt_host, mqtt_port, 1, None, chrono::Utc::now())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !prometheus
            .query(r#"hub_mqtt_messages_acked_total{connector="iot"} > 0"#)
            .await
            .is_empty()
        {
            break;
        }
    }
    let (status, _) = openbao_call(
        reqwest::Method::POST,
        "auth/token/revoke",
        Some(json!({ "token": hub_token })),
    )
    .await;
    assert!(status.is_success());
    let (status, body) = hub
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/connectors/{registry}/secrets/extra"),
            Some(json!({ "value": "an extra secret value" })),
        )
        .await;
    assert!(
        status.is_server_error(),
        "Vault refuses the revoked token: {status} {body}"
    );

    // The alerts the bad batch and the failed run raise fire in Prometheus.
    for alert in ["HubBatchRejectRatioHigh", "HubSyncFailed"] {
        let firing = prometheus
            .wait_for(&format!(r#"ALERTS{{alertname="{alert}", alertstate="firing"}}"#))
            .await;
        let connector = if alert == "HubSyncFailed" {
            "regnakes-fenced"
        } else {
            "regnakes"
        };
        assert!(
            firing.iter().any(|a| a["metric"]["connector"] == connector),
            "{alert} fires for {connector}: {firing:?}"
        );
    }
    prometheus
        .wait_for(r#"hub_vault_errors_total{operation="write"} > 0"#)
        .await;

    // Every alert rule loaded and evaluates without error, and its query parses.
    let rules = prometheus.api("rules", &[]).await;
    let rules: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(rules.len(), 11, "every rule of alerts.yml is loaded");
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}");
        prometheus.query(rule["query"].as_str().unwrap()).await;
    }

    // Every panel's every query parses and returns data.
    let connectors = prometheus
        .api("label/connector/values", &[("match[]", "hub_connector_enabled")])
        .await;
    assert!(
        connectors["data"].as_array().unwrap().iter().any(|c| c == "regnakes"),
        "the dashboard's connector variable lists the connectors: {connectors}"
    );
    for (panel, expr) in dashboard_queries() {
        let result = prometheus.data(&expr).await;
        assert!(!result.is_empty(), "panel {panel:?} shows no data: {expr}");
    }
}

/// `promtool check rules`, `promtool test rules` (each alert firing and quiet) and
/// `amtool check-config` on the shipped files.
#[test]
fn the_alert_rules_pass_their_unit_tests_and_the_alertmanager_config_checks() {
    let run = |program: &str, args: &[&str], dir: &str| {
        let output = std::process::Command::new(program)
            .args(args)
            .current_dir(deploy(dir))
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{program} {args:?}:\n{text}");
        text
    };
    if program_installed("promtool", "the Debian package prometheus") {
        assert!(run("promtool", &["check", "rules", "alerts.yml"], "prometheus").contains("11 rules found"));
        run("promtool", &["test", "rules", "alerts.test.yml"], "prometheus");
    }
    if program_installed("amtool", "the Debian package prometheus-alertmanager") {
        run("amtool", &["check-config", "alertmanager.yml"], "alertmanager");
    }
}
