//! Changing a connector while the hub runs: settings, upgrade to another installed version,
//! rollback, delete, and its health as derived from its runs.
//!
//! No restart is needed: a run reads its connector when it gets its slot, so a run already
//! going keeps the plugin version it loaded and the next one uses the new version.

use super::{FieldError, Manager, ManagerError, check_credential_secrets, validate_egress};
use crate::audit::Event;
use crate::events;
use crate::runtime::state::CURSOR_KEY;
use crate::store::connectors::ConnectorRecord;
use crate::store::runs::RunRecord;
use hub_registry::{CreatePolicy, Manifest};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// `PATCH /api/v1/connectors/{id}`: the settings to change; absent fields stay.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorPatch {
    pub config: Option<serde_json::Value>,
    pub egress: Option<Vec<String>>,
    #[schemars(range(min = 1, max = super::MAX_CONCURRENCY))]
    pub concurrency: Option<u32>,
    #[schemars(range(min = 1, max = super::MAX_ATTEMPTS))]
    pub max_attempts: Option<u32>,
    /// Cron expression (5 fields, or 6-7 with seconds); `""` removes the schedule.
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in.
    pub timezone: Option<String>,
    /// Quota overrides; replaces the connector's overrides whole (`{}` returns to the
    /// hub's `[quotas]`).
    pub quotas: Option<serde_json::Value>,
    /// Whether the connector's records may create practitioners; `null` returns to its
    /// plugin manifest's `creates_practitioners`.
    #[serde(default, deserialize_with = "present")]
    pub creates_practitioners: Option<Option<CreatePolicy>>,
}

/// A field that is present, `null` or not: `Some(None)` for `null`, `None` when absent.
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /api/v1/connectors/{id}/state/reset`: where the connector's next sync starts.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CursorReset {
    /// A cursor as the plugin saves it (see the connector's last one in this call's answer);
    /// absent, the next sync starts from the beginning: a full resync, which updates the
    /// practitioners already stored (or counts them unchanged) and never duplicates them.
    pub cursor: Option<String>,
}

/// A connector's cursor before and after a reset.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CursorState {
    pub connector_id: String,
    /// The cursor the last sync saved; `null` when there was none.
    pub previous: Option<String>,
    /// The cursor the next sync starts from; `null` for the beginning.
    pub cursor: Option<String>,
}

/// Health of a connector, derived from its runs.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Health {
    /// `healthy`, `degraded`, `failing` or `disabled`.
    pub status: &'static str,
    /// Why, in a sentence.
    pub reason: String,
    pub last_run: Option<RunRecord>,
    pub last_success: Option<RunRecord>,
    /// Runs by status: queued, running, succeeded, failed.
    pub runs: serde_json::Map<String, serde_json::Value>,
    /// Alerts not yet resolved (`GET /api/v1/alerts?connector_id=…&open=true`).
    pub open_alerts: i64,
}

/// Finished runs looked at for health.
const HEALTH_WINDOW: i64 = 10;

/// A connector's settings, as `connector.updated` names those that changed: a patch sets
/// some of them, `Manager::update_connector` (the demo) all.
pub const SETTINGS: &[&str] = &[
    "config",
    "egress",
    "credentials",
    "concurrency",
    "max_attempts",
    "schedule",
    "timezone",
    "quotas",
    "creates_practitioners",
];
/// Consecutive failed runs that make a connector `failing`.
const FAILING_AFTER: usize = 3;

impl Manager {
    pub async fn patch_connector(
        &self,
        id: &str,
        patch: ConnectorPatch,
        actor: &str,
    ) -> Result<ConnectorRecord, ManagerError> {
        let mut record = self.connector(id).await?;
        let changed: Vec<&str> = [
            patch.config.as_ref().map(|_| "config"),
            patch.egress.as_ref().map(|_| "egress"),
            patch.concurrency.map(|_| "concurrency"),
            patch.max_attempts.map(|_| "max_attempts"),
            patch.schedule.as_ref().map(|_| "schedule"),
            patch.timezone.as_ref().map(|_| "timezone"),
            patch.quotas.as_ref().map(|_| "quotas"),
            patch.creates_practitioners.map(|_| "creates_practitioners"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(config) = patch.config {
            let manifest = self.manifest_of(&record.plugin_digest).await?;
            check_config(&manifest, &config)?;
            record.config = config.to_string();
        }
        if let Some(egress) = patch.egress {
            for host in &egress {
                validate_egress(host)?;
            }
            record.egress = serde_json::to_string(&egress).expect("strings serialize");
        }
        if let Some(concurrency) = patch.concurrency {
            // Sync claims read it: running syncs go on, new ones start while under it.
            record.concurrency = concurrency.clamp(1, super::MAX_CONCURRENCY) as i64;
        }
        if let Some(attempts) = patch.max_attempts {
            record.max_attempts = attempts.clamp(1, super::MAX_ATTEMPTS) as i64;
        }
        if let Some(schedule) = patch.schedule {
            record.schedule = Some(schedule).filter(|s| !s.trim().is_empty());
        }
        if let Some(timezone) = patch.timezone {
            record.timezone = timezone;
        }
        if let Some(quotas) = patch.quotas {
            self.inner.runs.check_quotas(&quotas)?;
            record.quotas = quotas.to_string();
        }
        if let Some(creates) = patch.creates_practitioners {
            record.creates_practitioners = creates.map(|p| p.as_str().to_string());
        }
        check_schedule(record.schedule.as_deref(), &record.timezone)?;
        let event = events::connector("connector.updated", &record, json!({ "changed": changed }));
        self.inner.db.update_connector(&record, &event).await?;
        self.settings_changed();
        self.inner
            .audit
            .record(Event::new(actor, "connector.update", id).details(json!({ "changed": changed })))
            .await;
        self.connector(id).await
    }

    /// Moves a connector to another installed version of its plugin. The instance's config
    /// must satisfy the new version's schema.
    pub async fn upgrade(&self, id: &str, version: &str, actor: &str) -> Result<ConnectorRecord, ManagerError> {
        let record = self.connector(id).await?;
        let current = self.plugin_of(&record).await?;
        let target = self
            .inner
            .db
            .find_plugin(&current.name, Some(version))
            .await?
            .ok_or_else(|| ManagerError::NotFound {
                what: "plugin version",
                id: format!("{}@{version} (install it first: POST /api/v1/plugins)", current.name),
            })?;
        self.switch(record, &current.version, target.digest, "connector.upgrade", actor)
            .await
    }

    /// Moves a connector back to the version it ran before its last upgrade.
    pub async fn rollback(&self, id: &str, actor: &str) -> Result<ConnectorRecord, ManagerError> {
        let record = self.connector(id).await?;
        let current = self.plugin_of(&record).await?;
        let previous = record.previous_plugin_digest.clone().ok_or_else(|| {
            ManagerError::Conflict(format!(
                "connector {:?} has not been upgraded, so there is no version to roll back to",
                record.name
            ))
        })?;
        self.switch(record, &current.version, previous, "connector.rollback", actor)
            .await
    }

    async fn switch(
        &self,
        record: ConnectorRecord,
        from_version: &str,
        to_digest: String,
        action: &'static str,
        actor: &str,
    ) -> Result<ConnectorRecord, ManagerError> {
        let manifest = self.manifest_of(&to_digest).await?;
        if to_digest == record.plugin_digest {
            return Err(ManagerError::Conflict(format!(
                "connector {:?} already runs {}",
                record.name,
                manifest.id()
            )));
        }
        let config: serde_json::Value = serde_json::from_str(&record.config).unwrap_or_default();
        check_config(&manifest, &config)?;
        let credentials = serde_json::from_str(&record.credentials).unwrap_or_default();
        check_credential_secrets(&manifest, &credentials)?;
        let kind = match action {
            "connector.rollback" => "connector.rolled_back",
            _ => "connector.upgraded",
        };
        let event = events::connector(kind, &record, json!({ "from": from_version, "to": manifest.version }));
        if !self
            .inner
            .db
            .switch_plugin(&record.id, &record.plugin_digest, &to_digest, &event)
            .await?
        {
            return Err(ManagerError::Conflict(format!(
                "connector {:?} changed while switching versions; read it again and retry",
                record.name
            )));
        }
        self.settings_changed();
        tracing::info!(connector = %record.id, from = from_version, to = %manifest.version, "{action}");
        self.inner
            .audit
            .record(Event::new(actor, action, &record.id).details(json!({
                "from": from_version, "to": manifest.version, "digest": to_digest,
            })))
            .await;
        self.connector(&record.id).await
    }

    /// Sets where the connector's next sync starts (`reset.cursor`, or the beginning).
    /// Refused while a run is going: it saves its cursor page by page and would write over
    /// the reset. A run queued meanwhile starts from the reset cursor.
    pub async fn reset_cursor(&self, id: &str, reset: CursorReset, actor: &str) -> Result<CursorState, ManagerError> {
        let record = self.connector(id).await?;
        let db = &self.inner.db;
        if (db.run_counts(id).await?.iter()).any(|(status, n)| status == "running" && *n > 0) {
            return Err(ManagerError::Conflict(format!(
                "connector {:?} has a run going, which saves its cursor page by page and would write over the \
                 reset; wait for it to end (GET /api/v1/connectors/{id}/runs) or disable the connector, then reset",
                record.name
            )));
        }
        if let Some(cursor) = &reset.cursor {
            if cursor.contains('\0') {
                return Err(ManagerError::invalid(
                    "the cursor contains a NUL character, which no saved cursor can hold",
                ));
            }
            let quotas = self.runs().quotas_of(&record).map_err(ManagerError::invalid)?;
            if cursor.len() > quotas.cursor_bytes as usize {
                return Err(ManagerError::invalid(format!(
                    "the cursor is {} bytes, more than connector {:?} may save (quota cursor_bytes = {}); give a \
                     cursor the plugin saved, or none to start from the beginning",
                    cursor.len(),
                    record.name,
                    quotas.cursor_bytes
                )));
            }
        }
        let previous = db.state_get(id, CURSOR_KEY).await?;
        match &reset.cursor {
            // The cursor is the host's own key: the plugin's state_keys quota does not bar it.
            Some(cursor) => drop(db.state_set(id, CURSOR_KEY, cursor, u32::MAX).await?),
            None => drop(db.state_delete(id, CURSOR_KEY).await?),
        }
        let to = if reset.cursor.is_some() {
            "a given cursor"
        } else {
            "the beginning"
        };
        tracing::info!(connector = %id, to, "connector.cursor.reset");
        self.inner
            .audit
            .record(Event::new(actor, "connector.cursor.reset", id).details(json!({ "name": record.name, "to": to })))
            .await;
        Ok(CursorState {
            connector_id: record.id,
            previous,
            cursor: reset.cursor,
        })
    }

    /// Deletes a connector; its runs, logs and the records it stored stay.
    pub async fn delete_connector(&self, id: &str, actor: &str) -> Result<(), ManagerError> {
        let record = self.connector(id).await?;
        self.queue()
            .running()
            .cancel_connector(id, "the connector was deleted while the job ran");
        // Secrets first: a connector whose secrets could not be removed is not deleted.
        self.inner.secrets.store().delete_all(id).await?;
        let event = events::connector("connector.deleted", &record, json!({}));
        if !self.inner.db.delete_connector(id, &event).await? {
            return Err(ManagerError::NotFound {
                what: "connector",
                id: id.into(),
            });
        }
        self.settings_changed();
        self.inner
            .audit
            .record(Event::new(actor, "connector.delete", id).details(json!({ "name": record.name })))
            .await;
        Ok(())
    }

    pub async fn health(&self, record: &ConnectorRecord) -> Result<Health, ManagerError> {
        let mut health = self.health_of(std::slice::from_ref(record)).await?;
        Ok(health.pop().expect("one health per connector"))
    }

    /// The health of each of `records`, in order, from a fixed number of queries.
    pub async fn health_of(&self, records: &[ConnectorRecord]) -> Result<Vec<Health>, ManagerError> {
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let facts = self.inner.db.health_facts(&ids, HEALTH_WINDOW).await?;
        Ok(records
            .iter()
            .zip(facts)
            .map(|(record, facts)| {
                let (status, reason) = judge(record.enabled, &facts.finished);
                Health {
                    status,
                    reason,
                    last_run: facts.last_run,
                    last_success: facts.last_success,
                    runs: facts.counts.into_iter().map(|(status, n)| (status, json!(n))).collect(),
                    open_alerts: facts.open_alerts,
                }
            })
            .collect())
    }

    async fn plugin_of(&self, record: &ConnectorRecord) -> Result<crate::store::plugins::PluginRecord, ManagerError> {
        Ok(self
            .inner
            .db
            .plugin_by_digest(&record.plugin_digest)
            .await?
            .ok_or_else(|| crate::store::StoreError::Corrupt {
                what: "connector",
                detail: format!("its plugin {} is not installed", record.plugin_digest),
            })?)
    }

    /// The manifest of an installed plugin version.
    pub(crate) async fn manifest_of(&self, digest: &str) -> Result<Arc<Manifest>, ManagerError> {
        self.inner.manifests.get(digest).await
    }
}

pub(super) fn check_config(manifest: &Manifest, config: &serde_json::Value) -> Result<(), ManagerError> {
    let errors = crate::json_schema::validate(&manifest.config_schema, config);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ManagerError::Invalid {
            detail: format!("config does not match the schema of plugin {}", manifest.id()),
            fields: errors,
        })
    }
}

/// Health from the newest finished runs (newest first).
fn judge(enabled: bool, finished: &[RunRecord]) -> (&'static str, String) {
    if !enabled {
        return ("disabled", "the connector is disabled".into());
    }
    let failed_in_a_row = finished.iter().take_while(|r| r.status == "failed").count();
    let failures = finished.iter().filter(|r| r.status == "failed").count();
    if failed_in_a_row >= FAILING_AFTER.min(finished.len()) && failed_in_a_row > 0 {
        let error = finished[0].error.as_deref().unwrap_or("unknown error");
        return (
            "failing",
            format!("the last {failed_in_a_row} runs failed; the last error: {error}"),
        );
    }
    if failures > 0 {
        return (
            "degraded",
            format!("{failures} of the last {} finished runs failed", finished.len()),
        );
    }
    match finished.first() {
        Some(last) if last.records_received > 0 && last.records_rejected * 5 > last.records_received => (
            "degraded",
            format!(
                "the last run rejected {} of {} records (over 20 %)",
                last.records_rejected, last.records_received
            ),
        ),
        Some(_) => ("healthy", "the recent runs succeeded".into()),
        None => ("healthy", "no run has finished yet".into()),
    }
}

/// A schedule and time zone the scheduler can use, or field errors saying why not.
pub(super) fn check_schedule(schedule: Option<&str>, timezone: &str) -> Result<(), ManagerError> {
    let checked = match schedule {
        Some(expression) => crate::triggers::Schedule::parse(expression, timezone).map(drop),
        None => crate::triggers::parse_timezone(timezone).map(drop),
    };
    checked.map_err(|e| {
        let pointer = match e {
            crate::triggers::ScheduleError::Expression(_) => "/schedule",
            crate::triggers::ScheduleError::Timezone(_) => "/timezone",
        };
        ManagerError::Invalid {
            detail: e.to_string(),
            fields: vec![FieldError {
                pointer: pointer.into(),
                message: e.to_string(),
            }],
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: &str) -> RunRecord {
        RunRecord {
            id: String::new(),
            connector_id: String::new(),
            trigger: "manual".into(),
            status: status.into(),
            attempts: 1,
            queued_at: crate::store::Timestamp::now(),
            started_at: None,
            finished_at: None,
            trace_id: String::new(),
            plugin_digest: None,
            records_received: 10,
            records_created: 10,
            records_updated: 0,
            records_unchanged: 0,
            records_rejected: 0,
            records_held: 0,
            error: (status == "failed").then(|| "HTTP 503".into()),
        }
    }

    #[test]
    fn health_follows_the_runs() {
        assert_eq!(judge(false, &[run("succeeded")]).0, "disabled");
        assert_eq!(judge(true, &[]).0, "healthy");
        assert_eq!(judge(true, &[run("succeeded"), run("succeeded")]).0, "healthy");
        assert_eq!(judge(true, &[run("succeeded"), run("failed")]).0, "degraded");
        assert_eq!(judge(true, &[run("failed"), run("succeeded")]).0, "degraded");
        let failing = judge(true, &[run("failed"), run("failed"), run("failed"), run("succeeded")]);
        assert_eq!(failing.0, "failing");
        assert!(failing.1.contains("HTTP 503"), "{}", failing.1);
        assert_eq!(judge(true, &[run("failed")]).0, "failing", "the only run failed");
    }
}
