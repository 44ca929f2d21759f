//! `hub plugin keygen | package | publish` as a publisher runs them: the package they make is
//! signed by the printed key and lands in the registry index.

mod common;

use hub_registry::{DirRegistry, Package, PublicKey, Trust, TrustPolicy};

fn hub(args: &[&str]) -> String {
    let (ok, text) = common::run_hub(args);
    assert!(ok, "hub {args:?}: {text}");
    text
}

/// `hub plugin package` of `dir`'s plugin.toml and component.wasm, signed with its
/// publisher.key, into `dir/dist`.
fn package(dir: &std::path::Path) -> (bool, String) {
    let path = |name: &str| dir.join(name).display().to_string();
    common::run_hub(&[
        "plugin",
        "package",
        "--manifest",
        &path("plugin.toml"),
        "--component",
        &path("component.wasm"),
        "--key",
        &path("publisher.key"),
        "--out",
        &path("dist"),
    ])
}

#[test]
fn keygen_package_publish_produce_a_trusted_package_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let printed = hub(&["plugin", "keygen", "--out", &path("publisher.key")]);
    let public: PublicKey = printed
        .split_whitespace()
        .find(|w| w.starts_with("ed25519:"))
        .expect("keygen prints the public key")
        .parse()
        .unwrap();
    let mode = std::fs::metadata(path("publisher.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o077,
        0,
        "private key is private"
    );

    std::fs::write(path("plugin.toml"), hub::bundled::REGNAKES.manifest).unwrap();
    std::fs::write(path("component.wasm"), hub::bundled::REGNAKES.component).unwrap();
    let (ok, text) = package(dir.path());
    assert!(ok, "{text}");
    hub(&[
        "plugin",
        "publish",
        &path("dist/regnakes-0.1.0.hfpkg"),
        "--registry",
        &path("registry"),
    ]);

    let registry = DirRegistry::new(path("registry"));
    let index = registry.index().unwrap();
    let entry = index.find("regnakes", Some("0.1.0")).expect("published");
    assert_eq!(entry.publisher.as_deref(), Some(public.to_string().as_str()));
    let package: Package = registry.fetch(entry).unwrap();
    let policy = TrustPolicy {
        trusted_keys: vec![public],
        allow_unsigned: false,
    };
    assert_eq!(policy.verify(&package), Ok(Trust::SignedBy(public)));

    // keygen never overwrites a key.
    let (ok, text) = common::run_hub(&["plugin", "keygen", "--out", &path("publisher.key")]);
    assert!(!ok, "{text}");
}

#[test]
fn package_refuses_what_the_hub_would_refuse_each_with_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    hub(&["plugin", "keygen", "--out", &path("publisher.key")]);
    let manifest = hub::bundled::REGNAKES.manifest;
    let refused = |manifest: &str, component: &[u8]| {
        std::fs::write(path("plugin.toml"), manifest).unwrap();
        std::fs::write(path("component.wasm"), component).unwrap();
        let (ok, text) = package(dir.path());
        assert!(!ok, "refused: {text}");
        assert!(!dir.path().join("dist").exists(), "nothing is signed or written");
        text
    };

    let junk = refused(manifest, b"#!/bin/sh\necho not a plugin\n");
    assert!(junk.contains("is not WebAssembly"), "{junk}");
    let module = refused(manifest, b"\0asm\x01\0\0\0");
    assert!(module.contains("core WebAssembly module, not a component"), "{module}");
    let contract = refused(
        &manifest.replace("contract = \"0.3.0\"", "contract = \"0.2.0\""),
        hub::bundled::REGNAKES.component,
    );
    assert!(
        contract.contains("says contract 0.2.0 but the component exports contract 0.3.0"),
        "{contract}"
    );
    let unsupported = refused(
        &manifest.replace("contract = \"0.3.0\"", "contract = \"9.0.0\""),
        hub::bundled::REGNAKES.component,
    );
    assert!(unsupported.contains("cannot run"), "{unsupported}");
    let bad_name = refused(
        &manifest.replace("name = \"regnakes\"", "name = \"Reg Nakes\""),
        hub::bundled::REGNAKES.component,
    );
    assert!(bad_name.contains("name must be 1-64 characters"), "{bad_name}");
    for text in [junk, module, contract, unsupported, bad_name] {
        assert!(
            !text.contains("Some(") && !text.contains("{ "),
            "no Debug formatting: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_run_syncs_from_the_simulator_storing_nothing_and_resumes_from_its_state() {
    let sim = hub_sim::RegnakesSim::new(hub_sim::RegnakesConfig {
        people: 300,
        ..Default::default()
    });
    let running = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = running.base_url();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("plugin.toml"), hub::bundled::REGNAKES.manifest).unwrap();
    std::fs::write(path("component.wasm"), hub::bundled::REGNAKES.component).unwrap();
    std::fs::write(
        path("config.json"),
        format!(r#"{{"base_url": "{base}", "per_page": 100}}"#),
    )
    .unwrap();
    let config = sim.config();
    let secret = format!("client_secret={}", config.client_secret);
    let credential = format!("regnakes={base}/oauth/token,{},client_secret", config.client_id);
    let host = base.trim_start_matches("http://").to_string();
    let run = move |egress: &str| {
        let args: Vec<String> = [
            "plugin",
            "run",
            "--component",
            &path("component.wasm"),
            "--manifest",
            &path("plugin.toml"),
            "--config",
            &path("config.json"),
            "--secret",
            &secret,
            "--credential",
            &credential,
            "--state",
            &path("state"),
            "--egress",
            egress,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        async move {
            tokio::task::spawn_blocking(move || common::run_hub(&args.iter().map(String::as_str).collect::<Vec<_>>()))
                .await
                .unwrap()
        }
    };

    let (ok, text) = run(&host).await;
    assert!(ok, "{text}");
    let emitted = text.lines().filter(|l| l.starts_with(r#"{"Practitioner":"#)).count();
    assert_eq!(emitted, sim.total(), "every record is printed: {text}");
    let refused = text
        .lines()
        .filter(|l| l.trim_start().starts_with("refused, record"))
        .count();
    assert_eq!(
        refused,
        sim.expected_rejects().len(),
        "what the hub would refuse, with its reason"
    );
    assert!(
        text.contains("STR is not active"),
        "the creation policy is judged too: {text}"
    );
    assert!(text.contains("sync succeeded"), "{text}");
    let state = std::fs::read_to_string(dir.path().join("state/state.json")).unwrap();
    assert!(state.contains("cursor"), "{state}");

    // The next run resumes from the saved cursor: nothing changed since.
    let (ok, text) = run(&host).await;
    assert!(ok, "{text}");
    assert!(text.contains("0 records emitted"), "{text}");

    // A host outside the allow-list is refused, named.
    let (ok, text) = run("elsewhere.example").await;
    assert!(!ok, "{text}");
    assert!(text.contains("not in this connector's egress allow-list"), "{text}");
    assert!(text.contains(&host), "the denied host is named: {text}");
}
