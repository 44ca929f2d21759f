//! Who may call the API: roles and permissions, API keys and SSO tokens.

pub mod oidc;
pub mod roles;

pub use oidc::{OidcVerifier, TokenError};
pub use roles::{Caller, Grant, PII_READ, Permission, Role};
