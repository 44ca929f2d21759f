//! The JSON logs of a whole `hub demo` run (RegNakes, SSO and KKI synced) carry no seeded NIK
//! or name, no client secret, API token or webhook secret, and no token: not the simulators'
//! access tokens, not JWTs, not the admin key. The demo prints a token and a key for its user on purpose; those lines are
//! the demo's banner, not log lines, and are the only place they may appear.

use hub_sim::needles::Needles;
use hub_sim::people::person;
use hub_sim::{KkiConfig, RegnakesConfig, SisdmkConfig, SsoConfig};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PEOPLE: usize = 400;

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Collects a child's output lines as they come.
fn collect(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_demo_run_logs_no_identifying_data_or_credentials() {
    let data = tempfile::tempdir().unwrap();
    let listen = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["demo", "--people", &PEOPLE.to_string(), "--listen", &listen])
        .args([
            "--sim-listen",
            &free_port(),
            "--sso-listen",
            &free_port(),
            "--kki-listen",
            &free_port(),
            "--sisdmk-listen",
            &free_port(),
            "--odoo-listen",
            &free_port(),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("HUB_LOG_FORMAT", "json")
        // Everything the hub itself logs, at every level.
        .env("RUST_LOG", "hub=trace,info")
        .env_remove("HUB_ADMIN_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs the hub binary");
    let lines = Arc::new(Mutex::new(Vec::new()));
    collect(child.stdout.take().unwrap(), lines.clone());
    collect(child.stderr.take().unwrap(), lines.clone());

    let find = |prefix: &str| {
        lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|rest| rest.trim().to_string()))
    };
    let started = Instant::now();
    let admin_key = loop {
        // The sync's end, and the Odoo connector recording it on the dashboard.
        if let (Some(key), Some(_), Some(_)) = (
            find("admin API key"),
            find("RegNakes sync succeeded"),
            find("Odoo SDMK dashboard: sync"),
        ) {
            break key;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the demo exited with {status}: {:?}", lines.lock().unwrap());
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the demo did not sync in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The SSO sync starts after RegNakes; wait for it and SISDMK's through the API.
    hub::manager::credentials::install_tls_provider();
    let http = reqwest::Client::new();
    loop {
        let connectors: serde_json::Value = http
            .get(format!("http://{listen}/api/v1/connectors"))
            .bearer_auth(&admin_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let status = |name: &str| {
            let connector = connectors["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .cloned()
                .unwrap();
            let status = connector["health"]["last_run"]["status"].as_str().map(str::to_string);
            assert_ne!(status.as_deref(), Some("failed"), "the {name} sync failed: {connector}");
            status
        };
        if [status("sso-demo"), status("sisdmk-demo")]
            .iter()
            .all(|s| s.as_deref() == Some("succeeded"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the SSO and SISDMK syncs did not end in time"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let lines = lines.lock().unwrap().clone();
    let logs: Vec<&String> = lines.iter().filter(|l| l.starts_with('{')).collect();
    let succeeded = logs.iter().filter(|l| l.contains("\"run succeeded\"")).count();
    assert_eq!(
        succeeded, 4,
        "the logs cover the RegNakes, SSO, KKI and SISDMK syncs: {lines:?}"
    );
    for line in &logs {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    let text = logs.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n");
    let seed = RegnakesConfig::default().seed;
    let people: Vec<_> = (0..PEOPLE).map(|i| person(seed, i)).collect();
    Needles::people(&people)
        .and_secrets([
            RegnakesConfig::default().client_secret,
            SsoConfig::default().client_secret,
            KkiConfig::default().api_token,
            SisdmkConfig::default().api_token,
            hub_sim::odoo::DEMO_API_KEY.to_string(),
            admin_key,
            // The demo's KKI webhook secret.
            "whsec_".to_string(),
            // Any RegNakes access token, any JWT (the SSO's tokens).
            "tok_".to_string(),
            "eyJ".to_string(),
        ])
        .assert_absent("the demo's JSON logs", text.as_bytes());
}
