//! Installed plugin versions: manifest and component, by digest.

use super::Timestamp;
use super::{Db, StoreError, on, trusted};
use sqlx::{FromRow, Row};

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct PluginRecord {
    pub digest: String,
    pub name: String,
    pub version: String,
    pub contract: String,
    pub manifest: String,
    /// The publisher key that signed the package; `None` for bundled or dev-mode installs.
    pub publisher: Option<String>,
    pub installed_at: Timestamp,
}

const COLUMNS: &str = "digest, name, version, contract, manifest, publisher, installed_at";

impl Db {
    /// Records a plugin version; installing the same digest again is a no-op.
    pub async fn insert_plugin(&self, plugin: &PluginRecord, component: &[u8]) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(
                "INSERT INTO plugins (digest, name, version, contract, manifest, component, publisher, installed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (digest) DO NOTHING",
            )
            .bind(&plugin.digest)
            .bind(&plugin.name)
            .bind(&plugin.version)
            .bind(&plugin.contract)
            .bind(&plugin.manifest)
            .bind(component)
            .bind(&plugin.publisher)
            .bind(plugin.installed_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Plugins ordered by name and version, after the `name@version` cursor `after`.
    pub async fn list_plugins(&self, after: Option<&str>, limit: i64) -> Result<Vec<PluginRecord>, StoreError> {
        on!(self.pool(), pool => {
            let (name, version) = after.and_then(|a| a.split_once('@')).unwrap_or(("", ""));
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM plugins WHERE name > $1 OR (name = $1 AND version > $2) \
                 ORDER BY name, version LIMIT $3"
            )))
            .bind(name)
            .bind(version)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(PluginRecord::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// The highest installed version of `name`, or exactly `version` when given.
    pub async fn find_plugin(&self, name: &str, version: Option<&str>) -> Result<Option<PluginRecord>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM plugins WHERE name = $1 AND ($2 = '' OR version = $2)"
            )))
            .bind(name)
            .bind(version.unwrap_or(""))
            .fetch_all(pool)
            .await?;
            let plugins = rows.iter().map(PluginRecord::from_row).collect::<Result<Vec<_>, _>>()?;
            Ok(plugins
                .into_iter()
                .max_by_key(|p| hub_registry::index::version_key(&p.version)))
        })
    }

    pub async fn plugin_by_digest(&self, digest: &str) -> Result<Option<PluginRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!("SELECT {COLUMNS} FROM plugins WHERE digest = $1")))
                .bind(digest)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(PluginRecord::from_row).transpose()?)
        })
    }

    pub async fn plugin_component(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT component FROM plugins WHERE digest = $1")
                .bind(digest)
                .fetch_one(pool)
                .await?;
            Ok(row.try_get("component")?)
        })
    }
}
