//! Data key rotation. A new key version takes new writes at once; a background job then
//! re-encrypts every sealed row (practitioners, accounts, rejects, local secrets) in batches,
//! recording its progress, while the hub keeps serving reads and writes. When no row is left
//! under an older version, those versions are retired and no longer loaded.
//!
//! Replicas reload the key list every `keys.reload_secs`; the job waits twice that long before
//! it starts, so every replica writes under the new version by then. A row a slow replica still
//! writes under an old version is found by the next pass: the job ends only when a full pass
//! finds nothing.

use super::{Manager, ManagerError};
use crate::audit::{Event, Outcome};
use crate::crypto::CryptoError;
use crate::crypto::keyring::{DATA, RETIRED};
use crate::store::Timestamp;
use crate::store::keys::{KeyRotation, Resealed, SEALED_TABLES, SealedRow, SealedTable};
use serde::Serialize;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Rows re-encrypted per transaction.
const BATCH: i64 = 500;

pub const RUNNING: &str = "running";
const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// `GET /api/v1/keys`: the key setup and the state of the last rotation. Never key material.
#[derive(Serialize, schemars::JsonSchema)]
pub struct KeysStatus {
    /// What wraps the data keys: `local` (the master key file) or `transit:<mount>/<key>`.
    pub kek: String,
    /// Where connector secrets live: `local` or `vault`.
    pub secrets_backend: String,
    /// The data key version new data is sealed under.
    pub active_version: u32,
    pub versions: Vec<DataKeyView>,
    /// The newest rotation, with its progress.
    pub rotation: Option<KeyRotation>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct DataKeyView {
    pub version: u32,
    /// `active`, `retiring` (readable, rows being moved off it) or `retired` (not loaded).
    pub status: String,
    pub created_at: Timestamp,
}

impl Manager {
    pub async fn keys_status(&self) -> Result<KeysStatus, ManagerError> {
        let db = &self.inner.db;
        let versions = db
            .data_keys(DATA)
            .await?
            .into_iter()
            .map(|k| DataKeyView {
                version: k.version,
                status: k.status,
                created_at: k.created_at,
            })
            .collect();
        Ok(KeysStatus {
            kek: self.inner.keys.kek().describe(),
            secrets_backend: self.inner.secrets.store().backend().into(),
            active_version: self.inner.keys.cipher().active_version(),
            versions,
            rotation: db.latest_rotation().await?,
        })
    }

    /// Creates the next data key version and starts re-encrypting every row under it.
    pub async fn rotate_data_key(&self, actor: &str) -> Result<KeysStatus, ManagerError> {
        let db = &self.inner.db;
        if let Some(running) = db.latest_rotation().await?.filter(|r| r.status == RUNNING) {
            return Err(ManagerError::Conflict(format!(
                "a rotation to data key version {} is running ({} of {} rows done); wait for it to finish",
                running.to_version, running.done, running.total
            )));
        }
        let to_version = self.inner.keys.add_data_key().await?;
        let mut total = 0;
        for table in SEALED_TABLES {
            total += db.count_sealed_below(table, to_version).await?;
        }
        let rotation = KeyRotation {
            id: uuid::Uuid::now_v7().to_string(),
            to_version,
            status: RUNNING.into(),
            total,
            done: 0,
            error: None,
            requested_by: actor.to_string(),
            started_at: crate::store::Timestamp::now(),
            finished_at: None,
        };
        db.insert_rotation(&rotation).await?;
        tracing::info!(to_version, rows = total, "data key rotation started");
        self.inner
            .audit
            .record(
                Event::new(actor, "keys.rotate", format!("data-key/{to_version}"))
                    .details(serde_json::json!({ "to_version": to_version, "rows": total })),
            )
            .await;
        self.spawn_re_encryption(rotation);
        self.keys_status().await
    }

    /// Reloads the key list every `every` (rotations started elsewhere reach this hub), and
    /// resumes a rotation a stopped hub left running.
    pub fn watch_keys(&self, every: Duration) -> JoinHandle<()> {
        let manager = self.clone();
        tokio::spawn(async move {
            match manager.inner.db.latest_rotation().await {
                Ok(Some(rotation)) if rotation.status == RUNNING => {
                    tracing::info!(to_version = rotation.to_version, "resuming the data key rotation");
                    manager.spawn_re_encryption(rotation);
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "cannot read the key rotation state"),
            }
            loop {
                tokio::time::sleep(every).await;
                if let Err(error) = manager.inner.keys.reload().await {
                    tracing::error!(%error, "reloading data keys failed; still using the ones loaded");
                }
            }
        })
    }

    fn spawn_re_encryption(&self, mut rotation: KeyRotation) {
        let manager = self.clone();
        tokio::spawn(async move {
            // Two reload intervals: every replica has reloaded, and a batch it sealed before
            // reloading has been stored, before the sweep starts.
            tokio::time::sleep(manager.inner.key_reload * 2).await;
            let mut outcome = manager.re_encrypt(&mut rotation).await;
            if outcome.is_ok() {
                outcome = manager
                    .inner
                    .keys
                    .retire_below(rotation.to_version)
                    .await
                    .map_err(Into::into);
            }
            rotation.finished_at = Some(crate::store::Timestamp::now());
            let event = Event::new(
                format!("rotation:{}", rotation.id),
                "keys.re-encrypt",
                format!("data-key/{}", rotation.to_version),
            );
            let event = match &outcome {
                Ok(()) => {
                    rotation.status = DONE.into();
                    tracing::info!(
                        to_version = rotation.to_version,
                        rows = rotation.done,
                        "data key rotation done; older versions {RETIRED}"
                    );
                    event.details(serde_json::json!({ "rows": rotation.done }))
                }
                Err(error) => {
                    rotation.status = FAILED.into();
                    rotation.error = Some(format!(
                        "{error}. Older key versions stay loaded; fix or delete that row, then rotate again"
                    ));
                    tracing::error!(%error, to_version = rotation.to_version, "data key rotation failed");
                    event
                        .outcome(Outcome::Failure)
                        .details(serde_json::json!({ "rows": rotation.done, "error": error.to_string() }))
                }
            };
            // Audited before the status says it ended, so whoever sees the end sees the entry.
            manager.inner.audit.record(event).await;
            if let Err(error) = manager.inner.db.update_rotation(&rotation).await {
                tracing::error!(%error, "cannot record the end of the key rotation");
            }
        });
    }

    /// Moves every sealed row to `rotation.to_version`, batch by batch, until a full pass
    /// finds none left.
    async fn re_encrypt(&self, rotation: &mut KeyRotation) -> Result<(), ManagerError> {
        let db = &self.inner.db;
        loop {
            let mut found = 0;
            for table in SEALED_TABLES {
                loop {
                    let rows = db.sealed_below(table, rotation.to_version, BATCH).await?;
                    if rows.is_empty() {
                        break;
                    }
                    found += rows.len();
                    let resealed = self.reseal_rows(table, rows)?;
                    db.reseal(table, rotation.to_version, &resealed).await?;
                    rotation.done += resealed.len() as i64;
                    rotation.total = rotation.total.max(rotation.done);
                    db.update_rotation(rotation).await?;
                }
            }
            if found == 0 {
                return Ok(());
            }
        }
    }

    /// Opens each sealed column with the key it was sealed under and seals it again under
    /// the active key. A column that does not open stops the rotation, naming it.
    fn reseal_rows(&self, table: &SealedTable, rows: Vec<SealedRow>) -> Result<Vec<Resealed>, CryptoError> {
        let cipher = self.inner.keys.cipher();
        rows.into_iter()
            .map(|row| {
                let values = table
                    .columns
                    .iter()
                    .zip(&row.values)
                    .map(|(column, sealed)| {
                        sealed
                            .as_deref()
                            .map(|sealed| {
                                let plain = cipher.decrypt(table.aad_table, column, &row.row_id, sealed)?;
                                Ok(cipher.encrypt(table.aad_table, column, &row.row_id, &plain))
                            })
                            .transpose()
                    })
                    .collect::<Result<Vec<_>, CryptoError>>()?;
                Ok((row, values))
            })
            .collect()
    }
}
