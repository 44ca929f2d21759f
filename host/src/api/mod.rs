//! The admin REST API: JSON everywhere, RFC 9457 problem+json errors, cursor pagination, a
//! request id on every response, API keys and SSO tokens with role-based access, every
//! change audited.
//!
//! `routes.rs` is the single table of routes; the router, the permission checks and
//! `/openapi.json` are generated from it.

mod accounts;
mod alerts;
mod api_keys;
mod audit;
pub(crate) mod auth;
mod body;
mod coalesce;
pub(crate) mod connectors;
mod events;
mod extract;
mod identity;
mod jobs;
mod keys;
pub(crate) mod listener;
mod metrics;
mod observations;
pub mod openapi;
pub(crate) mod plugins;
pub(crate) mod practitioners;
mod problem;
mod rejects;
pub mod routes;
mod runs;
mod secrets;
mod service;
mod subscriptions;
mod webhooks;

pub use auth::hash_key;
pub use problem::Problem;

use crate::auth::AuthConfig;
use crate::auth::OidcVerifier;
use crate::manager::Manager;
use crate::store::api_keys::ApiKeyRecord;
use axum::Router;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

#[derive(Clone)]
pub struct AppState {
    pub manager: Manager,
    pub webhooks: Arc<crate::webhooks::Inbox>,
    pub oidc: Option<Arc<OidcVerifier>>,
    pub(crate) logins: Arc<auth::LoginCache>,
    pub(crate) shared: Arc<SharedReads>,
    /// `HUB_METRICS_TOKEN`, when `/metrics` asks for one.
    pub(crate) metrics_token: Option<Arc<crate::config::SecretString>>,
    /// `[auth] metrics_public`: `/metrics` for anyone, without a token.
    pub(crate) metrics_public: bool,
    /// Console sign-ins, which the API accepts as it accepts a bearer credential.
    pub(crate) sessions: Arc<crate::auth::session::Sessions>,
    /// Where browsers reach the hub (`[auth] public_url`).
    pub(crate) public_url: Arc<str>,
    /// SSO sign-ins under way.
    pub(crate) sign_ins: Arc<crate::console::sign_in::Pending>,
}

impl AppState {
    /// `listening`: the address the API is bound to (the configured one may be port 0).
    pub fn new(
        manager: Manager,
        webhooks: Arc<crate::webhooks::Inbox>,
        auth: &AuthConfig,
        listening: std::net::SocketAddr,
    ) -> Self {
        let public_url = auth.public_url(listening);
        let minutes = |m: u64| std::time::Duration::from_secs(m * 60);
        let sessions = crate::auth::session::Sessions::new(
            manager.db().clone(),
            minutes(auth.session_idle_minutes),
            minutes(auth.session_max_hours * 60),
            public_url.starts_with("https://"),
        );
        Self {
            manager,
            webhooks,
            oidc: auth.oidc.clone().map(|c| Arc::new(OidcVerifier::new(c))),
            logins: Arc::default(),
            shared: Arc::default(),
            metrics_token: auth.metrics_token.clone().map(Arc::new),
            metrics_public: auth.metrics_public && auth.metrics_token.is_none(),
            sessions: Arc::new(sessions),
            public_url: public_url.into(),
            sign_ins: Arc::default(),
        }
    }
}

/// Reads that requests asking at once share, one computation each (`coalesce.rs`): on
/// PostgreSQL the database's own work was half the CPU a FHIR search by identifier took
/// (BENCHMARKS.md), and these reads are the same for every request of a client.
#[derive(Default)]
pub(crate) struct SharedReads {
    /// Connector list pages, by cursor and limit: the body, serialized.
    pub connector_lists: coalesce::Coalesced<(Option<String>, i64), Result<bytes::Bytes, Problem>>,
    /// Live API keys, by the hash of the key presented.
    pub api_keys: coalesce::Coalesced<Vec<u8>, Result<Option<ApiKeyRecord>, Problem>>,
    /// Of a set of connectors (sorted ids), those whose last finished sync failed.
    pub failing_connectors: coalesce::Coalesced<Vec<String>, Result<Vec<String>, Problem>>,
}

/// One page of a list and the cursor of the next (`null` on the last page).
#[derive(Serialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A full page means there may be more, after the last item's cursor.
    pub fn new(items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let next_cursor = (items.len() as i64 == limit)
            .then(|| items.last().map(&cursor_of))
            .flatten();
        Self { items, next_cursor }
    }
}

/// `?limit=&cursor=` of a list.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page, 1-500 (default 100).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub fn router(state: AppState, auth_config: &AuthConfig) -> Router {
    let mut router = crate::console::router().nest(crate::fhir::BASE, crate::fhir::router(&state));
    for route in routes::table() {
        let handler = extract::check_path_patterns(body::limit(route.handler, route.max_body), route.patterns);
        router = router.route(route.path, auth::guard(route.access, handler, &state));
    }
    let router = router
        .fallback(|uri: axum::http::Uri| async move {
            let where_ = if uri.path().starts_with("/api/v1/") {
                "no such API path; GET /openapi.json lists them"
            } else {
                "no such path; the console is at / and the API under /api/v1 (GET /openapi.json lists it)"
            };
            Problem::not_found(where_)
        })
        .method_not_allowed_fallback(|method: axum::http::Method, uri: axum::http::Uri| async move {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} does not accept {method}; GET /openapi.json lists what it does",
                    uri.path()
                ),
            )
        })
        .with_state(state)
        .layer(axum::middleware::from_fn(metrics::http))
        .layer(PropagateRequestIdLayer::x_request_id());
    let router = match cors(auth_config) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// CORS for the configured origins only; none configured means no browser access.
fn cors(config: &AuthConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins: Vec<_> = config.cors_origins.iter().filter_map(|o| o.parse().ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods(tower_http::cors::Any)
            .allow_headers([axum::http::header::AUTHORIZATION, axum::http::header::CONTENT_TYPE])
            .expose_headers([axum::http::HeaderName::from_static("x-request-id")]),
    )
}
