//! One connection to Vault/OpenBao, shared by the KV v2 secret backend and the transit
//! key-encryption key: token or AppRole login, token renewal before the lease runs out, and
//! a fresh AppRole login when renewal is refused (token past its max TTL, or revoked).

use crate::config::SecretString;
use serde::Deserialize;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::RwLock;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

/// `[vault]`: a Vault or OpenBao server. The token (`HUB_VAULT_TOKEN`) or AppRole secret id
/// (`HUB_VAULT_SECRET_ID`) come from the environment only, never from the file.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
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
    /// Mount of the AppRole auth method.
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    /// How long one request to Vault may take.
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

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault.address {0:?} is not an http:// or https:// URL")]
    Address(String),
    #[error("no Vault/OpenBao credential: set HUB_VAULT_TOKEN, or vault.role_id in hub.toml and HUB_VAULT_SECRET_ID")]
    NoCredential,
    #[error(
        "Vault/OpenBao at {address} refused the hub's login ({reason}); check HUB_VAULT_TOKEN, or the AppRole role id and HUB_VAULT_SECRET_ID"
    )]
    Login { address: String, reason: String },
    #[error("Vault/OpenBao request failed: {0}")]
    Request(String),
}

impl VaultError {
    /// A request error, stripped to what Vault said: status and messages, never a body.
    pub fn request(error: &ClientError) -> Self {
        match error {
            ClientError::APIError { code, errors } => {
                VaultError::Request(format!("HTTP {code}: {}", errors.join("; ")))
            }
            other => VaultError::Request(other.to_string()),
        }
    }
}

/// Whether Vault answered with this HTTP status.
pub fn has_status(error: &ClientError, status: u16) -> bool {
    matches!(error, ClientError::APIError { code, .. } if *code == status)
}

pub struct Vault {
    config: VaultConfig,
    client: RwLock<Arc<VaultClient>>,
}

impl Vault {
    /// Logs in and starts renewing the token in the background for as long as the returned
    /// handle lives.
    pub async fn connect(config: &VaultConfig) -> Result<Arc<Self>, VaultError> {
        let url = reqwest::Url::parse(&config.address).map_err(|_| VaultError::Address(config.address.clone()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(VaultError::Address(config.address.clone()));
        }
        crate::manager::credentials::install_tls_provider();
        let (client, lease) = login(config).await?;
        let vault = Arc::new(Self {
            config: config.clone(),
            client: RwLock::new(Arc::new(client)),
        });
        tokio::spawn(keep_token_alive(Arc::downgrade(&vault), lease));
        Ok(vault)
    }

    pub fn address(&self) -> &str {
        &self.config.address
    }

    /// Runs `op` (named `operation` in `hub_vault_errors_total`) with the current client.
    /// When Vault answers 403 (token expired or revoked) and the hub logs in by AppRole, it
    /// logs in again and retries once.
    pub async fn call<T, F, Fut>(&self, operation: &'static str, op: F) -> Result<T, ClientError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let result = self.call_once_more_on_403(op).await;
        // A 404 answers a question (no such secret); it is no failure of Vault.
        if let Err(error) = &result
            && !has_status(error, 404)
        {
            crate::metrics::metrics().vault_error(operation);
        }
        result
    }

    async fn call_once_more_on_403<T, F, Fut>(&self, op: F) -> Result<T, ClientError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let client = self.client.read().await.clone();
        match op(client).await {
            Err(e) if has_status(&e, 403) && self.config.role_id.is_some() => {
                tracing::warn!("Vault refused the hub's token; logging in again by AppRole");
                match self.relogin().await {
                    Ok(_) => op(self.client.read().await.clone()).await,
                    Err(login) => {
                        tracing::error!(error = %login, "AppRole login failed");
                        Err(e)
                    }
                }
            }
            other => other,
        }
    }

    async fn relogin(&self) -> Result<u64, VaultError> {
        let (client, lease) = login(&self.config).await?;
        *self.client.write().await = Arc::new(client);
        Ok(lease)
    }
}

fn client_with_token(config: &VaultConfig, token: &str) -> Result<VaultClient, VaultError> {
    let mut settings = VaultClientSettingsBuilder::default();
    settings
        .address(&config.address)
        .token(token)
        .timeout(Some(Duration::from_secs(config.timeout_secs)));
    if let Some(namespace) = &config.namespace {
        settings.set_namespace(namespace.clone());
    }
    let settings = settings.build().map_err(|e| VaultError::Request(e.to_string()))?;
    VaultClient::new(settings).map_err(|e| VaultError::request(&e))
}

/// A client holding a valid token, and the token's lease in seconds (0: does not expire).
async fn login(config: &VaultConfig) -> Result<(VaultClient, u64), VaultError> {
    let refused = |e: ClientError| VaultError::Login {
        address: config.address.clone(),
        reason: VaultError::request(&e).to_string(),
    };
    match (&config.role_id, &config.secret_id, &config.token) {
        (Some(role_id), Some(secret_id), _) => {
            let anonymous = client_with_token(config, "")?;
            let auth = vaultrs::auth::approle::login(&anonymous, &config.approle_mount, role_id, secret_id.expose())
                .await
                .map_err(refused)?;
            Ok((client_with_token(config, &auth.client_token)?, auth.lease_duration))
        }
        (None, _, Some(token)) => {
            let client = client_with_token(config, token.expose())?;
            let me = vaultrs::token::lookup_self(&client).await.map_err(refused)?;
            Ok((client, me.ttl))
        }
        _ => Err(VaultError::NoCredential),
    }
}

/// Renews the token at two thirds of its lease; when renewal fails, logs in again (AppRole)
/// or keeps trying (a static token may be renewed by its owner).
async fn keep_token_alive(vault: Weak<Vault>, mut lease: u64) {
    while lease > 0 {
        tokio::time::sleep(Duration::from_millis(lease * 1000 * 2 / 3).max(Duration::from_millis(500))).await;
        let Some(vault) = vault.upgrade() else { return };
        let client = vault.client.read().await.clone();
        lease = match vaultrs::token::renew_self(&*client, None).await {
            Ok(auth) if auth.lease_duration >= 2 => auth.lease_duration,
            // Renewal that no longer extends the lease means the max TTL is reached.
            renewed => {
                if let Err(e) = &renewed {
                    tracing::warn!(error = %VaultError::request(e), "Vault token renewal failed");
                }
                if vault.config.role_id.is_some() {
                    match vault.relogin().await {
                        Ok(lease) => lease,
                        Err(error) => {
                            tracing::error!(%error, "AppRole login failed; retrying in 5 s");
                            5
                        }
                    }
                } else {
                    renewed.map(|a| a.lease_duration).unwrap_or(30).max(2)
                }
            }
        };
    }
}
