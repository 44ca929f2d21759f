//! Console sessions: a browser that signed in (with the SSO or an API key) holds a random
//! session token in an HttpOnly, SameSite=Strict cookie; the hub keeps only its SHA-256. The
//! API takes that cookie as it takes a bearer credential, so the console and curl meet the
//! same permission checks and the same audit trail.
//!
//! A request that changes something must also send the session's CSRF token in
//! `x-csrf-token`. The token is derived from the session token (SHA-256 with its own label),
//! so it needs no storage and another site, which can neither read the cookie nor the page,
//! cannot compute it.

use super::roles::{Caller, Role};
use crate::store::{Db, StoreError, Timestamp, sessions::SessionRecord};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The session cookie.
pub const COOKIE: &str = "hub_session";
/// The header a mutating request carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session is marked used at most this often: one write a minute per browser, not one per
/// request (and the idle timeout is counted in minutes).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

pub struct Sessions {
    db: Db,
    idle: Duration,
    lifetime: Duration,
    secure: bool,
}

impl Sessions {
    /// `secure`: the hub is reached over https, so the cookie is only sent there.
    pub fn new(db: Db, idle: Duration, lifetime: Duration, secure: bool) -> Self {
        Self {
            db,
            idle,
            lifetime,
            secure,
        }
    }

    /// Starts a session for `caller`, signed in with the API key whose hash is `api_key_hash`
    /// (revoking it ends the session) or with the SSO; the answer is the token for the cookie.
    pub async fn start(&self, caller: &Caller, api_key_hash: Option<&[u8]>) -> Result<String, StoreError> {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>());
        let now = Timestamp::now();
        let record = SessionRecord {
            actor: caller.actor.clone(),
            role: caller.role.as_str().to_string(),
            pii_read: caller.pii_read,
            last_seen_at: now,
        };
        let expires_at = Timestamp::from(now.as_datetime() + self.lifetime);
        self.db
            .insert_session(&hash(&token), &record, api_key_hash, expires_at)
            .await?;
        Ok(token)
    }

    /// Who the session signed in, if it is live.
    pub async fn caller(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        let token_hash = hash(token);
        let now = chrono::Utc::now();
        let Some(session) = self
            .db
            .live_session(&token_hash, Timestamp::from(now - self.idle))
            .await?
        else {
            return Ok(None);
        };
        let Some(role) = Role::parse(&session.role) else {
            return Ok(None);
        };
        if (now - session.last_seen_at.as_datetime())
            .to_std()
            .is_ok_and(|idle| idle > TOUCH_EVERY)
        {
            self.db.touch_session(&token_hash).await?;
        }
        Ok(Some(Caller {
            actor: session.actor,
            role,
            pii_read: session.pii_read,
            smart: None,
        }))
    }

    /// Whether the session is live, without counting this as use.
    pub async fn still_live(&self, token: &str) -> Result<bool, StoreError> {
        let idle_since = Timestamp::from(chrono::Utc::now() - self.idle);
        Ok(self.db.live_session(&hash(token), idle_since).await?.is_some())
    }

    /// Ends the session.
    pub async fn end(&self, token: &str) -> Result<(), StoreError> {
        self.db.delete_session(&hash(token)).await
    }

    /// The `Set-Cookie` value that gives the browser `token`.
    pub fn cookie(&self, token: &str) -> HeaderValue {
        self.set_cookie(token, self.lifetime.as_secs())
    }

    /// The `Set-Cookie` value that makes the browser forget its session.
    pub fn clearing_cookie(&self) -> HeaderValue {
        self.set_cookie("", 0)
    }

    fn set_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("a base64url token is a valid header value")
    }
}

/// The CSRF token of the session `token`.
pub fn csrf_token(token: &str) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(b"hub console csrf\0")
            .chain_update(token)
            .finalize(),
    )
}

/// Whether `presented` is the CSRF token of the session `token`, compared in constant time.
pub fn csrf_matches(token: &str, presented: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(csrf_token(token).as_bytes(), presented.as_bytes()).into()
}

/// The session token a request's cookies carry.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    cookie_of(headers, COOKIE)
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others_and_an_empty_one_is_none() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "lang=en; hub_session=abc".parse().unwrap());
        assert_eq!(token_of(&headers), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "hub_session=".parse().unwrap());
        assert_eq!(token_of(&headers), None);
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "xhub_session=abc".parse().unwrap());
        assert_eq!(token_of(&headers), None);
    }

    #[test]
    fn a_csrf_token_matches_its_own_session_only() {
        let token = csrf_token("session-a");
        assert!(csrf_matches("session-a", &token));
        assert!(!csrf_matches("session-b", &token));
        assert!(!csrf_matches("session-a", ""));
    }
}
