//! A connector written in Python (examples/python-staff-registry, built with componentize-py
//! from PyPI against the hub's WIT) goes the Rust connector's way, from a directory outside
//! the checkout: `hub plugin new --template python` → `hub plugin build` → `hub plugin run --record` against the staff registry
//! simulator → `hub plugin test` offline → `hub plugin package` → installed into a running
//! `hub serve` → a sync storing every person. componentize-py is the one on `PATH`, else the
//! test installs the release the hub names from PyPI once, as the build adds the wasm target.

mod common;
#[path = "common/process.rs"]
mod process;

use process::{HubProcess, api, hub_config};
use serde_json::json;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/python-staff-registry");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_connector_builds_replays_and_syncs_in_a_hub() {
    hub::manager::credentials::install_tls_provider();
    let search_path = path_with_componentize_py();
    let hub = |args: &[&str]| common::run_hub_with(args, &[("PATH", Path::new(&search_path))]);
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    let dir = work.path().join("staff-py");
    let dir_arg = dir.display().to_string();
    let (ok, text) = hub(&["plugin", "new", "staff-py", "--template", "python", "--dir", &dir_arg]);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.join("app.py")).unwrap(),
        std::fs::read_to_string(Path::new(EXAMPLE).join("app.py"))
            .unwrap()
            .replace("staff-registry-py", "staff-py"),
        "the template is the example"
    );
    // From the directory above, as `--dir staff-py`.
    let built = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["plugin", "build", "--dir", "staff-py"])
        .current_dir(work.path())
        .env("PATH", &search_path)
        .output()
        .unwrap();
    let (ok, text) = (
        built.status.success(),
        String::from_utf8_lossy(&built.stderr).into_owned(),
    );
    let printed = String::from_utf8_lossy(&built.stdout);
    assert!(
        ok && printed.contains("checked as the hub checks it on install"),
        "{text}{printed}"
    );
    let component = dir.join("target/staff_py.wasm").display().to_string();
    let manifest = dir.join("plugin.toml").display().to_string();

    let sim = hub_sim::StaffSim::new(hub_sim::StaffConfig::default());
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    std::fs::write(
        path("config.json"),
        json!({ "base_url": server.base_url(), "per_page": 50 }).to_string(),
    )
    .unwrap();
    let key = format!("api_key={}", sim.config().api_key);
    let (ok, text) = hub(&[
        "plugin",
        "run",
        "--component",
        &component,
        "--manifest",
        &manifest,
        "--config",
        &path("config.json"),
        "--secret",
        &key,
        "--egress",
        &server.addr.to_string(),
        "--record",
        &path("cassette.json"),
    ]);
    assert!(ok, "{text}");
    let rows = sim.rows().len();
    assert!(
        text.contains(&format!("{rows} records emitted: {rows} the hub would take")),
        "{text}"
    );
    let cassette: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("cassette.json")).unwrap()).unwrap();
    assert_eq!(
        cassette["exchanges"].as_array().unwrap().len(),
        rows.div_ceil(50),
        "one request per page of 50"
    );

    drop(server);
    let (ok, text) = hub(&[
        "plugin",
        "test",
        "--component",
        &component,
        "--manifest",
        &manifest,
        "--cassette",
        &path("cassette.json"),
    ]);
    assert!(
        ok && text.contains(&format!("{rows} records, cursor as recorded")),
        "{text}"
    );

    let (ok, printed) = hub(&["plugin", "keygen", "--out", &path("publisher.key")]);
    assert!(ok, "{printed}");
    let public = printed.split_whitespace().find(|w| w.starts_with("ed25519:")).unwrap();
    let (ok, text) = hub(&[
        "plugin",
        "package",
        "--manifest",
        &manifest,
        "--component",
        &component,
        "--key",
        &path("publisher.key"),
        "--out",
        &path("dist"),
    ]);
    assert!(ok, "{text}");
    let (config, url) = hub_config(work.path(), None, &format!("[plugins]\ntrusted_keys = [{public:?}]\n"));
    let _hub = HubProcess::start(&config, &url).await;
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let api = api(&url);
    api.install(std::fs::read(path("dist/staff-py-0.1.0.hfpkg")).unwrap())
        .await;
    let connector = api
        .create(
            "/api/v1/connectors",
            json!({
                "name": "staff-py", "plugin": "staff-py", "enabled": true,
                "config": { "base_url": server.base_url() }, "egress": [server.addr.to_string()],
                "secrets": { "api_key": sim.config().api_key },
            }),
        )
        .await;
    let id = connector["id"].as_str().unwrap();
    let finished = api.run_to_end(id).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["records_created"], rows as i64, "{finished}");
}

/// `PATH` with componentize-py on it: as it is when it has one, else with a venv under the
/// target directory into which the release the hub builds with is installed from PyPI.
fn path_with_componentize_py() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = Command::new("componentize-py").arg("--version").output();
    if found.is_ok_and(|o| o.status.success()) {
        return path;
    }
    let version = hub::toolchain::COMPONENTIZE_PY;
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("componentize-py-{version}"));
    let bin = venv.join("bin");
    if !bin.join("componentize-py").exists() {
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "python3 -m venv {} failed",
            venv.display()
        );
        let installed = Command::new(bin.join("pip"))
            .args(["install", "--quiet", &format!("componentize-py=={version}")])
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "installing componentize-py {version} from PyPI failed"
        );
    }
    let mut joined = OsString::from(bin);
    joined.push(":");
    joined.push(path);
    joined
}

#[test]
fn the_docs_install_the_componentize_py_the_hub_builds_with() {
    let install = format!("pip install componentize-py=={}", hub::toolchain::COMPONENTIZE_PY);
    for (page, text) in [
        ("docs/plugins.md", include_str!("../../docs/plugins.md")),
        (
            "examples/python-staff-registry/README.md",
            include_str!("../../examples/python-staff-registry/README.md"),
        ),
    ] {
        assert!(text.contains(&install), "{page} should say `{install}`");
    }
}
