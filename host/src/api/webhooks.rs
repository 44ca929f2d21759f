//! `POST /webhooks/{connector_id}`: inbound webhooks from external systems, signed with
//! Standard Webhooks v1. Public (the signature is the credential): `202` once stored,
//! `200` for a `webhook-id` stored before, `401` for a bad signature or stale timestamp.

use super::AppState;
use super::extract::Path;
use super::problem::Problem;
use crate::webhooks::{Accepted, InboxError};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Serialize, JsonSchema)]
pub struct WebhookReceipt {
    /// `queued` (stored now) or `duplicate` (this webhook-id was stored before).
    pub status: &'static str,
    /// The job that handles it, when queued now.
    pub job_id: Option<String>,
}

pub async fn receive(
    State(state): State<AppState>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<WebhookReceipt>), Problem> {
    let started = std::time::Instant::now();
    let answer = accept(&state, &connector_id, headers, body).await;
    let result = match &answer {
        Ok((_, receipt)) => receipt.0.status,
        Err((result, _)) => *result,
    };
    crate::metrics::metrics().webhook(result, started.elapsed());
    answer.map_err(|(_, problem)| problem)
}

/// The answer to a webhook, or why it was refused as `hub_webhooks_received_total` counts it.
async fn accept(
    state: &AppState,
    connector_id: &str,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<WebhookReceipt>), (&'static str, Problem)> {
    let limit = state.webhooks.max_body_bytes();
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("webhook bodies are limited to {limit} bytes"),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        super::body::drain(body).await;
        return Err(("too_large", too_large()));
    }
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ("too_large", too_large()))?;
    match state.webhooks.accept(connector_id, &headers, body).await {
        Ok(Accepted::Queued { job_id }) => Ok((
            StatusCode::ACCEPTED,
            Json(WebhookReceipt {
                status: "queued",
                job_id: Some(job_id),
            }),
        )),
        Ok(Accepted::Duplicate) => Ok((
            StatusCode::OK,
            Json(WebhookReceipt {
                status: "duplicate",
                job_id: None,
            }),
        )),
        Err(error) => Err(problem(error)),
    }
}

fn problem(error: InboxError) -> (&'static str, Problem) {
    let (result, status) = match &error {
        InboxError::UnknownConnector(_) | InboxError::NoWebhooks(_) => ("not_found", StatusCode::NOT_FOUND),
        InboxError::Disabled(_) => ("disabled", StatusCode::CONFLICT),
        InboxError::NoSecret(_) | InboxError::Signature(_) => ("bad_signature", StatusCode::UNAUTHORIZED),
        InboxError::Store(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        InboxError::Manager(_) => return ("failed", Problem::internal(&error)),
    };
    (result, Problem::new(status, error.to_string()))
}
