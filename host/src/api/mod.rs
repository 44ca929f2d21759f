//! The admin REST API: JSON everywhere, problem+json errors, cursor pagination, a request id
//! on every response, bearer API keys.

mod auth;
mod connectors;
mod extract;
mod practitioners;
mod problem;
mod rejects;
mod runs;

pub use auth::hash_key;
pub use problem::Problem;

use crate::manager::Manager;
use axum::Router;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

#[derive(Clone)]
pub struct AppState {
    pub manager: Manager,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/connectors", get(connectors::list).post(connectors::create))
        .route("/connectors/{id}", get(connectors::get))
        .route("/connectors/{id}/enable", post(connectors::enable))
        .route("/connectors/{id}/disable", post(connectors::disable))
        .route("/connectors/{id}/run", post(connectors::run))
        .route("/connectors/{id}/runs", get(runs::list))
        .route("/connectors/{id}/logs", get(connectors::logs))
        .route("/runs/{id}", get(runs::get))
        .route("/rejects", get(rejects::list))
        .route("/practitioners", get(practitioners::list))
        .route("/plugins", get(connectors::plugins))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .fallback(|| async { Problem::not_found("no such API path; see the README for the API") });
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .nest("/api/v1", api)
        .fallback(|| async { Problem::not_found("no such path; the API lives under /api/v1") })
        .with_state(state)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
