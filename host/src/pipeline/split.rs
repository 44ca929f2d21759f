//! Taking one source's record back out of a practitioner (`POST /api/v1/practitioners/{id}/
//! split`): what their other sources said is merged again into their golden record, as if
//! that record had never joined them, and the STR numbers only it carried go with it.

use super::derive::Derived;
use super::golden::{self, Contribution};
use super::{Pipeline, index, seal};
use crate::store::practitioners::{self as stored, SealedContribution};
use crate::store::{StoreError, Timestamp};

/// What a split takes out.
pub struct Taken {
    pub contribution: Contribution,
    /// The blind index of its NIK, and whether it is the practitioner's own NIK.
    pub same_nik: bool,
    /// How many sources the practitioner has, this one included.
    pub sources: usize,
}

impl Pipeline {
    /// `system`'s record of practitioner `id`, opened, or `None` when they have none.
    pub async fn contribution_of(&self, id: &str, system: &str) -> Result<Option<Taken>, StoreError> {
        let mut tx = self.db.begin().await?;
        let all = stored::contributions(&mut tx, &[id.to_string()]).await?;
        let golden_nik = self.db.practitioners_by_id(&[id.to_string()]).await?;
        let Some(sealed) = all.iter().find(|c| c.source_system == system) else {
            return Ok(None);
        };
        let contribution = seal::open_contribution(&self.keys.cipher(), sealed)?;
        let nik_index = self
            .keys
            .blind
            .nik(contribution.record.nik.as_deref().unwrap_or_default());
        Ok(Some(Taken {
            same_nik: golden_nik.first().and_then(|p| p.nik_index.as_deref()) == Some(nik_index.as_slice()),
            sources: all.len(),
            contribution,
        }))
    }

    /// Takes `system`'s record out of practitioner `id` (it is person `moved_to`'s now): the
    /// golden record is merged again from the other sources and replaces the stored one, and
    /// STR numbers held through that record alone move to `moved_to`. One transaction, with
    /// its `practitioner.split` event.
    pub async fn take_out(&self, id: &str, system: &str, moved_to: &str) -> Result<(), StoreError> {
        let cipher = self.keys.cipher();
        let ids = [id.to_string()];
        let mut tx = self.db.begin().await?;
        stored::lock(&mut tx, &ids).await?;
        let (taken, rest): (Vec<SealedContribution>, Vec<SealedContribution>) = stored::contributions(&mut tx, &ids)
            .await?
            .into_iter()
            .partition(|c| c.source_system == system);
        let opened = |list: &[SealedContribution]| -> Result<Vec<Contribution>, StoreError> {
            list.iter().map(|c| seal::open_contribution(&cipher, c)).collect()
        };
        let (taken, rest) = (opened(&taken)?, opened(&rest)?);
        let Some(latest) = rest.iter().max_by(|a, b| a.at.cmp(&b.at)) else {
            return Err(StoreError::Corrupt {
                what: "split",
                detail: format!("practitioner {id} has no source but {system} to keep"),
            });
        };
        let (golden, provenance) = golden::merge(&rest, latest.record.source.clone());
        let now = Timestamp::now();
        let indexes = index::indexes(&self.keys.blind, &golden);
        let content_hash = index::content_hash(&self.keys.blind, &golden);
        let row = seal::practitioner(&cipher, id, &golden, indexes, content_hash, &provenance, now);
        let kept: Vec<Vec<u8>> = rest
            .iter()
            .filter_map(|c| index::indexes(&self.keys.blind, &c.record).str_index)
            .collect();
        let moved: Vec<Vec<u8>> = taken
            .iter()
            .filter_map(|c| index::indexes(&self.keys.blind, &c.record).str_index)
            .filter(|s| !kept.contains(s))
            .collect();
        stored::replace(&mut tx, &row).await?;
        let mut derived = Derived::default();
        derived.add(&self.keys.blind, id, (&golden).into(), now);
        derived.write(&mut tx, ids.to_vec()).await?;
        stored::delete_contribution(&mut tx, id, system).await?;
        stored::move_strs(&mut tx, id, moved_to, &moved).await?;
        let connector_id = taken.first().map_or("", |c| c.connector_id.as_str());
        let event = crate::events::practitioner_split(id, system, connector_id, moved_to, now);
        crate::store::events::insert(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(())
    }
}
