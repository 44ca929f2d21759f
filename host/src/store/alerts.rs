//! Alerts raised for a connector or a webhook subscription, open until resolved.

use super::Timestamp;
use super::{Db, StoreError, Tx, on, on_tx, trusted};
use sqlx::FromRow;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct AlertRecord {
    pub id: String,
    /// The connector it concerns; unset for a subscription's alert.
    pub connector_id: Option<String>,
    /// The webhook subscription it concerns; unset for a connector's alert.
    pub subscription_id: Option<String>,
    pub run_id: Option<String>,
    /// `credentials` (a token endpoint refused the connector's credentials), `reject-rate`
    /// (a batch had more than 20 % rejected rows) or `subscription-disabled` (the hub gave up
    /// on a subscription's endpoint).
    pub kind: String,
    pub message: String,
    pub raised_at: Timestamp,
    /// Set when the condition cleared (credentials: the next successful run; a disabled
    /// subscription: someone resumed or deleted it).
    pub resolved_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, connector_id, subscription_id, run_id, kind, message, raised_at, resolved_at";

/// What an alert is about, to find its open alerts by.
#[derive(Clone, Copy, Debug)]
pub enum Concern<'a> {
    Connector(&'a str),
    Subscription(&'a str),
}

impl Concern<'_> {
    /// The column that names it, and its id.
    fn column(self) -> (&'static str, String) {
        match self {
            Concern::Connector(id) => ("connector_id", id.to_string()),
            Concern::Subscription(id) => ("subscription_id", id.to_string()),
        }
    }
}

impl Db {
    /// Newest first, before the cursor `before`; optionally only those about one connector
    /// or subscription, optionally open only.
    pub async fn list_alerts(
        &self,
        concern: Option<Concern<'_>>,
        open_only: bool,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let (column, id) = concern.map_or(("connector_id", String::new()), Concern::column);
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM alerts WHERE id < $1 AND ($2 = '' OR {column} = $2) \
                 AND ($3 = 0 OR resolved_at IS NULL) ORDER BY id DESC LIMIT $4"
            )))
            .bind(before.unwrap_or("~"))
            .bind(id)
            .bind(open_only as i64)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(AlertRecord::from_row).collect::<Result<_, _>>()?)
        })
    }
}

/// Stores a raised alert in the caller's transaction.
pub async fn insert(tx: &mut Tx, alert: &AlertRecord) -> Result<(), StoreError> {
    on_tx!(tx, conn => {
        sqlx::query(trusted(format!("INSERT INTO alerts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")))
            .bind(&alert.id)
            .bind(&alert.connector_id)
            .bind(&alert.subscription_id)
            .bind(&alert.run_id)
            .bind(&alert.kind)
            .bind(&alert.message)
            .bind(alert.raised_at)
            .bind(alert.resolved_at)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Resolves the open alerts of `kind` about `concern` in the caller's transaction; returns
/// them, resolved.
pub async fn resolve(tx: &mut Tx, concern: Concern<'_>, kind: &str) -> Result<Vec<AlertRecord>, StoreError> {
    let (column, id) = concern.column();
    on_tx!(tx, conn => {
        let rows = sqlx::query(trusted(format!(
            "UPDATE alerts SET resolved_at = $3 WHERE {column} = $1 AND kind = $2 AND resolved_at IS NULL \
             RETURNING {COLUMNS}"
        )))
        .bind(&id)
        .bind(kind)
        .bind(Timestamp::now())
        .fetch_all(conn)
        .await?;
        Ok(rows.iter().map(AlertRecord::from_row).collect::<Result<_, _>>()?)
    })
}
