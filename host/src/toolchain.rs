//! The toolchains plugins are built with: the wasm32-wasip2 target of the Rust toolchain —
//! what the build script needs to build the bundled plugins, and `hub plugin build` an
//! integrator's; shared by both (`build.rs` includes this file), so they add the target the
//! same way — and componentize-py for connectors in Python.

use std::path::PathBuf;
use std::process::Command;

/// The target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The componentize-py release (PyPI) Python connectors are built and tested with.
#[allow(dead_code, reason = "build.rs includes this file and builds no Python")]
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// Adds the wasm32-wasip2 standard library to the toolchain `rustc` belongs to when it is
/// missing (`rust-toolchain.toml` alone does not install it when `RUSTUP_AUTO_INSTALL=0`).
pub fn ensure_wasm_target(rustc: &str, toolchain: Option<&str>) -> Result<(), String> {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|sysroot| sysroot.join("lib/rustlib").join(WASM_TARGET).exists()) {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", WASM_TARGET]);
    if let Some(toolchain) = toolchain {
        rustup.args(["--toolchain", toolchain]);
    }
    let status = rustup.status().map_err(|e| {
        format!("the {WASM_TARGET} target is missing and rustup could not be run ({e}); install it with `rustup target add {WASM_TARGET}`")
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`rustup target add {WASM_TARGET}` failed; run it by hand and try again"
        ))
    }
}
