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
    /// `api_key_hash`: the key it signed in with, whose revocation ends it.
    pub async fn insert_session(
        &self,
        token_hash: &[u8],
        record: &SessionRecord,
        api_key_hash: Option<&[u8]>,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
                .bind(Timestamp::now())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO console_sessions \
                 (token_hash, actor, role, api_key_hash, pii_read, created_at, last_seen_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
            )
            .bind(token_hash)
            .bind(&record.actor)
            .bind(&record.role)
            .bind(api_key_hash)
            .bind(record.pii_read)
            .bind(record.last_seen_at)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The session with this token hash, unless it has expired, was idle since before
    /// `idle_since`, or its API key has been revoked.
    pub async fn live_session(
        &self,
        token_hash: &[u8],
        idle_since: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as::<_, SessionRecord>(
                "SELECT s.actor, s.role, s.pii_read, s.last_seen_at FROM console_sessions s \
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 \
                 AND (s.api_key_hash IS NULL OR EXISTS \
                      (SELECT 1 FROM api_keys k WHERE k.key_hash = s.api_key_hash AND k.revoked_at IS NULL))",
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

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
