//! An integrator's whole path, from a temporary directory outside the checkout: `hub plugin
//! new` → `cargo test` (the SDK's fake host) → `hub plugin build` → `hub plugin run
//! --record` against the staff registry simulator → `hub plugin test` and `cargo test`
//! replaying the cassette offline → `hub plugin package` → installed into a running `hub
//! serve` → a sync → `hub plugin dev` reinstalling on a change. The webhook and MQTT
//! templates go through new → test → build. The Python connector's path is in
//! python_connector.rs.
//!
//! The generated crates build with this workspace's `Cargo.lock` copied beside them, so the
//! test resolves nothing new, and into one scratch target directory of their own (the outer
//! cargo holds the lock on this workspace's).

mod common;
#[path = "common/process.rs"]
mod process;

use process::{ADMIN_KEY, HubProcess, api, hub_config};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `hub <args>` with the generated crates' target directory; its success and output.
fn hub(target: &Path, args: &[&str]) -> (bool, String) {
    common::run_hub_with(args, &[("CARGO_TARGET_DIR", target)])
}

/// `cargo test` in the crate at `dir`: its success and output.
fn cargo_test(dir: &Path, target: &Path) -> (bool, String) {
    let tested = Command::new(env!("CARGO"))
        .args(["test", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    (tested.status.success(), text)
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
    let (ok, text) = cargo_test(&dir, &target);
    assert!(ok, "cargo test of the {template} template: {text}");
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

    // A sync here, against the simulated registry, storing nothing, kept as a cassette.
    let sim = hub_sim::StaffSim::new(hub_sim::StaffConfig::default());
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    std::fs::write(
        path("config.json"),
        json!({ "base_url": server.base_url() }).to_string(),
    )
    .unwrap();
    let key = format!("api_key={}", sim.config().api_key);
    let manifest = dir.join("plugin.toml").display().to_string();
    let component_arg = component.display().to_string();
    let cassette = dir.join("cassettes/first.json");
    std::fs::create_dir_all(cassette.parent().unwrap()).unwrap();
    let cassette_arg = cassette.display().to_string();
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
            &server.addr.to_string(),
            "--record",
            &cassette_arg,
        ],
    );
    assert!(ok, "{text}");
    let rows = sim.rows().len();
    assert!(
        text.contains(&format!("{rows} records emitted: {rows} the hub would take")),
        "{text}"
    );
    let recorded = std::fs::read_to_string(&cassette).unwrap();
    assert!(
        !recorded.contains(&sim.config().api_key) && recorded.contains("{{secret:api_key}}"),
        "the key is kept out of the cassette"
    );

    // Replayed offline, by the hub and by the crate's own `cargo test`; a replay that
    // differs from the recording fails in both.
    drop(server);
    let replay = |cassette: &str, update: bool| {
        let mut args = vec![
            "plugin",
            "test",
            "--component",
            &component_arg,
            "--manifest",
            &manifest,
            "--cassette",
            cassette,
        ];
        if update {
            args.push("--update");
        }
        hub(&target, &args)
    };
    let (ok, text) = replay(&cassette_arg, false);
    assert!(
        ok && text.contains(&format!("{rows} records, cursor as recorded")),
        "{text}"
    );
    assert!(cargo_test(&dir, &target).0, "the crate replays its cassette");
    let mut tampered: serde_json::Value = serde_json::from_str(&recorded).unwrap();
    tampered["outcome"]["records"].as_array_mut().unwrap().pop();
    tampered["outcome"]["cursor"] = json!("{\"since\":\"2020-01-01T00:00:00Z\"}");
    let tampered_path = dir.join("cassettes/tampered.json");
    std::fs::write(&tampered_path, tampered.to_string()).unwrap();
    let tampered_arg = tampered_path.display().to_string();
    let (ok, text) = replay(&tampered_arg, false);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("{rows} records emitted (recorded: {})", rows - 1)) && text.contains("cursor saved"),
        "{text}"
    );
    let (ok, text) = cargo_test(&dir, &target);
    assert!(!ok && text.contains("tampered.json: the records emitted"), "{text}");
    // `--update` accepts what the plugin produces now.
    let (ok, text) = replay(&tampered_arg, true);
    assert!(ok && text.contains("outcome updated"), "{text}");
    assert!(replay(&tampered_arg, false).0, "the updated cassette replays");
    std::fs::remove_file(&tampered_path).unwrap();

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
    let (config, url) = hub_config(
        work.path(),
        None,
        &format!("[plugins]\ntrusted_keys = [{public:?}]\nallow_unsigned = true\n"),
    );
    let _hub = HubProcess::start(&config, &url).await;
    let package = std::fs::read(path("dist/staff-registry-0.1.0.hfpkg")).unwrap();
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (base, host) = (server.base_url(), server.addr.to_string());
    let api = api(&url);
    api.install(package).await;
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
    let finished = api.run_to_end(id).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(
        finished["records_created"], rows as i64,
        "staff without an STR are people too: {finished}"
    );

    // `hub plugin dev`: the crate installed unsigned under a dev version, a connector moved
    // to it and run; and again once a source changes.
    std::fs::write(path("config.json"), json!({ "base_url": base }).to_string()).unwrap();
    let log = work.path().join("dev.log");
    let dev = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["plugin", "dev", "--dir"])
        .arg(&dir)
        .args(["--api", &url, "--key", ADMIN_KEY, "--connector", "staff-dev", "--run"])
        .args(["--config", &path("config.json"), "--secret", &key, "--egress", &host])
        .env("CARGO_TARGET_DIR", &target)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _dev = KillOnDrop(dev);
    let first = dev_run(&api, &log, 1).await;
    assert!(first.starts_with("0.1.0-dev."), "{first}");
    let code = dir.join("src/lib.rs");
    let changed = std::fs::read_to_string(&code).unwrap() + "\n// A change the watcher sees.\n";
    std::fs::write(&code, changed).unwrap();
    let second = dev_run(&api, &log, 2).await;
    assert!(
        second.starts_with("0.1.0-dev.") && second != first,
        "{first} then {second}"
    );
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The plugin version of connector `staff-dev` once `hub plugin dev` has logged its
/// `runs`-th succeeded run.
async fn dev_run(api: &process::Api, log: &Path, runs: usize) -> String {
    for _ in 0..1200 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(!text.contains("dev: run failed"), "{text}");
        if text.matches("dev: run succeeded").count() >= runs {
            let connectors = api.all_pages("/api/v1/connectors?").await;
            let connector = connectors.iter().find(|c| c["name"] == "staff-dev").unwrap();
            return connector["plugin"]["version"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "hub plugin dev did not report run {runs} within 300 s: {}",
        std::fs::read_to_string(log).unwrap()
    );
}

#[test]
fn the_webhook_and_mqtt_templates_test_and_build_as_they_are() {
    let work = tempfile::tempdir().unwrap();
    for template in ["webhook", "mqtt"] {
        new_tested_and_built(work.path(), &format!("staff-{template}"), template);
    }
}
