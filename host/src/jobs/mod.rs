//! Durable jobs: every trigger (a sync run, an inbound webhook, a batch of MQTT messages) is
//! a row in the `jobs` table before the hub acknowledges it, and workers run it from there.
//!
//! - Workers claim jobs under a lease (`lease_secs`) that a keeper task renews while they run;
//!   a job whose hub died is claimed again by any hub once its lease lapses.
//! - A failed attempt that may succeed later is queued again after an exponential backoff
//!   with jitter; after its last attempt a job is dead-lettered (`status = dead`) until an
//!   operator retries it (`POST /api/v1/jobs/{id}/retry`).
//! - Syncs have their own workers, so long syncs never hold up webhooks and messages; a
//!   connector runs at most `concurrency` syncs at once across every hub.
//! - Effects are idempotent rather than transactional with the job's completion: a job cut
//!   off after it stored its records but before it was marked done runs again, and the
//!   pipeline finds those records unchanged.

mod committer;
mod payload;
mod running;
mod worker;

pub use committer::CommitError;
pub use payload::{
    DeliverPayload, Message as QueuedMessage, MessagesPayload, WebhookPayload, open as open_payload,
    seal as seal_payload,
};
pub use running::{Running, RunningCall};
pub use worker::{Executor, Outcome, Queue};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A sync run (`jobs.run_id` names it).
    Sync,
    /// An inbound webhook, verified; the payload holds its headers and body.
    Webhook,
    /// A batch of MQTT messages.
    Messages,
    /// A hub alert raised or resolved, for one receiver (`[alerts]`).
    Alert,
    /// A batch of the hub's events for an outbound connector (`events::outbound`).
    Deliver,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Sync => "sync",
            JobKind::Webhook => "webhook",
            JobKind::Messages => "messages",
            JobKind::Alert => "alert",
            JobKind::Deliver => "deliver",
        }
    }

    pub const ALL: [JobKind; 5] = [
        JobKind::Sync,
        JobKind::Webhook,
        JobKind::Messages,
        JobKind::Alert,
        JobKind::Deliver,
    ];

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// `[jobs]`: the durable job queue's workers, leases and group commits.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Workers for webhooks and messages.
    pub workers: usize,
    /// Workers for syncs (so many syncs of different connectors run at once on this hub).
    pub sync_workers: usize,
    /// Jobs a worker claims at once, 1 to 1024. Events of one connector among them (webhooks,
    /// MQTT batches) go to its plugin in one call and one pipeline batch, whose span links the
    /// trace of each.
    pub batch: usize,
    /// How long a claim holds without renewal; a dead hub's jobs are claimed again after it.
    pub lease_secs: u64,
    /// How often an idle worker looks for due jobs queued by other hubs or due retries.
    pub poll_ms: u64,
    /// Concurrent group commits of incoming jobs (PostgreSQL; SQLite has one writer, so one).
    pub committers: usize,
    /// Most jobs stored in one commit.
    pub commit_batch: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            sync_workers: 8,
            batch: 256,
            lease_secs: 30,
            poll_ms: 250,
            committers: 4,
            commit_batch: 512,
        }
    }
}

impl JobsConfig {
    /// Refuses a claim larger than the span of the call that handles it can link.
    pub fn check(&self) -> Result<(), String> {
        let most = crate::telemetry::LINKS_PER_SPAN as usize;
        if !(1..=most).contains(&self.batch) {
            return Err(format!(
                "[jobs] batch = {} is out of range: a worker claims 1 to {most} jobs at once (the span of the \
                 plugin call that handles them links the trace of each); set a value in that range (default 256)",
                self.batch
            ));
        }
        Ok(())
    }
}

/// Retries of a job that failed for a reason that may pass (an external system unavailable):
/// exponential backoff with jitter.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay before the second attempt, in milliseconds; doubles each attempt.
    pub base_delay_ms: u64,
    /// Longest delay between attempts, in milliseconds.
    pub max_delay_ms: u64,
    /// Attempts of a job unless the connector sets its own (seed 002: 3).
    pub default_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay_ms: 2_000,
            max_delay_ms: 60_000,
            default_attempts: 3,
        }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt `attempt` (1-based): base × 2^(attempt-1), capped, ±25 %.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay_ms
            .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(20));
        let capped = exp.min(self.max_delay_ms) as f64;
        let jitter = u16::from_le_bytes(crate::crypto::random_bytes::<2>()) as f64 / u16::MAX as f64;
        Duration::from_millis((capped * (0.75 + 0.5 * jitter)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_stops_at_the_cap() {
        let policy = RetryPolicy {
            base_delay_ms: 1_000,
            max_delay_ms: 5_000,
            default_attempts: 3,
        };
        for (attempt, nominal) in [(1, 1_000u64), (2, 2_000), (3, 4_000), (4, 5_000), (30, 5_000)] {
            let delay = policy.delay(attempt).as_millis() as u64;
            assert!(
                (nominal * 3 / 4..=nominal * 5 / 4).contains(&delay),
                "attempt {attempt}: {delay} ms"
            );
        }
    }
}
