//! Hub configuration: `hub.toml`, then `HUB_*` environment variables over it.
//!
//! Each section's type lives with what it configures: `[limits]` and `[quotas]` in
//! `runtime/`, `[jobs]` and `[retry]` in `jobs/`, `[webhooks]` in `webhooks/`, `[mqtt]` in
//! `triggers/`, `[plugins]` in `manager/plugins.rs`, `[auth]` in `auth/`, `[vault]` in
//! `vault.rs`, `[secrets]` in `secrets/`, `[keys]` in `crypto/`, `[backup]` in `backup/`,
//! `[observations]` in `observations.rs`. This file only puts them together.

pub mod reference;

use crate::auth::AuthConfig;
use crate::crypto::KeysConfig;
use crate::jobs::{JobsConfig, RetryPolicy};
use crate::manager::PluginsConfig;
use crate::runtime::{Limits, Quotas};
use crate::secrets::SecretsConfig;
use crate::vault::VaultConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Every environment variable the `hub` binary reads, with what it does: `docs/config.md`
/// lists them from here, and a test finds every `"HUB_…"` name in the code in this list.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("HUB_LISTEN", "Over `listen`."),
    ("HUB_DATA_DIR", "Over `data_dir`."),
    ("HUB_DATABASE_URL", "Over `database_url`."),
    (
        "HUB_ADMIN_KEY",
        "The bootstrap admin API key (at least 24 characters); never read from the file. Set it and restart to \
         replace a lost one.",
    ),
    (
        "HUB_VAULT_TOKEN",
        "The Vault/OpenBao token, when `[vault]` has no `role_id`.",
    ),
    (
        "HUB_VAULT_SECRET_ID",
        "The AppRole secret id that goes with `[vault] role_id`.",
    ),
    (
        "HUB_METRICS_TOKEN",
        "The bearer token Prometheus sends to `GET /metrics` (at least 16 characters); without it `/metrics` \
         answers only if `[auth] metrics_public = true`. Never read from the file.",
    ),
    (
        "HUB_ALERTS_SLACK_URL",
        "The Slack(-compatible) incoming-webhook URL the hub's alerts are delivered to (`[alerts]`); never read \
         from the file.",
    ),
    (
        "HUB_RABBITMQ_PASSWORD",
        "The password of `[events.rabbitmq] user`; never read from the file. Unset, the user `guest` (RabbitMQ's \
         stock account, which only connects from the broker's own machine) uses `guest`.",
    ),
    (
        "HUB_LOG_FORMAT",
        "`json` writes the log as JSON lines; anything else, or unset, as text.",
    ),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "Exports traces by OTLP to this collector (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` or `grpc`); the \
         other standard `OTEL_*` variables apply too (docs/operations.md).",
    ),
    (
        "RUST_LOG",
        "Log filter, e.g. `info,hub::pipeline=debug` (default: `info`, dependencies at `warn`).",
    ),
    (
        "HUB_API_URL",
        "Where `hub connectors …` and the other API commands reach the hub (default `http://127.0.0.1:8080`).",
    ),
    ("HUB_API_KEY", "The API key or SSO token those commands send."),
    (
        "HUB_PLUGIN_ARTIFACTS",
        "Build time only: where `host/build.rs` puts the bundled plugins' components for the binary to embed.",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid hub config: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("{var}={value:?} is not valid: {problem}")]
    Env {
        var: &'static str,
        value: String,
        problem: String,
    },
    #[error(
        "plugins.allow_unsigned is for a developer's own hub: it listens on {listen}, which other machines \
         reach; listen on 127.0.0.1 (or ::1), or sign the packages and trust their key"
    )]
    UnsignedOffLoopback { listen: SocketAddr },
    #[error("{0}")]
    Alerts(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Jobs(String),
    #[error(transparent)]
    RabbitMq(#[from] crate::events::rabbitmq::RabbitMqError),
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Address of the API.
    pub listen: SocketAddr,
    /// Where the SQLite database, the master key and the compile cache live.
    pub data_dir: PathBuf,
    /// `postgres://...` for production (its connections run with `jit = off`: the hub's
    /// statements are short); the SQLite file under `data_dir` when unset.
    pub database_url: Option<String>,
    /// The bootstrap admin API key. Only from `HUB_ADMIN_KEY`, never from the file.
    #[serde(skip)]
    pub admin_key: Option<SecretString>,
    pub limits: Limits,
    pub quotas: Quotas,
    pub retry: RetryPolicy,
    pub jobs: JobsConfig,
    pub webhooks: crate::webhooks::WebhooksConfig,
    /// The MQTT broker MQTT connectors read from; none means no MQTT ingest.
    pub mqtt: Option<crate::triggers::MqttConfig>,
    pub plugins: PluginsConfig,
    pub auth: AuthConfig,
    /// The Vault/OpenBao server, when secrets or the key-encryption key live there.
    pub vault: Option<VaultConfig>,
    pub secrets: SecretsConfig,
    pub keys: KeysConfig,
    pub backup: crate::backup::BackupConfig,
    pub observations: crate::observations::ObservationsConfig,
    pub alerts: crate::manager::alert_delivery::AlertsConfig,
    pub events: crate::events::delivery::EventsConfig,
}

/// A credential from the environment: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("static address"),
            data_dir: PathBuf::from("hub-data"),
            database_url: None,
            admin_key: None,
            limits: Limits::default(),
            quotas: Quotas::default(),
            retry: RetryPolicy::default(),
            jobs: JobsConfig::default(),
            webhooks: Default::default(),
            mqtt: None,
            plugins: PluginsConfig::default(),
            auth: AuthConfig::default(),
            vault: None,
            secrets: SecretsConfig::default(),
            keys: KeysConfig::default(),
            backup: Default::default(),
            observations: Default::default(),
            alerts: Default::default(),
            events: Default::default(),
        }
    }
}

impl HubConfig {
    /// Reads `path` (when it exists), then applies `HUB_LISTEN`, `HUB_DATA_DIR`,
    /// `HUB_DATABASE_URL`, `HUB_ADMIN_KEY`, `HUB_VAULT_TOKEN` and `HUB_VAULT_SECRET_ID`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.into(),
                    source,
                })?
            }
            None => Self::default(),
        };
        config.apply_env(|var| std::env::var(var).ok())?;
        config.alerts.check().map_err(ConfigError::Alerts)?;
        config.auth.check().map_err(ConfigError::Auth)?;
        config.jobs.check().map_err(ConfigError::Jobs)?;
        if let Some(rabbitmq) = &config.events.rabbitmq {
            rabbitmq.check()?;
        }
        // Unsigned packages run whatever code was uploaded: only on a hub nobody else reaches.
        if config.plugins.allow_unsigned && !config.listen.ip().is_loopback() {
            return Err(ConfigError::UnsignedOffLoopback { listen: config.listen });
        }
        Ok(config)
    }

    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(value) = var("HUB_LISTEN") {
            self.listen = value.parse().map_err(|_| ConfigError::Env {
                var: "HUB_LISTEN",
                value,
                problem: "expected an address like 127.0.0.1:8080".into(),
            })?;
        }
        if let Some(value) = var("HUB_DATA_DIR") {
            self.data_dir = value.into();
        }
        if let Some(value) = var("HUB_DATABASE_URL") {
            self.database_url = Some(value);
        }
        if let Some(value) = var("HUB_ADMIN_KEY") {
            if value.len() < 24 {
                return Err(ConfigError::Env {
                    var: "HUB_ADMIN_KEY",
                    value: "<hidden>".into(),
                    problem: "an admin key needs at least 24 characters".into(),
                });
            }
            self.admin_key = Some(SecretString::new(value));
        }
        if let Some(value) = var("HUB_ALERTS_SLACK_URL") {
            self.alerts.slack_url = Some(SecretString::new(value));
        }
        if let Some(value) = var("HUB_METRICS_TOKEN") {
            if value.len() < 16 {
                return Err(ConfigError::Env {
                    var: "HUB_METRICS_TOKEN",
                    value: "<hidden>".into(),
                    problem: "a metrics token needs at least 16 characters".into(),
                });
            }
            self.auth.metrics_token = Some(SecretString::new(value));
        }
        if let Some(value) = var("HUB_RABBITMQ_PASSWORD") {
            let Some(rabbitmq) = self.events.rabbitmq.as_mut() else {
                return Err(ConfigError::Env {
                    var: "HUB_RABBITMQ_PASSWORD",
                    value: "<hidden>".into(),
                    problem: "the config has no [events.rabbitmq] section to use it with".into(),
                });
            };
            rabbitmq.password = Some(SecretString::new(value));
        }
        for (name, is_token) in [("HUB_VAULT_TOKEN", true), ("HUB_VAULT_SECRET_ID", false)] {
            let Some(value) = var(name) else { continue };
            let Some(vault) = self.vault.as_mut() else {
                return Err(ConfigError::Env {
                    var: name,
                    value: "<hidden>".into(),
                    problem: "the config has no [vault] section to use it with".into(),
                });
            };
            let slot = if is_token {
                &mut vault.token
            } else {
                &mut vault.secret_id
            };
            *slot = Some(SecretString::new(value));
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("hub.db").display()))
    }
}

/// Checks a reference page's settings tables (`| \`name\` | default | ... |`) against the
/// defaults of config sections, so the docs cannot drift from the code.
#[cfg(test)]
pub(crate) fn assert_settings_documented(page: &str, doc: &str, sections: &[serde_json::Value]) {
    let documented: Vec<(String, String)> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_string(), cells.get(2)?.to_string()))
        })
        .collect();
    let mut expected = Vec::new();
    for defaults in sections {
        for (name, value) in defaults.as_object().expect("a config section") {
            let shown = if value.is_null() {
                "unset".into()
            } else {
                value.to_string()
            };
            expected.push((name.clone(), shown));
        }
    }
    for (name, value) in &expected {
        assert!(
            documented.contains(&(name.clone(), value.clone())),
            "{page} has no row `{name}` | {value}"
        );
    }
    for (name, _) in &documented {
        assert!(
            expected.iter().any(|(n, _)| n == name),
            "{page} documents `{name}`, which is no setting"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KekKind;
    use crate::secrets::SecretsBackend;

    #[test]
    fn docs_config_md_is_the_reference_the_code_renders() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md");
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            written == reference::config_markdown(),
            "docs/config.md differs from what the code documents: run `cargo run -p hub -- config reference > \
             docs/config.md` and commit it"
        );
        for section in [
            "[limits]",
            "[quotas]",
            "[jobs]",
            "[mqtt]",
            "[auth.oidc]",
            "[vault]",
            "[backup]",
        ] {
            assert!(written.contains(&format!("## `{section}`")), "{section} is documented");
        }
        assert!(
            written.contains("| `memory_mib` | integer | `256` |"),
            "defaults come from the code"
        );
        let unexplained: Vec<&str> = written.lines().filter(|l| l.ends_with("|  |")).collect();
        assert!(unexplained.is_empty(), "every key says what it does: {unexplained:?}");
        assert!(
            written.contains("| `roles_claim` | string | `\"roles\"` |"),
            "so do absent sections' defaults"
        );
    }

    #[test]
    fn docs_plugin_toml_md_is_the_reference_the_code_renders() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugin-toml.md");
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            written == reference::manifest_markdown(),
            "docs/plugin-toml.md differs from what the code documents: run `cargo run -p hub -- plugin reference > \
             docs/plugin-toml.md` and commit it"
        );
        assert!(written.contains("| `name` | string | required |"), "{written}");
        assert!(
            written.contains("\"with-active-str\""),
            "the creation policies are listed"
        );
    }

    #[test]
    fn every_hub_variable_the_code_reads_is_in_the_reference() {
        let documented: Vec<&str> = ENVIRONMENT.iter().map(|(name, _)| *name).collect();
        let asked = std::sync::Mutex::new(Vec::new());
        let mut config = HubConfig::default();
        config
            .apply_env(|var| {
                asked.lock().unwrap().push(var.to_string());
                None
            })
            .unwrap();
        for var in asked.into_inner().unwrap() {
            assert!(
                documented.contains(&var.as_str()),
                "{var} is read over hub.toml but not documented"
            );
        }
        let mut in_code = std::collections::BTreeSet::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("\"HUB_") {
                    let name: String = text[at + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                        .collect();
                    if !name.ends_with('_') && text[at + 1 + name.len()..].starts_with('"') {
                        in_code.insert(name);
                    }
                }
            }
        }
        assert!(in_code.len() >= 9, "{in_code:?}");
        for name in in_code {
            assert!(
                documented.contains(&name.as_str()),
                "{name} is read by the code but not in ENVIRONMENT"
            );
        }
    }

    #[test]
    fn env_overrides_file_and_bad_values_say_why() {
        let mut config: HubConfig = toml::from_str("listen = \"127.0.0.1:9000\"\n[limits]\nmemory_mib = 64").unwrap();
        assert_eq!(config.limits.memory_mib, 64);
        config
            .apply_env(|v| (v == "HUB_DATA_DIR").then(|| "/tmp/x".to_string()))
            .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.listen.port(), 9000);
        let err = config
            .apply_env(|v| (v == "HUB_LISTEN").then(|| "nope".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("HUB_LISTEN"));
        let err = config
            .apply_env(|v| (v == "HUB_ADMIN_KEY").then(|| "short".to_string()))
            .unwrap_err();
        assert!(!err.to_string().contains("short"), "never echo a key");
    }

    #[test]
    fn a_claim_of_jobs_is_refused_when_the_span_of_its_call_could_not_link_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        for (batch, accepted) in [(0, false), (1, true), (1024, true), (1025, false)] {
            std::fs::write(&path, format!("[jobs]\nbatch = {batch}\n")).unwrap();
            match HubConfig::load(Some(&path)) {
                Ok(config) => assert!(accepted, "batch = {batch} was accepted: {:?}", config.jobs),
                Err(refused) => {
                    assert!(!accepted, "batch = {batch}: {refused}");
                    assert!(refused.to_string().starts_with("[jobs] batch = "), "{refused}");
                }
            }
        }
    }

    #[test]
    fn unsigned_packages_are_allowed_only_on_a_hub_listening_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        let write = |listen: &str| {
            let text = format!("listen = {listen:?}\n[plugins]\nallow_unsigned = true\n");
            std::fs::write(&path, text).unwrap();
        };
        write("0.0.0.0:8080");
        let refused = HubConfig::load(Some(&path)).unwrap_err();
        assert!(refused.to_string().contains("listen on 127.0.0.1"), "{refused}");
        write("[::1]:8080");
        assert!(HubConfig::load(Some(&path)).unwrap().plugins.allow_unsigned);
    }

    #[test]
    fn the_readme_config_parses_and_bad_keys_are_refused() {
        let key = hub_registry::SigningKey::generate().public_key();
        let text = format!(
            "[plugins]\ntrusted_keys = [\"{key}\"]\nregistries = [\"/srv/hub-registry\"]\n\
             [auth]\ncors_origins = [\"https://admin.example.go.id\"]\n\
             [auth.oidc]\nissuer = \"https://sso.example.go.id\"\naudience = \"healthforce-hub\"\n"
        );
        let config: HubConfig = toml::from_str(&text).unwrap();
        assert_eq!(config.plugins.trusted_keys, vec![key]);
        assert!(
            !config.plugins.allow_unsigned,
            "signatures are required unless asked otherwise"
        );
        let oidc = config.auth.oidc.unwrap();
        assert_eq!(oidc.roles_claim, "roles");
        assert_eq!(oidc.jwks_min_refresh_secs, 10);
        let err = toml::from_str::<HubConfig>("[plugins]\ntrusted_keys = [\"ed25519:nope\"]").unwrap_err();
        assert!(err.to_string().contains("not a publisher key"), "{err}");
    }

    #[test]
    fn vault_settings_parse_and_credentials_come_only_from_the_environment() {
        let text = "[vault]\naddress = \"https://vault.example.go.id:8200\"\nrole_id = \"hub\"\n\
                    [secrets]\nbackend = \"vault\"\n[keys]\nkek = \"transit\"\n";
        let mut config: HubConfig = toml::from_str(text).unwrap();
        assert_eq!(config.secrets.backend, SecretsBackend::Vault);
        assert_eq!(config.secrets.kv_mount, "secret");
        assert_eq!(config.keys.kek, KekKind::Transit);
        assert_eq!(config.keys.transit_key, "healthforce-hub");
        let err = toml::from_str::<HubConfig>("[vault]\naddress = \"x\"\ntoken = \"s.abc\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown field"),
            "a token is never read from the file: {err}"
        );
        config
            .apply_env(|v| (v == "HUB_VAULT_SECRET_ID").then(|| "secret-id-value".to_string()))
            .unwrap();
        let vault = config.vault.as_ref().unwrap();
        assert_eq!(vault.secret_id.as_ref().unwrap().expose(), "secret-id-value");
        assert!(
            !format!("{config:?}").contains("secret-id-value"),
            "Debug never prints it"
        );
        let mut bare = HubConfig::default();
        let err = bare
            .apply_env(|v| (v == "HUB_VAULT_TOKEN").then(|| "s.token".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("no [vault] section") && !err.to_string().contains("s.token"));
    }
}
