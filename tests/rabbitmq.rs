//! The RabbitMQ sink on a real broker: every event of a sync reaches a queue bound to the
//! hub's exchange, persistent, routed by its type, in order per subject; two hubs publish
//! each event once; a broker restarted mid-burst loses nothing (publisher confirms).

use hub_e2e::{Backend, TestHub, backends, program_installed, rabbitmq};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One test at a time: one of them restarts the broker under the others.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A message as the queue held it.
struct Message {
    routing_key: String,
    message_id: String,
    persistent: bool,
    body: Value,
}

/// A durable queue bound to every routing key of `exchange`, as a consumer sets one up; it
/// outlives a broker restart, and its messages with it.
struct Queue {
    url: String,
    name: String,
}

impl Queue {
    async fn bind(addr: &str, exchange: &str) -> Self {
        let url = format!("amqp://guest:guest@{addr}/%2f");
        let name = format!("hub-test-{}", uuid::Uuid::new_v4().simple());
        let connection = Connection::connect(&url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let durable = lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        (channel.exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        ))
        .await
        .unwrap();
        (channel.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        ))
        .await
        .unwrap();
        (channel.queue_bind(
            name.as_str().into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .unwrap();
        connection.close(200, "bound".into()).await.unwrap();
        Self { url, name }
    }

    /// How many messages wait in the queue; none while the broker is away.
    async fn depth(&self) -> Option<u32> {
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .ok()?;
        let channel = connection.create_channel().await.ok()?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let queue = (channel.queue_declare(self.name.as_str().into(), passive, FieldTable::default()))
            .await
            .ok()?;
        let _ = connection.close(200, "counted".into()).await;
        Some(queue.message_count())
    }

    /// Takes messages off the queue, acknowledged, until every one of `ids` was among them
    /// (or 60 s pass); all it took, in queue order.
    async fn drain_until(&self, ids: &BTreeSet<String>) -> Vec<Message> {
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let mut taken = Vec::new();
        let mut seen = BTreeSet::new();
        for _ in 0..600 {
            while let Some(message) = (channel.basic_get(self.name.as_str().into(), BasicGetOptions { no_ack: true }))
                .await
                .unwrap()
            {
                let delivery = message.delivery;
                let message = Message {
                    routing_key: delivery.routing_key.to_string(),
                    message_id: delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    persistent: *delivery.properties.delivery_mode() == Some(2),
                    body: serde_json::from_slice(&delivery.data).unwrap(),
                };
                seen.insert(message.message_id.clone());
                taken.push(message);
            }
            if ids.is_subset(&seen) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let missing = ids.difference(&seen).count();
        assert_eq!(missing, 0, "{missing} of {} events never reached the queue", ids.len());
        (channel.queue_delete(self.name.as_str().into(), QueueDeleteOptions::default()))
            .await
            .unwrap();
        connection.close(200, "drained".into()).await.unwrap();
        taken
    }
}

/// A hub publishing to `exchange` on the broker at `addr`, as `guest`, in batches of `batch`.
async fn hub(backend: Backend, addr: &str, exchange: &str, batch: i64) -> TestHub {
    let (exchange, url) = (exchange.to_string(), format!("amqp://{addr}/%2f"));
    TestHub::start_with(backend, move |config| {
        config.events.poll_ms = 50;
        config.events.rabbitmq = Some(hub::events::rabbitmq::RabbitMqConfig {
            url,
            exchange,
            batch,
            reconnect_max_secs: 1,
            ..Default::default()
        });
    })
    .await
}

/// Starts a sync of a RegNakes simulator of `people`; the connector and the run.
async fn start_sync(hub: &TestHub, people: usize) -> (hub_sim::Running, String, String) {
    let (_sim, server, connector) = hub.registry(people).await;
    let (status, run) = hub
        .post(&format!("/api/v1/connectors/{connector}/run"), serde_json::json!({}))
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{run}");
    (server, connector, run["id"].as_str().unwrap().to_string())
}

/// Checks `messages` against the hub's outbox: every event there, each message routed by
/// its type, persistent, carrying the event as the webhook body does, and the events of a
/// subject first seen in seq order. Returns how many times each event came.
fn check(events: &[Value], messages: &[Message]) -> BTreeMap<String, usize> {
    let mut times = BTreeMap::new();
    let mut last_seq: BTreeMap<String, i64> = BTreeMap::new();
    for m in messages {
        assert_eq!(m.routing_key, m.body["type"].as_str().unwrap());
        assert_eq!(m.message_id, m.body["id"].as_str().unwrap());
        assert!(
            m.persistent,
            "event {} was published as a transient message",
            m.message_id
        );
        let count = times.entry(m.message_id.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            let seq = m.body["seq"].as_i64().unwrap();
            let subject = m.body["subject"].as_str().unwrap().to_string();
            let before = last_seq.insert(subject.clone(), seq);
            assert!(
                before.is_none_or(|b| b < seq),
                "{subject}: seq {seq} came after {before:?}"
            );
        }
    }
    for e in events {
        assert!(times.contains_key(e["id"].as_str().unwrap()), "event {e} never came");
    }
    times
}

#[tokio::test]
async fn a_consumer_bound_to_the_exchange_gets_every_event_of_a_sync_once_even_from_two_hubs() {
    let Some(addr) = rabbitmq() else { return };
    let _broker = BROKER.lock().await;
    for backend in backends() {
        let exchange = format!("hub-test-{}", uuid::Uuid::new_v4().simple());
        let queue = Queue::bind(&addr, &exchange).await;
        let hub = hub(backend, &addr, &exchange, 200).await;
        // Two hubs on one PostgreSQL: only the one holding the sink's lease publishes.
        let _replica = match backend {
            Backend::Postgres => Some(hub.start_replica().await),
            Backend::Sqlite => None,
        };
        let (_server, _connector, run) = start_sync(&hub, 1500).await;
        let run = hub.wait_for_run(&run).await;
        assert_eq!(run["status"], "succeeded", "{run}");

        let events = hub.all_pages("/api/v1/events").await;
        let created = events.iter().filter(|e| e["type"] == "practitioner.created").count();
        assert_eq!(created as u64, run["records_created"].as_u64().unwrap(), "{backend:?}");
        let ids: BTreeSet<String> = events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        let messages = queue.drain_until(&ids).await;
        let times = check(&events, &messages);
        let repeated: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "{backend:?}: events published twice with nothing failing: {repeated:?}"
        );
        let types: BTreeSet<&str> = messages.iter().map(|m| m.routing_key.as_str()).collect();
        assert_eq!(
            types,
            BTreeSet::from(["connector.created", "practitioner.created", "run.succeeded"]),
            "{backend:?}"
        );
        hub.assert_sink_rests("rabbitmq").await;
    }
}

#[tokio::test]
async fn a_broker_restarted_mid_burst_loses_no_event() {
    let Some(addr) = rabbitmq() else { return };
    if !program_installed("rabbitmqctl", "the Debian package rabbitmq-server") {
        return;
    }
    let _broker = BROKER.lock().await;
    for backend in backends() {
        let exchange = format!("hub-test-{}", uuid::Uuid::new_v4().simple());
        let queue = Queue::bind(&addr, &exchange).await;
        // Batches of 20: the burst lasts long enough to stop the broker in the middle of it.
        let hub = hub(backend, &addr, &exchange, 20).await;
        let (_server, _connector, run) = start_sync(&hub, 2000).await;
        let mut before_stop = 0;
        for _ in 0..600 {
            before_stop = queue.depth().await.unwrap_or(0);
            if before_stop > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(before_stop > 0, "{backend:?}: nothing was published within 12 s");
        let stopped = StoppedBroker::stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(stopped);
        assert_eq!(hub.wait_for_run(&run).await["status"], "succeeded");

        let events = hub.all_pages("/api/v1/events").await;
        assert!(
            (before_stop as usize) < events.len(),
            "{backend:?}: the broker stopped after all {} events were published",
            events.len()
        );
        let ids: BTreeSet<String> = events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        let messages = queue.drain_until(&ids).await;
        check(&events, &messages);
    }
}

/// The broker's application, stopped (`rabbitmqctl stop_app`) until this is dropped, even
/// by a failing test, so the tests after it find it running.
struct StoppedBroker;

impl StoppedBroker {
    fn stop() -> Self {
        rabbitmqctl("stop_app").expect("the broker stops");
        Self
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        if let Err(error) = rabbitmqctl("start_app") {
            eprintln!("the broker did not start again: {error}");
        }
    }
}

/// Runs `rabbitmqctl <command>`; what it said when it failed.
fn rabbitmqctl(command: &str) -> Result<(), String> {
    let out = std::process::Command::new("rabbitmqctl")
        .arg(command)
        .output()
        .map_err(|e| format!("rabbitmqctl does not run: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "rabbitmqctl {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}
