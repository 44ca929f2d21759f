//! SSO accounts: identifying fields sealed, looked up by the blind index of their subject,
//! linked to a practitioner by the blind index of the NIK.

use super::Timestamp;
use super::{Db, StoreError, Tx, on, on_tx, trusted};
use sqlx::{FromRow, Row};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedAccount {
    pub id: String,
    pub source_system: String,
    pub subject_index: Vec<u8>,
    pub nik_index: Option<Vec<u8>>,
    pub practitioner_id: Option<String>,
    pub key_version: i64,
    pub subject: Vec<u8>,
    pub username: Vec<u8>,
    pub email: Option<Vec<u8>>,
    /// JSON array of the SSO's role names.
    pub roles: String,
    pub active: bool,
    pub content_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "id, source_system, subject_index, nik_index, practitioner_id, key_version, subject, username, \
                       email, roles, active, content_hash, created_at, updated_at";
const COLUMN_COUNT: usize = 14;

/// What deciding create / update / unchanged needs about a stored account.
pub struct StoredAccount {
    pub id: String,
    pub subject_index: Vec<u8>,
    pub practitioner_id: Option<String>,
    pub content_hash: Vec<u8>,
}

impl Db {
    /// Stored accounts of `system` among these subject indexes (one query per 1,000).
    pub async fn stored_accounts(&self, system: &str, subjects: &[Vec<u8>]) -> Result<Vec<StoredAccount>, StoreError> {
        on!(self.pool(), pool => {
            let mut found = Vec::new();
            for chunk in subjects.chunks(1000) {
                let backend = self.backend();
                let sql = format!(
                    "SELECT id, subject_index, practitioner_id, content_hash FROM accounts \
                     WHERE subject_index IN ({}) AND source_system = {}",
                    backend.list_placeholders(chunk.len(), 1),
                    backend.list_placeholders(1, chunk.len() + 1)
                );
                let mut query = sqlx::query(trusted(sql));
                for key in chunk {
                    query = query.bind(key);
                }
                query = query.bind(system);
                for row in query.fetch_all(pool).await? {
                    found.push(StoredAccount {
                        id: row.try_get("id")?,
                        subject_index: row.try_get("subject_index")?,
                        practitioner_id: row.try_get("practitioner_id")?,
                        content_hash: row.try_get("content_hash")?,
                    });
                }
            }
            Ok(found)
        })
    }

    /// `(nik_index, practitioner id)` of the stored practitioners with these NIK indexes.
    pub async fn practitioners_by_nik(&self, niks: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, String)>, StoreError> {
        on!(self.pool(), pool => {
            let mut found = Vec::new();
            for chunk in niks.chunks(1000) {
                let sql = format!(
                    "SELECT nik_index, id FROM practitioners WHERE nik_index IN ({})",
                    self.backend().list_placeholders(chunk.len(), 1)
                );
                let mut query = sqlx::query(trusted(sql));
                for key in chunk {
                    query = query.bind(key);
                }
                for row in query.fetch_all(pool).await? {
                    found.push((row.try_get("nik_index")?, row.try_get("id")?));
                }
            }
            Ok(found)
        })
    }

    /// Accounts ordered by id after `after`, optionally of one practitioner.
    pub async fn list_accounts(
        &self,
        practitioner_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SealedAccount>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS} FROM accounts WHERE id > $1 AND ($2 = '' OR practitioner_id = $2) ORDER BY id LIMIT $3"
            )))
            .bind(after.unwrap_or(""))
            .bind(practitioner_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(SealedAccount::from_row).collect::<Result<_, _>>()?)
        })
    }
}

/// Inserts new accounts and replaces changed ones, one statement per chunk.
pub async fn upsert(tx: &mut Tx, rows: &[SealedAccount]) -> Result<(), StoreError> {
    let backend = tx.backend();
    on_tx!(tx, tx => {
        for chunk in rows.chunks(1000) {
            let sql = format!(
                "INSERT INTO accounts ({COLUMNS}) VALUES {} ON CONFLICT (source_system, subject_index) DO UPDATE SET \
                 nik_index = excluded.nik_index, practitioner_id = excluded.practitioner_id, \
                 key_version = excluded.key_version, subject = excluded.subject, username = excluded.username, \
                 email = excluded.email, roles = excluded.roles, active = excluded.active, \
                 content_hash = excluded.content_hash, updated_at = excluded.updated_at",
                backend.placeholders(chunk.len(), COLUMN_COUNT, 1)
            );
            let mut query = super::batch_write(sql);
            for a in chunk {
                query = query
                    .bind(&a.id)
                    .bind(&a.source_system)
                    .bind(&a.subject_index)
                    .bind(&a.nik_index)
                    .bind(&a.practitioner_id)
                    .bind(a.key_version)
                    .bind(&a.subject)
                    .bind(&a.username)
                    .bind(&a.email)
                    .bind(&a.roles)
                    .bind(a.active)
                    .bind(&a.content_hash)
                    .bind(a.created_at)
                    .bind(a.updated_at);
            }
            query.execute(&mut *tx).await?;
        }
        Ok(())
    })
}
