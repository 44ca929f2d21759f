//! Faults on demand, shared by every simulator: outage, latency, a 5xx rate, and tokens that
//! expire in the middle of a sync.

use crate::people::Seeded;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The faults a simulator injects. Settable from Rust (tests) or `PUT /_sim/faults` (demo).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Every API request answers 503.
    pub outage: bool,
    /// Added to every API response.
    pub latency_ms: u64,
    /// Share of API requests (0.0–1.0) that answer 500.
    pub error_rate: f64,
    /// After this many more successful data requests, every issued token is revoked once, as
    /// if they had expired in the middle of a sync.
    pub expire_tokens_after_requests: Option<u32>,
}

/// What the simulator should do with one request.
pub enum Injected {
    Proceed,
    Fail(u16),
}

/// Faults plus the state needed to apply them (the 5xx dice, the countdown to expiry).
pub struct FaultState {
    faults: Mutex<(Faults, Seeded)>,
}

impl Default for FaultState {
    fn default() -> Self {
        Self {
            faults: Mutex::new((Faults::default(), Seeded::new(0xFA17))),
        }
    }
}

impl FaultState {
    pub fn set(&self, faults: Faults) {
        self.faults.lock().unwrap().0 = faults;
    }

    pub fn get(&self) -> Faults {
        self.faults.lock().unwrap().0.clone()
    }

    /// Applies latency and decides whether this request fails.
    pub async fn before_request(&self) -> Injected {
        let (latency, outcome) = {
            let mut guard = self.faults.lock().unwrap();
            let (faults, dice) = &mut *guard;
            let outcome = if faults.outage {
                Injected::Fail(503)
            } else if faults.error_rate > 0.0 && dice.chance(faults.error_rate) {
                Injected::Fail(500)
            } else {
                Injected::Proceed
            };
            (faults.latency_ms, outcome)
        };
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        outcome
    }

    /// [`FaultState::before_request`] as a handler's first step: the answer to give when a
    /// failure is injected, as the registry's own outage page would be.
    pub async fn injected_failure(&self) -> Option<Response> {
        match self.before_request().await {
            Injected::Proceed => None,
            Injected::Fail(status) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                Some((status, Json(serde_json::json!({ "pesan": "layanan tidak tersedia" }))).into_response())
            }
        }
    }

    /// Counts a served data request; true when tokens must be revoked now.
    pub fn after_data_request(&self) -> bool {
        let mut guard = self.faults.lock().unwrap();
        match guard.0.expire_tokens_after_requests {
            Some(0) | Some(1) => {
                guard.0.expire_tokens_after_requests = None;
                true
            }
            Some(n) => {
                guard.0.expire_tokens_after_requests = Some(n - 1);
                false
            }
            None => false,
        }
    }
}

/// `GET` / `PUT /_sim/faults` for a simulator's faults.
pub fn router(faults: Arc<FaultState>) -> Router {
    Router::new()
        .route(
            "/_sim/faults",
            get(|State(faults): State<Arc<FaultState>>| async move { Json(faults.get()) }).put(
                |State(state): State<Arc<FaultState>>, Json(faults): Json<Faults>| async move {
                    state.set(faults);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(faults)
}
