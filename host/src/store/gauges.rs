//! What `/metrics` reads at each scrape: aggregates over jobs, connectors, runs and alerts,
//! one query each whatever the tables hold (the job counts use the `jobs_ready` index, the
//! last successes `runs_by_connector`).

use super::Timestamp;
use super::{Db, StoreError, on};
use sqlx::Row;

/// Jobs of one kind in one status.
pub struct JobBacklog {
    pub kind: String,
    pub status: String,
    pub count: i64,
    /// The oldest `run_after` among those due (queued only).
    pub oldest_due: Option<Timestamp>,
}

/// A connector as its gauges show it.
pub struct ConnectorGauge {
    pub name: String,
    pub enabled: bool,
    pub schedule: Option<String>,
    pub timezone: String,
    pub last_success: Option<Timestamp>,
}

/// Open alerts of one connector and kind.
pub struct OpenAlerts {
    /// The connector's name, or empty for a subscription's alert.
    pub connector: String,
    /// The subscription's id, or empty for a connector's alert.
    pub subscription: String,
    pub kind: String,
    pub count: i64,
}

impl Db {
    /// Queued, running and dead jobs by kind (finished ones are history, not backlog).
    pub async fn job_backlog(&self, now: Timestamp) -> Result<Vec<JobBacklog>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT kind, status, COUNT(*) AS n, \
                 MIN(CASE WHEN status = 'queued' AND run_after <= $1 THEN run_after END) AS oldest_due \
                 FROM jobs WHERE status IN ('queued', 'running', 'dead') GROUP BY kind, status",
            )
            .bind(now)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(JobBacklog {
                        kind: r.try_get("kind")?,
                        status: r.try_get("status")?,
                        count: r.try_get("n")?,
                        oldest_due: r.try_get("oldest_due")?,
                    })
                })
                .collect()
        })
    }

    /// Every connector with the end of its newest successful run.
    pub async fn connector_gauges(&self) -> Result<Vec<ConnectorGauge>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT c.name, c.enabled, c.schedule, c.timezone, \
                 (SELECT r.finished_at FROM runs r WHERE r.connector_id = c.id AND r.status = 'succeeded' \
                  ORDER BY r.id DESC LIMIT 1) AS last_success \
                 FROM connectors c",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ConnectorGauge {
                        name: r.try_get("name")?,
                        enabled: r.try_get("enabled")?,
                        schedule: r.try_get("schedule")?,
                        timezone: r.try_get("timezone")?,
                        last_success: r.try_get("last_success")?,
                    })
                })
                .collect()
        })
    }

    /// Open alerts by connector name and kind.
    pub async fn open_alert_counts(&self) -> Result<Vec<OpenAlerts>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT COALESCE(c.name, '') AS name, COALESCE(a.subscription_id, '') AS subscription, a.kind, \
                 COUNT(*) AS n FROM alerts a LEFT JOIN connectors c ON c.id = a.connector_id \
                 WHERE a.resolved_at IS NULL AND (c.id IS NOT NULL OR a.subscription_id IS NOT NULL) \
                 GROUP BY c.name, a.subscription_id, a.kind",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(OpenAlerts {
                        connector: r.try_get("name")?,
                        subscription: r.try_get("subscription")?,
                        kind: r.try_get("kind")?,
                        count: r.try_get("n")?,
                    })
                })
                .collect()
        })
    }
}
