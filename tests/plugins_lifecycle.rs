//! Signed packages and connector lifecycle: what an integrator installs is what runs, a
//! refused package says exactly why, and upgrades and rollbacks happen under load without
//! losing or repeating a run.

use hub_e2e::{ADMIN_KEY, Backend, TestHub, backends, regnakes};
use hub_registry::{DirRegistry, Package, SigningKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// The bundled RegNakes component under another version (and so another digest).
fn regnakes_version(version: &str) -> Package {
    let bundled = hub::bundled::REGNAKES;
    let manifest = bundled
        .manifest
        .replacen("version = \"0.1.0\"", &format!("version = \"{version}\""), 1);
    Package::new(&manifest, bundled.component.to_vec()).unwrap()
}

fn signed(mut package: Package, key: &SigningKey) -> Package {
    key.sign(&mut package);
    package
}

async fn hub_trusting(backend: Backend, publisher: &SigningKey, registry: Option<&std::path::Path>) -> TestHub {
    let trusted = publisher.public_key();
    let registry = registry.map(|r| r.display().to_string());
    TestHub::start_with(backend, move |config| {
        config.plugins.trusted_keys = vec![trusted];
        config.plugins.registries = registry.into_iter().collect();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_are_verified_and_each_refusal_says_why() {
    let publisher = SigningKey::generate();
    let registry_dir = tempfile::tempdir().unwrap();
    let hub = hub_trusting(Backend::Sqlite, &publisher, Some(registry_dir.path())).await;
    let integrator = hub.api_key("ci-integrator", "integrator", false).await;

    let mut component = signed(regnakes_version("0.3.0"), &publisher);
    component.component.push(0);
    let mut manifest = signed(regnakes_version("0.3.0"), &publisher);
    manifest.manifest_text.push_str("\n# edited after signing\n");
    let stranger = signed(regnakes_version("0.3.0"), &SigningKey::generate());
    let unsigned = regnakes_version("0.3.0");
    let future_contract = {
        let bundled = hub::bundled::REGNAKES;
        let text = bundled
            .manifest
            .replacen("version = \"0.1.0\"", "version = \"0.3.0\"", 1)
            .replacen(
                &format!("contract = \"{}\"", hub::runtime::bindings::CONTRACT),
                "contract = \"9.0.0\"",
                1,
            );
        signed(Package::new(&text, bundled.component.to_vec()).unwrap(), &publisher)
    };
    let cases = [
        (
            component,
            "the component (component.wasm) of package regnakes@0.3.0 was changed after it was signed",
        ),
        (
            manifest,
            "the manifest (plugin.toml) of package regnakes@0.3.0 was changed after it was signed",
        ),
        (stranger, "which is not a trusted publisher key"),
        (unsigned, "package regnakes@0.3.0 is unsigned"),
        (
            future_contract,
            "built against contract 9.0.0, which this hub cannot run",
        ),
    ];
    for (package, reason) in cases {
        let (status, body) = hub.upload(&integrator, package.to_bytes()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["status"], 422);
        assert!(
            body["detail"].as_str().unwrap().contains(reason),
            "want {reason:?}, got {body}"
        );
    }
    let (status, body) = hub.upload(&integrator, b"not a package".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("hub plugin package"),
        "{body}"
    );

    // Nothing refused got installed; each refusal is in the audit trail with its reason.
    let plugins = hub.get("/api/v1/plugins").await;
    let versions: Vec<&str> = plugins["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "regnakes")
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["0.1.0"], "{plugins}");
    let audit = hub.all_pages("/api/v1/audit").await;
    let denied: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "plugin.install" && e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 5, "{audit:?}");
    assert!(denied.iter().all(|e| e["actor"] == "api-key:ci-integrator"));

    // A signed package installs by upload, and by name@version from the registry.
    let (status, body) = hub
        .upload(&integrator, signed(regnakes_version("0.2.0"), &publisher).to_bytes())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["publisher"], publisher.public_key().to_string());
    DirRegistry::new(registry_dir.path())
        .publish(&signed(regnakes_version("0.4.0"), &publisher))
        .unwrap();
    let (status, body) = hub
        .call_as(
            &integrator,
            Method::POST,
            "/api/v1/plugins",
            Some(json!({ "source": "regnakes@0.4.0" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], "0.4.0");
    let (status, body) = hub
        .call_as(
            &integrator,
            Method::POST,
            "/api/v1/plugins",
            Some(json!({ "source": "regnakes@7.0.0" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The same registry served over HTTP, as a package mirror would serve it.
    let http_dir = tempfile::tempdir().unwrap();
    let served = DirRegistry::new(http_dir.path());
    served.publish(&signed(regnakes_version("0.5.0"), &publisher)).unwrap();
    let root = http_dir.path().to_path_buf();
    let files = axum::Router::new().route(
        "/{file}",
        axum::routing::get(move |axum::extract::Path(file): axum::extract::Path<String>| {
            let root = root.clone();
            async move { std::fs::read(root.join(file)).map_err(|_| StatusCode::NOT_FOUND) }
        }),
    );
    let mirror = hub_sim::serve(files, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let over_http = {
        let (key, url) = (publisher.public_key(), mirror.base_url());
        TestHub::start_with(Backend::Sqlite, move |c| {
            c.plugins.trusted_keys = vec![key];
            c.plugins.registries = vec![url];
        })
        .await
    };
    let (status, body) = over_http
        .call(Method::POST, "/api/v1/plugins", Some(json!({ "source": "regnakes" })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], "0.5.0", "the newest version when none is named");

    // Versions are immutable: another package under an installed name@version is refused.
    let mut other = regnakes_version("0.2.0");
    other.manifest_text.push_str("\n# different bytes\n");
    let (status, body) = hub.upload(&integrator, signed(other, &publisher).to_bytes()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Dev mode is explicit: the same unsigned package installs only when allowed.
    let dev = TestHub::start_with(Backend::Sqlite, |c| c.plugins.allow_unsigned = true).await;
    let (status, body) = dev.upload(ADMIN_KEY, regnakes_version("0.3.0").to_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["publisher"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_and_rollback_while_syncing_lose_no_run_and_repeat_none() {
    for backend in backends() {
        let publisher = SigningKey::generate();
        let hub = hub_trusting(backend, &publisher, None).await;
        let (sim, server) = regnakes(hub_sim::RegnakesConfig {
            people: 1_000,
            ..Default::default()
        })
        .await;
        // Slow pages keep runs in flight while versions change.
        sim.set_faults(hub_sim::Faults {
            latency_ms: 40,
            ..Default::default()
        });
        let id = hub
            .regnakes_connector("lifecycle", &server.base_url(), sim.config())
            .await;
        let (status, v2) = hub
            .upload(ADMIN_KEY, signed(regnakes_version("0.2.0"), &publisher).to_bytes())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v2}");
        let (status, body) = hub
            .call(
                Method::PATCH,
                &format!("/api/v1/connectors/{id}"),
                Some(json!({ "concurrency": 2 })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v1 = body["plugin"]["digest"].as_str().unwrap().to_string();
        let v2 = v2["digest"].as_str().unwrap().to_string();

        let mut requested = Vec::new();
        // In flight across the upgrade: started on 0.1.0, must finish on it.
        let in_flight = start_run(&hub, &id).await;
        wait_until_running(&hub, &in_flight).await;
        requested.push(in_flight.clone());
        for _ in 0..3 {
            requested.push(start_run(&hub, &id).await);
        }
        let (status, body) = hub
            .post(
                &format!("/api/v1/connectors/{id}/upgrade"),
                json!({ "version": "0.2.0" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["plugin"]["version"], "0.2.0");
        assert_eq!(body["previous_plugin"]["version"], "0.1.0");
        let after_upgrade = start_run(&hub, &id).await;
        requested.push(after_upgrade.clone());
        for _ in 0..3 {
            requested.push(start_run(&hub, &id).await);
        }
        let upgraded_run = hub.wait_for_run(&after_upgrade).await;
        let (status, body) = hub.post(&format!("/api/v1/connectors/{id}/rollback"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["plugin"]["version"], "0.1.0");
        let after_rollback = start_run(&hub, &id).await;
        requested.push(after_rollback.clone());

        let mut finished = Vec::new();
        for run_id in &requested {
            finished.push(hub.wait_for_run(run_id).await);
        }
        for run in &finished {
            assert_eq!(run["status"], "succeeded", "{run}");
            assert_eq!(run["attempts"], 1, "ran once: {run}");
            let digest = run["plugin_digest"].as_str().unwrap();
            assert!(digest == v1 || digest == v2, "{run}");
        }
        assert_eq!(
            finished[0]["plugin_digest"],
            v1.as_str(),
            "in-flight run kept its version"
        );
        assert_eq!(
            upgraded_run["plugin_digest"],
            v2.as_str(),
            "a run started after the upgrade uses it"
        );
        assert_eq!(
            finished.last().unwrap()["plugin_digest"],
            v1.as_str(),
            "a run started after the rollback uses the old version"
        );
        let history = hub.all_pages(&format!("/api/v1/connectors/{id}/runs")).await;
        let mut listed: Vec<&str> = history.iter().map(|r| r["id"].as_str().unwrap()).collect();
        let mut wanted: Vec<&str> = requested.iter().map(String::as_str).collect();
        listed.sort();
        wanted.sort();
        assert_eq!(listed, wanted, "every requested run exists exactly once");

        // Health reflects the runs; delete keeps the stored records.
        let connector = hub.get(&format!("/api/v1/connectors/{id}")).await;
        assert_eq!(connector["health"]["status"], "healthy", "{connector}");
        assert_eq!(connector["health"]["runs"]["succeeded"], requested.len());
        let stored = hub.all_pages("/api/v1/practitioners").await.len();
        assert!(stored > 900, "{stored}");
        let (status, _) = hub
            .call(Method::DELETE, &format!("/api/v1/connectors/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = hub.call(Method::GET, &format!("/api/v1/connectors/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(hub.all_pages("/api/v1/practitioners").await.len(), stored);
        hub.hub.stop().await;
    }
}

async fn start_run(hub: &TestHub, connector_id: &str) -> String {
    let (status, run) = hub
        .post(&format!("/api/v1/connectors/{connector_id}/run"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    run["id"].as_str().unwrap().to_string()
}

async fn wait_until_running(hub: &TestHub, run_id: &str) {
    for _ in 0..200 {
        let run = hub.get(&format!("/api/v1/runs/{run_id}")).await;
        if run["status"] == "running" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("run {run_id} did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_filter_by_level_and_run_and_health_turns_failing() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 300,
        ..Default::default()
    })
    .await;
    let id = hub.regnakes_connector("logs", &server.base_url(), sim.config()).await;
    let good = hub.run_to_end(&id).await;
    sim.set_faults(hub_sim::Faults {
        outage: true,
        ..Default::default()
    });
    let mut last = Value::Null;
    for _ in 0..3 {
        last = hub.run_to_end(&id).await;
        assert_eq!(last["status"], "failed");
    }
    let connector = hub.get(&format!("/api/v1/connectors/{id}")).await;
    assert_eq!(connector["health"]["status"], "failing", "{connector}");
    assert_eq!(connector["health"]["last_success"]["id"], good["id"]);

    let errors = hub.all_pages(&format!("/api/v1/connectors/{id}/logs?level=warn")).await;
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|l| l["level"] == "warn" || l["level"] == "error"),
        "{errors:?}"
    );
    let of_run = hub
        .all_pages(&format!(
            "/api/v1/connectors/{id}/logs?run_id={}",
            last["id"].as_str().unwrap()
        ))
        .await;
    assert!(!of_run.is_empty());
    assert!(of_run.iter().all(|l| l["run_id"] == last["id"]));
    let (status, body) = hub
        .call(Method::GET, &format!("/api/v1/connectors/{id}/logs?level=loud"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, _) = hub.post(&format!("/api/v1/connectors/{id}/disable"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let connector = hub.get(&format!("/api/v1/connectors/{id}")).await;
    assert_eq!(connector["health"]["status"], "disabled");
}
