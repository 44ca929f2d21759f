//! Console sessions, stored by the SHA-256 of their token only.

use super::Timestamp;
use super::{Db, StoreError, on};

/// Who a live session signed in, as the API sees them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRecord {
    pub actor: String,
    pub role: String,
    pub pii_read: bool,
    pub last_seen_at: Timestamp,
}

impl Db {
    /// Stores a new session, and drops the ones that have ended (sign-ins are rare, so this is
    /// where the table is kept small).
    pub async fn insert_session(
        &self,
        token_hash: &[u8],
        record: &SessionRecord,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
                .bind(Timestamp::now())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO console_sessions (token_hash, actor, role, pii_read, created_at, last_seen_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6)",
            )
            .bind(token_hash)
            .bind(&record.actor)
            .bind(&record.role)
            .bind(record.pii_read)
            .bind(record.last_seen_at)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The session with this token hash, unless it has expired or was idle since before
    /// `idle_since`.
    pub async fn live_session(
        &self,
        token_hash: &[u8],
        idle_since: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as::<_, SessionRecord>(
                "SELECT actor, role, pii_read, last_seen_at FROM console_sessions \
                 WHERE token_hash = $1 AND expires_at > $2 AND last_seen_at > $3",
            )
            .bind(token_hash)
            .bind(Timestamp::now())
            .bind(idle_since)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Marks the session used now.
    pub async fn touch_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1")
                .bind(token_hash)
                .bind(Timestamp::now())
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Ends a session; true when there was one.
    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<bool, StoreError> {
        on!(self.pool(), pool => {
            let done = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
