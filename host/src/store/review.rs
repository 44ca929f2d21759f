//! The identity review queue (docs/golden-record.md, "Review"): records that are probably,
//! not surely, a stored person, held as candidates instead of merged; and the pins that
//! review decisions leave on a source record, which matching obeys from then on.

use super::{Db, StoreError, Timestamp, Tx, on, on_tx, trusted};

/// A held record and the stored person it may be. The record is sealed whole (AAD
/// `identity_candidates.record`, `<id>`); which fields agree is worked out when it is shown.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Candidate {
    pub id: String,
    /// What makes the pair probable and not sure (`pipeline::matching::Ambiguity`).
    pub kind: String,
    /// `open`, `merged` or `kept-apart`.
    pub status: String,
    pub practitioner_id: String,
    pub connector_id: String,
    pub source_system: String,
    /// The source's own record id, in clear as `rejects.source_id` is: with the system, what
    /// a pin names the record by.
    pub source_id: String,
    pub key_version: i64,
    pub record: Vec<u8>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    pub decided_by: Option<String>,
}

/// What a review decided about one source record.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Pin {
    pub source_system: String,
    pub source_id: String,
    /// `is`: the record is this practitioner's (a merge or a split); `apart`: it is not.
    pub relation: String,
    pub practitioner_id: String,
    pub decided_at: Timestamp,
}

const COLUMNS: &str = "id, kind, status, practitioner_id, connector_id, source_system, source_id, key_version, \
     record, created_at, updated_at, decided_at, decided_by";

/// A record held again for the same person while its candidate is open keeps its first
/// held copy (sealed under the candidate's id): a decision applies to the record, whatever
/// its source sends later.
const HOLD_TAIL: &str = " ON CONFLICT (source_system, source_id, practitioner_id) WHERE status = 'open' \
     DO UPDATE SET \
     kind = excluded.kind, updated_at = excluded.updated_at";

/// Holds records in one statement per chunk.
pub async fn hold(tx: &mut Tx, rows: &[Candidate]) -> Result<(), StoreError> {
    let backend = tx.backend();
    on_tx!(tx, tx => {
        for chunk in rows.chunks(1000) {
            let sql = format!(
                "INSERT INTO identity_candidates ({COLUMNS}) VALUES {}{HOLD_TAIL}",
                backend.placeholders(chunk.len(), 13, 1)
            );
            let mut query = super::batch_write(sql);
            for c in chunk {
                query = query
                    .bind(&c.id)
                    .bind(&c.kind)
                    .bind(&c.status)
                    .bind(&c.practitioner_id)
                    .bind(&c.connector_id)
                    .bind(&c.source_system)
                    .bind(&c.source_id)
                    .bind(c.key_version)
                    .bind(&c.record)
                    .bind(c.created_at)
                    .bind(c.updated_at)
                    .bind(c.decided_at)
                    .bind(&c.decided_by);
            }
            query.execute(&mut *tx).await?;
        }
        Ok(())
    })
}

/// The pins on records with any of the given source ids (of any system), oldest decision
/// first.
pub async fn pins(tx: &mut Tx, source_ids: &[String]) -> Result<Vec<Pin>, StoreError> {
    let mut pins: Vec<Pin> = super::select_where_in(
        tx,
        "SELECT source_system, source_id, relation, practitioner_id, decided_at FROM identity_pins",
        "source_id",
        source_ids,
    )
    .await?;
    pins.sort_by_key(|p| p.decided_at);
    Ok(pins)
}

impl Db {
    /// Candidates with `status` (all when `None`), oldest first, after the cursor `after`.
    pub async fn list_candidates(
        &self,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!(
                "SELECT {COLUMNS} FROM identity_candidates WHERE ($1 = '' OR status = $1) AND id > $2 \
                 ORDER BY id LIMIT $3"
            )))
            .bind(status.unwrap_or(""))
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    pub async fn candidate(&self, id: &str) -> Result<Option<Candidate>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!("SELECT {COLUMNS} FROM identity_candidates WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Records a decision: the candidate leaves the queue as `status`, and its record is
    /// pinned (`relation` to its person), in one transaction. `false` when the candidate
    /// was no longer open (decided meanwhile).
    pub async fn decide_candidate(
        &self,
        candidate: &Candidate,
        status: &str,
        relation: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let decided = on_tx!(&mut tx, tx => {
            sqlx::query(
                "UPDATE identity_candidates SET status = $2, decided_at = $3, decided_by = $4 \
                 WHERE id = $1 AND status = 'open'",
            )
            .bind(&candidate.id)
            .bind(status)
            .bind(now)
            .bind(actor)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0
        });
        if !decided {
            return Ok(false);
        }
        let (system, source_id) = (&candidate.source_system, &candidate.source_id);
        pin(
            &mut tx,
            system,
            source_id,
            relation,
            &candidate.practitioner_id,
            actor,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl Db {
    /// Pins `system`'s record `source_id` as `relation` to `practitioner_id` (see [`pin`]).
    pub async fn pin(
        &self,
        system: &str,
        source_id: &str,
        relation: &str,
        practitioner_id: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        pin(
            &mut tx,
            system,
            source_id,
            relation,
            practitioner_id,
            actor,
            Timestamp::now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a pin.
    pub async fn unpin(&self, system: &str, source_id: &str, practitioner_id: &str) -> Result<(), StoreError> {
        on!(self.pool(), pool => {
            sqlx::query(UNPIN)
                .bind(system)
                .bind(source_id)
                .bind(practitioner_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Takes back a decision whose record could not be run through the pipeline again: the
    /// candidate is open and its record unpinned, as before.
    pub async fn withdraw_decision(&self, candidate: &Candidate) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, tx => {
            sqlx::query(
                "UPDATE identity_candidates SET status = 'open', decided_at = NULL, decided_by = NULL WHERE id = $1",
            )
            .bind(&candidate.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(UNPIN)
                .bind(&candidate.source_system)
                .bind(&candidate.source_id)
                .bind(&candidate.practitioner_id)
                .execute(&mut *tx)
                .await?;
        });
        tx.commit().await?;
        Ok(())
    }
}

const UNPIN: &str = "DELETE FROM identity_pins WHERE source_system = $1 AND source_id = $2 AND practitioner_id = $3";

/// Pins `system`'s record `source_id` as `relation` (`is`, `apart`) to `practitioner_id`.
pub async fn pin(
    tx: &mut Tx,
    system: &str,
    source_id: &str,
    relation: &str,
    practitioner_id: &str,
    actor: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    on_tx!(tx, tx => {
        sqlx::query(
            "INSERT INTO identity_pins (source_system, source_id, practitioner_id, relation, decided_by, decided_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source_system, source_id, practitioner_id) DO UPDATE \
             SET relation = excluded.relation, decided_by = excluded.decided_by, decided_at = excluded.decided_at",
        )
        .bind(system)
        .bind(source_id)
        .bind(practitioner_id)
        .bind(relation)
        .bind(actor)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Ok(())
    })
}
