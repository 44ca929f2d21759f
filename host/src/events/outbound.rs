//! Handing the outbox to outbound connectors (docs/events.md#outbound-connectors): plugins
//! with `triggers = ["events"]`, such as Odoo, whose `deliver` export sends the hub's events
//! on to another system.
//!
//! Every hub runs an [`Outbound`] task. For each enabled outbound connector, the hub holding
//! its sink's lease (`store::sinks`, as for RabbitMQ) queues one `deliver` job at a time
//! with the next batch of events after the sink's cursor, keyed by where the batch starts so
//! two hubs never queue it twice. The job runs like any other (the plugin's limits, the
//! queue's retries and backoff, a refused credential raising an alert; `manager::runner`)
//! and moves the cursor past its batch once `deliver` succeeded. A batch whose job used up
//! its attempts is queued again after `[events] outbound_pause_secs`, and nothing after it
//! goes before it: the connector's events stay in order, and none is skipped.

use crate::jobs::{DeliverPayload, JobKind};
use crate::manager::{Manager, ManagerError};
use crate::runtime::PluginEvent;
use crate::store::connectors::ConnectorRecord;
use crate::store::events::StoredEvent;
use hub_registry::Trigger;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often the list of outbound connectors is read again when this hub changed none
/// (their sinks are looked at every `[events] poll_ms`).
const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// A stored event as a plugin gets it.
pub fn for_plugin(event: StoredEvent) -> PluginEvent {
    PluginEvent {
        id: event.id,
        seq: event.seq,
        kind: event.kind,
        subject: event.subject,
        connector_id: event.connector_id,
        occurred_at: event.occurred_at.to_string(),
        data: event.data,
    }
}

/// Queues the outbox's events for every outbound connector, on every hub.
pub struct Outbound {
    manager: Manager,
    config: super::delivery::EventsConfig,
    /// This hub, as a lease owner.
    owner: String,
}

impl Outbound {
    pub fn new(manager: Manager, config: super::delivery::EventsConfig) -> Self {
        Self {
            manager,
            config,
            owner: uuid::Uuid::now_v7().to_string(),
        }
    }

    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let poll = Duration::from_millis(self.config.poll_ms.max(10));
            let mut connectors = Vec::new();
            // When the list was read, and the settings generation it was read at.
            let mut listed: Option<(Instant, u64)> = None;
            // Each connector's sink cursor the last time the outbox had nothing past it.
            let mut idle_at: HashMap<String, i64> = HashMap::new();
            // The connectors whose sink this hub made sure of: one a connector gets at its
            // creation, or, when a later version of its plugin added `events`, here.
            let mut started: HashSet<String> = HashSet::new();
            loop {
                let generation = self.manager.settings_generation();
                if listed.is_none_or(|(at, seen)| at.elapsed() >= RECONCILE_EVERY || seen != generation) {
                    match self.manager.enabled_connectors_with(Trigger::Events).await {
                        Ok(found) => {
                            connectors = found.into_iter().map(|(connector, _)| connector).collect();
                            idle_at.retain(|id, _| connectors.iter().any(|c| &c.id == id));
                            for connector in &connectors {
                                if started.contains(&connector.id) {
                                    continue;
                                }
                                let sink = crate::store::sinks::connector_sink(&connector.id);
                                match self.manager.db().start_sink(&sink).await {
                                    Ok(()) => {
                                        started.insert(connector.id.clone());
                                    }
                                    Err(error) => tracing::error!(%error, %sink, "could not set up a sink"),
                                }
                            }
                            listed = Some((Instant::now(), generation));
                        }
                        Err(error) => tracing::error!(%error, "listing outbound connectors failed"),
                    }
                }
                // While the newest event is where each sink stood idle, nothing is leased or
                // read (an idle hub wrote each sink's lease 4 times a second before).
                let newest = match self.manager.db().last_event_seq().await {
                    Ok(newest) => Some(newest),
                    Err(error) => {
                        tracing::error!(%error, "reading the outbox for outbound connectors failed");
                        None
                    }
                };
                for connector in &connectors {
                    if newest.is_some() && newest == idle_at.get(&connector.id).copied() {
                        continue;
                    }
                    match self.queue_next(connector).await {
                        Ok(Some(at)) => {
                            idle_at.insert(connector.id.clone(), at);
                        }
                        Ok(None) => {
                            idle_at.remove(&connector.id);
                        }
                        Err(error) => {
                            tracing::error!(%error, connector = %connector.id, "queuing events for an outbound connector failed")
                        }
                    }
                }
                tokio::time::sleep(poll).await;
            }
        })
    }

    /// Queues `connector`'s next batch when this hub holds its sink and no job of it is
    /// under way; queues a dead batch again once it has paused long enough. The sink's
    /// cursor when nothing is past it (the sink is idle).
    async fn queue_next(&self, connector: &ConnectorRecord) -> Result<Option<i64>, ManagerError> {
        let db = self.manager.db();
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::seconds(self.config.lease_secs.max(1) as i64);
        let sink = crate::store::sinks::connector_sink(&connector.id);
        let Some(after) = db.lease_sink(&sink, &self.owner, now.into(), until.into()).await? else {
            return Ok(None);
        };
        let dedup = format!("deliver:{after}");
        if let Some(job) = db
            .job_by_dedup(&connector.id, JobKind::Deliver.as_str(), &dedup)
            .await?
        {
            let pause = chrono::Duration::seconds(self.config.outbound_pause_secs as i64);
            if job.status == "dead" && job.finished_at.is_some_and(|at| at.as_datetime() + pause <= now) {
                tracing::info!(connector = %connector.id, job = %job.id, "an outbound batch is tried again");
                db.requeue_dead_job(&job.id).await?;
                self.manager.queue().notify_work();
            }
            return Ok(None);
        }
        let Some(through) = db.batch_end(after, self.config.batch.max(1)).await? else {
            return Ok(Some(after));
        };
        (self.manager)
            .queue_delivery(connector, dedup, &DeliverPayload { after, through })
            .await?;
        Ok(None)
    }
}
