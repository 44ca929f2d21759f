//! Event sinks (`event_sinks`, migration 0026): how far each sink other than a webhook
//! subscription has got in the outbox, and which hub publishes to it.

use super::Timestamp;
use super::{Db, StoreError, on, trusted};

/// The sink of outbound connector `connector_id` (`events::outbound`).
pub fn connector_sink(connector_id: &str) -> String {
    format!("connector:{connector_id}")
}

impl Db {
    /// Sets sink `name` up at the end of the outbox, unless it is set up already: it gets the
    /// events made from now on, as a new subscription does.
    pub async fn start_sink(&self, name: &str) -> Result<(), StoreError> {
        let last_seq = super::events::last_seq_sql(self.backend());
        on!(self.pool(), pool => {
            sqlx::query(trusted(format!(
                "INSERT INTO event_sinks (name, delivered_through, updated_at) \
                 VALUES ($1, {last_seq}, $2) ON CONFLICT (name) DO NOTHING"
            )))
            .bind(name)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Leases sink `name` (set up by [`Db::start_sink`]) to `owner` until `until` when no
    /// other hub holds it (its lease lapsed at `now`, or it is `owner`'s already); the seq it
    /// has delivered through, or none while another hub holds it.
    pub async fn lease_sink(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_scalar(
                "UPDATE event_sinks SET lease_owner = $2, lease_until = $4 WHERE name = $1 \
                 AND (lease_until IS NULL OR lease_until < $3 OR lease_owner = $2) RETURNING delivered_through",
            )
            .bind(name)
            .bind(owner)
            .bind(now)
            .bind(until)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Moves sink `name` on to `through` when `owner` holds it still; whether it did (if
    /// not, the hub that took it over delivers from where the sink was).
    pub async fn advance_sink(&self, name: &str, owner: &str, through: i64) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query(
                "UPDATE event_sinks SET delivered_through = $3, updated_at = $4 \
                 WHERE name = $1 AND lease_owner = $2 AND delivered_through < $3",
            )
            .bind(name)
            .bind(owner)
            .bind(through)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Moves sink `name` from `after` on to `through`, once whatever delivered that batch
    /// succeeded; nothing when the sink is no longer at `after` (the batch went already).
    pub async fn finish_sink_batch(&self, name: &str, after: i64, through: i64) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(
                "UPDATE event_sinks SET delivered_through = $3, updated_at = $4 WHERE name = $1 AND delivered_through = $2",
            )
            .bind(name)
            .bind(after)
            .bind(through)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
