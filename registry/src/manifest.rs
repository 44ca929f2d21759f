//! `plugin.toml`: what a plugin is, which contract version it was built against, which
//! triggers it supports, which hosts it calls by default, which secrets and credentials it
//! needs, and the JSON Schema of its instance config.

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("plugin.toml is not valid TOML for a manifest: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("plugin.toml: {field} {problem}")]
    Invalid { field: &'static str, problem: String },
}

/// How a connector can be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Sync,
    Webhook,
    Mqtt,
    /// The hub's own events (docs/events.md), handed to the plugin's `deliver`: an outbound
    /// connector, which sends them on to another system (contract 0.3.0 and later).
    Events,
}

/// Whether a connector's records may create practitioners (docs/golden-record.md). Records
/// of any policy update the practitioner they match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CreatePolicy {
    /// Only a record with an active STR creates a practitioner (seed 002: "STR harus valid
    /// dan aktif"): a licensing registry such as RegNakes or KKI. The default.
    #[default]
    WithActiveStr,
    /// Any record with a valid NIK creates one: a staff registry such as SISDMK or SIMPEG,
    /// which lists workers who hold no STR.
    WithValidNik,
    /// Records only update practitioners other connectors made.
    Never,
}

impl CreatePolicy {
    /// As written in `plugin.toml` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CreatePolicy::WithActiveStr => "with-active-str",
            CreatePolicy::WithValidNik => "with-valid-nik",
            CreatePolicy::Never => "never",
        }
    }
}

impl std::str::FromStr for CreatePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [Self::WithActiveStr, Self::WithValidNik, Self::Never]
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a creation policy: use with-active-str, with-valid-nik or never"))
    }
}

/// `plugin.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name: 1-64 characters of a-z, 0-9 and '-'.
    pub name: String,
    /// The plugin's version, semantic (`1.2.3`); a hub holds each `name@version` once.
    pub version: String,
    /// Version of the `healthforce:hub` WIT contract the plugin was built against
    /// (semantic); the hub refuses a contract it does not serve.
    pub contract: String,
    /// One line on what the plugin connects.
    #[serde(default)]
    pub description: String,
    /// How its connectors start: `sync` (schedules and manual runs), `webhook`, `mqtt`, or
    /// `events` (the hub's own events, for an outbound connector); at least one.
    pub triggers: Vec<Trigger>,
    /// Hosts (`host` or `host:port`) the plugin calls by default; an instance may narrow or
    /// replace the list. Nothing else is reachable.
    #[serde(default)]
    pub egress: Vec<String>,
    /// Secret names the plugin reads through the `secrets` import, each 1-64 characters of
    /// a-z, 0-9, '-' and '_'.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Host-held credential names the plugin asks tokens for through the `auth` import.
    #[serde(default)]
    pub credentials: Vec<String>,
    /// MQTT topic filters the plugin consumes.
    #[serde(default)]
    pub mqtt_topics: Vec<String>,
    /// Whether the connector's practitioner records may create practitioners
    /// (docs/golden-record.md); a connector may override it.
    #[serde(default)]
    pub creates_practitioners: CreatePolicy,
    /// JSON Schema of an instance's config (a TOML table); an instance whose config breaks
    /// it is refused with each broken field named.
    #[serde(default)]
    pub config_schema: serde_json::Value,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text)?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |field, problem: &str| ManifestError::Invalid {
            field,
            problem: problem.into(),
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(invalid("name", "must be 1-64 characters of a-z, 0-9 and '-'"));
        }
        if !is_semver(&self.version) {
            return Err(invalid("version", "must be a semantic version like 1.2.3"));
        }
        if !is_semver(&self.contract) {
            return Err(invalid("contract", "must be a semantic version like 0.1.0"));
        }
        if self.triggers.is_empty() {
            return Err(invalid(
                "triggers",
                "must name at least one of sync, webhook, mqtt, events",
            ));
        }
        // Names with other characters (`hub.webhook-current`) are the hub's own secrets; a
        // plugin must not be able to declare them.
        let secret_name_ok = |n: &String| {
            (1..=64).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        if !self.secrets.iter().all(secret_name_ok) {
            return Err(invalid(
                "secrets",
                "each name must be 1-64 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(())
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_cannot_declare_the_hubs_own_secrets() {
        let text = format!("{MANIFEST}\nsecrets = [\"hub.webhook-current\"]");
        let err = Manifest::parse(&text).unwrap_err();
        assert!(err.to_string().contains("secrets"), "{err}");
        assert!(Manifest::parse(&format!("{MANIFEST}\nsecrets = [\"client_secret\"]")).is_ok());
    }

    const MANIFEST: &str = r#"
        name = "regnakes"
        version = "0.1.0"
        contract = "0.1.0"
        triggers = ["sync"]
    "#;

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let err = Manifest::parse(&MANIFEST.replace("regnakes", "Reg Nakes")).unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
        let err = Manifest::parse(&MANIFEST.replace("[\"sync\"]", "[]")).unwrap_err();
        assert!(err.to_string().contains("triggers"), "{err}");
    }
}
