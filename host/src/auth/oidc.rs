//! Bearer JWTs from the SSO: OIDC discovery, a JWKS cache refreshed when a token names an
//! unknown key id, RS256 and ES256 only, `iss`, `aud`, `exp` and `nbf` checked, roles read
//! from a configurable claim.

use super::roles::{Caller, PII_READ, Role};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// `[auth.oidc]`: the SSO whose JWTs the API accepts.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
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
    /// The OAuth client id the console signs in with (authorization code with PKCE, a public
    /// client; register `<public_url>/login/callback` as its redirect URI). Unset, the
    /// console offers sign-in with an API key only.
    #[serde(default)]
    pub console_client_id: Option<String>,
}

fn default_jwks_refresh_secs() -> u64 {
    10
}

fn default_roles_claim() -> String {
    "roles".into()
}

/// Signature algorithms accepted. HMAC and `none` are refused: with HMAC a public key
/// could be used as a shared secret.
const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// JWKS older than this is fetched again on the next token.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Why a token was refused. The text is safe to return: it never quotes the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token is signed with {0}; only RS256 and ES256 are accepted")]
    Algorithm(String),
    #[error("the token names critical header extensions (crit), which this hub does not support")]
    Critical,
    #[error("the token has no key id (kid)")]
    NoKeyId,
    #[error("the token's key id is not in the SSO's key set (checked again just now)")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token carries none of the roles admin, operator, integrator, viewer in claim {0:?}")]
    NoRole(String),
    #[error("the SSO cannot be reached to check the token's key: {0}")]
    Sso(String),
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
}

/// Where a browser signs in at the SSO, and where the code it brings back is redeemed.
pub struct SignInEndpoints {
    pub authorization: String,
    pub token: String,
}

struct Keys {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
    fetched: Option<Instant>,
}

pub struct OidcVerifier {
    config: OidcConfig,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// One JWKS fetch at a time.
    refresh: Mutex<()>,
}

/// What a verified token says about its holder.
#[derive(Clone, Debug)]
pub struct Verified {
    pub caller: Caller,
    /// Expiry, for caching the login audit per token.
    pub expires_at: u64,
}

impl OidcVerifier {
    pub fn new(config: OidcConfig) -> Self {
        crate::manager::credentials::install_tls_provider();
        Self {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a reqwest client builds"),
            keys: RwLock::new(Keys {
                by_kid: HashMap::new(),
                fetched: None,
            }),
            refresh: Mutex::new(()),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => TokenError::Algorithm("an unsupported algorithm".into()),
            _ => TokenError::Malformed,
        })?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        // RFC 7515 §4.1.11: a recipient must refuse a token naming critical extensions it
        // does not understand, and this hub understands none.
        if header.crit.is_some() {
            return Err(TokenError::Critical);
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        let (alg, key) = self.key(&kid).await?;
        if alg != header.alg {
            return Err(TokenError::Algorithm(format!(
                "{:?}, but its key is for {alg:?}",
                header.alg
            )));
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        self.caller(&claims)
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The SSO's authorization and token endpoints, from its discovery document.
    pub async fn sign_in_endpoints(&self) -> Result<SignInEndpoints, TokenError> {
        let discovery = self.discovery().await?;
        match (discovery.authorization_endpoint, discovery.token_endpoint) {
            (Some(authorization), Some(token)) => Ok(SignInEndpoints { authorization, token }),
            _ => Err(TokenError::Sso(
                "its discovery document names no authorization_endpoint or token_endpoint, so browsers cannot sign \
                 in with it; sign in with an API key"
                    .into(),
            )),
        }
    }

    /// Redeems an authorization code with its PKCE verifier (RFC 7636) at `token_endpoint`,
    /// and verifies the access token it brings like any bearer token.
    pub async fn redeem(
        &self,
        token_endpoint: &str,
        client_id: &str,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<Verified, TokenError> {
        #[derive(Deserialize)]
        struct Tokens {
            access_token: String,
        }
        let response = self
            .http
            .post(token_endpoint)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
            ])
            .send()
            .await
            .map_err(|e| TokenError::Sso(format!("POST {token_endpoint}: {e}")))?;
        if !response.status().is_success() {
            return Err(TokenError::Sso(format!(
                "POST {token_endpoint} refused the sign-in code: HTTP {}",
                response.status()
            )));
        }
        let tokens: Tokens = response
            .json()
            .await
            .map_err(|e| TokenError::Sso(format!("POST {token_endpoint}: {e}")))?;
        self.verify(&tokens.access_token).await
    }

    fn caller(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Result<Verified, TokenError> {
        let grants: Vec<&str> = match claims.get(&self.config.roles_claim) {
            Some(serde_json::Value::String(one)) => one.split_whitespace().collect(),
            Some(serde_json::Value::Array(many)) => many.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        let role = grants
            .iter()
            .filter_map(|g| Role::parse(g))
            .max()
            .ok_or_else(|| TokenError::NoRole(self.config.roles_claim.clone()))?;
        let subject = claims.get("sub").and_then(|s| s.as_str()).unwrap_or_default();
        Ok(Verified {
            caller: Caller {
                actor: format!("sso:{subject}"),
                role,
                pii_read: grants.contains(&PII_READ),
                smart: (claims.get("scope").and_then(|s| s.as_str())).and_then(super::smart::SmartScopes::of_claim),
            },
            expires_at: claims.get("exp").and_then(|e| e.as_u64()).unwrap_or(0),
        })
    }

    /// The key `kid`, fetching the JWKS when it is stale or does not hold `kid`.
    async fn key(&self, kid: &str) -> Result<(Algorithm, DecodingKey), TokenError> {
        {
            let keys = self.keys.read().await;
            let fresh = keys.fetched.is_some_and(|at| at.elapsed() < JWKS_TTL);
            if let (true, Some(found)) = (fresh, keys.by_kid.get(kid)) {
                return Ok(found.clone());
            }
        }
        let _one_at_a_time = self.refresh.lock().await;
        let keys = self.keys.read().await;
        let min_gap = Duration::from_secs(self.config.jwks_min_refresh_secs);
        let recently = keys.fetched.is_some_and(|at| at.elapsed() < min_gap);
        if let Some(found) = keys.by_kid.get(kid) {
            // Another request refreshed while this one waited.
            if keys.fetched.is_some_and(|at| at.elapsed() < JWKS_TTL) {
                return Ok(found.clone());
            }
        } else if recently {
            return Err(TokenError::UnknownKey);
        }
        drop(keys);
        let fetched = self.fetch_jwks().await?;
        let mut keys = self.keys.write().await;
        keys.by_kid = fetched;
        keys.fetched = Some(Instant::now());
        keys.by_kid.get(kid).cloned().ok_or(TokenError::UnknownKey)
    }

    async fn discovery(&self) -> Result<Discovery, TokenError> {
        let issuer = self.config.issuer.trim_end_matches('/');
        let discovery: Discovery = self
            .get_json(&format!("{issuer}/.well-known/openid-configuration"))
            .await?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(TokenError::Sso(format!(
                "the discovery document names issuer {:?}, not the configured {issuer:?}",
                discovery.issuer
            )));
        }
        Ok(discovery)
    }

    async fn fetch_jwks(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, TokenError> {
        let discovery = self.discovery().await?;
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let keys: HashMap<_, _> = set.keys.iter().filter_map(usable).collect();
        tracing::info!(keys = keys.len(), "fetched the SSO's signing keys");
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TokenError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| TokenError::Sso(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(TokenError::Sso(format!("GET {url}: HTTP {}", response.status())));
        }
        response
            .json()
            .await
            .map_err(|e| TokenError::Sso(format!("GET {url}: {e}")))
    }
}

/// A signing key from the set, when it has a key id and a supported algorithm.
fn usable(jwk: &Jwk) -> Option<(String, (Algorithm, DecodingKey))> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm, PublicKeyUse};
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let kid = jwk.common.key_id.clone()?;
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, (alg, key)))
}
