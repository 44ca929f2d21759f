//! Publishing the outbox to RabbitMQ (docs/events.md#rabbitmq).
//!
//! With `[events.rabbitmq]` set, every hub runs a [`RabbitMqSink`]. The one holding the
//! sink's lease (`store::sinks`) publishes the events after the sink's cursor to a durable
//! topic exchange, each persistent, with its type as routing key and the webhook body as
//! payload; only once the broker has confirmed every message of a batch does the cursor move
//! past it. A broker that stops mid-batch confirms nothing more: the hub reconnects (waiting
//! 1 s, doubling to `reconnect_max_secs`) and publishes the batch again, so a consumer may
//! see an event twice after a failure, never miss one, and deduplicates by `message_id`
//! (the event id).

use super::delivery::EventsConfig;
use crate::config::SecretString;
use crate::manager::Manager;
use crate::store::StoreError;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::str::FromStr;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The sink's name in `event_sinks`.
const SINK: &str = "rabbitmq";

/// `[events.rabbitmq]`: publishes every event to a RabbitMQ topic exchange (AMQP 0-9-1).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RabbitMqConfig {
    /// The broker, as an AMQP URL without user or password: `amqp://host:5672/%2f` (the
    /// vhost `/`), or `amqps://` for TLS.
    pub url: String,
    /// The user the hub connects as; its password comes from `HUB_RABBITMQ_PASSWORD`.
    pub user: String,
    /// The durable topic exchange events go to, declared when missing; each event's type
    /// (`practitioner.updated`) is its routing key.
    pub exchange: String,
    /// Events published before waiting for the broker's confirms.
    pub batch: i64,
    /// The longest wait between attempts to reconnect, in seconds (the first is 1 s, then
    /// each doubles).
    pub reconnect_max_secs: u64,
    /// From `HUB_RABBITMQ_PASSWORD`, never from the file.
    #[serde(skip)]
    #[schemars(skip)]
    pub password: Option<SecretString>,
}

impl Default for RabbitMqConfig {
    fn default() -> Self {
        Self {
            url: "amqp://127.0.0.1:5672/%2f".into(),
            user: "guest".into(),
            exchange: "healthforce.events".into(),
            batch: 1000,
            reconnect_max_secs: 30,
            password: None,
        }
    }
}

/// What stopped publishing to RabbitMQ.
#[derive(Debug, thiserror::Error)]
pub enum RabbitMqError {
    #[error("`[events.rabbitmq] url` {url:?} is not an AMQP URL: {problem}")]
    Url { url: String, problem: String },
    #[error(
        "`[events.rabbitmq] url` holds a user or password, which anyone who reads the config would see; \
         set `user` and HUB_RABBITMQ_PASSWORD instead"
    )]
    CredentialsInUrl,
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused to take event {event_id} (a negative confirm); it is published again")]
    Refused { event_id: String },
    #[error("the connection to RabbitMQ closed")]
    Closed,
    #[error("RabbitMQ accepted the connection but did not open it within {} s", OPEN_TIMEOUT.as_secs())]
    Unanswered,
}

impl RabbitMqConfig {
    /// The URL to connect to, with the user and password.
    fn uri(&self) -> Result<lapin::uri::AMQPUri, RabbitMqError> {
        let mut uri = lapin::uri::AMQPUri::from_str(&self.url).map_err(|problem| RabbitMqError::Url {
            url: self.url.clone(),
            problem,
        })?;
        let authority = self.url.split_once("://").map_or("", |(_, rest)| rest);
        if authority.split('/').next().unwrap_or("").contains('@') {
            return Err(RabbitMqError::CredentialsInUrl);
        }
        uri.authority.userinfo.username = self.user.clone();
        // RabbitMQ's stock `guest` account works only from the broker's own machine, with
        // the password `guest`: any other user needs its password set.
        uri.authority.userinfo.password = match &self.password {
            Some(password) => password.expose().to_string(),
            None if self.user == "guest" => "guest".into(),
            None => String::new(),
        };
        // A broker that takes the connection and never answers is given up on after 10 s.
        uri.query.connection_timeout.get_or_insert(10_000);
        Ok(uri)
    }

    /// Checks the URL at start, so a typo stops the hub rather than every publish.
    pub fn check(&self) -> Result<(), RabbitMqError> {
        self.uri().map(drop)
    }
}

/// How long opening a connection (and its channel) may take: a broker that is starting may
/// take the TCP connection and never answer.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes the outbox to RabbitMQ, on every hub: the one holding the lease does.
pub struct RabbitMqSink {
    manager: Manager,
    config: RabbitMqConfig,
    poll: Duration,
    lease: Duration,
    /// This hub, as a lease owner.
    owner: String,
}

impl RabbitMqSink {
    pub fn new(manager: Manager, config: RabbitMqConfig, events: &EventsConfig) -> Self {
        Self {
            manager,
            config,
            poll: Duration::from_millis(events.poll_ms.max(10)),
            lease: Duration::from_secs(events.lease_secs.max(1)),
            owner: uuid::Uuid::now_v7().to_string(),
        }
    }

    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let max_wait = Duration::from_secs(self.config.reconnect_max_secs.max(1));
            let metrics = crate::metrics::metrics();
            metrics.sink_connected(SINK, false);
            let mut wait = Duration::from_secs(1);
            // The sink starts at the end of the outbox the first time a hub publishes.
            while let Err(error) = self.manager.db().start_sink(SINK).await {
                tracing::error!(%error, "could not set up the RabbitMQ sink; trying again");
                tokio::time::sleep(max_wait).await;
            }
            loop {
                let connected = tokio::time::timeout(OPEN_TIMEOUT, self.connect()).await;
                match connected.unwrap_or(Err(RabbitMqError::Unanswered)) {
                    Ok((connection, channel)) => {
                        tracing::info!(exchange = %self.config.exchange, "publishing events to RabbitMQ");
                        metrics.sink_connected(SINK, true);
                        wait = Duration::from_secs(1);
                        let error = self.publish(&channel).await;
                        metrics.sink_connected(SINK, false);
                        tracing::warn!(%error, "publishing events to RabbitMQ stopped; reconnecting");
                        // A connection the broker reset may never answer the close.
                        let close = connection.close(200, "reconnecting".into());
                        let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, retry_in_secs = wait.as_secs(), "could not connect to RabbitMQ")
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(max_wait);
            }
        })
    }

    /// A connection and a channel in confirm mode, the exchange declared.
    async fn connect(&self) -> Result<(Connection, Channel), RabbitMqError> {
        let properties =
            ConnectionProperties::default().with_connection_name(format!("healthforce-hub {}", self.owner).into());
        let connection = Connection::connect_uri(self.config.uri()?, properties).await?;
        let channel = connection.create_channel().await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        (channel)
            .exchange_declare(
                self.config.exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok((connection, channel))
    }

    /// Publishes batch after batch while this hub holds the lease; returns what broke the
    /// connection. A database error waits and tries again: it says nothing of the broker.
    async fn publish(&self, channel: &Channel) -> RabbitMqError {
        // The seq the sink was at the last time the outbox had nothing past it: while the
        // newest event is still that one, the hub neither leases nor reads (an idle hub
        // wrote its lease 4 times a second before).
        let mut idle_at = None;
        loop {
            if !channel.status().connected() {
                return RabbitMqError::Closed;
            }
            match self.publish_batch(channel, &mut idle_at).await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(self.poll).await,
                Err(Next::Broker(error)) => return error,
                Err(Next::Store(error)) => {
                    tracing::error!(%error, "reading events for RabbitMQ failed; trying again");
                    tokio::time::sleep(self.poll).await;
                }
            }
        }
    }

    /// Publishes the next batch, when there is one and this hub holds the lease, and moves
    /// the sink past it once the broker confirmed all of it; whether it was a whole batch
    /// (more may wait).
    async fn publish_batch(&self, channel: &Channel, idle_at: &mut Option<i64>) -> Result<bool, Next> {
        let db = self.manager.db();
        if idle_at.is_some() && *idle_at == Some(db.last_event_seq().await?) {
            return Ok(false);
        }
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(60));
        let Some(through) = db.lease_sink(SINK, &self.owner, now.into(), until.into()).await? else {
            *idle_at = None;
            return Ok(false);
        };
        let batch = self.config.batch.max(1);
        let events = db.events_after(through, batch).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            *idle_at = Some(through);
            return Ok(false);
        };
        // Every message goes out before the first confirm is awaited: one round trip per
        // batch, not per event.
        let mut confirms = Vec::with_capacity(events.len());
        for event in &events {
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(event.id.as_str().into())
                .with_type(event.kind.as_str().into())
                .with_timestamp(event.occurred_at.as_datetime().timestamp().max(0) as u64);
            let body = super::delivery::payload(event);
            let confirm = channel
                .basic_publish(
                    self.config.exchange.as_str().into(),
                    event.kind.as_str().into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    properties,
                )
                .await
                .map_err(RabbitMqError::from)?;
            confirms.push((event, confirm));
        }
        for (event, confirm) in confirms {
            if confirm.await.map_err(RabbitMqError::from)?.is_nack() {
                return Err(RabbitMqError::Refused {
                    event_id: event.id.clone(),
                }
                .into());
            }
        }
        db.advance_sink(SINK, &self.owner, last).await?;
        crate::metrics::metrics().events_delivered(SINK, events.len() as u64);
        Ok(events.len() as i64 == batch)
    }
}

/// Why a batch was not published.
enum Next {
    Broker(RabbitMqError),
    Store(StoreError),
}

impl From<RabbitMqError> for Next {
    fn from(error: RabbitMqError) -> Self {
        Next::Broker(error)
    }
}

impl From<StoreError> for Next {
    fn from(error: StoreError) -> Self {
        Next::Store(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_takes_its_user_and_password_from_the_config_and_never_holds_them_itself() {
        let mut config = RabbitMqConfig::default();
        let uri = config.uri().unwrap();
        assert_eq!(uri.authority.userinfo.username, "guest");
        assert_eq!(uri.authority.userinfo.password, "guest");
        assert_eq!(uri.vhost, "/");

        config.user = "hub".into();
        config.password = Some(SecretString::new("s3cret"));
        let uri = config.uri().unwrap();
        assert_eq!(uri.authority.userinfo.password, "s3cret");

        config.url = "amqp://hub:s3cret@broker:5672/%2f".into();
        assert!(matches!(config.uri(), Err(RabbitMqError::CredentialsInUrl)));
        config.url = "http://broker".into();
        let error = config.uri().unwrap_err().to_string();
        assert!(error.contains("is not an AMQP URL"), "{error}");
    }
}
