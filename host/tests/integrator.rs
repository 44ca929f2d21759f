//! An integrator's whole path, from a temporary directory outside the checkout: `hub plugin
//! new` → `cargo test` (the SDK's fake host) → `hub plugin build` → `hub plugin run` against
//! the staff registry simulator → `hub plugin package` → installed into a running `hub serve`
//! → a sync. The webhook and MQTT templates go through new → test → build.
//!
//! The generated crates build with this workspace's `Cargo.lock` copied beside them, so the
//! test resolves nothing new, and into one scratch target directory of their own (the outer
//! cargo holds the lock on this workspace's).

mod common;
#[path = "common/process.rs"]
mod process;

use process::{ADMIN_KEY, HubProcess, api, hub_config};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `hub <args>` with the generated crates' target directory; its success and output.
fn hub(target: &Path, args: &[&str]) -> (bool, String) {
    common::run_hub_with(args, &[("CARGO_TARGET_DIR", target)])
}

/// `hub plugin new NAME --template TEMPLATE`, then `cargo test` and `hub plugin build` in it;
/// returns the crate's directory and the component built.
fn new_tested_and_built(work: &Path, name: &str, template: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (target, dir) = (work.join("target"), work.join(name));
    let dir_arg = dir.display().to_string();
    let (ok, text) = hub(
        &target,
        &["plugin", "new", name, "--template", template, "--dir", &dir_arg],
    );
    assert!(ok, "{text}");
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
    let tested = Command::new(env!("CARGO"))
        .args(["test", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        tested.status.success(),
        "cargo test of the {template} template: {}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    let formatted = Command::new(env!("CARGO"))
        .args(["fmt", "--check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        formatted.status.success(),
        "the {template} template is not rustfmt-clean: {}",
        String::from_utf8_lossy(&formatted.stdout)
    );
    let (ok, text) = hub(&target, &["plugin", "build", "--dir", &dir_arg]);
    assert!(ok && text.contains("checked as the hub checks it on install"), "{text}");
    let component = target.join(format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_")));
    assert!(component.exists(), "{text}");
    (dir, component)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_made_outside_the_repository_goes_from_new_to_a_synced_hub() {
    hub::manager::credentials::install_tls_provider();
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    let target = work.path().join("target");
    let (dir, component) = new_tested_and_built(work.path(), "staff-registry", "pull");

    // A sync here, against the simulated registry, storing nothing.
    let sim = hub_sim::StaffSim::new(hub_sim::StaffConfig::default());
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = server.base_url();
    let host = server.addr.to_string();
    std::fs::write(path("config.json"), json!({ "base_url": base }).to_string()).unwrap();
    let key = format!("api_key={}", sim.config().api_key);
    let manifest = dir.join("plugin.toml").display().to_string();
    let component_arg = component.display().to_string();
    let (ok, text) = hub(
        &target,
        &[
            "plugin",
            "run",
            "--component",
            &component_arg,
            "--manifest",
            &manifest,
            "--config",
            &path("config.json"),
            "--secret",
            &key,
            "--egress",
            &host,
        ],
    );
    assert!(ok, "{text}");
    let rows = sim.rows().len();
    assert!(
        text.contains(&format!("{rows} records emitted: {rows} the hub would take")),
        "{text}"
    );

    // Packaged, signed, installed into a running hub, and synced there.
    let (ok, printed) = hub(&target, &["plugin", "keygen", "--out", &path("publisher.key")]);
    assert!(ok, "{printed}");
    let public = printed
        .split_whitespace()
        .find(|w| w.starts_with("ed25519:"))
        .unwrap()
        .to_string();
    let (ok, text) = hub(
        &target,
        &[
            "plugin",
            "package",
            "--manifest",
            &manifest,
            "--component",
            &component_arg,
            "--key",
            &path("publisher.key"),
            "--out",
            &path("dist"),
        ],
    );
    assert!(ok, "{text}");
    let (config, url) = hub_config(work.path(), None, &format!("[plugins]\ntrusted_keys = [{public:?}]\n"));
    let _hub = HubProcess::start(&config, &url).await;
    let package = std::fs::read(path("dist/staff-registry-0.1.0.hfpkg")).unwrap();
    let installed = reqwest::Client::new()
        .post(format!("{url}/api/v1/plugins"))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/octet-stream")
        .body(package)
        .send()
        .await
        .unwrap();
    assert_eq!(
        installed.status(),
        StatusCode::CREATED,
        "{}",
        installed.text().await.unwrap()
    );
    let api = api(&url);
    let connector = api
        .create(
            "/api/v1/connectors",
            json!({
                "name": "staff-jateng", "plugin": "staff-registry", "enabled": true,
                "config": { "base_url": base }, "egress": [host],
                "secrets": { "api_key": sim.config().api_key },
            }),
        )
        .await;
    let id = connector["id"].as_str().unwrap();
    let run = api.create(&format!("/api/v1/connectors/{id}/run"), json!({})).await;
    let run_path = format!("/api/v1/runs/{}", run["id"].as_str().unwrap());
    let finished = loop {
        let (status, run) = api.call(Method::GET, &run_path, None).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if run["status"] == "succeeded" || run["status"] == "failed" {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(
        finished["records_created"], rows as i64,
        "staff without an STR are people too: {finished}"
    );
}

#[test]
fn the_webhook_and_mqtt_templates_test_and_build_as_they_are() {
    let work = tempfile::tempdir().unwrap();
    for template in ["webhook", "mqtt"] {
        new_tested_and_built(work.path(), &format!("staff-{template}"), template);
    }
}
