//! `/api/v1/connectors` and `/api/v1/plugins`.

use super::AppState;
use super::extract::{Json, Path, Query, page};
use super::problem::Problem;
use crate::manager::NewConnector;
use crate::store::connectors::ConnectorRecord;
use crate::store::runs::RunRecord;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// The API view of a connector: settings (never secret values) and its last run.
async fn view(state: &AppState, c: &ConnectorRecord) -> Result<Value, Problem> {
    let db = state.manager.db();
    let plugin = db.plugin_by_digest(&c.plugin_digest).await?;
    let last_run: Option<RunRecord> = db.last_run(&c.id).await?;
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    Ok(json!({
        "id": c.id,
        "name": c.name,
        "plugin": plugin.map(|p| json!({ "name": p.name, "version": p.version, "digest": p.digest })),
        "config": parse(&c.config),
        "egress": parse(&c.egress),
        "credentials": parse(&c.credentials),
        "enabled": c.enabled,
        "concurrency": c.concurrency,
        "max_attempts": c.max_attempts,
        "last_run": last_run,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<axum::Json<Value>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let connectors = state.manager.db().list_connectors(q.cursor.as_deref(), limit).await?;
    let mut items = Vec::with_capacity(connectors.len());
    for c in &connectors {
        items.push(view(&state, c).await?);
    }
    Ok(axum::Json(page(items, limit, |v| {
        v["id"].as_str().unwrap_or_default().to_string()
    })))
}

pub async fn create(
    State(state): State<AppState>,
    Json(new): Json<NewConnector>,
) -> Result<(StatusCode, axum::Json<Value>), Problem> {
    let connector = state.manager.create_connector(new).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, &connector).await?)))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<axum::Json<Value>, Problem> {
    let connector = state.manager.connector(&id).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

pub async fn enable(State(state): State<AppState>, Path(id): Path<String>) -> Result<axum::Json<Value>, Problem> {
    let connector = state.manager.set_enabled(&id, true).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

pub async fn disable(State(state): State<AppState>, Path(id): Path<String>) -> Result<axum::Json<Value>, Problem> {
    let connector = state.manager.set_enabled(&id, false).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

/// Starts a run; answers 202 with the queued run.
pub async fn run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<RunRecord>), Problem> {
    let run = state.manager.request_run(&id, "manual").await?;
    Ok((StatusCode::ACCEPTED, axum::Json(run)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    run_id: Option<String>,
    limit: Option<i64>,
}

pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<axum::Json<Value>, Problem> {
    state.manager.connector(&id).await?;
    let limit = crate::store::clamp_limit(q.limit);
    let lines = state.manager.db().list_logs(&id, q.run_id.as_deref(), limit).await?;
    Ok(axum::Json(json!({ "items": lines })))
}

pub async fn plugins(State(state): State<AppState>) -> Result<axum::Json<Value>, Problem> {
    let plugins = state.manager.db().list_plugins().await?;
    let items: Vec<Value> = plugins
        .iter()
        .map(|p| {
            let manifest = hub_registry::Manifest::parse(&p.manifest).ok();
            json!({
                "name": p.name, "version": p.version, "digest": p.digest, "contract": p.contract,
                "description": manifest.as_ref().map(|m| m.description.clone()),
                "installed_at": p.installed_at,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "items": items })))
}
