//! Raising and clearing alerts: the conditions seed 002 says an operator must hear about.

use super::Inner;
use crate::audit::{Event, Outcome};
use crate::store::alerts::AlertRecord;
use serde_json::json;

/// A token endpoint refused the connector's credentials.
pub const CREDENTIALS: &str = "credentials";
/// A batch had more than [`REJECT_SHARE_LIMIT`] of its rows rejected.
pub const REJECT_RATE: &str = "reject-rate";
/// Share of rejected rows in one batch above which an alert is raised (seed 002: 20 %).
pub const REJECT_SHARE_LIMIT: f64 = 0.2;

impl Inner {
    /// Records an alert, logs it and audits it. Failing to store it is logged, not returned:
    /// the run's own outcome must not change because its alert could not be written.
    pub(super) async fn raise_alert(&self, connector_id: &str, run_id: Option<&str>, kind: &str, message: String) {
        tracing::warn!(connector = %connector_id, run = ?run_id, kind, "alert: {message}");
        let alert = AlertRecord {
            id: uuid::Uuid::now_v7().to_string(),
            connector_id: connector_id.to_string(),
            run_id: run_id.map(str::to_string),
            kind: kind.to_string(),
            message,
            raised_at: crate::store::now(),
            resolved_at: None,
        };
        if let Err(error) = self.db.insert_alert(&alert).await {
            tracing::error!(%error, connector = %connector_id, "could not store an alert");
        }
        let event = Event::new(format!("connector:{connector_id}"), "alert.raised", connector_id)
            .outcome(Outcome::Failure)
            .details(json!({ "kind": kind, "run": run_id, "alert": alert.id }));
        self.audit.record(event).await;
    }

    pub(super) async fn resolve_alerts(&self, connector_id: &str, kind: &str) {
        match self.db.resolve_alerts(connector_id, kind).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(connector = %connector_id, kind, count = n, "alerts resolved"),
            Err(error) => tracing::error!(%error, connector = %connector_id, "could not resolve alerts"),
        }
    }
}
