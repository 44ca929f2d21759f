//! `hub plugin keygen | package | publish` as a publisher runs them: the package they make is
//! signed by the printed key and lands in the registry index.

mod common;

use hub_registry::{DirRegistry, Package, PublicKey, Trust, TrustPolicy};

fn hub(args: &[&str]) -> String {
    let (ok, text) = common::run_hub(args);
    assert!(ok, "hub {args:?}: {text}");
    text
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
    hub(&[
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
    ]);
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
    let package = |manifest: &str, component: &[u8]| {
        std::fs::write(path("plugin.toml"), manifest).unwrap();
        std::fs::write(path("component.wasm"), component).unwrap();
        let (ok, text) = common::run_hub(&[
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
        ]);
        assert!(!ok, "refused: {text}");
        assert!(!dir.path().join("dist").exists(), "nothing is signed or written");
        text
    };

    let junk = package(manifest, b"#!/bin/sh\necho not a plugin\n");
    assert!(junk.contains("is not WebAssembly"), "{junk}");
    let module = package(manifest, b"\0asm\x01\0\0\0");
    assert!(module.contains("core WebAssembly module, not a component"), "{module}");
    let contract = package(
        &manifest.replace("contract = \"0.2.1\"", "contract = \"0.2.0\""),
        hub::bundled::REGNAKES.component,
    );
    assert!(
        contract.contains("says contract 0.2.0 but the component exports contract 0.2.1"),
        "{contract}"
    );
    let unsupported = package(
        &manifest.replace("contract = \"0.2.1\"", "contract = \"9.0.0\""),
        hub::bundled::REGNAKES.component,
    );
    assert!(unsupported.contains("cannot run"), "{unsupported}");
    let bad_name = package(
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
