//! A job's batches stored side by side. A run's pages must be stored in the order they came
//! wherever order matters: a later page may be about a person an earlier one created or
//! changed. Every way a row finds a person goes through one of its blind keys (the STR, the
//! NIK, the fallback and twin keys) or its source id (review pins, the source's last
//! contribution), so a batch that shares none of them with a batch still being written
//! cannot be about that batch's people: it is matched, merged and written meanwhile. A batch
//! that shares one waits until that write has ended. Two batches that reach one stored
//! person through different keys are caught as any two writers are (`write.rs`: the later
//! one starts over).
//!
//! Why: a batch spends most of its time in its write transaction, and a 100,000-person sync
//! that stored each batch after the one before left the two cores ~40 % idle (vmstat,
//! 2026-12-03; BENCHMARKS.md).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Which people a batch may be about.
#[derive(Debug)]
pub(super) enum Concerns {
    /// Those these keys find.
    Keys(HashSet<Vec<u8>>),
    /// Anyone: a batch of observations or accounts (they find practitioners by other
    /// means), and every batch on SQLite, whose one writer gains nothing from overlap.
    Everyone,
}

impl Concerns {
    fn meet(&self, other: &Concerns) -> bool {
        match (self, other) {
            (Concerns::Keys(a), Concerns::Keys(b)) => {
                let (fewer, more) = if a.len() <= b.len() { (a, b) } else { (b, a) };
                fewer.iter().any(|key| more.contains(key))
            }
            _ => true,
        }
    }
}

/// What a batch concerns, once known; closed when its write has ended (or was given up).
type Slot = watch::Receiver<Option<Arc<Concerns>>>;

/// The batches of one job begun and not yet written, in the order they were begun.
#[derive(Default)]
pub struct Lane {
    begun: Mutex<Vec<Slot>>,
}

impl Lane {
    /// The next batch's place, behind every batch begun before it.
    pub(super) fn turn(&self) -> Turn {
        let (concerns, slot) = watch::channel(None);
        let mut begun = self.begun.lock().unwrap_or_else(|e| e.into_inner());
        // `has_changed` fails once the batch's turn was dropped: it is written.
        begun.retain(|slot| slot.has_changed().is_ok());
        let earlier = begun.clone();
        begun.push(slot);
        Turn { concerns, earlier }
    }
}

/// A batch's place in its lane, held until its write has ended.
pub(super) struct Turn {
    concerns: watch::Sender<Option<Arc<Concerns>>>,
    earlier: Vec<Slot>,
}

impl Turn {
    /// Says which people this batch may be about, then waits until no batch begun before
    /// it that may be about any of them is still being written.
    pub(super) async fn wait(&mut self, concerns: Concerns) {
        let concerns = Arc::new(concerns);
        self.concerns.send_replace(Some(concerns.clone()));
        for slot in &mut self.earlier {
            let meets = match slot.wait_for(Option::is_some).await {
                Ok(theirs) => theirs.as_ref().is_some_and(|theirs| theirs.meet(&concerns)),
                // Written, or given up, before it said.
                Err(_) => false,
            };
            if meets {
                while slot.changed().await.is_ok() {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn keys(keys: &[&str]) -> Concerns {
        Concerns::Keys(keys.iter().map(|k| k.as_bytes().to_vec()).collect())
    }

    /// Whether `turn` gets past its wait for `concerns` while the earlier turns are held.
    async fn goes_ahead(mut turn: Turn, concerns: Concerns) -> bool {
        tokio::time::timeout(Duration::from_millis(200), turn.wait(concerns))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_batch_waits_only_for_earlier_batches_that_share_a_key_with_it() {
        let lane = Lane::default();
        let mut first = lane.turn();
        first.wait(keys(&["str-1", "nik-1"])).await;
        assert!(goes_ahead(lane.turn(), keys(&["str-2", "nik-2"])).await);
        assert!(!goes_ahead(lane.turn(), keys(&["str-3", "nik-1"])).await);
        assert!(!goes_ahead(lane.turn(), Concerns::Everyone).await);

        // Once the first is written, a batch sharing its keys goes ahead.
        let sharing = lane.turn();
        drop(first);
        assert!(goes_ahead(sharing, keys(&["nik-1"])).await);
    }

    #[tokio::test]
    async fn a_batch_about_anyone_waits_for_every_earlier_batch_and_they_for_it() {
        let lane = Lane::default();
        let mut everyone = lane.turn();
        everyone.wait(Concerns::Everyone).await;
        assert!(!goes_ahead(lane.turn(), keys(&["str-9"])).await);
        drop(everyone);
        assert!(goes_ahead(lane.turn(), keys(&["str-9"])).await);
    }

    #[tokio::test]
    async fn a_batch_waits_for_an_earlier_one_to_say_what_it_is_about() {
        let lane = Lane::default();
        let mut first = lane.turn();
        let second = lane.turn();
        let waiting = tokio::spawn(goes_ahead(second, keys(&["nik-1"])));
        tokio::time::sleep(Duration::from_millis(50)).await;
        first.wait(keys(&["nik-1"])).await;
        assert!(!waiting.await.unwrap(), "went ahead of a batch about the same person");
    }
}
