//! Device observations at IoT scale: how long they are kept (`[observations]`), and on
//! PostgreSQL the monthly partitions they are stored in, created ahead of the months that
//! need them.

use crate::store::{Db, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How many months after the current one have their partition ready: a hub stopped for
/// that long still finds a partition for every observation when it starts.
const MONTHS_AHEAD: u32 = 2;
/// Partitions and retention are looked after this often; each pass is a few catalogue
/// queries when there is nothing to do.
const EVERY: Duration = Duration::from_secs(3600);

/// `[observations]`: how long vital signs and other observations are kept.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ObservationsConfig {
    /// Observations whose time is older than this many days are deleted; 0 keeps them all.
    /// On PostgreSQL a month's partition is dropped whole once its last day is that old.
    pub retention_days: u32,
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Maintained {
    pub partitions_created: Vec<String>,
    pub deleted: u64,
}

/// Prepares the partitions of the coming months and applies the retention, as of `now`.
pub async fn maintain(db: &Db, config: &ObservationsConfig, now: DateTime<Utc>) -> Result<Maintained, StoreError> {
    let partitions_created = db.prepare_observation_partitions(now, MONTHS_AHEAD).await?;
    let deleted = match config.retention_days {
        0 => 0,
        days => {
            db.delete_observations_before(now - chrono::Duration::days(i64::from(days)))
                .await?
        }
    };
    Ok(Maintained {
        partitions_created,
        deleted,
    })
}

/// Runs [`maintain`] now and every hour while the hub runs.
pub fn run_maintenance(db: Db, config: ObservationsConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            match maintain(&db, &config, Utc::now()).await {
                Ok(done) => {
                    if !done.partitions_created.is_empty() || done.deleted > 0 {
                        tracing::info!(
                            partitions = ?done.partitions_created,
                            deleted = done.deleted,
                            "observations: partitions prepared, retention applied"
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "observations maintenance failed; it is tried again in an hour")
                }
            }
        }
    })
}
