//! `/api/v1/connectors`: instances, their lifecycle, health and logs.

use super::extract::{Json, Path, Query};
use super::problem::Problem;
use super::{AppState, Page, PageQuery};
use crate::auth::Caller;
use crate::manager::{ConnectorPatch, CursorReset, CursorState, Health, NewConnector};
use crate::store::Timestamp;
use crate::store::connectors::ConnectorRecord;
use crate::store::logs::LogLine;
use crate::store::runs::RunRecord;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A connector: settings (never secret values), plugin version and health.
#[derive(Serialize, JsonSchema)]
pub struct ConnectorView {
    pub id: String,
    pub name: String,
    pub plugin: Option<PluginRef>,
    /// The version before the last upgrade (what rollback returns to).
    pub previous_plugin: Option<PluginRef>,
    pub config: Value,
    pub egress: Vec<String>,
    pub credentials: Value,
    pub enabled: bool,
    pub concurrency: i64,
    pub max_attempts: i64,
    /// Cron expression runs fire on, if any.
    pub schedule: Option<String>,
    /// IANA time zone of the schedule.
    pub timezone: String,
    /// When the schedule fires next (while enabled).
    pub next_run_at: Option<Timestamp>,
    /// Quotas this connector overrides (the rest are the hub's `[quotas]`).
    pub quotas: Value,
    /// Whether its records may create practitioners: its own setting, else its plugin's.
    pub creates_practitioners: hub_registry::CreatePolicy,
    pub health: Health,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Serialize, JsonSchema)]
pub struct PluginRef {
    pub name: String,
    pub version: String,
    pub digest: String,
}

async fn view(state: &AppState, c: &ConnectorRecord) -> Result<ConnectorView, Problem> {
    let mut views = views(state, std::slice::from_ref(c)).await?;
    Ok(views.pop().expect("one view per connector"))
}

/// The views of `connectors`: their health from one batch of queries, plugin versions from
/// the manifest cache (a digest names one immutable package).
pub(crate) async fn views(state: &AppState, connectors: &[ConnectorRecord]) -> Result<Vec<ConnectorView>, Problem> {
    let health = state.manager.health_of(connectors).await?;
    let mut views = Vec::with_capacity(connectors.len());
    for (c, health) in connectors.iter().zip(health) {
        views.push(ConnectorView {
            id: c.id.clone(),
            name: c.name.clone(),
            plugin: plugin_ref(state, Some(&c.plugin_digest)).await?,
            previous_plugin: plugin_ref(state, c.previous_plugin_digest.as_deref()).await?,
            config: serde_json::from_str(&c.config).unwrap_or(Value::Null),
            egress: serde_json::from_str(&c.egress).unwrap_or_default(),
            credentials: serde_json::from_str(&c.credentials).unwrap_or(Value::Null),
            enabled: c.enabled,
            concurrency: c.concurrency,
            max_attempts: c.max_attempts,
            schedule: c.schedule.clone(),
            timezone: c.timezone.clone(),
            next_run_at: c
                .schedule
                .as_deref()
                .filter(|_| c.enabled)
                .and_then(|s| crate::triggers::Schedule::parse(s, &c.timezone).ok())
                .and_then(|s| s.next_after(chrono::Utc::now()))
                .map(Timestamp::from),
            quotas: serde_json::from_str(&c.quotas).unwrap_or_else(|_| serde_json::json!({})),
            creates_practitioners: state.manager.runs().creates_of(c).await?,
            health,
            created_at: c.created_at,
            updated_at: c.updated_at,
        });
    }
    Ok(views)
}

/// The installed plugin version `digest` names; none when it is not installed any more.
async fn plugin_ref(state: &AppState, digest: Option<&str>) -> Result<Option<PluginRef>, Problem> {
    let Some(digest) = digest else { return Ok(None) };
    match state.manager.manifest_of(digest).await {
        Ok(manifest) => Ok(Some(PluginRef {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            digest: digest.to_string(),
        })),
        Err(crate::manager::ManagerError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

type One = Result<axum::Json<ConnectorView>, Problem>;

/// The same for every caller allowed to read it, so callers asking at once share one
/// computation of each page (api/coalesce.rs).
pub async fn list(State(state): State<AppState>, Query(q): Query<PageQuery>) -> Result<Response, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let body = state
        .shared
        .connector_lists
        .get((q.cursor.clone(), limit), || async {
            let connectors = state.manager.db().list_connectors(q.cursor.as_deref(), limit).await?;
            let items = views(&state, &connectors).await?;
            let page = Page::new(items, limit, |v| v.id.clone());
            Ok(bytes::Bytes::from(
                serde_json::to_vec(&page).map_err(|e| Problem::internal(&e))?,
            ))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(new): Json<NewConnector>,
) -> Result<(StatusCode, axum::Json<ConnectorView>), Problem> {
    let connector = state.manager.create_connector(new, &caller.actor).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, &connector).await?)))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> One {
    let connector = state.manager.connector(&id).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(patch): Json<ConnectorPatch>,
) -> One {
    let connector = state.manager.patch_connector(&id, patch, &caller.actor).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.manager.delete_connector(&id, &caller.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn enable(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> One {
    let connector = state.manager.set_enabled(&id, true, &caller.actor).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

pub async fn disable(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> One {
    let connector = state.manager.set_enabled(&id, false, &caller.actor).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

/// Starts a run; answers 202 with the queued run.
pub async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<RunRecord>), Problem> {
    let run = state.manager.runs().request(&id, "manual", &caller.actor).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(run)))
}

/// Sets where the next sync starts; `{}` starts it from the beginning.
pub async fn reset_cursor(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(reset): Json<CursorReset>,
) -> Result<axum::Json<CursorState>, Problem> {
    Ok(axum::Json(state.manager.reset_cursor(&id, reset, &caller.actor).await?))
}

/// `{"version": "1.2.0"}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    /// An installed version of the connector's plugin.
    pub version: String,
}

pub async fn upgrade(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(request): Json<UpgradeRequest>,
) -> One {
    let connector = state.manager.upgrade(&id, &request.version, &caller.actor).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

pub async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> One {
    let connector = state.manager.rollback(&id, &caller.actor).await?;
    Ok(axum::Json(view(&state, &connector).await?))
}

/// `?level=&run_id=&limit=&cursor=`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Only lines of this run.
    pub run_id: Option<String>,
    /// Lines at this level or more severe.
    pub level: Option<crate::store::logs::Level>,
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<axum::Json<Page<LogLine>>, Problem> {
    state.manager.connector(&id).await?;
    let levels = q
        .level
        .map_or(crate::store::logs::LEVELS, crate::store::logs::Level::and_more_severe);
    let before = q.cursor.unwrap_or(i64::MAX);
    let limit = crate::store::clamp_limit(q.limit);
    let lines = state
        .manager
        .db()
        .list_logs(&id, q.run_id.as_deref(), levels, before, limit)
        .await?;
    Ok(axum::Json(Page::new(lines, limit, |l| l.id.to_string())))
}

pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<crate::webhooks::RotatedWebhookSecret>, Problem> {
    Ok(axum::Json(state.webhooks.secrets().rotate(&id, &caller.actor).await?))
}
