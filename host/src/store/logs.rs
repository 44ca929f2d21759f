//! Connector logs: the plugin's own lines and the host's events about the connector.

use super::Timestamp;
use super::{Db, StoreError, on, trusted};
use sqlx::Row;

/// Levels, most severe first.
pub const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// A log level, as a filter.
#[derive(Clone, Copy, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    /// This level and every more severe one, as stored.
    pub fn and_more_severe(self) -> &'static [&'static str] {
        &LEVELS[..=self as usize]
    }
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct LogLine {
    /// Position in the log; the cursor of the next page.
    #[serde(default)]
    pub id: i64,
    pub connector_id: String,
    pub run_id: Option<String>,
    pub at: Timestamp,
    pub level: String,
    /// `plugin` or `host`.
    pub origin: String,
    pub message: String,
    pub fields: serde_json::Value,
}

impl Db {
    /// Appends lines in one statement.
    pub async fn append_logs(&self, lines: &[LogLine]) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            // SQLite allows 32766 parameters per statement; 7 per line.
            for chunk in lines.chunks(1000) {
                let sql = format!(
                    "INSERT INTO connector_logs (connector_id, run_id, at, level, origin, message, fields) VALUES {}",
                    self.backend().placeholders(chunk.len(), 7, 1)
                );
                let mut query = super::batch_write(sql);
                for line in chunk {
                    query = query
                        .bind(&line.connector_id)
                        .bind(&line.run_id)
                        .bind(line.at)
                        .bind(&line.level)
                        .bind(&line.origin)
                        .bind(&line.message)
                        .bind(line.fields.to_string());
                }
                query.execute(pool).await?;
            }
            Ok(())
        })
    }

    /// Lines of a connector, newest first, before line `before`, optionally of one run, at
    /// the given levels.
    pub async fn list_logs(
        &self,
        connector_id: &str,
        run_id: Option<&str>,
        levels: &[&str],
        before: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, StoreError> {
        on!(self.pool(), pool => {
            // Levels are inlined as literals: they can only be entries of LEVELS.
            let levels: Vec<String> = levels
                .iter()
                .filter(|l| LEVELS.contains(l))
                .map(|l| format!("'{l}'"))
                .collect();
            let sql = format!(
                "SELECT id, connector_id, run_id, at, level, origin, message, fields FROM connector_logs \
                 WHERE connector_id = $1 AND ($2 = '' OR run_id = $2) AND id < $3 AND level IN ({}) \
                 ORDER BY id DESC LIMIT $4",
                levels.join(",")
            );
            let rows = sqlx::query(trusted(sql))
                .bind(connector_id)
                .bind(run_id.unwrap_or(""))
                .bind(before)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let fields: String = row.try_get("fields")?;
                    Ok(LogLine {
                        id: row.try_get("id")?,
                        connector_id: row.try_get("connector_id")?,
                        run_id: row.try_get("run_id")?,
                        at: row.try_get("at")?,
                        level: row.try_get("level")?,
                        origin: row.try_get("origin")?,
                        message: row.try_get("message")?,
                        fields: serde_json::from_str(&fields).unwrap_or(serde_json::Value::Null),
                    })
                })
                .collect()
        })
    }
}
