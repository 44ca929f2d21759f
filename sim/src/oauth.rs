//! An OAuth2 client-credentials token endpoint with short-lived opaque tokens, as the national
//! systems issue them.

use crate::people::Seeded;
use axum::Form;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Issued tokens and the one client allowed to get them.
pub struct TokenIssuer {
    client_id: String,
    client_secret: String,
    lifetime: Duration,
    tokens: Mutex<HashMap<String, Instant>>,
    issued: AtomicU64,
    dice: Mutex<Seeded>,
}

#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl TokenIssuer {
    pub fn new(client_id: &str, client_secret: &str, lifetime: Duration) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            lifetime,
            tokens: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            dice: Mutex::new(Seeded::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1),
            )),
        }
    }

    /// How many tokens were issued so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// The tokens issued and not revoked, so tests can check the hub never stores or logs one.
    pub fn live_tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().keys().cloned().collect()
    }

    /// Every token issued so far stops working.
    pub fn revoke_all(&self) {
        self.tokens.lock().unwrap().clear();
    }

    /// `POST /oauth/token` with `grant_type=client_credentials` and the client's id and secret
    /// in the form.
    pub fn issue(&self, Form(request): Form<TokenRequest>) -> Response {
        if request.grant_type != "client_credentials" {
            return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
        }
        if request.client_id.as_deref() != Some(&self.client_id)
            || request.client_secret.as_deref() != Some(&self.client_secret)
        {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
        self.issued.fetch_add(1, Ordering::Relaxed);
        let token = {
            let mut dice = self.dice.lock().unwrap();
            format!("tok_{:016x}{:016x}", dice.next_u64(), dice.next_u64())
        };
        self.tokens
            .lock()
            .unwrap()
            .insert(token.clone(), Instant::now() + self.lifetime);
        axum::Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime.as_secs(),
        }))
        .into_response()
    }

    /// Whether the request carries a live bearer token.
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let mut tokens = self.tokens.lock().unwrap();
        match tokens.get(token) {
            Some(expiry) if *expiry > Instant::now() => true,
            Some(_) => {
                tokens.remove(token);
                false
            }
            None => false,
        }
    }
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}
