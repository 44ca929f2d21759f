//! The audit log: append under a lock on `audit_head`, read in order for verification and
//! the API.

use super::Timestamp;
use super::{Db, StoreError, Tx, on, on_tx};
use sqlx::{FromRow, Row};

/// What an audit entry says, exactly as stored: the fields its MAC covers.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    /// A JSON object, kept as the exact text stored so the MAC can be checked.
    #[serde(serialize_with = "as_json")]
    #[schemars(with = "serde_json::Value")]
    pub details: String,
}

fn as_json<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => value.serialize(serializer),
        Err(_) => serializer.serialize_str(text),
    }
}

/// One audit entry with its number and MAC.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub entry: AuditEntry,
    #[serde(skip)]
    pub mac: Vec<u8>,
}

impl Db {
    /// Appends `entries`, chained in order, in one transaction; returns the first one's
    /// number. `seal(seq, previous_head_mac, entry)` returns the entry's MAC and the head's
    /// MAC. Bumping the head first takes its row lock (PostgreSQL) or the write lock (SQLite),
    /// so concurrent appends from any replica chain one after another.
    pub async fn append_audit(
        &self,
        entries: &[AuditEntry],
        seal: impl Fn(i64, &[u8], &AuditEntry) -> (Vec<u8>, Vec<u8>),
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let first = append_audit_in(&mut tx, entries, seal).await?;
        tx.commit().await?;
        Ok(first)
    }

    /// Entries after `after`, oldest first.
    pub async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, outcome, details, mac FROM audit_log \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(AuditRow::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Entries before `before`, newest first, optionally only one actor's or one action's.
    pub async fn audit_entries_newest(
        &self,
        actor: Option<&str>,
        action: Option<&str>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, outcome, details, mac FROM audit_log \
                 WHERE seq < $1 AND ($2 = '' OR actor = $2) AND ($3 = '' OR action = $3) ORDER BY seq DESC LIMIT $4",
            )
            .bind(before)
            .bind(actor.unwrap_or(""))
            .bind(action.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(AuditRow::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// The head: number and head MAC of the last entry.
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>), StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT seq, mac FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await?;
            Ok((row.try_get("seq")?, row.try_get("mac")?))
        })
    }
}

/// Appends entries inside the caller's transaction, so an action and its audit entries are
/// committed together or not at all (see [`Db::append_audit`] for `seal`): one head update,
/// one multi-row insert.
pub async fn append_audit_in(
    tx: &mut Tx,
    entries: &[AuditEntry],
    seal: impl Fn(i64, &[u8], &AuditEntry) -> (Vec<u8>, Vec<u8>),
) -> Result<i64, StoreError> {
    let backend = tx.backend();
    on_tx!(tx, tx => {
        let count = entries.len() as i64;
        let head = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, mac")
            .bind(count)
            .fetch_one(&mut *tx)
            .await?;
        let first = head.try_get::<i64, _>("seq")? - count + 1;
        let mut previous: Vec<u8> = head.try_get("mac")?;
        let mut macs = Vec::with_capacity(entries.len());
        for (seq, entry) in (first..).zip(entries) {
            let (mac, head_mac) = seal(seq, &previous, entry);
            macs.push(mac);
            previous = head_mac;
        }
        let sql = format!(
            "INSERT INTO audit_log (seq, at, actor, action, target, outcome, details, mac) VALUES {}",
            backend.placeholders(entries.len(), 8, 1)
        );
        let mut insert = super::batch_write(sql);
        for ((seq, entry), mac) in (first..).zip(entries).zip(&macs) {
            insert = insert
                .bind(seq)
                .bind(entry.at)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(&entry.outcome)
                .bind(&entry.details)
                .bind(mac);
        }
        insert.execute(&mut *tx).await?;
        sqlx::query("UPDATE audit_head SET mac = $1 WHERE id = 1")
            .bind(&previous)
            .execute(&mut *tx)
            .await?;
        Ok(first)
    })
}
