//! Gauges read from the database when Prometheus scrapes: what is true of the hub (and of
//! every hub sharing its database) now, rather than what this process happened to see.

use super::{ConnectorLabel, FloatGauge, Metrics};
use crate::manager::Manager;
use crate::store::StoreError;
use crate::triggers::Schedule;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobStateLabels {
    kind: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    /// Empty (so absent) for a subscription's alert.
    connector: String,
    /// Empty (so absent) for a connector's alert.
    subscription: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    state: &'static str,
}

#[derive(Default)]
pub struct Gauges {
    /// Held through a refresh and the render after it, so two scrapes at once do not
    /// interleave their clears and sets.
    pub(crate) scraping: tokio::sync::Mutex<()>,
    database_up: Gauge,
    jobs: Family<JobStateLabels, Gauge>,
    oldest_queued: Family<KindLabel, FloatGauge>,
    enabled: Family<ConnectorLabel, Gauge>,
    last_success: Family<ConnectorLabel, FloatGauge>,
    schedule_interval: Family<ConnectorLabel, FloatGauge>,
    alerts_open: Family<AlertLabels, Gauge>,
    rotation_remaining: Gauge,
    rotation_running: Gauge,
    rotation_failed: Gauge,
    data_key_version: Gauge,
    pool_connections: Family<PoolLabel, Gauge>,
    pool_max: Gauge,
}

impl Gauges {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "database_up",
            "Whether the database answered this scrape (1) or not (0: the other gauges are as last read)",
            self.database_up.clone(),
        );
        r.register(
            "jobs",
            "Jobs by kind and status (queued, running, dead)",
            self.jobs.clone(),
        );
        r.register_with_unit(
            "jobs_oldest_queued_age",
            "How long the oldest due job of a kind has waited for a worker",
            Unit::Seconds,
            self.oldest_queued.clone(),
        );
        r.register(
            "connector_enabled",
            "Whether the connector is enabled (1) or not (0)",
            self.enabled.clone(),
        );
        r.register_with_unit(
            "connector_last_success_timestamp",
            "When the connector's newest successful run ended (Unix time)",
            Unit::Seconds,
            self.last_success.clone(),
        );
        r.register_with_unit(
            "connector_schedule_interval",
            "The longest gap between two fire times of the connector's schedule (scheduled connectors only)",
            Unit::Seconds,
            self.schedule_interval.clone(),
        );
        r.register(
            "alerts_open",
            "Alerts the hub raised and has not resolved, by connector or subscription and kind (credentials, reject-rate, subscription-disabled)",
            self.alerts_open.clone(),
        );
        r.register(
            "key_rotation_rows_remaining",
            "Rows the running data key rotation has still to re-encrypt (0 when none runs)",
            self.rotation_remaining.clone(),
        );
        r.register(
            "key_rotation_running",
            "Whether a data key rotation is running (1) or not (0)",
            self.rotation_running.clone(),
        );
        r.register(
            "key_rotation_failed",
            "Whether the newest data key rotation failed (1) or not (0)",
            self.rotation_failed.clone(),
        );
        r.register(
            "data_key_active_version",
            "The data key version new data is sealed under",
            self.data_key_version.clone(),
        );
        r.register(
            "db_pool_connections",
            "Database pool connections by state (idle, busy)",
            self.pool_connections.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "The most connections the database pool opens",
            self.pool_max.clone(),
        );
    }
}

impl Gauges {
    pub fn database_up(&self, up: bool) {
        self.database_up.set(i64::from(up));
    }
}

/// Reads every gauge from the database, replacing what the previous scrape read (a deleted
/// connector's series go).
pub async fn refresh(metrics: &Metrics, manager: &Manager) -> Result<(), StoreError> {
    let gauges = &metrics.state;
    let db = manager.db();
    let now = chrono::Utc::now();
    let backlog = db.job_backlog(now.into()).await?;
    let connectors = db.connector_gauges().await?;
    let alerts = db.open_alert_counts().await?;
    let rotation = db.latest_rotation().await?;

    gauges.jobs.clear();
    gauges.oldest_queued.clear();
    for kind in crate::jobs::JobKind::ALL {
        // Every kind shows, at 0 when it has nothing queued: an alert on the queue's age
        // needs a series to compare.
        gauges
            .oldest_queued
            .get_or_create(&KindLabel {
                kind: kind.as_str().into(),
            })
            .set(0.0);
        for status in ["queued", "running", "dead"] {
            gauges
                .jobs
                .get_or_create(&JobStateLabels {
                    kind: kind.as_str().into(),
                    status: status.into(),
                })
                .set(0);
        }
    }
    for row in backlog {
        if let Some(oldest) = row.oldest_due {
            let waited = (now - oldest.as_datetime()).num_milliseconds().max(0) as f64 / 1000.0;
            gauges
                .oldest_queued
                .get_or_create(&KindLabel { kind: row.kind.clone() })
                .set(waited);
        }
        gauges
            .jobs
            .get_or_create(&JobStateLabels {
                kind: row.kind,
                status: row.status,
            })
            .set(row.count);
    }

    gauges.enabled.clear();
    gauges.last_success.clear();
    gauges.schedule_interval.clear();
    for connector in connectors {
        metrics.track_connector(&connector.name);
        let label = ConnectorLabel {
            connector: connector.name,
        };
        gauges.enabled.get_or_create(&label).set(i64::from(connector.enabled));
        if let Some(at) = connector.last_success {
            let at = at.as_datetime();
            gauges
                .last_success
                .get_or_create(&label)
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
        let schedule = connector.schedule.as_deref().filter(|_| connector.enabled);
        if let Some(gap) = schedule.and_then(|s| Schedule::parse(s, &connector.timezone).ok()?.longest_gap(now)) {
            gauges.schedule_interval.get_or_create(&label).set(gap.as_secs_f64());
        }
    }

    gauges.alerts_open.clear();
    for open in alerts {
        gauges
            .alerts_open
            .get_or_create(&AlertLabels {
                connector: open.connector,
                subscription: open.subscription,
                kind: open.kind,
            })
            .set(open.count);
    }

    let running = rotation.as_ref().filter(|r| r.status == crate::manager::keys::RUNNING);
    gauges
        .rotation_remaining
        .set(running.map_or(0, |r| (r.total - r.done).max(0)));
    gauges.rotation_running.set(i64::from(running.is_some()));
    gauges.rotation_failed.set(i64::from(
        rotation
            .as_ref()
            .is_some_and(|r| r.status == crate::manager::keys::FAILED),
    ));
    gauges.data_key_version.set(i64::from(manager.data_key_version()));

    let (size, idle, max) = db.pool_use();
    gauges
        .pool_connections
        .get_or_create(&PoolLabel { state: "idle" })
        .set(idle as i64);
    gauges
        .pool_connections
        .get_or_create(&PoolLabel { state: "busy" })
        .set((size as usize).saturating_sub(idle) as i64);
    gauges.pool_max.set(max as i64);
    gauges.database_up(true);
    Ok(())
}

#[cfg(test)]
impl Gauges {
    /// One series in every family, so each shows in a render.
    pub(super) fn show_every_family(&self) {
        let label = ConnectorLabel { connector: "c".into() };
        let kind = KindLabel { kind: "sync".into() };
        self.jobs
            .get_or_create(&JobStateLabels {
                kind: "sync".into(),
                status: "queued".into(),
            })
            .set(0);
        self.oldest_queued.get_or_create(&kind).set(0.0);
        self.enabled.get_or_create(&label).set(1);
        self.last_success.get_or_create(&label).set(0.0);
        self.schedule_interval.get_or_create(&label).set(60.0);
        self.alerts_open
            .get_or_create(&AlertLabels {
                connector: "c".into(),
                subscription: String::new(),
                kind: "credentials".into(),
            })
            .set(0);
        self.pool_connections.get_or_create(&PoolLabel { state: "idle" }).set(0);
    }
}
