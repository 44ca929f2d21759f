//! `healthforce:hub/log`: plugin log lines, into the connector's log and tracing.

use super::bindings::since_v0_1_0::healthforce::hub::log::{self, Level};
use super::host::{HostState, LogLevel};

/// Longest log message kept from a plugin; a plugin must not flood the log table.
const MAX_MESSAGE: usize = 4096;

impl log::Host for HostState {
    async fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let cut = (0..=MAX_MESSAGE)
                .rev()
                .find(|&i| message.is_char_boundary(i))
                .unwrap_or(0);
            message.truncate(cut);
        }
        self.job
            .log(level, message, fields.into_iter().take(32).collect(), true);
        Ok(())
    }
}
