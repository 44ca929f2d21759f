//! Raising and clearing alerts: the conditions seed 002 says an operator must hear about.

use super::Inner;
use super::alert_delivery::AlertState;
use crate::audit::{Event, Outcome};
use crate::store::alerts::{AlertRecord, Concern};
use crate::store::connectors::ConnectorRecord;
use crate::store::subscriptions::SubscriptionRecord;
use crate::store::{self, StoreError, Tx};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token endpoint refused the connector's credentials.
pub const CREDENTIALS: &str = "credentials";
/// The hub gave up on a webhook subscription's endpoint (410 Gone, or failing through the
/// whole retry schedule) and disabled the subscription; resolved when someone resumes or
/// deletes it.
pub const SUBSCRIPTION_DISABLED: &str = "subscription-disabled";
/// More than [`REJECT_SHARE_LIMIT`] of a connector's rows were rejected over one window.
pub const REJECT_RATE: &str = "reject-rate";
/// Share of rejected rows in a window above which an alert is raised (seed 002: "more than
/// 20 % of a batch").
pub const REJECT_SHARE_LIMIT: f64 = 0.2;
/// Rows a window holds before it is judged. A sync page (100-1,000 rows) fills one; single
/// webhook events add up until they make a batch, so one rejected event among a few is not
/// "20 % of a batch" (it raised an alert per event before).
pub const REJECT_WINDOW_ROWS: u64 = 100;
/// A window with fewer rows is judged at the connector's first batch after it is this old,
/// so a connector that receives a few events a day is still judged.
pub const REJECT_WINDOW_AGE: Duration = Duration::from_secs(15 * 60);

/// The reject-rate window of every connector on this hub (each hub judges what it stored).
#[derive(Default)]
pub struct RejectWindows {
    windows: Mutex<HashMap<String, RejectWindow>>,
}

struct RejectWindow {
    received: u64,
    rejected: u64,
    opened: Instant,
}

/// A closed window that went over the limit.
pub struct OverLimit {
    pub received: u64,
    pub rejected: u64,
}

impl RejectWindows {
    /// Adds a stored batch to `connector_id`'s window. When that fills the window (or it is
    /// old), the window is closed and, if more than [`REJECT_SHARE_LIMIT`] of its rows were
    /// rejected, returned.
    pub fn add(&self, connector_id: &str, received: u64, rejected: u64) -> Option<OverLimit> {
        self.add_at(connector_id, received, rejected, Instant::now())
    }

    fn add_at(&self, connector_id: &str, received: u64, rejected: u64, now: Instant) -> Option<OverLimit> {
        let mut windows = self.windows.lock().unwrap();
        let window = windows.entry(connector_id.to_string()).or_insert(RejectWindow {
            received: 0,
            rejected: 0,
            opened: now,
        });
        window.received += received;
        window.rejected += rejected;
        if window.received < REJECT_WINDOW_ROWS && now.duration_since(window.opened) < REJECT_WINDOW_AGE {
            return None;
        }
        let closed = windows.remove(connector_id).expect("present");
        (closed.received > 0 && closed.rejected as f64 > closed.received as f64 * REJECT_SHARE_LIMIT).then_some(
            OverLimit {
                received: closed.received,
                rejected: closed.rejected,
            },
        )
    }
}

/// What an alert is about.
#[derive(Clone, Copy)]
pub enum AlertSubject<'a> {
    Connector(&'a ConnectorRecord),
    Subscription(&'a SubscriptionRecord),
}

impl<'a> AlertSubject<'a> {
    pub(super) fn concern(self) -> Concern<'a> {
        match self {
            AlertSubject::Connector(c) => Concern::Connector(&c.id),
            AlertSubject::Subscription(s) => Concern::Subscription(&s.id),
        }
    }

    /// How a person reading an alert channel knows it: the connector's name, the
    /// subscription's description (its id when it has none; its URL may hold a credential).
    pub(super) fn name(self) -> &'a str {
        match self {
            AlertSubject::Connector(c) => &c.name,
            AlertSubject::Subscription(s) if s.description.is_empty() => &s.id,
            AlertSubject::Subscription(s) => &s.description,
        }
    }

    /// Who raised it and what it is about, for the audit log.
    fn audit(self) -> (String, String) {
        match self {
            AlertSubject::Connector(c) => (format!("connector:{}", c.id), c.id.clone()),
            AlertSubject::Subscription(s) => ("hub".to_string(), format!("subscription:{}", s.id)),
        }
    }
}

/// A new alert about `subject`, open.
pub fn new_alert(subject: AlertSubject<'_>, run_id: Option<&str>, kind: &str, message: String) -> AlertRecord {
    let (connector_id, subscription_id) = match subject.concern() {
        Concern::Connector(id) => (Some(id.to_string()), None),
        Concern::Subscription(id) => (None, Some(id.to_string())),
    };
    AlertRecord {
        id: uuid::Uuid::now_v7().to_string(),
        connector_id,
        subscription_id,
        run_id: run_id.map(str::to_string),
        kind: kind.to_string(),
        message,
        raised_at: crate::store::Timestamp::now(),
        resolved_at: None,
    }
}

impl Inner {
    /// Records an alert, logs it and audits it. Failing to store it is logged, not returned:
    /// the run's own outcome must not change because its alert could not be written.
    pub(super) async fn raise_alert(
        &self,
        subject: AlertSubject<'_>,
        run_id: Option<&str>,
        kind: &str,
        message: String,
    ) {
        let alert = new_alert(subject, run_id, kind, message);
        let stored = async {
            let mut tx = self.db.begin().await?;
            let queued = self.write_alert(&mut tx, subject, &alert).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(queued)
        };
        let queued = stored.await.unwrap_or_else(|error| {
            tracing::error!(%error, "could not store an alert");
            false
        });
        self.alert_raised(subject, &alert, queued).await;
    }

    /// Stores `alert` in `tx` with its deliveries (`alert_delivery.rs`) and its `alert.raised`
    /// event; true when a delivery was queued.
    pub(super) async fn write_alert(
        &self,
        tx: &mut Tx,
        subject: AlertSubject<'_>,
        alert: &AlertRecord,
    ) -> Result<bool, StoreError> {
        store::alerts::insert(tx, alert).await?;
        let queued = self.queue_deliveries(tx, subject, alert, AlertState::Firing).await?;
        store::events::insert(tx, &[crate::events::alert(alert)]).await?;
        Ok(queued)
    }

    /// Once `alert` is committed: logged, audited, its deliveries started.
    pub(super) async fn alert_raised(&self, subject: AlertSubject<'_>, alert: &AlertRecord, queued: bool) {
        tracing::warn!(about = %subject.name(), run = ?alert.run_id, kind = %alert.kind, "alert: {}", alert.message);
        self.deliveries_queued(queued);
        let (actor, target) = subject.audit();
        let event = Event::new(actor, "alert.raised", target)
            .outcome(Outcome::Failure)
            .details(json!({ "kind": alert.kind, "run": alert.run_id, "alert": alert.id }));
        self.audit.record(event).await;
    }

    /// Resolves the connector's open alerts of `kind`, queuing their deliveries and writing
    /// their `alert.resolved` events with them.
    pub(super) async fn resolve_alerts(&self, connector: &ConnectorRecord, kind: &str) {
        let subject = AlertSubject::Connector(connector);
        let resolved = async {
            let mut tx = self.db.begin().await?;
            let resolved = self.resolve_alerts_in(&mut tx, subject, kind).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(resolved)
        };
        match resolved.await {
            Ok(resolved) => self.alerts_resolved(subject, kind, resolved),
            Err(error) => tracing::error!(%error, connector = %connector.id, "could not resolve alerts"),
        }
    }

    /// Resolves `subject`'s open alerts of `kind` in `tx`, with their deliveries and events.
    pub(super) async fn resolve_alerts_in(
        &self,
        tx: &mut Tx,
        subject: AlertSubject<'_>,
        kind: &str,
    ) -> Result<Resolved, StoreError> {
        let alerts = store::alerts::resolve(tx, subject.concern(), kind).await?;
        let mut queued = false;
        for alert in &alerts {
            queued |= self.queue_deliveries(tx, subject, alert, AlertState::Resolved).await?;
        }
        let events: Vec<_> = alerts.iter().map(crate::events::alert).collect();
        store::events::insert(tx, &events).await?;
        Ok(Resolved {
            count: alerts.len(),
            queued,
        })
    }

    /// Once resolved alerts are committed: logged, their deliveries started.
    pub(super) fn alerts_resolved(&self, subject: AlertSubject<'_>, kind: &str, resolved: Resolved) {
        if resolved.count > 0 {
            tracing::info!(about = %subject.name(), kind, count = resolved.count, "alerts resolved");
        }
        self.deliveries_queued(resolved.queued);
    }

    fn deliveries_queued(&self, queued: bool) {
        if queued {
            self.runs.queue.notify_work();
        }
    }
}

/// Alerts resolved in a transaction.
pub struct Resolved {
    count: usize,
    queued: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_rejected_events_do_not_alert_until_they_make_a_batch_over_the_limit() {
        let windows = RejectWindows::default();
        let start = Instant::now();
        for _ in 0..20 {
            assert!(windows.add_at("c", 1, 1, start).is_none());
        }
        for _ in 20..99 {
            assert!(windows.add_at("c", 1, 0, start).is_none());
        }
        let over = windows.add_at("c", 1, 1, start).expect("21 of 100 is over 20 %");
        assert_eq!((over.rejected, over.received), (21, 100));
        // The next window starts empty.
        assert!(windows.add_at("c", 1, 1, start).is_none());
    }

    #[test]
    fn a_full_window_at_the_limit_does_not_alert_and_connectors_are_judged_apart() {
        let windows = RejectWindows::default();
        let now = Instant::now();
        assert!(windows.add_at("a", 1000, 200, now).is_none(), "20 % is not over 20 %");
        assert!(windows.add_at("b", 99, 99, now).is_none());
        assert!(windows.add_at("a", 1000, 201, now).is_some());
    }

    #[test]
    fn a_small_window_is_judged_once_it_is_old() {
        let windows = RejectWindows::default();
        let start = Instant::now();
        assert!(windows.add_at("c", 2, 1, start).is_none());
        let later = start + REJECT_WINDOW_AGE;
        let over = windows.add_at("c", 1, 1, later).expect("judged after the window's age");
        assert_eq!((over.rejected, over.received), (2, 3));
    }
}
