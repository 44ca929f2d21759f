//! API-key authentication: `Authorization: Bearer <key>`. Keys are stored as SHA-256 hashes
//! and looked up by hash, so the database never holds a usable key and the comparison never
//! touches the key's bytes.

use super::AppState;
use super::problem::Problem;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The role of the caller, for handlers that check permissions.
#[derive(Clone, Debug)]
pub struct Caller {
    pub role: String,
}

pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

pub async fn require_api_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = presented else {
        return unauthorized("missing credentials: send `Authorization: Bearer <api key>`");
    };
    match state.manager.db().api_key_role(&hash_key(key)).await {
        Ok(Some(role)) => {
            request.extensions_mut().insert(Caller { role });
            next.run(request).await
        }
        Ok(None) => {
            tracing::warn!(path = %request.uri().path(), "rejected an unknown or revoked API key");
            unauthorized("the API key is unknown or revoked")
        }
        Err(error) => Problem::internal(&error).into_response(),
    }
}

fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        "Bearer".parse().expect("static header"),
    );
    response
}
