//! `/api/v1/keys`: the data keys' versions and rotation. Key material never leaves the hub.

use super::AppState;
use super::problem::Problem;
use crate::auth::Caller;
use crate::manager::keys::KeysStatus;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn status(State(state): State<AppState>) -> Result<axum::Json<KeysStatus>, Problem> {
    Ok(axum::Json(state.manager.keys_status().await?))
}

/// Starts a rotation; its progress is in `GET /api/v1/keys`.
pub async fn rotate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<(StatusCode, axum::Json<KeysStatus>), Problem> {
    let status = state.manager.rotate_data_key(&caller.actor).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(status)))
}
