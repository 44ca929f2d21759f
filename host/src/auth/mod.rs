//! Who may call the API: roles and permissions, API keys and SSO tokens.

pub mod oidc;
pub mod roles;
pub mod session;
pub mod smart;

pub use oidc::{OidcConfig, OidcVerifier, TokenError};
pub use roles::{Caller, Grant, PII_READ, Permission, Role};
use serde::Deserialize;

/// `[auth]`: SSO bearer tokens, console sessions and CORS.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub oidc: Option<OidcConfig>,
    /// Origins allowed to call the API from a browser; none by default.
    pub cors_origins: Vec<String>,
    /// The bearer token `GET /metrics` asks for. Only from `HUB_METRICS_TOKEN`, never from
    /// the file.
    #[serde(skip)]
    pub metrics_token: Option<crate::config::SecretString>,
    /// Serve `GET /metrics` to anyone who reaches the API, without a token (when
    /// `HUB_METRICS_TOKEN` is unset). Off, a hub without a metrics token serves its metrics
    /// to no one.
    pub metrics_public: bool,
    /// The URL browsers reach the hub at, e.g. `https://hub.example.go.id` behind a TLS
    /// proxy: the console's SSO sign-in returns to it, and with `https` the session cookie is
    /// `Secure`. Unset, it is `http://` and the `listen` address.
    pub public_url: Option<String>,
    /// A console session ends after this many minutes without a request.
    #[schemars(range(min = 1))]
    pub session_idle_minutes: u64,
    /// A console session ends this many hours after sign-in, used or not.
    #[schemars(range(min = 1))]
    pub session_max_hours: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            oidc: None,
            cors_origins: Vec::new(),
            metrics_token: None,
            metrics_public: false,
            public_url: None,
            // An operator's shift is 8-12 hours; half an hour idle is the usual screen-lock
            // horizon for a console showing personal data.
            session_idle_minutes: 30,
            session_max_hours: 12,
        }
    }
}

impl AuthConfig {
    /// Settings a TOML type cannot refuse.
    pub fn check(&self) -> Result<(), String> {
        if self.session_idle_minutes == 0 || self.session_max_hours == 0 {
            return Err(
                "[auth] session_idle_minutes and session_max_hours must be at least 1: a session that ends at once \
                 signs no one in"
                    .into(),
            );
        }
        if let Some(url) = &self.public_url {
            let parsed =
                reqwest::Url::parse(url).map_err(|e| format!("[auth] public_url {url:?} is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(format!(
                    "[auth] public_url {url:?} must be an http:// or https:// URL with a host, e.g. https://hub.example.go.id"
                ));
            }
        }
        Ok(())
    }

    /// Where browsers reach the hub, without a trailing slash.
    pub fn public_url(&self, listen: std::net::SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{listen}"),
        }
    }
}
