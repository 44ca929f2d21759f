//! What a plugin may hand the host in one call: records, log lines, state, outgoing
//! requests. Defaults come from `[quotas]` in `hub.toml`; a connector may override any of
//! them (`"quotas": {...}` on create or PATCH). An exceeded quota ends that call with a
//! [`QuotaExceeded`] naming the quota, so only that job fails, with a reason an operator can
//! act on. A record too large for its quota is not a quota breach of the run: the pipeline
//! rejects that row with its reason and the batch goes on.

use serde::{Deserialize, Serialize};

/// `[quotas]` in `hub.toml`, and a connector's `quotas` over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Records in one `records.emit` or `records.queue` call. The host stores a batch in
    /// transactions of at most 500 rows whatever this is, so a large one never holds the
    /// database long.
    pub records_per_emit: u32,
    /// Bytes of one record (its JSON form); a larger record is rejected with its reason.
    pub record_bytes: u32,
    /// Bytes of one text field of a record; a longer field is rejected with its reason.
    pub field_bytes: u32,
    /// Entries of one list in a record (registrations, trainings, employments, educations,
    /// components, roles). Records are typed WIT values, so their nesting depth is fixed by
    /// the contract; the lists are what can grow.
    pub list_items: u32,
    /// Log lines one call may write.
    pub log_lines: u32,
    /// Bytes of a log message; longer ones are cut and marked `[truncated]`.
    pub log_line_bytes: u32,
    /// Bytes of a log field value; longer ones are cut and marked `[truncated]`.
    pub log_field_bytes: u32,
    /// Keys a connector may keep in `state` (the cursor included).
    pub state_keys: u32,
    /// Bytes of one `state` value.
    pub state_value_bytes: u32,
    /// Bytes of the sync cursor (`state.save-cursor`).
    pub cursor_bytes: u32,
    /// Outgoing HTTP requests one call may make.
    pub requests: u32,
    /// Outgoing HTTP requests of one call in flight at once; more wait for a free slot.
    pub requests_in_flight: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            records_per_emit: 5_000,
            record_bytes: 256 * 1024,
            field_bytes: 4 * 1024,
            list_items: 256,
            log_lines: 10_000,
            log_line_bytes: 4 * 1024,
            log_field_bytes: 1024,
            state_keys: 64,
            state_value_bytes: 64 * 1024,
            cursor_bytes: 4 * 1024,
            requests: 100_000,
            requests_in_flight: 8,
        }
    }
}

impl Quotas {
    /// These quotas with a connector's `overrides` (a JSON object of some of the fields)
    /// over them; an unknown name or a value that is not a positive whole number is refused.
    pub fn with_overrides(&self, overrides: &serde_json::Value) -> Result<Quotas, String> {
        let serde_json::Value::Object(fields) = overrides else {
            return Err("quotas must be an object, e.g. {\"log_lines\": 50000}".into());
        };
        let mut merged = serde_json::to_value(self).expect("quotas serialize");
        for (name, value) in fields {
            if merged.get(name).is_none() {
                return Err(format!(
                    "quotas.{name} is not a quota; known: {}",
                    Self::names().join(", ")
                ));
            }
            if !value.as_u64().is_some_and(|v| (1..=u32::MAX as u64).contains(&v)) {
                return Err(format!("quotas.{name} must be a whole number from 1 to {}", u32::MAX));
            }
            merged[name] = value.clone();
        }
        serde_json::from_value(merged).map_err(|e| format!("quotas: {e}"))
    }

    /// Every quota's name, as `hub.toml` and the API spell it.
    pub fn names() -> Vec<String> {
        match serde_json::to_value(Self::default()).expect("quotas serialize") {
            serde_json::Value::Object(fields) => fields.keys().cloned().collect(),
            _ => unreachable!("a struct serializes to an object"),
        }
    }
}

/// Raised when a call exceeds one of its quotas; ends that call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "plugin exceeded its quota quotas.{quota} = {limit}: {what}; raise it for this connector (PATCH \"quotas\") if this is expected"
)]
pub struct QuotaExceeded {
    /// The quota's name.
    pub quota: &'static str,
    pub limit: u64,
    /// What the plugin did.
    pub what: String,
}

/// `text` cut to at most `max` bytes on a character boundary, marked when it was cut.
pub fn truncate(mut text: String, max: usize) -> String {
    const MARK: &str = " [truncated]";
    if text.len() <= max {
        return text;
    }
    let keep = max.saturating_sub(MARK.len());
    let cut = (0..=keep).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text.truncate(cut);
    text.push_str(MARK);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overrides_replace_named_quotas_and_refuse_unknown_names_and_bad_values() {
        let quotas = Quotas::default()
            .with_overrides(&json!({ "log_lines": 50, "requests": 3 }))
            .unwrap();
        assert_eq!((quotas.log_lines, quotas.requests), (50, 3));
        assert_eq!(quotas.cursor_bytes, Quotas::default().cursor_bytes);
        let err = Quotas::default().with_overrides(&json!({ "log_line": 5 })).unwrap_err();
        assert!(
            err.contains("quotas.log_line is not a quota") && err.contains("log_lines"),
            "{err}"
        );
        for bad in [json!(0), json!(-1), json!("5"), json!(1.5), json!(u64::MAX)] {
            let err = Quotas::default()
                .with_overrides(&json!({ "log_lines": bad }))
                .unwrap_err();
            assert!(err.contains("whole number"), "{err}");
        }
    }

    /// docs/limits.md lists every setting of `[limits]` and `[quotas]` with its default, and
    /// nothing that is not one.
    #[test]
    fn the_limits_reference_matches_the_code() {
        crate::config::assert_settings_documented(
            "docs/limits.md",
            include_str!("../../../docs/limits.md"),
            &[
                serde_json::to_value(crate::runtime::Limits::default()).unwrap(),
                serde_json::to_value(Quotas::default()).unwrap(),
            ],
        );
    }

    #[test]
    fn truncation_keeps_whole_characters_and_says_so() {
        assert_eq!(truncate("short".into(), 64), "short");
        let cut = truncate("é".repeat(100), 40);
        assert!(cut.len() <= 40 && cut.ends_with("[truncated]"), "{cut}");
    }
}
