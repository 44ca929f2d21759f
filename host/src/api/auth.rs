//! Authentication and authorization of API calls: `Authorization: Bearer <credential>`,
//! where the credential is an API key (opaque, stored as its SHA-256 only) or a JWT from the
//! configured SSO. Each route's permission comes from the route table.

use super::AppState;
use super::problem::Problem;
use super::routes::Access;
use crate::audit::{Event, Outcome};
use crate::auth::{Caller, PII_READ, Permission, Role, session};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// SSO tokens already audited as logins (by token hash, until they expire), so a login is
/// recorded once per token rather than once per request.
#[derive(Default)]
pub struct LoginCache(Mutex<HashMap<Vec<u8>, u64>>);

impl LoginCache {
    /// True the first time a token is seen.
    fn first_use(&self, token_hash: Vec<u8>, expires_at: u64) -> bool {
        let now = jsonwebtoken::get_current_timestamp();
        let mut seen = self.0.lock().unwrap();
        seen.retain(|_, exp| *exp > now);
        seen.insert(token_hash, expires_at).is_none()
    }
}

/// Wraps a route's handler with the check its access level needs.
pub fn guard(access: Access, handler: MethodRouter<AppState>, state: &AppState) -> MethodRouter<AppState> {
    match access {
        Access::Public => handler,
        Access::Scrape if state.metrics_public => handler,
        Access::Scrape => handler.route_layer(axum::middleware::from_fn_with_state(
            state.metrics_token.clone(),
            scrape_token,
        )),
        Access::Needs(permission) => handler.route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), permission),
            authorize,
        )),
    }
}

/// The credential of an `Authorization: Bearer <credential>` value; the scheme name is
/// case-insensitive (RFC 7235 §2.1).
fn bearer_credential(value: &str) -> Option<&str> {
    let (scheme, credential) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credential.trim())
}

/// Lets a scrape through when it carries the metrics token (compared in constant time); a
/// hub without one serves its metrics to nobody unless `[auth] metrics_public` says so.
async fn scrape_token(
    State(token): State<Option<std::sync::Arc<crate::config::SecretString>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return unauthorized(
            "this hub serves /metrics to no one yet: set HUB_METRICS_TOKEN and have Prometheus send it as \
             `Authorization: Bearer`, or set [auth] metrics_public = true",
        );
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credential)
        .unwrap_or_default();
    let expected = hash_key(token.expose());
    if subtle::ConstantTimeEq::ct_eq(hash_key(presented).as_slice(), expected.as_slice()).into() {
        next.run(request).await
    } else {
        unauthorized("this hub's /metrics needs its metrics token: send `Authorization: Bearer <HUB_METRICS_TOKEN>`")
    }
}

async fn authorize(
    State((state, permission)): State<(AppState, Permission)>,
    mut request: Request,
    next: Next,
) -> Response {
    let what = format!("{} {}", request.method(), request.uri().path());
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credential)
        .filter(|k| !k.is_empty());
    let authenticated = match (presented, session::token_of(request.headers())) {
        (Some(credential), _) => authenticate(&state, credential).await,
        (None, Some(session)) => {
            let csrf = request
                .headers()
                .get(session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok());
            authenticate_session(&state, session, request.method(), csrf).await
        }
        (None, None) => {
            return unauthorized("missing credentials: send `Authorization: Bearer <API key or SSO token>`");
        }
    };
    let caller = match authenticated {
        Ok(caller) => caller,
        Err(Refusal::Internal(problem)) => return problem.into_response(),
        Err(Refusal::Credential(reason)) => {
            tracing::warn!(request = %what, %reason, "refused a credential");
            let event = Event::new("anonymous", "auth.failed", &what)
                .outcome(Outcome::Denied)
                .details(json!({ "reason": reason }));
            state.manager.audit().record(event).await;
            return unauthorized(&reason);
        }
        Err(Refusal::Forged { actor, reason }) => {
            tracing::warn!(request = %what, %actor, "refused a request without its session's CSRF token");
            let event = Event::new(&actor, "access.denied", &what)
                .outcome(Outcome::Denied)
                .details(json!({ "reason": reason }));
            state.manager.audit().record(event).await;
            return Problem::new(StatusCode::FORBIDDEN, reason).into_response();
        }
    };
    if !caller.may(permission) {
        let event = Event::new(&caller.actor, "access.denied", &what)
            .outcome(Outcome::Denied)
            .details(json!({ "role": caller.role, "needs": permission.as_str() }));
        state.manager.audit().record(event).await;
        return Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the {} permission, which the role {} does not grant",
                permission.as_str(),
                caller.role
            ),
        )
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

enum Refusal {
    /// The credential is not valid; the reason is safe to show.
    Credential(String),
    /// A live session's request that changes something came without the session's CSRF
    /// token: another site may have sent it.
    Forged {
        actor: String,
        reason: &'static str,
    },
    Internal(Problem),
}

/// The caller a console session signed in. A request that may change something (any method
/// but GET and HEAD) must carry the session's CSRF token in `x-csrf-token`.
async fn authenticate_session(
    state: &AppState,
    token: &str,
    method: &Method,
    csrf: Option<&str>,
) -> Result<Caller, Refusal> {
    let caller = match state.sessions.caller(token).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            return Err(Refusal::Credential(
                "the console session has ended (signed out, idle too long or too old): sign in again".into(),
            ));
        }
        Err(error) => return Err(Refusal::Internal(Problem::internal(&error))),
    };
    let safe = matches!(*method, Method::GET | Method::HEAD);
    if !safe && !session::csrf_matches(token, csrf.unwrap_or_default()) {
        return Err(Refusal::Forged {
            actor: caller.actor,
            reason: "this request changes something, so it needs the console session's CSRF token in x-csrf-token; \
                     reload the page and try again",
        });
    }
    Ok(caller)
}

/// The caller a bearer credential (API key or SSO token) stands for, for the console's
/// sign-in; `Ok(Err(reason))` when it is refused, with a reason safe to show.
pub(crate) async fn caller_of(state: &AppState, credential: &str) -> Result<Result<Caller, String>, Problem> {
    match authenticate(state, credential).await {
        Ok(caller) => Ok(Ok(caller)),
        Err(Refusal::Credential(reason)) => Ok(Err(reason)),
        Err(Refusal::Forged { reason, .. }) => Ok(Err(reason.into())),
        Err(Refusal::Internal(problem)) => Err(problem),
    }
}

async fn authenticate(state: &AppState, credential: &str) -> Result<Caller, Refusal> {
    if credential.matches('.').count() == 2 {
        return authenticate_token(state, credential).await;
    }
    let hash = hash_key(credential);
    let found = (state.shared.api_keys)
        .get(hash.clone(), || async {
            state.manager.db().api_key_by_hash(&hash).await.map_err(Problem::from)
        })
        .await;
    match found {
        Ok(Some(key)) => {
            let role = Role::parse(&key.role).ok_or_else(|| {
                Refusal::Internal(Problem::internal(&format!(
                    "API key {} has unknown role {}",
                    key.id, key.role
                )))
            })?;
            Ok(Caller {
                actor: format!("api-key:{}", key.name),
                role,
                pii_read: key.permissions.iter().any(|p| p == PII_READ),
                smart: None,
            })
        }
        Ok(None) => Err(Refusal::Credential("the API key is unknown or revoked".into())),
        Err(problem) => Err(Refusal::Internal(problem)),
    }
}

async fn authenticate_token(state: &AppState, token: &str) -> Result<Caller, Refusal> {
    let Some(oidc) = &state.oidc else {
        return Err(Refusal::Credential(
            "SSO tokens are not accepted: this hub has no [auth.oidc] configured; use an API key".into(),
        ));
    };
    let verified = oidc
        .verify(token)
        .await
        .map_err(|e| Refusal::Credential(e.to_string()))?;
    if state.logins.first_use(hash_key(token), verified.expires_at) {
        let event = Event::new(&verified.caller.actor, "auth.login", "sso")
            .details(json!({ "role": verified.caller.role, "pii_read": verified.caller.pii_read }));
        state.manager.audit().record(event).await;
    }
    Ok(verified.caller)
}

fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static header"));
    response
}
