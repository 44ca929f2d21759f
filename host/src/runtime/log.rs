//! `healthforce:hub/log`: plugin log lines, into the connector's log and tracing. Messages
//! and field values are cut to their quotas, and lines are handed to the store every
//! [`LOG_FLUSH_LINES`], so a flood costs the hub bounded memory; past `log_lines` the call
//! ends.

use super::bindings::latest::healthforce::hub::log::{self, Level};
use super::host::HostState;
use super::quotas::{QuotaExceeded, truncate};
use futures::future::BoxFuture;
use std::sync::Arc;

/// Severity of a connector log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Where the log lines of the job an instance serves go: the connector's log and tracing.
pub trait LogSink: Send + Sync + 'static {
    /// A plugin's `log.write`, or the host's own event about this job (`from_plugin` false).
    /// Lines may be buffered; [`LogSink::flush_logs`] stores them.
    fn log(&self, level: LogLevel, message: String, fields: Vec<(String, String)>, from_plugin: bool);
    /// Stores the buffered lines; called every [`LOG_FLUSH_LINES`] plugin lines, so a plugin
    /// that logs a lot never makes the host hold its whole log in memory.
    fn flush_logs(&self) -> BoxFuture<'_, ()>;
}

/// Plugin log lines between two flushes to the store.
pub const LOG_FLUSH_LINES: u32 = 256;

/// The log capability of one instance: its sink and the lines written so far.
pub(super) struct Log {
    pub sink: Arc<dyn LogSink>,
    lines: u32,
}

impl Log {
    pub fn new(sink: Arc<dyn LogSink>) -> Self {
        Self { sink, lines: 0 }
    }
}

/// Fields kept per line, and bytes of a field name.
const MAX_FIELDS: usize = 32;
const MAX_FIELD_NAME: usize = 64;

impl log::Host for HostState {
    async fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        let quotas = &self.quotas;
        if self.log.lines >= quotas.log_lines {
            return Err(QuotaExceeded {
                quota: "log_lines",
                limit: quotas.log_lines.into(),
                what: "one more log line".into(),
            }
            .into());
        }
        self.log.lines += 1;
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let message = printable(truncate(message, quotas.log_line_bytes as usize));
        let fields = fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|(name, value)| {
                (
                    printable(truncate(name, MAX_FIELD_NAME)),
                    printable(truncate(value, quotas.log_field_bytes as usize)),
                )
            })
            .collect();
        self.log.sink.log(level, message, fields, true);
        if self.log.lines.is_multiple_of(LOG_FLUSH_LINES) {
            self.log.sink.flush_logs().await;
        }
        Ok(())
    }
}

/// `text` with control characters other than newline and tab replaced by U+FFFD: a NUL
/// cannot be stored in PostgreSQL text, and escape sequences must not reach a terminal
/// that shows the log.
fn printable(text: String) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return text;
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Links this capability's interface of the latest contract.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    log::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_never_reach_the_log() {
        assert_eq!(super::printable("a\0b\x1b[31mc\n".into()), "a\u{FFFD}b\u{FFFD}[31mc\n");
        assert_eq!(super::printable("plain".into()), "plain");
    }
}
