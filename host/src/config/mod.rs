//! Hub configuration: `hub.toml`, then `HUB_*` environment variables over it.
//!
//! Each section's type lives with what it configures: `[limits]` and `[quotas]` in
//! `runtime/`, `[jobs]` and `[retry]` in `jobs/`, `[webhooks]` in `webhooks/`, `[mqtt]` in
//! `triggers/`, `[plugins]` in `manager/plugins.rs`, `[auth]` in `auth/`, `[vault]` in
//! `vault.rs`, `[secrets]` in `secrets/`, `[keys]` in `crypto/`, `[backup]` in `backup/`,
//! `[observations]` in `observations.rs`. This file only puts them together.

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
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Address of the API.
    pub listen: SocketAddr,
    /// Where the SQLite database, the master key and the compile cache live.
    pub data_dir: PathBuf,
    /// `postgres://...` for production; the SQLite file under `data_dir` when unset.
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
