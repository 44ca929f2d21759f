//! Hub configuration: `hub.toml`, then `HUB_*` environment variables over it.

use crate::jobs::{JobsConfig, RetryPolicy};
use crate::runtime::{Limits, Quotas};
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

/// `[vault]`: a Vault or OpenBao server. The token (`HUB_VAULT_TOKEN`) or AppRole secret id
/// (`HUB_VAULT_SECRET_ID`) come from the environment only, never from the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// `https://vault.example.go.id:8200`.
    pub address: String,
    /// Vault Enterprise / OpenBao namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// AppRole login when set (with `HUB_VAULT_SECRET_ID`); else the token in `HUB_VAULT_TOKEN`.
    #[serde(default)]
    pub role_id: Option<String>,
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    #[serde(default = "default_vault_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(skip)]
    pub token: Option<SecretString>,
    #[serde(skip)]
    pub secret_id: Option<SecretString>,
}

fn default_approle_mount() -> String {
    "approle".into()
}

fn default_vault_timeout_secs() -> u64 {
    10
}

/// Where connector secrets are kept.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretsBackend {
    /// The hub's database, sealed under the data keys.
    #[default]
    Local,
    /// Vault/OpenBao KV v2 (`[vault]`).
    Vault,
}

/// `[secrets]`: the connector secret backend.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    pub backend: SecretsBackend,
    /// KV v2 mount.
    pub kv_mount: String,
    /// Secrets live at `<kv_mount>/<path_prefix>/<connector id>/<name>`.
    pub path_prefix: String,
    /// How long a secret read from Vault is reused before it is read again.
    pub cache_ttl_secs: u64,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            backend: SecretsBackend::Local,
            kv_mount: "secret".into(),
            path_prefix: "healthforce-hub".into(),
            cache_ttl_secs: 30,
        }
    }
}

/// What wraps the data keys.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KekKind {
    /// `master.key` in the data directory (mode 0600).
    #[default]
    Local,
    /// A Vault/OpenBao transit key (`[vault]`): the key never leaves Vault.
    Transit,
}

/// `[keys]`: the key-encryption key and key rotation.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    pub kek: KekKind,
    pub transit_mount: String,
    pub transit_key: String,
    /// How often a hub re-reads the data key list, so a rotation started on another replica
    /// reaches it. A rotation waits twice this long before re-encrypting.
    pub reload_secs: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            kek: KekKind::Local,
            transit_mount: "transit".into(),
            transit_key: "healthforce-hub".into(),
            reload_secs: 10,
        }
    }
}

/// `[plugins]`: where packages come from and whose signatures are trusted.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Publisher keys (`ed25519:...`) whose packages may be installed.
    pub trusted_keys: Vec<hub_registry::PublicKey>,
    /// Dev mode only: install packages that carry no signature.
    pub allow_unsigned: bool,
    /// Registries searched in order for `name@version`: directories or `http(s)://` base URLs.
    pub registries: Vec<String>,
}

/// `[auth]`: SSO bearer tokens and CORS.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub oidc: Option<OidcConfig>,
    /// Origins allowed to call the API from a browser; none by default.
    pub cors_origins: Vec<String>,
}

/// `[auth.oidc]`: the SSO whose JWTs the API accepts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer URL; discovery is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// Claim holding the caller's roles (a string or a list of strings).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Shortest time between two JWKS fetches caused by unknown key ids, so forged `kid`s
    /// cannot make the hub hammer the SSO.
    #[serde(default = "default_jwks_refresh_secs")]
    pub jwks_min_refresh_secs: u64,
}

fn default_jwks_refresh_secs() -> u64 {
    10
}

fn default_roles_claim() -> String {
    "roles".into()
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
