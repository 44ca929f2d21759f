//! Host-held OAuth2 client credentials: the hub fetches, caches and refreshes bearer tokens,
//! so a plugin never sees a client secret.

use crate::runtime::PluginError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A credential of a connector instance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    /// OAuth2 token endpoint.
    pub token_url: String,
    pub client_id: String,
    /// Name of the connector secret holding the client secret.
    pub client_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Tokens per (connector, credential).
pub struct TokenCache {
    http: reqwest::Client,
    tokens: Mutex<HashMap<(String, String), Cached>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// reqwest's TLS needs a process-wide crypto provider; a second install is a no-op.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl TokenCache {
    /// The hub's outbound HTTP client (token endpoints, HTTP plugin registries).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn new() -> Self {
        install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("building the HTTP client");
        Self {
            http,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A live token for the credential, fetched when none is cached or the cached one is
    /// about to expire.
    pub async fn token(
        &self,
        connector_id: &str,
        name: &str,
        spec: &CredentialSpec,
        client_secret: &str,
    ) -> Result<String, PluginError> {
        let key = (connector_id.to_string(), name.to_string());
        if let Some(cached) = self.tokens.lock().unwrap().get(&key)
            && cached.refresh_at > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", spec.client_id.as_str()),
            ("client_secret", client_secret),
        ];
        if let Some(scope) = &spec.scope {
            form.push(("scope", scope));
        }
        let response = self.http.post(&spec.token_url).form(&form).send().await.map_err(|e| {
            PluginError::Unavailable(format!(
                "token endpoint of credential {name:?} unreachable: {}",
                without_url(&e)
            ))
        })?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(PluginError::Unavailable(format!(
                "token endpoint of credential {name:?} answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(PluginError::Unauthorized(format!(
                "token endpoint refused the client credentials of {name:?} (HTTP {status}); check its client_id and client secret"
            )));
        }
        let body: TokenResponse = response.json().await.map_err(|_| {
            PluginError::Unavailable(format!(
                "token endpoint of credential {name:?} sent a response without access_token"
            ))
        })?;
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(300));
        // Refresh ahead of expiry: a tenth of the lifetime, at most 30 s early.
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        self.tokens.lock().unwrap().insert(
            key,
            Cached {
                token: body.access_token.clone(),
                refresh_at: Instant::now() + lifetime - margin,
            },
        );
        Ok(body.access_token)
    }

    /// Drops `token` if it is the cached one (the external system refused it).
    pub fn invalidate(&self, connector_id: &str, name: &str, token: &str) {
        let key = (connector_id.to_string(), name.to_string());
        let mut tokens = self.tokens.lock().unwrap();
        if tokens.get(&key).is_some_and(|c| c.token == token) {
            tokens.remove(&key);
        }
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

/// What went wrong with a token request, without the URL (which may carry query secrets).
fn without_url(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}
