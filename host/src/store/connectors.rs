//! Connector instances: a plugin version plus its config, egress allow-list, credentials,
//! concurrency and retry policy.

use super::Timestamp;
use super::events::StoredEvent;
use super::{Db, StoreError, Tx, on, on_tx, trusted};
use sqlx::{FromRow, Row};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConnectorRecord {
    pub id: String,
    pub name: String,
    pub plugin_digest: String,
    /// JSON object handed to the plugin.
    pub config: String,
    /// JSON array of allowed hosts.
    pub egress: String,
    /// JSON object of host-held credentials.
    pub credentials: String,
    pub enabled: bool,
    pub concurrency: i64,
    pub max_attempts: i64,
    /// The version before the last upgrade, for rollback.
    pub previous_plugin_digest: Option<String>,
    /// Cron expression (`triggers::Schedule`), when runs are scheduled.
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in.
    pub timezone: String,
    /// JSON object of quotas this connector overrides (`runtime::Quotas`).
    pub quotas: String,
    /// Whether its records may create practitioners (`hub_registry::CreatePolicy`); `None`
    /// keeps its plugin manifest's.
    pub creates_practitioners: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "id, name, plugin_digest, config, egress, credentials, enabled, concurrency, max_attempts, \
                       previous_plugin_digest, created_at, updated_at, schedule, timezone, quotas, \
                       creates_practitioners";

impl Db {
    /// Stores a new connector with `event` (`connector.created`).
    pub async fn insert_connector(&self, c: &ConnectorRecord, event: &StoredEvent) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(&mut tx, conn => {
            sqlx::query(trusted(format!(
                "INSERT INTO connectors ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)"
            )))
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.plugin_digest)
            .bind(&c.config)
            .bind(&c.egress)
            .bind(&c.credentials)
            .bind(c.enabled)
            .bind(c.concurrency)
            .bind(c.max_attempts)
            .bind(&c.previous_plugin_digest)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(&c.schedule)
            .bind(&c.timezone)
            .bind(&c.quotas)
            .bind(&c.creates_practitioners)
            .execute(conn)
            .await?
            .rows_affected()
        });
        with_event(tx, event, changed).await.map(drop)
    }

    /// Replaces the mutable settings of a connector (config, egress, credentials, limits),
    /// with `event` (`connector.updated`).
    pub async fn update_connector(&self, c: &ConnectorRecord, event: &StoredEvent) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(&mut tx, conn => {
            sqlx::query(
                "UPDATE connectors SET plugin_digest = $2, config = $3, egress = $4, credentials = $5, \
                 concurrency = $6, max_attempts = $7, updated_at = $8, schedule = $9, timezone = $10, quotas = $11, \
                 creates_practitioners = $12 WHERE id = $1",
            )
            .bind(&c.id)
            .bind(&c.plugin_digest)
            .bind(&c.config)
            .bind(&c.egress)
            .bind(&c.credentials)
            .bind(c.concurrency)
            .bind(c.max_attempts)
            .bind(Timestamp::now())
            .bind(&c.schedule)
            .bind(&c.timezone)
            .bind(&c.quotas)
            .bind(&c.creates_practitioners)
            .execute(conn)
            .await?
            .rows_affected()
        });
        with_event(tx, event, changed).await.map(drop)
    }

    pub async fn connector(&self, id: &str) -> Result<Option<ConnectorRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!("SELECT {COLUMNS} FROM connectors WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(ConnectorRecord::from_row).transpose()?)
        })
    }

    pub async fn connector_by_name(&self, name: &str) -> Result<Option<ConnectorRecord>, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query(trusted(format!("SELECT {COLUMNS} FROM connectors WHERE name = $1")))
                .bind(name)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(ConnectorRecord::from_row).transpose()?)
        })
    }

    /// Connectors ordered by id, after `after` (cursor pagination).
    pub async fn list_connectors(&self, after: Option<&str>, limit: i64) -> Result<Vec<ConnectorRecord>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM connectors WHERE id > $1 ORDER BY id LIMIT $2"
            )))
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(ConnectorRecord::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Enables or disables a connector, with `event`; false when no connector has this id.
    pub async fn set_connector_enabled(
        &self,
        id: &str,
        enabled: bool,
        event: &StoredEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE connectors SET enabled = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(enabled)
                .bind(Timestamp::now())
                .execute(conn)
                .await?
                .rows_affected()
        });
        with_event(tx, event, changed).await
    }

    /// Switches a connector from `from` to `to`, remembering `from` for rollback, with
    /// `event`. Returns false when the connector is gone or was switched by someone else
    /// meanwhile.
    pub async fn switch_plugin(&self, id: &str, from: &str, to: &str, event: &StoredEvent) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(&mut tx, conn => {
            sqlx::query(
                "UPDATE connectors SET plugin_digest = $3, previous_plugin_digest = $2, updated_at = $4 \
                 WHERE id = $1 AND plugin_digest = $2",
            )
            .bind(id)
            .bind(from)
            .bind(to)
            .bind(Timestamp::now())
            .execute(conn)
            .await?
            .rows_affected()
        });
        with_event(tx, event, changed).await
    }

    /// Deletes a connector with its secrets, state and event sink, with `event`; its runs,
    /// logs and the records it stored stay.
    pub async fn delete_connector(&self, id: &str, event: &StoredEvent) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM event_sinks WHERE name = $1")
                .bind(super::sinks::connector_sink(id))
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM connectors WHERE id = $1").bind(id).execute(conn).await?.rows_affected()
        });
        with_event(tx, event, changed).await
    }

    /// Enabled connectors with a schedule, with the last fire time handled (when any).
    pub async fn scheduled_connectors(&self) -> Result<Vec<(ConnectorRecord, Option<Timestamp>)>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS}, last_fired_at FROM connectors WHERE enabled AND schedule IS NOT NULL ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((ConnectorRecord::from_row(r)?, r.try_get("last_fired_at")?)))
                .collect()
        })
    }

    /// Records that the schedule tick `fired_at` was handled (moves forward only).
    pub async fn set_last_fired(&self, id: &str, fired_at: Timestamp) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(
                "UPDATE connectors SET last_fired_at = $2 WHERE id = $1 AND (last_fired_at IS NULL OR last_fired_at < $2)",
            )
            .bind(id)
            .bind(fired_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}

/// Writes a connector change's `event` last in `tx` (the outbox takes its seq last,
/// `store::events::insert`) and commits both, when the change touched a row (`changed`);
/// whether it did (if not, `tx` rolls back).
async fn with_event(mut tx: Tx, event: &StoredEvent, changed: u64) -> Result<bool, StoreError> {
    if changed == 0 {
        return Ok(false);
    }
    super::events::insert(&mut tx, std::slice::from_ref(event)).await?;
    tx.commit().await?;
    Ok(true)
}
