//! The console in a real browser: Debian's chromium, driven by playwright-core, runs
//! tests/browser/console.mjs against a hub with the SSO and RegNakes simulators. It signs in
//! with the SSO as an admin and as a viewer, watches a run finish, disables a connector,
//! checks CSRF and role refusals, masks and reveals a practitioner, uploads a plugin version
//! and moves the connector to it and back, and runs axe-core on every page. Screenshots land in `target/tmp/console-screenshots/`.

use hub_e2e::{Backend, TestHub, node_scripts, program_installed, sso};
use hub_sim::RegnakesConfig;
use std::path::PathBuf;
use std::process::Command;

/// Everything the browser run needs, or `None` (outside CI only) when some of it is missing.
fn browser_tools() -> Option<PathBuf> {
    if !program_installed("chromium", "chromium") {
        return None;
    }
    node_scripts("browser", &["playwright-core", "axe-core"])
}

fn on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser_for_an_admin_and_a_viewer() {
    let Some(scripts) = browser_tools() else { return };
    let (sso, _sso_server) = sso().await;
    // Unsigned packages (a hub on loopback may take them), so the browser can upload one.
    let hub = TestHub::start_with_console_sso(Backend::Sqlite, &sso, |c| c.plugins.allow_unsigned = true).await;
    let regnakes = RegnakesConfig {
        people: 300,
        ..Default::default()
    };
    let (_sim, sim_server) = hub_e2e::regnakes(regnakes.clone()).await;
    let name = "regnakes-console";
    let connector = hub.regnakes_connector(name, &sim_server.base_url(), &regnakes).await;
    let run = hub.run_to_end(&connector).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let stored = hub.get("/api/v1/practitioners?limit=1").await;
    let nik = stored["items"][0]["nik"]
        .as_str()
        .expect("a stored practitioner with a NIK")
        .to_string();

    // Another version of the bundled RegNakes plugin, for the upload, upgrade and rollback.
    let bundled = hub::bundled::REGNAKES;
    let manifest = bundled
        .manifest
        .replacen("version = \"0.1.0\"", "version = \"0.2.0\"", 1);
    let package = hub_registry::Package::new(&manifest, bundled.component.to_vec()).unwrap();
    let package_path = hub.data_dir.path().join("regnakes-0.2.0.hfpkg");
    std::fs::write(&package_path, package.to_bytes()).unwrap();

    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let hub_url = hub.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(scripts.join("console.mjs"))
            .env("HUB_URL", hub_url)
            .env("CONNECTOR_ID", &connector)
            .env("CONNECTOR_NAME", name)
            .env("NIK", &nik)
            .env("PACKAGE", &package_path)
            .env("CHROMIUM", on_path("chromium"))
            .env("SCREENSHOTS", &screenshots)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "the browser run failed:\n{stdout}\n{stderr}");

    let audit = hub.all_pages("/api/v1/audit").await;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "pii.read" && e["actor"] == "sso:admin" && e["details"]["lookup"] == "id"),
        "the reveal is in the audit log"
    );
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "pii.read" && e["actor"] == "sso:admin" && e["details"]["masked"] == true),
        "so is the masked search"
    );
    for user in ["sso:admin", "sso:viewer"] {
        assert!(
            audit
                .iter()
                .any(|e| e["action"] == "auth.login" && e["actor"] == user && e["details"]["method"] == "sso"),
            "{user}'s sign-in is audited"
        );
    }
}
