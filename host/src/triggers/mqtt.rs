//! MQTT ingest: one MQTT 5 subscriber per enabled connector whose plugin takes MQTT.
//!
//! - Topics are the connector config's `topics`, else the plugin manifest's `mqtt_topics`,
//!   subscribed as shared subscriptions (`$share/<group>/<topic>`) so hub replicas split
//!   the messages between them.
//! - `connections` MQTT connections per connector, all in the shared group: each has its own
//!   in-flight window at the broker, so more messages are on their way while one batch
//!   commits (BENCHMARKS.md: 20,000-message burst on PostgreSQL, 1 connection 9,477 stored/s,
//!   8 connections 11,361/s).
//! - QoS 1 with manual acks: each connection takes every message that has arrived (up to
//!   `max_batch`) without waiting for more — waiting for a fuller batch holds the broker's
//!   window shut, and Mosquitto drops what overflows a session's queue — stores them as one durable job (group-committed
//!   with the other connections' batches and with webhooks), and only then acknowledges each.
//!   A message not acknowledged when the hub dies is sent again by the broker (the session
//!   outlives the connection), and stored observations are unique per device, code and time,
//!   so a redelivery stores nothing twice.
//! - `receive_maximum` bounds what the broker sends before acks come back.
//! - The connection is re-established with backoff; a failed store is retried before more
//!   is acknowledged.

use crate::jobs::{CommitError, JobKind, MessagesPayload, QueuedMessage};
use crate::manager::Manager;
use crate::store::connectors::ConnectorRecord;
use hub_registry::Trigger;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// `[mqtt]` in the config: the broker every MQTT connector reads from.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// The broker's host name or address.
    pub host: String,
    /// The broker's MQTT port.
    pub port: u16,
    /// Client ids are `<client_id>-<connector id>-<n>`; give every replica its own.
    pub client_id: String,
    /// The shared-subscription group replicas join.
    pub share_group: String,
    /// MQTT connections per connector (each with its own in-flight window at the broker).
    pub connections: usize,
    /// Most messages stored as one job.
    pub max_batch: usize,
    /// MQTT 5 receive maximum: unacknowledged messages the broker may send at once.
    pub receive_maximum: u16,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "hub".into(),
            share_group: "hub".into(),
            connections: 8,
            max_batch: 500,
            receive_maximum: 1000,
        }
    }
}

/// How often the set of MQTT connectors is compared with what is running.
const RECONCILE_EVERY: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// MQTT ingest under its `[mqtt]` settings: the subscribers of every MQTT connector.
pub struct MqttIngest {
    manager: Manager,
    config: MqttConfig,
}

impl MqttIngest {
    pub fn new(manager: Manager, config: MqttConfig) -> Self {
        Self { manager, config }
    }

    /// Keeps one subscriber running per enabled MQTT connector until the hub stops.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let Self { manager, config } = &self;
            // Dropped with this task when the hub stops, which stops the subscribers too.
            let mut running: HashMap<String, Subscriber> = HashMap::new();
            loop {
                match self.wanted().await {
                    Ok(wanted) => {
                        running.retain(|id, subscriber| {
                            wanted
                                .iter()
                                .any(|(c, _)| &c.id == id && fingerprint_of(c) == subscriber.fingerprint)
                        });
                        for (connector, topics) in wanted {
                            if running.contains_key(&connector.id) {
                                continue;
                            }
                            tracing::info!(connector = %connector.id, ?topics, "MQTT subscriber starting");
                            let subscriber = Subscriber {
                                name: connector.name.clone(),
                                fingerprint: fingerprint_of(&connector),
                                tasks: subscribe(manager.clone(), config, &connector, topics),
                            };
                            running.insert(connector.id.clone(), subscriber);
                        }
                    }
                    Err(error) => tracing::error!(%error, "listing MQTT connectors failed"),
                }
                tokio::time::sleep(RECONCILE_EVERY).await;
            }
        })
    }

    /// Enabled connectors whose plugin takes MQTT, with their topic filters.
    async fn wanted(&self) -> Result<Vec<(ConnectorRecord, Vec<String>)>, crate::manager::ManagerError> {
        let connectors = self.manager.enabled_connectors_with(Trigger::Mqtt).await?;
        Ok((connectors.into_iter())
            .map(|(connector, manifest)| {
                let config: serde_json::Value = serde_json::from_str(&connector.config).unwrap_or_default();
                let topics = match config.get("topics").and_then(|t| t.as_array()) {
                    Some(topics) => topics.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
                    None => manifest.mqtt_topics.clone(),
                };
                (connector, topics)
            })
            .collect())
    }
}

/// A connector's running subscriber; stopped when dropped.
struct Subscriber {
    /// The connector's name: its metrics series go with it.
    name: String,
    fingerprint: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
        crate::metrics::metrics().mqtt_forget(&self.name);
    }
}

/// What makes a subscriber stale: a new plugin version or new settings restart it.
fn fingerprint_of(connector: &ConnectorRecord) -> String {
    format!(
        "{}|{}|{}",
        connector.plugin_digest, connector.config, connector.max_attempts
    )
}

/// Per connection, a task polling its event loop (which also sends the acks) and a task
/// storing what arrived, then acknowledging it.
fn subscribe(
    manager: Manager,
    config: &MqttConfig,
    connector: &ConnectorRecord,
    topics: Vec<String>,
) -> Vec<JoinHandle<()>> {
    let filters: Vec<String> = topics
        .iter()
        .map(|t| format!("$share/{}/{t}", config.share_group))
        .collect();
    let max_batch = config.max_batch.max(1);
    crate::metrics::metrics().mqtt_subscribed(&connector.name);
    let mut tasks = Vec::new();
    for n in 0..config.connections.max(1) {
        let mut options = MqttOptions::new(
            format!("{}-{}-{n}", config.client_id, connector.id),
            config.host.clone(),
            config.port,
        );
        options
            .set_manual_acks(true)
            .set_clean_start(false)
            .set_session_expiry_interval(Some(3600))
            .set_receive_maximum(Some(config.receive_maximum))
            .set_keep_alive(Duration::from_secs(30));
        // Acks go through this channel: room for a whole batch, so acking never waits on it.
        let (client, eventloop) = AsyncClient::new(options, max_batch + 64);
        let (received, arrived) = mpsc::channel(max_batch * 2);
        tasks.push(tokio::spawn(connection(
            eventloop,
            client.clone(),
            filters.clone(),
            received,
            connector.clone(),
        )));
        tasks.push(tokio::spawn(store_batches(
            manager.clone(),
            client,
            arrived,
            connector.clone(),
            max_batch,
        )));
    }
    tasks
}

async fn connection(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    received: mpsc::Sender<Publish>,
    record: ConnectorRecord,
) {
    let metrics = crate::metrics::metrics();
    let connector = &record.id;
    let mut backoff = Duration::from_millis(100);
    let mut up = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!(%connector, "MQTT connected");
                if !up {
                    up = true;
                    metrics.mqtt_connection(&record.name, true);
                }
                backoff = Duration::from_millis(100);
                for filter in &filters {
                    if let Err(error) = client.subscribe(filter.clone(), QoS::AtLeastOnce).await {
                        tracing::error!(%connector, %error, %filter, "MQTT subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                metrics.mqtt_received(&record.name, 1);
                if received.send(publish).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(error) => {
                if up {
                    up = false;
                    metrics.mqtt_connection(&record.name, false);
                }
                tracing::warn!(%connector, %error, retry_ms = backoff.as_millis() as u64, "MQTT connection lost; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Stores one batch as a job, retrying until it is stored; false when the hub is stopping.
async fn store_batch(manager: &Manager, connector: &ConnectorRecord, payload: &MessagesPayload) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        let job = manager
            .runs()
            .new_job(connector, JobKind::Messages, None, None, payload);
        match manager.queue().store(job).await {
            Ok(_) => return true,
            Err(CommitError::Stopping) => return false,
            Err(error) => {
                let count = payload.messages.len();
                tracing::error!(connector = %connector.id, %error, count, "storing MQTT messages failed; retrying before acknowledging");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn store_batches(
    manager: Manager,
    client: AsyncClient,
    mut arrived: mpsc::Receiver<Publish>,
    connector: ConnectorRecord,
    max_batch: usize,
) {
    while let Some(first) = arrived.recv().await {
        // Whatever is here already, never waiting for more: the broker sends no more until
        // these are acknowledged.
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match arrived.try_recv() {
                Ok(publish) => batch.push(publish),
                Err(_) => break,
            }
        }
        let payload = MessagesPayload {
            messages: batch
                .iter()
                .map(|p| QueuedMessage {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload.to_vec(),
                })
                .collect(),
        };
        // The batch's trace: its job continues it through the plugin to the database.
        let span = tracing::debug_span!("mqtt.batch", connector = %connector.name, messages = batch.len());
        if !store_batch(&manager, &connector, &payload).instrument(span).await {
            return;
        }
        let mut acked = 0;
        for publish in &batch {
            match client.ack(publish).await {
                Ok(()) => acked += 1,
                Err(error) => {
                    tracing::warn!(connector = %connector.id, %error, "MQTT ack failed; the broker sends the message again")
                }
            }
        }
        crate::metrics::metrics().mqtt_acked(&connector.name, acked);
    }
}
