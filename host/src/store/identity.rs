//! What the hub brings up to date in stored identities when it starts (`Pipeline::upgrade`),
//! a bounded page at a time: STR numbers held before migration 0014, match keys computed with
//! older normalization tables, and the source ids of contributions stored before 0015.

use super::practitioners::SealedContribution;
use super::{Backed, Backend, Db, StoreError, Timestamp, on, trusted};

/// A practitioner's golden STR not yet among the STRs they hold (see
/// [`Db::strs_without_history`]).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UnrecordedStr {
    pub id: String,
    pub str_index: Vec<u8>,
    /// Sealed as `practitioners.str_number`.
    pub str_number: Vec<u8>,
    pub created_at: Timestamp,
}

/// What a practitioner's match keys are computed from, sealed as `practitioners.<column>`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MatchKeySource {
    pub id: String,
    pub nik: Option<Vec<u8>>,
    pub full_name: Option<Vec<u8>>,
    pub birth_place: Option<Vec<u8>>,
    pub birth_date: Option<Vec<u8>>,
}

/// A practitioner's match keys (`match_index`, `twin_index`) as recomputed.
pub struct MatchKeyUpdate {
    pub id: String,
    pub match_index: Option<Vec<u8>>,
    pub twin_index: Option<Vec<u8>>,
}

impl Db {
    /// Up to `limit` practitioners whose golden STR has no `practitioner_strs` row: those
    /// stored before migration 0014.
    pub async fn strs_without_history(&self, limit: i64) -> Result<Vec<UnrecordedStr>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(
                "SELECT id, str_index, str_number, created_at FROM practitioners p \
                 WHERE str_index IS NOT NULL AND str_number IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM practitioner_strs s WHERE s.str_index = p.str_index) \
                 ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Up to `limit` practitioners whose match keys were computed with normalization tables
    /// older than `version`.
    pub async fn stale_match_keys(&self, version: i64, limit: i64) -> Result<Vec<MatchKeySource>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(
                "SELECT id, nik, full_name, birth_place, birth_date FROM practitioners \
                 WHERE match_version IS NULL OR match_version < $1 ORDER BY id LIMIT $2",
            )
            .bind(version)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Sets each practitioner's match keys and marks them computed with tables `version`, in
    /// one statement.
    pub async fn set_match_keys(&self, keys: &[MatchKeyUpdate], version: i64) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        match self.pool() {
            Backed::Sqlite(pool) => {
                let sql = format!(
                    "UPDATE practitioners SET match_index = v.column2, twin_index = v.column3, match_version = ? \
                     FROM (VALUES {}) AS v WHERE practitioners.id = v.column1",
                    Backend::Sqlite.placeholders(keys.len(), 3, 2)
                );
                let mut query = super::batch_write(sql).bind(version);
                for k in keys {
                    query = query.bind(&k.id).bind(&k.match_index).bind(&k.twin_index);
                }
                query.execute(pool).await?;
            }
            Backed::Postgres(pool) => {
                sqlx::query(
                    "UPDATE practitioners p SET match_index = v.match_index, twin_index = v.twin_index, \
                     match_version = $4 FROM UNNEST($1::text[], $2::bytea[], $3::bytea[]) \
                     AS v(id, match_index, twin_index) WHERE p.id = v.id",
                )
                .bind(keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
                .bind(keys.iter().map(|k| k.match_index.as_deref()).collect::<Vec<_>>())
                .bind(keys.iter().map(|k| k.twin_index.as_deref()).collect::<Vec<_>>())
                .bind(version)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Up to `limit` contributions stored before their source id was kept (migration 0015).
    pub async fn contributions_without_source_id(&self, limit: i64) -> Result<Vec<SealedContribution>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!(
                "SELECT {} FROM practitioner_sources WHERE source_id IS NULL ORDER BY id LIMIT $1",
                super::practitioners::CONTRIBUTION_COLUMNS
            )))
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Sets each `(contribution row id, source id)`, in one statement.
    pub async fn set_source_ids(&self, ids: &[(String, String)]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        match self.pool() {
            Backed::Sqlite(pool) => {
                let sql = format!(
                    "UPDATE practitioner_sources SET source_id = v.column2 \
                     FROM (VALUES {}) AS v WHERE practitioner_sources.id = v.column1",
                    Backend::Sqlite.placeholders(ids.len(), 2, 1)
                );
                let mut query = super::batch_write(sql);
                for (id, source_id) in ids {
                    query = query.bind(id).bind(source_id);
                }
                query.execute(pool).await?;
            }
            Backed::Postgres(pool) => {
                sqlx::query(
                    "UPDATE practitioner_sources c SET source_id = v.source_id \
                     FROM UNNEST($1::text[], $2::text[]) AS v(id, source_id) WHERE c.id = v.id",
                )
                .bind(ids.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
                .bind(ids.iter().map(|(_, source_id)| source_id.as_str()).collect::<Vec<_>>())
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }
}
