//! Alerts raised for a connector, open until resolved.

use super::Timestamp;
use super::{Db, StoreError, Tx, on, on_tx, trusted};
use sqlx::{FromRow, Row};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct AlertRecord {
    pub id: String,
    pub connector_id: String,
    pub run_id: Option<String>,
    /// `credentials` (a token endpoint refused the connector's credentials) or `reject-rate`
    /// (a batch had more than 20 % rejected rows).
    pub kind: String,
    pub message: String,
    pub raised_at: Timestamp,
    /// Set when the condition cleared (credentials: the next successful run).
    pub resolved_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, connector_id, run_id, kind, message, raised_at, resolved_at";

impl Db {
    pub async fn count_open_alerts(&self, connector_id: &str) -> Result<i64, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM alerts WHERE connector_id = $1 AND resolved_at IS NULL")
                .bind(connector_id)
                .fetch_one(pool)
                .await?;
            Ok(row.try_get("n")?)
        })
    }

    /// Newest first, before the cursor `before`; optionally one connector's, optionally open only.
    pub async fn list_alerts(
        &self,
        connector_id: Option<&str>,
        open_only: bool,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM alerts WHERE id < $1 AND ($2 = '' OR connector_id = $2) \
                 AND ($3 = 0 OR resolved_at IS NULL) ORDER BY id DESC LIMIT $4"
            )))
            .bind(before.unwrap_or("~"))
            .bind(connector_id.unwrap_or(""))
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
        sqlx::query(trusted(format!("INSERT INTO alerts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)")))
            .bind(&alert.id)
            .bind(&alert.connector_id)
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

/// Resolves the open alerts of `kind` for a connector in the caller's transaction; returns
/// them, resolved.
pub async fn resolve(tx: &mut Tx, connector_id: &str, kind: &str) -> Result<Vec<AlertRecord>, StoreError> {
    on_tx!(tx, conn => {
        let rows = sqlx::query(trusted(format!(
            "UPDATE alerts SET resolved_at = $3 WHERE connector_id = $1 AND kind = $2 AND resolved_at IS NULL \
             RETURNING {COLUMNS}"
        )))
        .bind(connector_id)
        .bind(kind)
        .bind(Timestamp::now())
        .fetch_all(conn)
        .await?;
        Ok(rows.iter().map(AlertRecord::from_row).collect::<Result<_, _>>()?)
    })
}
