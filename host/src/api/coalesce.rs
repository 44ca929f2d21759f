//! Identical reads asked for at once share one computation, the way the job queue's group
//! commit shares one write.
//!
//! A dashboard of 256 clients asks for the same connector list over and over; each answer
//! took five queries, and on SQLite each query is two thread hand-offs, which were most of
//! the CPU. Here one caller at a time computes an answer for a key; callers arriving
//! meanwhile wait and are all served by the next computation, which starts after they
//! arrived — so every answer reflects the state after its request came in, as if computed
//! for it alone (a client never reads older data than a write it saw complete).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// What a waiting caller is told: its answer, or that it computes the next one.
enum Turn<V> {
    Done(V),
    Lead,
}

/// Callers waiting for the next computation, per key; a key is present while one runs.
pub struct Coalesced<K, V> {
    waiting: Mutex<HashMap<K, Vec<oneshot::Sender<Turn<V>>>>>,
}

impl<K, V> Default for Coalesced<K, V> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Coalesced<K, V> {
    /// `compute`'s answer for `key`, computed after this call began, shared with every
    /// caller that asked for `key` before that computation started.
    pub async fn get<F: Future<Output = V>>(&self, key: K, compute: impl FnOnce() -> F) -> V {
        let receiver = {
            let mut waiting = self.lock();
            match waiting.get_mut(&key) {
                Some(queue) => {
                    let (sender, receiver) = oneshot::channel();
                    queue.push(sender);
                    Some(receiver)
                }
                None => {
                    waiting.insert(key.clone(), Vec::new());
                    None
                }
            }
        };
        if let Some(receiver) = receiver {
            match receiver.await {
                Ok(Turn::Done(answer)) => return answer,
                // Leadership handed over; a dropped sender cannot happen (every path hands
                // its waiters on), but computing is the safe answer if it ever did.
                Ok(Turn::Lead) | Err(_) => {}
            }
        }
        let served = std::mem::take(self.lock().entry(key.clone()).or_default());
        let mut leading = Leading {
            owner: self,
            key,
            served,
            done: false,
        };
        let answer = compute().await;
        for waiter in std::mem::take(&mut leading.served) {
            let _ = waiter.send(Turn::Done(answer.clone()));
        }
        leading.done = true;
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Vec<oneshot::Sender<Turn<V>>>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the next computation to the first caller still waiting, or forgets the key.
    fn hand_over(&self, key: &K, mut unserved: Vec<oneshot::Sender<Turn<V>>>) {
        let mut waiting = self.lock();
        let queue = waiting.entry(key.clone()).or_default();
        unserved.append(queue);
        let mut candidates = unserved.into_iter();
        while let Some(next) = candidates.next() {
            if next.send(Turn::Lead).is_ok() {
                *queue = candidates.collect();
                return;
            }
        }
        waiting.remove(key);
    }
}

/// The computing caller's duty, kept even if its request is dropped mid-way (a client that
/// hung up): the callers it was serving and those waiting behind it get a new leader.
struct Leading<'a, K: Hash + Eq + Clone, V: Clone> {
    owner: &'a Coalesced<K, V>,
    key: K,
    served: Vec<oneshot::Sender<Turn<V>>>,
    done: bool,
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Leading<'_, K, V> {
    fn drop(&mut self) {
        let unserved = if self.done {
            Vec::new()
        } else {
            std::mem::take(&mut self.served)
        };
        self.owner.hand_over(&self.key, unserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_at_once_share_computations_that_start_after_they_asked() {
        let coalesced = Arc::new(Coalesced::<&str, usize>::default());
        let computations = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let (coalesced, computations) = (coalesced.clone(), computations.clone());
                tokio::spawn(async move {
                    // Computations started before this caller asked.
                    let before = computations.load(Ordering::SeqCst);
                    let started = coalesced
                        .get("list", || async {
                            let number = computations.fetch_add(1, Ordering::SeqCst) + 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            number
                        })
                        .await;
                    (before, started)
                })
            })
            .collect();
        for caller in callers {
            let (before, started) = caller.await.unwrap();
            assert!(
                started > before,
                "served by computation {started}, which began before the caller asked"
            );
        }
        let total = computations.load(Ordering::SeqCst);
        assert!((1..=3).contains(&total), "64 callers shared {total} computations");
        assert!(coalesced.lock().is_empty(), "nothing left waiting");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_that_hangs_up_hands_its_callers_to_another() {
        let coalesced = Arc::new(Coalesced::<&str, u32>::default());
        let leader = {
            let coalesced = coalesced.clone();
            tokio::spawn(async move { coalesced.get("list", std::future::pending).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let follower = {
            let coalesced = coalesced.clone();
            tokio::spawn(async move { coalesced.get("list", || async { 7 }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let answer = tokio::time::timeout(Duration::from_secs(5), follower).await;
        assert_eq!(answer.expect("the follower is not stranded").unwrap(), 7);
        assert!(coalesced.lock().is_empty());
    }
}
