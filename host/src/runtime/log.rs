//! `healthforce:hub/log`: plugin log lines, into the connector's log and tracing. Messages
//! and field values are cut to their quotas, and lines are handed to the store every
//! [`LOG_FLUSH_LINES`], so a flood costs the hub bounded memory; past `log_lines` the call
//! ends.

use super::bindings::latest::healthforce::hub::log::{self, Level};
use super::host::{HostState, LOG_FLUSH_LINES, LogLevel};
use super::quotas::{QuotaExceeded, truncate};

/// Fields kept per line, and bytes of a field name.
const MAX_FIELDS: usize = 32;
const MAX_FIELD_NAME: usize = 64;

impl log::Host for HostState {
    async fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        let quotas = &self.quotas;
        if self.usage.log_lines >= quotas.log_lines {
            return Err(QuotaExceeded {
                quota: "log_lines",
                limit: quotas.log_lines.into(),
                what: "one more log line".into(),
            }
            .into());
        }
        self.usage.log_lines += 1;
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
        self.job.log(level, message, fields, true);
        if self.usage.log_lines.is_multiple_of(LOG_FLUSH_LINES) {
            self.job.flush_logs().await;
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

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_never_reach_the_log() {
        assert_eq!(super::printable("a\0b\x1b[31mc\n".into()), "a\u{FFFD}b\u{FFFD}[31mc\n");
        assert_eq!(super::printable("plain".into()), "plain");
    }
}
