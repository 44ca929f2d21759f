//! `/api/v1/plugins`: installed versions, and installs by upload or from a registry.

use super::extract::Query;
use super::problem::Problem;
use super::{AppState, Page, PageQuery};
use crate::auth::Caller;
use crate::store::Timestamp;
use crate::store::plugins::PluginRecord;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use hub_registry::Package;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An installed plugin version.
#[derive(Serialize, JsonSchema)]
pub struct PluginView {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub contract: String,
    pub description: String,
    /// Publisher key that signed it; null for bundled plugins.
    pub publisher: Option<String>,
    /// sync, webhook, mqtt.
    #[schemars(with = "Vec<String>")]
    pub triggers: Vec<hub_registry::Trigger>,
    pub installed_at: Timestamp,
}

impl From<&PluginRecord> for PluginView {
    fn from(p: &PluginRecord) -> Self {
        let manifest = hub_registry::Manifest::parse(&p.manifest).ok();
        Self {
            name: p.name.clone(),
            version: p.version.clone(),
            digest: p.digest.clone(),
            contract: p.contract.clone(),
            description: manifest.as_ref().map(|m| m.description.clone()).unwrap_or_default(),
            publisher: p.publisher.clone(),
            triggers: manifest.map(|m| m.triggers).unwrap_or_default(),
            installed_at: p.installed_at,
        }
    }
}

/// `{"source": "name@version"}`: install from the configured registries.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallFromRegistry {
    /// `name` (newest version) or `name@version`.
    pub source: String,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Page<PluginView>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let plugins = state.manager.db().list_plugins(q.cursor.as_deref(), limit).await?;
    let items = plugins.iter().map(PluginView::from).collect();
    Ok(axum::Json(Page::new(items, limit, |p: &PluginView| {
        format!("{}@{}", p.name, p.version)
    })))
}

/// JSON names a registry package; any other body is the package file itself.
pub async fn install(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<PluginView>), Problem> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let record = if is_json {
        let axum::Json(request) = axum::Json::<InstallFromRegistry>::from_bytes(&body).map_err(Problem::from)?;
        state
            .manager
            .install_from_registry(&request.source, &caller.actor)
            .await?
    } else {
        let package = Package::from_bytes(&body).map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{e}; build one with `hub plugin package`"),
            )
        })?;
        state.manager.install(&package, &caller.actor).await?
    };
    Ok((StatusCode::CREATED, axum::Json(PluginView::from(&record))))
}
