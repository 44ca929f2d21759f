//! Builds the plugin components (the bundled connectors and the test fixtures) for
//! wasm32-wasip2, so that building the host is the only command a fresh checkout needs.
//!
//! The plugins are built by a nested cargo with its own target directory (`target/plugins`):
//! the outer cargo holds the lock on the main one. The wasm32-wasip2 target is added to the
//! toolchain when missing, since `rust-toolchain.toml` alone does not install it when
//! `RUSTUP_AUTO_INSTALL=0`.

#[path = "src/toolchain.rs"]
mod toolchain;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use toolchain::WASM_TARGET as TARGET;
/// Every plugin crate the build produces: bundled connectors first, then test fixtures.
const PLUGINS: &[&str] = &[
    "regnakes-plugin",
    "sso-plugin",
    "kki-plugin",
    "sisdmk-plugin",
    "iot-sensors-plugin",
    "odoo-plugin",
    "hostile-plugin",
    "contract-v0-1-0-plugin",
    "contract-v0-2-1-plugin",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    // Relative to host/: cargo may share this build's fingerprint with another checkout of
    // the same workspace in the same target dir, and absolute paths would watch that one.
    for input in ["plugins", "sdk", "wit", "migrations", "Cargo.lock"] {
        println!("cargo:rerun-if-changed=../{input}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/toolchain.rs");

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Err(problem) = toolchain::ensure_wasm_target(&rustc, env::var("RUSTUP_TOOLCHAIN").ok().as_deref()) {
        panic!("{problem}");
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugins");
    build_plugins(&root, &target_dir);

    let artifacts = target_dir.join(TARGET).join("release");
    for plugin in PLUGINS {
        let wasm = artifacts.join(format!("{}.wasm", plugin.replace('-', "_")));
        assert!(wasm.exists(), "plugin build finished but {} is missing", wasm.display());
    }
    println!("cargo:rustc-env=HUB_PLUGIN_ARTIFACTS={}", artifacts.display());
}

fn build_plugins(root: &Path, target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir)
        // Plugins ship without DWARF: the workspace's line tables made each component
        // ~3.5 MB instead of ~0.5 MB, and the hub embeds five and reads them at start.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    for plugin in PLUGINS {
        cmd.args(["--package", plugin]);
    }
    // Settings meant for the host build (clippy's wrapper, host rustflags, the outer target)
    // must not leak into the plugin build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the plugins");
    assert!(
        status.success(),
        "building the plugins for {TARGET} failed (see the output above)"
    );
}
