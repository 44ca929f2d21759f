//! Webhook subscriptions to the outbox and their delivery attempts (`events::delivery`).

use super::Timestamp;
use super::{Db, StoreError, Tx, on, on_tx, trusted};

/// A subscription as stored; `secret` and `previous_secret` are sealed.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SubscriptionRecord {
    pub id: String,
    pub url: String,
    /// JSON array of event types; empty: every type.
    pub event_types: String,
    pub connector_id: Option<String>,
    pub description: String,
    pub key_version: i64,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_until: Option<Timestamp>,
    /// `active`, `paused` or `disabled`.
    pub status: String,
    pub disabled_reason: Option<String>,
    /// The seq of the outbox it has had every event through.
    pub delivered_through: i64,
    /// Failed tries of the next event since one last succeeded.
    pub failures: i64,
    pub failing_since: Option<Timestamp>,
    pub retry_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One try to deliver an event.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct DeliveryAttempt {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub event_seq: i64,
    /// What the endpoint answered; none when it did not answer.
    pub status_code: Option<i64>,
    /// Why it failed, in words; none when it succeeded.
    pub error: Option<String>,
    pub duration_ms: i64,
    pub attempted_at: Timestamp,
}

/// Where a delivery round left a subscription.
#[derive(Clone, Debug)]
pub struct RoundEnd {
    pub delivered_through: i64,
    pub failures: i64,
    pub failing_since: Option<Timestamp>,
    pub retry_at: Option<Timestamp>,
    /// Set when the hub gives up on the endpoint.
    pub disabled_reason: Option<String>,
}

const COLUMNS: &str = "id, url, event_types, connector_id, description, key_version, secret, previous_secret, \
     previous_until, status, disabled_reason, delivered_through, failures, failing_since, retry_at, created_at, updated_at";
const ATTEMPT_COLUMNS: &str = "id, subscription_id, event_id, event_seq, status_code, error, duration_ms, attempted_at";

impl Db {
    pub async fn insert_subscription(&self, s: &SubscriptionRecord) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(trusted(format!(
                "INSERT INTO subscriptions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                 $14, $15, $16, $17)"
            )))
            .bind(&s.id)
            .bind(&s.url)
            .bind(&s.event_types)
            .bind(&s.connector_id)
            .bind(&s.description)
            .bind(s.key_version)
            .bind(&s.secret)
            .bind(&s.previous_secret)
            .bind(s.previous_until)
            .bind(&s.status)
            .bind(&s.disabled_reason)
            .bind(s.delivered_through)
            .bind(s.failures)
            .bind(s.failing_since)
            .bind(s.retry_at)
            .bind(s.created_at)
            .bind(s.updated_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!("SELECT {COLUMNS} FROM subscriptions WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// In id (creation) order after `after`.
    pub async fn list_subscriptions(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!(
                "SELECT {COLUMNS} FROM subscriptions WHERE id > $1 ORDER BY id LIMIT $2"
            )))
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Replaces the signing secret `replaced` (as sealed now) with `secret`, keeping the
    /// old one (sealed again as `previous_secret`) signing until `previous_until`, both
    /// sealed under data key `key_version`; `false` when the secret is no longer `replaced`
    /// (another rotation came first).
    pub async fn rotate_subscription_secret(
        &self,
        id: &str,
        replaced: &[u8],
        secret: &[u8],
        previous: &[u8],
        key_version: i64,
        previous_until: Timestamp,
    ) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query(
                "UPDATE subscriptions SET secret = $3, previous_secret = $4, previous_until = $5, \
                 key_version = $6, updated_at = $7 WHERE id = $1 AND secret = $2",
            )
            .bind(id)
            .bind(replaced)
            .bind(secret)
            .bind(previous)
            .bind(previous_until)
            .bind(key_version)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Sets where the subscription goes on from: it gets every event after seq `after`
    /// again (a replay).
    pub async fn rewind_subscription(&self, id: &str, after: i64) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query(
                "UPDATE subscriptions SET delivered_through = $2, failures = 0, failing_since = NULL, retry_at = NULL, \
                 updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(after)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Leases to `owner` until `until` the active subscriptions that are due (not waiting
    /// to retry) and behind the outbox, and whose lease is free or already `owner`'s: one
    /// statement, so of several hubs only one gets each.
    pub async fn lease_due_subscriptions(
        &self,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let last_seq = super::events::last_seq_sql(self.backend());
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!(
                "UPDATE subscriptions SET lease_owner = $1, lease_until = $3 WHERE status = 'active' \
                 AND (retry_at IS NULL OR retry_at <= $2) AND (lease_until IS NULL OR lease_until < $2 OR lease_owner = $1) \
                 AND delivered_through < {last_seq} RETURNING {COLUMNS}"
            )))
            .bind(owner)
            .bind(now)
            .bind(until)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Newest first, before the attempt id `before`.
    pub async fn delivery_attempts(
        &self,
        subscription_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!(
                "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE subscription_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3"
            )))
            .bind(subscription_id)
            .bind(before.unwrap_or("~"))
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Deletes the attempts made before `cutoff`; how many went.
    pub async fn prune_delivery_attempts(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query("DELETE FROM delivery_attempts WHERE attempted_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// The seq just before event `id`, to replay from it; `None` for an unknown event.
    pub async fn seq_before_event(&self, id: &str) -> Result<Option<i64>, StoreError> {
        on!(self.pool(), pool => {
            let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(seq.map(|s| s - 1))
        })
    }

    /// The seq just before the first event made at or after the time whose id floor is
    /// `floor` (`events::id_floor`): found by the id's index.
    pub async fn seq_before_time(&self, floor: &str) -> Result<i64, StoreError> {
        on!(self.pool(), pool => {
            let seq: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM events WHERE id >= $1")
                .bind(floor)
                .fetch_one(pool)
                .await?;
            match seq {
                Some(seq) => Ok(seq - 1),
                None => self.last_event_seq().await,
            }
        })
    }
}

/// Records a delivery round of subscription `id` by lease `owner` in `tx`: its attempts,
/// and where it left the subscription. Nothing moves when the lease is no longer `owner`'s
/// (another hub took over), but the attempts are kept; false then.
pub async fn end_round(
    tx: &mut Tx,
    id: &str,
    owner: &str,
    end: &RoundEnd,
    attempts: &[DeliveryAttempt],
) -> Result<bool, StoreError> {
    insert_attempts(tx, attempts).await?;
    let moved = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE subscriptions SET delivered_through = $3, failures = $4, failing_since = $5, retry_at = $6, \
             status = CASE WHEN $7 IS NULL THEN status ELSE 'disabled' END, \
             disabled_reason = COALESCE($7, disabled_reason), updated_at = $8 \
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(end.delivered_through)
        .bind(end.failures)
        .bind(end.failing_since)
        .bind(end.retry_at)
        .bind(&end.disabled_reason)
        .bind(Timestamp::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(moved > 0)
}

/// Sets a subscription's status by someone's hand (`active` or `paused`) in `tx`, clearing
/// the reason the hub disabled it for; `active` also clears its failures, so it is tried at
/// once. `false` when there is no such subscription.
pub async fn set_status(tx: &mut Tx, id: &str, status: &str) -> Result<bool, StoreError> {
    let changed = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE subscriptions SET status = $2, disabled_reason = NULL, updated_at = $3, \
             failures = CASE WHEN $2 = 'active' THEN 0 ELSE failures END, \
             failing_since = CASE WHEN $2 = 'active' THEN NULL ELSE failing_since END, \
             retry_at = CASE WHEN $2 = 'active' THEN NULL ELSE retry_at END WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(Timestamp::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(changed > 0)
}

/// Deletes a subscription and its attempts in `tx`; `false` when there is no such
/// subscription.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<bool, StoreError> {
    let keys = [id.to_string()];
    super::delete_where_in(tx, "delivery_attempts", "subscription_id", &keys).await?;
    let deleted = on_tx!(tx, conn => {
        sqlx::query("DELETE FROM subscriptions WHERE id = $1").bind(id).execute(conn).await?.rows_affected()
    });
    Ok(deleted > 0)
}

async fn insert_attempts(tx: &mut Tx, attempts: &[DeliveryAttempt]) -> Result<(), StoreError> {
    for chunk in attempts.chunks(1000) {
        let sql = format!(
            "INSERT INTO delivery_attempts ({ATTEMPT_COLUMNS}) VALUES {}",
            tx.backend().placeholders(chunk.len(), 8, 1)
        );
        super::on_tx!(&mut *tx, conn => {
            let mut query = super::batch_write(sql);
            for a in chunk {
                query = query
                    .bind(&a.id)
                    .bind(&a.subscription_id)
                    .bind(&a.event_id)
                    .bind(a.event_seq)
                    .bind(a.status_code)
                    .bind(&a.error)
                    .bind(a.duration_ms)
                    .bind(a.attempted_at);
            }
            query.execute(conn).await?;
        });
    }
    Ok(())
}
