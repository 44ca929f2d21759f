//! Who may call the API: roles and permissions, API keys and SSO tokens.

pub mod oidc;
pub mod roles;

pub use oidc::{OidcConfig, OidcVerifier, TokenError};
pub use roles::{Caller, Grant, PII_READ, Permission, Role};
use serde::Deserialize;

/// `[auth]`: SSO bearer tokens and CORS.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
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
}
