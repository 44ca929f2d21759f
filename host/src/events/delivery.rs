//! Delivering the outbox to webhook subscriptions (docs/events.md#webhook-subscriptions).
//!
//! Every hub runs a [`Dispatcher`]. Each tick it leases the subscriptions that are due and
//! behind the outbox (one statement, so of several hubs on one database only one gets each)
//! and starts a round for each it is not delivering already: the next events after its
//! cursor that its filter wants, each POSTed with Standard Webhooks v1 headers. Rounds run
//! on their own, so a slow endpoint holds up its own subscription and no other. Events of
//! one subject go one after another, in seq order; different subjects go side by side. The cursor moves past every event up to
//! the first that failed; that one and what follows are tried again after a backoff of
//! seconds, then minutes, then hours (about three days in all, or what `Retry-After` asks),
//! so a receiver may see an event again after a failure, never out of order, and
//! deduplicates by its id. `410 Gone` disables the subscription at once; an endpoint that
//! fails through the whole schedule is disabled too.

use crate::audit::{Event as AuditEvent, Outcome};
use crate::manager::Manager;
use crate::retry::{jittered, retry_after};
use crate::store::events::StoredEvent;
use crate::store::subscriptions::{DeliveryAttempt, RoundEnd, SubscriptionRecord};
use crate::store::{StoreError, Timestamp};
use crate::webhooks::WebhookSecret;
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// `[events]`: how the hub delivers its events to webhook subscriptions, outbound
/// connectors and RabbitMQ.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How long an endpoint may take to answer, in seconds.
    pub timeout_secs: u64,
    /// The waits before each retry of a failing endpoint, in seconds, each ±20 %; when they
    /// run out the subscription is disabled. The default spans about three days.
    pub retry_secs: Vec<u64>,
    /// How often each hub looks for subscriptions with events to deliver, in milliseconds.
    pub poll_ms: u64,
    /// Events a round delivers at most.
    pub batch: i64,
    /// Subjects delivered side by side within a round (events of one subject go in order).
    pub concurrency: usize,
    /// Days events are kept in the outbox (and so can be listed and replayed), and
    /// delivery attempts. A subscription paused or disabled longer misses the older ones.
    pub keep_days: u32,
    /// How long a hub holds a subscription it delivers to, in seconds: another hub takes it
    /// over once that lapses (a stopped hub's at most this long after it stopped). A round
    /// starts no delivery after a third of it, so it ends well within. The RabbitMQ sink is
    /// leased the same way.
    pub lease_secs: u64,
    /// How long an outbound connector's batch waits, once its job used up its attempts,
    /// before it is queued again, in seconds (nothing after it goes first).
    pub outbound_pause_secs: u64,
    /// Publishes every event to RabbitMQ too, when set.
    pub rabbitmq: Option<super::rabbitmq::RabbitMqConfig>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 15,
            // 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 24 h, 24 h: Svix's scale, stretched
            // to about three days (3.2) before the hub gives up.
            retry_secs: vec![5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 86_400, 86_400],
            poll_ms: 250,
            batch: 500,
            concurrency: 16,
            keep_days: 30,
            lease_secs: 60,
            outbound_pause_secs: 300,
            rabbitmq: None,
        }
    }
}

/// A `Retry-After` longer than this is not waited for: the schedule's longest wait.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(86_400);

/// Delivers the outbox to the subscriptions, on every hub.
pub struct Dispatcher {
    manager: Manager,
    config: EventsConfig,
    http: reqwest::Client,
    /// This hub, as a lease owner.
    owner: String,
    /// The subscriptions this hub is running a round of.
    in_flight: Mutex<HashSet<String>>,
    /// Woken when a round delivered a whole batch: its subscription is likely behind still.
    behind: tokio::sync::Notify,
}

/// A round's shared state: whether a lane failed, and when to start no more deliveries.
struct Round {
    stop: AtomicBool,
    deadline: Instant,
}

/// What one subject's lane did in a round.
struct Lane {
    attempts: Vec<DeliveryAttempt>,
    /// The first event it did not deliver, and why: a failure, or none when it stopped
    /// before trying (another lane failed, or the round's time was up).
    stopped_at: Option<(i64, Option<Failure>)>,
}

/// A subscription this hub runs a round of, taken off the set when the round ends, however
/// it ends.
struct InFlight<'a>(&'a Mutex<HashSet<String>>, String);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.1);
    }
}

/// Why an event was not delivered.
enum Failure {
    /// The endpoint said it is gone for good (410).
    Gone,
    /// Anything else: try again, not before `after` if the endpoint said so.
    Retry { after: Option<Duration> },
}

impl Dispatcher {
    pub fn new(manager: Manager, config: EventsConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            // A subscriber's redirect is not followed: the URL an integrator set is where
            // events go.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("healthforce-hub/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        Self {
            manager,
            config,
            http,
            owner: uuid::Uuid::now_v7().to_string(),
            in_flight: Mutex::default(),
            behind: tokio::sync::Notify::new(),
        }
    }

    pub fn spawn(self) -> JoinHandle<()> {
        let dispatcher = Arc::new(self);
        tokio::spawn(async move {
            let mut pruned = Instant::now() - Duration::from_secs(3600);
            let poll = Duration::from_millis(dispatcher.config.poll_ms.max(10));
            loop {
                if let Err(error) = dispatcher.tick().await {
                    tracing::error!(%error, "delivering events to subscriptions failed; trying again");
                }
                if pruned.elapsed() >= Duration::from_secs(3600) {
                    pruned = Instant::now();
                    dispatcher.prune().await;
                }
                // A round that moved a subscription a whole batch on leaves it likely behind
                // still: the next tick comes at once (waiting 250 ms after each 500-event
                // round held delivery to 1,740 events/s).
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = dispatcher.behind.notified() => {}
                }
            }
        })
    }

    /// Deletes the events and delivery attempts older than `keep_days`.
    async fn prune(&self) {
        let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(self.config.keep_days));
        let db = self.manager.db();
        if let Err(error) = db.prune_delivery_attempts(cutoff.into()).await {
            tracing::warn!(%error, "could not delete old delivery attempts");
        }
        match db.prune_events(&super::id_floor(cutoff)).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, keep_days = self.config.keep_days, "old events deleted"),
            Err(error) => tracing::warn!(%error, "could not delete old events"),
        }
    }

    /// Leases the subscriptions that are due and starts a round of each this hub is not
    /// delivering already. A lease taken again for a round under way only lasts longer.
    async fn tick(self: &Arc<Self>) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::seconds(self.config.lease_secs.max(1) as i64);
        let due = (self.manager.db())
            .lease_due_subscriptions(&self.owner, now.into(), until.into())
            .await?;
        for subscription in due {
            if !self.in_flight.lock().unwrap().insert(subscription.id.clone()) {
                continue;
            }
            let dispatcher = self.clone();
            tokio::spawn(async move {
                let id = subscription.id.clone();
                let in_flight = InFlight(&dispatcher.in_flight, id.clone());
                let whole = dispatcher.round(subscription).await.unwrap_or_else(|error| {
                    tracing::error!(%error, subscription = %id, "a delivery round failed; it runs again");
                    false
                });
                // Off the set before the next tick is woken, so that it starts the next round.
                drop(in_flight);
                if whole {
                    dispatcher.behind.notify_one();
                }
            });
        }
        Ok(())
    }

    /// Delivers the next events to `subscription` and records where that left it; whether
    /// it delivered a whole batch without a failure.
    async fn round(&self, subscription: SubscriptionRecord) -> Result<bool, StoreError> {
        let page = (self.manager.db())
            .events_after(subscription.delivered_through, self.config.batch.max(1))
            .await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            return Ok(false);
        };
        let whole = page.len() as i64 == self.config.batch.max(1);
        let filter = super::subscriptions::Filter::of(&subscription);
        let secrets = self.secrets(&subscription)?;
        let mut lanes: BTreeMap<&str, Vec<&StoredEvent>> = BTreeMap::new();
        for event in page.iter().filter(|e| filter.wants(e)) {
            lanes.entry(&event.subject).or_default().push(event);
        }
        let round = Round {
            stop: AtomicBool::new(false),
            deadline: Instant::now() + Duration::from_secs(self.config.lease_secs.max(1)) / 3,
        };
        let lanes: Vec<_> = (lanes.into_values())
            .map(|lane| self.deliver_lane(&subscription, &secrets, lane, &round))
            .collect();
        let lanes: Vec<Lane> = futures::stream::iter(lanes)
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        // The cursor stops before the first event a lane did not deliver, failed or not
        // tried; the failure with the lowest seq decides the backoff.
        let mut attempts = Vec::new();
        let mut cut: Option<i64> = None;
        let mut first_failure: Option<(i64, Failure)> = None;
        for lane in lanes {
            attempts.extend(lane.attempts);
            if let Some((seq, failure)) = lane.stopped_at {
                cut = Some(cut.map_or(seq, |cut| cut.min(seq)));
                if let Some(failure) = failure
                    && first_failure.as_ref().is_none_or(|(first, _)| seq < *first)
                {
                    first_failure = Some((seq, failure));
                }
            }
        }
        let end = self.end_of_round(
            &subscription,
            cut.map_or(last, |cut| cut - 1),
            first_failure.map(|(_, f)| f),
        );
        let delivered = attempts.iter().filter(|a| a.error.is_none()).count() as u64;
        (self.manager)
            .end_delivery_round(&subscription, &self.owner, &end, &attempts)
            .await?;
        crate::metrics::metrics().events_delivered("webhooks", delivered);
        if let Some(reason) = &end.disabled_reason {
            tracing::error!(subscription = %subscription.id, "subscription disabled: {reason}");
            let event = AuditEvent::new(
                "hub",
                "subscription.disabled",
                format!("subscription:{}", subscription.id),
            )
            .outcome(Outcome::Failure)
            .details(serde_json::json!({ "reason": reason }));
            self.manager.audit().record(event).await;
        }
        Ok(whole && end.failures == 0 && end.delivered_through == last)
    }

    /// The subscription's signing secrets: the current one and, during a rotation's grace
    /// period, the one before it.
    fn secrets(&self, subscription: &SubscriptionRecord) -> Result<Vec<WebhookSecret>, StoreError> {
        let cipher = self.manager.keys().cipher();
        let open = |column: &str, sealed: &[u8]| {
            let corrupt = |detail: String| StoreError::Corrupt {
                what: "subscription secret",
                detail,
            };
            let text = cipher
                .decrypt_str("subscriptions", column, &subscription.id, sealed)
                .map_err(|e| corrupt(e.to_string()))?;
            WebhookSecret::parse(&text).map_err(|e| corrupt(e.to_string()))
        };
        let mut secrets = vec![open("secret", &subscription.secret)?];
        if let (Some(previous), Some(until)) = (&subscription.previous_secret, subscription.previous_until)
            && until > Timestamp::now()
        {
            secrets.push(open("previous_secret", previous)?);
        }
        Ok(secrets)
    }

    /// Delivers one subject's events in order, stopping at the first that fails, or before
    /// the next once another lane failed or the round's time is up.
    async fn deliver_lane(
        &self,
        subscription: &SubscriptionRecord,
        secrets: &[WebhookSecret],
        events: Vec<&StoredEvent>,
        round: &Round,
    ) -> Lane {
        let mut lane = Lane {
            attempts: Vec::new(),
            stopped_at: None,
        };
        for event in events {
            if round.stop.load(Ordering::Relaxed) || Instant::now() >= round.deadline {
                lane.stopped_at = Some((event.seq, None));
                return lane;
            }
            let (attempt, failure) = self.send(subscription, secrets, event).await;
            lane.attempts.push(attempt);
            if let Some(failure) = failure {
                round.stop.store(true, Ordering::Relaxed);
                lane.stopped_at = Some((event.seq, Some(failure)));
                return lane;
            }
        }
        lane
    }

    /// POSTs one event, signed.
    async fn send(
        &self,
        subscription: &SubscriptionRecord,
        secrets: &[WebhookSecret],
        event: &StoredEvent,
    ) -> (DeliveryAttempt, Option<Failure>) {
        let body = payload(event);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = (secrets.iter())
            .map(|secret| secret.sign(&event.id, timestamp, body.as_bytes()))
            .collect::<Vec<_>>()
            .join(" ");
        let started = Instant::now();
        let answer = self
            .http
            .post(&subscription.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let (status_code, error, failure) = match answer {
            Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None, None),
            Ok(response) if response.status() == reqwest::StatusCode::GONE => (
                Some(410),
                Some("the endpoint answered 410 Gone: it wants no more events".to_string()),
                Some(Failure::Gone),
            ),
            Ok(response) => {
                let status = response.status();
                let retry_after = retry_after(response.headers());
                (
                    Some(status.as_u16()),
                    Some(format!("the endpoint answered {status}")),
                    Some(Failure::Retry { after: retry_after }),
                )
            }
            Err(error) => {
                let why = if error.is_timeout() {
                    format!("no answer within {} s", self.config.timeout_secs)
                } else if error.is_connect() {
                    "could not connect to the endpoint".to_string()
                } else {
                    format!("the request failed: {error}")
                };
                (None, Some(why), Some(Failure::Retry { after: None }))
            }
        };
        let attempt = DeliveryAttempt {
            id: uuid::Uuid::now_v7().to_string(),
            subscription_id: subscription.id.clone(),
            event_id: event.id.clone(),
            event_seq: event.seq,
            status_code: status_code.map(i64::from),
            error,
            duration_ms,
            attempted_at: Timestamp::now(),
        };
        (attempt, failure)
    }

    /// Where a round leaves the subscription: delivered through `through`; when something
    /// failed, with the next try scheduled or the subscription disabled.
    fn end_of_round(&self, subscription: &SubscriptionRecord, through: i64, failure: Option<Failure>) -> RoundEnd {
        let Some(failure) = failure else {
            return RoundEnd {
                delivered_through: through,
                failures: 0,
                failing_since: None,
                retry_at: None,
                disabled_reason: None,
            };
        };
        let now = chrono::Utc::now();
        let failures = subscription.failures + 1;
        let failing_since = subscription.failing_since.unwrap_or_else(|| now.into());
        let schedule = &self.config.retry_secs;
        let (wait, disabled_reason) = match (failure, schedule.get(failures as usize - 1)) {
            (Failure::Gone, _) => (
                None,
                Some("the endpoint answered 410 Gone; resume the subscription once it takes events again".to_string()),
            ),
            (Failure::Retry { .. }, None) => (
                None,
                Some(format!(
                    "the endpoint failed every try since {failing_since} ({failures} tries); fix it, then resume the subscription"
                )),
            ),
            (Failure::Retry { after }, Some(&planned)) => {
                let planned = jittered(Duration::from_secs(planned));
                (Some(after.map_or(planned, |asked| asked.min(RETRY_AFTER_CAP))), None)
            }
        };
        RoundEnd {
            delivered_through: through,
            failures,
            failing_since: Some(failing_since),
            retry_at: wait
                .map(|wait| (now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero())).into()),
            disabled_reason,
        }
    }
}

/// The body of an event's webhook: Standard Webhooks' `type`, `timestamp` and `data`, with
/// the event's id, seq, subject and connector. The stored data is JSON already and goes in
/// as it is: parsing it into a tree and writing it out again cost the RabbitMQ sink a
/// fifth of its CPU.
pub fn payload(event: &StoredEvent) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        id: &'a str,
        seq: i64,
        #[serde(rename = "type")]
        kind: &'a str,
        timestamp: Timestamp,
        subject: &'a str,
        connector_id: Option<&'a str>,
        data: &'a serde_json::value::RawValue,
    }
    let null = serde_json::value::RawValue::NULL;
    let body = Body {
        id: &event.id,
        seq: event.seq,
        kind: &event.kind,
        timestamp: event.occurred_at,
        subject: &event.subject,
        connector_id: event.connector_id.as_deref(),
        data: serde_json::from_str(&event.data).unwrap_or(null),
    };
    serde_json::to_string(&body).expect("an event serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_three_days_and_jitter_stays_within_a_fifth() {
        let total: u64 = EventsConfig::default().retry_secs.iter().sum();
        assert!((2.9..3.5).contains(&(total as f64 / 86_400.0)), "{total} s");
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(100));
            assert!(
                wait >= Duration::from_secs(80) && wait <= Duration::from_secs(120),
                "{wait:?}"
            );
        }
    }
}
