//! Structured logging: lines land in the connector's log (per run) and in the host's tracing.

pub use crate::bindings::healthforce::hub::log::Level;
#[cfg(target_arch = "wasm32")]
use crate::bindings::healthforce::hub::log::write;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::imports::log::write;

/// Writes one log line with structured fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    write(level, message, &fields);
}

pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}
