//! The hub's alerts, out: each alert raised and each resolved is delivered to the receivers
//! `[alerts]` configures — a Slack-compatible incoming webhook, any URL as JSON — through the
//! durable job queue. A delivery is queued in the transaction that changes the alert, once
//! per state change and receiver (the job's dedup key), and retried with the queue's backoff
//! while a receiver is down; one that runs out of attempts is a dead job, kept for a retry.

use super::Inner;
use super::alerts::AlertSubject;
use crate::config::SecretString;
use crate::jobs::{JobKind, Outcome};
use crate::store::alerts::AlertRecord;
use crate::store::jobs::{ClaimedJob, NewJob};
use crate::store::{StoreError, Tx};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[alerts]`: where the hub's alerts (`GET /api/v1/alerts`) are delivered as they change.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// A URL that receives each alert change as JSON: `{"state": "firing" | "resolved",
    /// "connector": name, "alert": {…}}`, with `"subscription": description` in place of
    /// `connector` for an alert about a webhook subscription.
    pub json_url: Option<String>,
    /// A Slack(-compatible) incoming-webhook URL. Only from `HUB_ALERTS_SLACK_URL`: the URL
    /// is the credential.
    #[serde(skip)]
    pub slack_url: Option<SecretString>,
    /// Attempts a delivery gets, with the `[retry]` backoff between them, before its job is
    /// dead (`POST /api/v1/jobs/{id}/retry` sends it again).
    pub attempts: u32,
    /// How long a receiver may take to answer, in seconds.
    pub timeout_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            json_url: None,
            slack_url: None,
            // With the default backoff (2 s doubling to 60 s) 30 attempts span ~25 minutes.
            attempts: 30,
            timeout_secs: 10,
        }
    }
}

impl AlertsConfig {
    /// Refuses a receiver URL that is not `http(s)://`.
    pub fn check(&self) -> Result<(), String> {
        let urls = [("[alerts] json_url", self.json_url.as_deref())];
        let slack = [(
            "HUB_ALERTS_SLACK_URL",
            self.slack_url.as_ref().map(SecretString::expose),
        )];
        for (name, url) in urls.into_iter().chain(slack) {
            if let Some(url) = url {
                let parsed = reqwest::Url::parse(url).map_err(|_| format!("{name} is not a URL"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("{name} must be an http:// or https:// URL"));
                }
            }
        }
        Ok(())
    }

    fn receivers(&self) -> Vec<Receiver> {
        let mut receivers = Vec::new();
        if self.slack_url.is_some() {
            receivers.push(Receiver::Slack);
        }
        if self.json_url.is_some() {
            receivers.push(Receiver::Json);
        }
        receivers
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Receiver {
    Slack,
    Json,
}

/// An alert's change of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// A delivery job's payload: the alert, with the name of the connector or subscription it
/// is about.
#[derive(Serialize, Deserialize)]
struct Delivery {
    receiver: Receiver,
    state: AlertState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription: Option<String>,
    alert: AlertRecord,
}

impl Inner {
    /// Queues `alert`'s change to `state` for every configured receiver, in `tx`; true when
    /// something was queued.
    pub(super) async fn queue_deliveries(
        &self,
        tx: &mut Tx,
        subject: AlertSubject<'_>,
        alert: &AlertRecord,
        state: AlertState,
    ) -> Result<bool, StoreError> {
        let name = Some(subject.name().to_string());
        let (connector, subscription) = match subject {
            AlertSubject::Connector(_) => (name, None),
            AlertSubject::Subscription(_) => (None, name),
        };
        let jobs: Vec<NewJob> = self
            .alerts_out
            .receivers()
            .into_iter()
            .map(|receiver| {
                let delivery = Delivery {
                    receiver,
                    state,
                    connector: connector.clone(),
                    subscription: subscription.clone(),
                    alert: alert.clone(),
                };
                let dedup = Some(format!("{}:{}:{}", alert.id, state.as_str(), receiver.as_str()));
                let mut job = match subject {
                    AlertSubject::Connector(c) => self.runs.new_job(c, JobKind::Alert, dedup, None, &delivery),
                    AlertSubject::Subscription(_) => self.runs.new_hub_job(JobKind::Alert, dedup, &delivery),
                };
                job.max_attempts = i64::from(self.alerts_out.attempts.max(1));
                job
            })
            .collect();
        if jobs.is_empty() {
            return Ok(false);
        }
        crate::store::jobs::insert(tx, &jobs).await?;
        Ok(true)
    }
}

impl AlertState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl Receiver {
    fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Json => "json",
        }
    }
}

/// Delivers the alert changes `jobs` carry, one request each; one outcome per job.
pub(super) async fn deliver(inner: &Inner, jobs: &[ClaimedJob]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        outcomes.push(deliver_one(inner, job).await);
    }
    outcomes
}

async fn deliver_one(inner: &Inner, job: &ClaimedJob) -> Outcome {
    if job.attempt > job.max_attempts {
        return Outcome::Failed(format!(
            "each of its {} attempts was cut off before the receiver answered",
            job.max_attempts
        ));
    }
    let delivery: Delivery = match crate::jobs::open_payload(&inner.keys.cipher(), &job.id, &job.payload) {
        Ok(delivery) => delivery,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let config = &inner.alerts_out;
    let (url, body) = match delivery.receiver {
        Receiver::Slack => (
            config.slack_url.as_ref().map(|u| u.expose().to_string()),
            serde_json::json!({ "text": slack_text(&delivery) }),
        ),
        Receiver::Json => (
            config.json_url.clone(),
            serde_json::json!({
                "state": delivery.state,
                "connector": delivery.connector,
                "subscription": delivery.subscription,
                "alert": delivery.alert,
            }),
        ),
    };
    let name = delivery.receiver.as_str();
    let Some(url) = url else {
        return Outcome::Failed(format!(
            "the {name} alert receiver is no longer configured ([alerts], HUB_ALERTS_SLACK_URL); nothing was sent"
        ));
    };
    let sent = inner
        .tokens
        .http()
        .post(&url)
        .json(&body)
        .timeout(Duration::from_secs(config.timeout_secs.max(1)))
        .send()
        .await;
    match sent {
        Ok(answer) if answer.status().is_success() => Outcome::Succeeded,
        Ok(answer) if answer.status().is_server_error() || answer.status().as_u16() == 429 => Outcome::Retry(format!(
            "the {name} alert receiver answered {}; trying again later",
            answer.status()
        )),
        Ok(answer) => Outcome::Failed(format!(
            "the {name} alert receiver refused the alert with {}; check its URL, then retry this job",
            answer.status()
        )),
        // Without the URL: a Slack webhook URL is a credential.
        Err(error) => Outcome::Retry(format!(
            "the {name} alert receiver could not be reached ({}); trying again later",
            error.without_url()
        )),
    }
}

/// One line a person reads in a channel: what, where, and what the hub said.
fn slack_text(delivery: &Delivery) -> String {
    let alert = &delivery.alert;
    let on = match (&delivery.connector, &delivery.subscription) {
        (Some(connector), _) => format!("connector {connector}"),
        (None, Some(subscription)) => format!("webhook subscription {subscription}"),
        (None, None) => "the hub".to_string(),
    };
    match delivery.state {
        AlertState::Firing => format!("[FIRING] {} alert on {on}: {}", alert.kind, alert.message),
        AlertState::Resolved => format!(
            "[RESOLVED] {} alert on {on} (raised {}): {}",
            alert.kind, alert.raised_at, alert.message
        ),
    }
}
