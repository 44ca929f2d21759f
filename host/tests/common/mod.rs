//! Running the `hub` binary as an operator does, for the CLI tests.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::process::Command;

/// Runs `hub <args>`; returns whether it exited 0 and its stdout and stderr together.
pub fn run_hub(args: &[&str]) -> (bool, String) {
    run_hub_with(args, &[])
}

/// [`run_hub`] with environment variables `env` set.
pub fn run_hub_with(args: &[&str], env: &[(&str, &std::path::Path)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("runs the hub binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
