//! The SSO: OpenID Connect discovery, a JWKS with an RS256 and an ES256 key, a sign-in page
//! for browsers (authorization code with PKCE, S256 only, for the public client
//! [`CONSOLE_CLIENT`]), a token endpoint (that code, client credentials, and the password
//! grant for seeded users with roles), and a users API listing accounts linked to
//! practitioners by NIK.
//!
//! Tests mint tokens of any shape through [`SsoSim::mint`] to check what the hub refuses.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Token lifetime.
const TOKEN_SECS: u64 = 600;
/// The public client the hub's console signs browsers in with.
pub const CONSOLE_CLIENT: &str = "hub-console";
/// How long an authorization code may wait to be redeemed (RFC 6749 §4.1.2 suggests at most
/// ten minutes; one is plenty for a browser's redirect).
const CODE_SECS: u64 = 60;

#[derive(Clone, Debug)]
pub struct SsoConfig {
    /// Audience of issued tokens (the hub's `auth.oidc.audience`).
    pub audience: String,
    pub client_id: String,
    pub client_secret: String,
    /// Accounts in the users API (the seeded users with roles come on top).
    pub accounts: usize,
    pub seed: u64,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            audience: "healthforce-hub".into(),
            client_id: "hub-sso-sync".into(),
            client_secret: "sso-secret-change-me".into(),
            accounts: 200,
            seed: 7,
        }
    }
}

/// A seeded user who can log in with the password grant.
#[derive(Clone, Debug)]
pub struct User {
    pub username: String,
    pub password: String,
    pub roles: Vec<String>,
}

/// A signing key with its id and public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
    /// The public key as the bytes an attacker would feed HS256 (`alg` confusion).
    pub public_bytes: Vec<u8>,
}

impl SigningKey {
    fn new(alg: Algorithm) -> Self {
        let (encoding, public_bytes) = match alg {
            Algorithm::RS256 => {
                // RSA key generation is slow; one key per process is enough for a simulator.
                static RSA: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
                let (der, public) = RSA.get_or_init(|| {
                    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
                    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("RSA key generation");
                    let der = key.to_pkcs1_der().expect("RSA key encodes").as_bytes().to_vec();
                    let public = key
                        .to_public_key()
                        .to_pkcs1_pem(Default::default())
                        .expect("RSA public key encodes")
                        .into_bytes();
                    (der, public)
                });
                (EncodingKey::from_rsa_der(der), public.clone())
            }
            Algorithm::ES256 => {
                use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
                let key = p256::SecretKey::random(&mut rand_core::OsRng);
                let der = key.to_pkcs8_der().expect("EC key encodes");
                let public = key
                    .public_key()
                    .to_public_key_pem(Default::default())
                    .expect("EC public key encodes")
                    .into_bytes();
                (EncodingKey::from_ec_der(der.as_bytes()), public)
            }
            other => panic!("the SSO simulator signs with RS256 or ES256, not {other:?}"),
        };
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK from the key");
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            kid,
            alg,
            encoding,
            jwk,
            public_bytes,
        }
    }
}

struct Inner {
    config: SsoConfig,
    issuer: Mutex<String>,
    /// Keys in the JWKS, newest last.
    published: Mutex<Vec<SigningKey>>,
    users: Vec<User>,
    accounts: Vec<Value>,
    client_tokens: Mutex<Vec<String>>,
    /// Authorization codes not yet redeemed.
    codes: Mutex<HashMap<String, Grant>>,
}

/// What an authorization code stands for, until redeemed once.
struct Grant {
    username: String,
    redirect_uri: String,
    challenge: String,
    expires_at: u64,
}

/// The SSO simulator.
#[derive(Clone)]
pub struct SsoSim {
    inner: Arc<Inner>,
}

impl SsoSim {
    pub fn new(config: SsoConfig) -> Self {
        let users = ["admin", "operator", "integrator", "viewer"]
            .into_iter()
            .map(|role| {
                let mut roles = vec![role.to_string()];
                if role == "admin" {
                    roles.push("pii:read".into());
                }
                User {
                    username: role.into(),
                    password: format!("{role}-password"),
                    roles,
                }
            })
            .collect();
        let accounts = (0..config.accounts)
            .map(|i| {
                let person = crate::people::person(config.seed, i);
                json!({
                    "subject": format!("user-{i:05}"),
                    "username": person.full_name.to_lowercase().replace(' ', "."),
                    "email": person.email,
                    "nik": person.nik,
                    "roles": ["nakes"],
                    "active": i % 17 != 0,
                })
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                config,
                issuer: Mutex::new(String::new()),
                published: Mutex::new(vec![
                    SigningKey::new(Algorithm::RS256),
                    SigningKey::new(Algorithm::ES256),
                ]),
                users,
                accounts,
                client_tokens: Mutex::default(),
                codes: Mutex::default(),
            }),
        }
    }

    /// Must be called with the URL the simulator is served at, before tokens are issued.
    pub fn set_issuer(&self, issuer: &str) {
        *self.inner.issuer.lock().unwrap() = issuer.trim_end_matches('/').to_string();
    }

    pub fn issuer(&self) -> String {
        self.inner.issuer.lock().unwrap().clone()
    }

    pub fn audience(&self) -> &str {
        &self.inner.config.audience
    }

    /// The client-credentials tokens issued so far, so tests can check the hub never stores
    /// or logs one.
    pub fn client_tokens(&self) -> Vec<String> {
        self.inner.client_tokens.lock().unwrap().clone()
    }

    pub fn users(&self) -> &[User] {
        &self.inner.users
    }

    /// The published key for `alg`, newest first.
    pub fn key(&self, alg: Algorithm) -> SigningKey {
        let keys = self.inner.published.lock().unwrap();
        keys.iter()
            .rev()
            .find(|k| k.alg == alg)
            .cloned()
            .expect("a key for each algorithm")
    }

    /// Publishes a new ES256 key (rotation); the old ones stay published.
    pub fn rotate(&self) -> SigningKey {
        let key = SigningKey::new(Algorithm::ES256);
        self.inner.published.lock().unwrap().push(key.clone());
        key
    }

    /// A key that is never published.
    pub fn unpublished_key(&self) -> SigningKey {
        SigningKey::new(Algorithm::ES256)
    }

    /// Claims of a valid token for `subject` with `roles`.
    pub fn claims(&self, subject: &str, roles: &[&str]) -> Value {
        let now = now();
        json!({
            "iss": self.issuer(),
            "aud": self.inner.config.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_SECS,
            "roles": roles,
        })
    }

    /// Signs `claims` with `key`.
    pub fn mint(&self, key: &SigningKey, claims: &Value) -> String {
        self.mint_with(key, |_| {}, claims)
    }

    /// A token signed by `key` whose header `edit` changed first (a forged `crit`, say).
    pub fn mint_with(&self, key: &SigningKey, edit: impl FnOnce(&mut Header), claims: &Value) -> String {
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        edit(&mut header);
        jsonwebtoken::encode(&header, claims, &key.encoding).expect("signing a token")
    }

    /// A token for a seeded user, as the password grant issues it.
    pub fn login(&self, username: &str) -> Option<String> {
        let user = self.inner.users.iter().find(|u| u.username == username)?;
        let roles: Vec<&str> = user.roles.iter().map(String::as_str).collect();
        Some(self.mint(&self.key(Algorithm::RS256), &self.claims(&user.username, &roles)))
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(sign_in_page).post(sign_in))
            .route("/oauth/token", post(token))
            .route("/api/users", get(users))
            .with_state(self.clone())
    }
}

/// An unsigned (`alg: none`) token with these claims.
pub fn unsigned_token(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

/// An HS256 token whose HMAC key is `secret` (used with a public key to test `alg` confusion).
pub fn hs256_token(claims: &Value, kid: &str, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("signing a token")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

async fn discovery(State(sim): State<SsoSim>) -> Json<Value> {
    let issuer = sim.issuer();
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "grant_types_supported": ["authorization_code", "client_credentials", "password"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "response_types_supported": ["code", "token"],
        "subject_types_supported": ["public"],
    }))
}

async fn jwks(State(sim): State<SsoSim>) -> Json<JwkSet> {
    let keys = sim
        .inner
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.jwk.clone())
        .collect();
    Json(JwkSet { keys })
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
}

async fn token(State(sim): State<SsoSim>, Form(request): Form<TokenRequest>) -> Response {
    let error = |code: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": code }))).into_response();
    let config = &sim.inner.config;
    let token = match request.grant_type.as_str() {
        "client_credentials" => {
            if request.client_id.as_deref() != Some(&config.client_id)
                || request.client_secret.as_deref() != Some(&config.client_secret)
            {
                return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
            }
            let token = sim.mint(&sim.key(Algorithm::ES256), &sim.claims(&config.client_id, &[]));
            sim.inner.client_tokens.lock().unwrap().push(token.clone());
            token
        }
        "password" => {
            let user = sim.inner.users.iter().find(|u| {
                Some(&u.username) == request.username.as_ref() && Some(&u.password) == request.password.as_ref()
            });
            match user {
                Some(user) => sim.login(&user.username).expect("seeded user"),
                None => return error("invalid_grant"),
            }
        }
        "authorization_code" => {
            let grant = request
                .code
                .as_ref()
                .and_then(|code| sim.inner.codes.lock().unwrap().remove(code));
            let Some(grant) = grant else {
                return error("invalid_grant");
            };
            let verifier = request.code_verifier.as_deref().unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let valid = grant.expires_at > now()
                && request.client_id.as_deref() == Some(CONSOLE_CLIENT)
                && request.redirect_uri.as_deref() == Some(grant.redirect_uri.as_str())
                && challenge == grant.challenge;
            if !valid {
                return error("invalid_grant");
            }
            sim.login(&grant.username).expect("seeded user")
        }
        _ => return error("unsupported_grant_type"),
    };
    Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECS })).into_response()
}

/// `/authorize`'s query: an OAuth authorization request.
#[derive(Deserialize)]
struct Authorize {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl Authorize {
    /// The request's redirect URI, state and challenge, or why it is refused.
    fn check(&self) -> Result<(&str, &str, &str), &'static str> {
        if self.client_id.as_deref() != Some(CONSOLE_CLIENT) {
            return Err("unknown client_id");
        }
        if self.response_type.as_deref() != Some("code") {
            return Err("response_type must be code");
        }
        if self.code_challenge_method.as_deref() != Some("S256") {
            return Err("PKCE with code_challenge_method=S256 is required");
        }
        match (&self.redirect_uri, &self.state, &self.code_challenge) {
            (Some(uri), Some(state), Some(challenge))
                if uri.ends_with("/login/callback") && (uri.starts_with("http://") || uri.starts_with("https://")) =>
            {
                Ok((uri, state, challenge))
            }
            _ => Err("redirect_uri (the hub's /login/callback), state and code_challenge are required"),
        }
    }
}

/// The sign-in form a browser is sent to.
async fn sign_in_page(Query(request): Query<Authorize>) -> Response {
    if let Err(why) = request.check() {
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    sign_in_form(&request, None)
}

fn sign_in_form(request: &Authorize, error: Option<&str>) -> Response {
    let hidden = |name: &str, value: &Option<String>| {
        format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            escape(value.as_deref().unwrap_or_default())
        )
    };
    let error = error
        .map(|e| format!(r#"<p role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let page = format!(
        r#"<!doctype html><html lang="id"><head><meta charset="utf-8"><title>SSO Kemenkes (simulator)</title></head>
<body><main><h1>SSO Kemenkes (simulator)</h1>{error}
<form method="post" action="/authorize">{}{}{}{}{}{}
<label for="username">Nama pengguna</label> <input id="username" name="username" autocomplete="username" required>
<label for="password">Kata sandi</label> <input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Masuk</button></form></main></body></html>"#,
        hidden("response_type", &request.response_type),
        hidden("client_id", &request.client_id),
        hidden("redirect_uri", &request.redirect_uri),
        hidden("state", &request.state),
        hidden("code_challenge", &request.code_challenge),
        hidden("code_challenge_method", &request.code_challenge_method),
    );
    axum::response::Html(page).into_response()
}

#[derive(Deserialize)]
struct SignIn {
    #[serde(flatten)]
    request: Authorize,
    username: String,
    password: String,
}

/// The form posted: a seeded user's password gets a one-time code, sent back to the hub.
async fn sign_in(State(sim): State<SsoSim>, Form(form): Form<SignIn>) -> Response {
    let (redirect_uri, state, challenge) = match form.request.check() {
        Ok(checked) => checked,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let user = sim
        .inner
        .users
        .iter()
        .find(|u| u.username == form.username && u.password == form.password);
    let Some(user) = user else {
        return sign_in_form(&form.request, Some("Nama pengguna atau kata sandi salah."));
    };
    let code = uuid::Uuid::new_v4().simple().to_string();
    sim.inner.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            username: user.username.clone(),
            redirect_uri: redirect_uri.to_string(),
            challenge: challenge.to_string(),
            expires_at: now() + CODE_SECS,
        },
    );
    let mut back = match reqwest::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response(),
    };
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    axum::response::Redirect::to(back.as_str()).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Deserialize)]
struct UsersQuery {
    page: Option<usize>,
    per_page: Option<usize>,
}

/// Accounts, paginated; needs a client-credentials token.
async fn users(State(sim): State<SsoSim>, headers: HeaderMap, Query(q): Query<UsersQuery>) -> Response {
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let known = presented.is_some_and(|t| sim.inner.client_tokens.lock().unwrap().iter().any(|k| k == t));
    if !known {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_token" }))).into_response();
    }
    let per_page = q.per_page.unwrap_or(100).clamp(1, 500);
    let page = q.page.unwrap_or(1).max(1);
    let items: Vec<&Value> = sim
        .inner
        .accounts
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Json(json!({ "page": page, "per_page": per_page, "total": sim.inner.accounts.len(), "items": items }))
        .into_response()
}
