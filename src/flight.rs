//! Single-flight: concurrent identical cacheable misses send one request to the origin. The
//! first (the leader) fetches and stores; the others wait for it, then read what it stored.
//!
//! A leaf: calls nothing else in the crate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cache_core::CacheKey;
use tokio::sync::watch;

/// How many recently finished flights are remembered (see [`Flights::finished_since`]).
const RECENT_LIMIT: usize = 4096;

/// Keys are digests already: a fast hash is enough (the default one cost more than the rest of
/// a flight's bookkeeping).
type ByKey<V> = HashMap<CacheKey, V, foldhash::fast::RandomState>;

/// The requests in flight, by key, and the keys whose flights finished recently.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    in_flight: Mutex<ByKey<watch::Receiver<bool>>>,
    /// Key → the sequence number its last flight finished at.
    recent: Mutex<ByKey<u64>>,
    finished: AtomicU64,
}

/// This request's part in a flight.
pub(crate) enum Flight<'a> {
    /// Fetch; followers are released when the guard drops (done, failed or cancelled).
    Leader(LeaderGuard<'a>),
    /// Wait for the leader, then look in the cache.
    Follower(watch::Receiver<bool>),
}

pub(crate) struct LeaderGuard<'a> {
    flights: &'a Flights,
    key: CacheKey,
    done: watch::Sender<bool>,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let sequence = self.flights.finished.fetch_add(1, Ordering::AcqRel) + 1;
        {
            let mut recent = self
                .flights
                .recent
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if recent.len() >= RECENT_LIMIT {
                // Forgetting only costs a possible extra origin request in a narrow race.
                recent.clear();
            }
            recent.insert(self.key, sequence);
        }
        // Once out of the table no follower can join; with none holding a receiver, nobody
        // is told (waking nobody still cost a walk over the channel's waiter lists).
        drop(self.flights.lock().remove(&self.key));
        if self.done.receiver_count() > 0 {
            self.done.send_replace(true);
        }
    }
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, ByKey<watch::Receiver<bool>>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A mark to take before reading the cache, for [`finished_since`](Self::finished_since).
    pub(crate) fn mark(&self) -> u64 {
        self.finished.load(Ordering::Acquire)
    }

    /// True when a flight for `key` finished after `mark` was taken: what it stored may not
    /// have been there when the cache was read.
    pub(crate) fn finished_since(&self, key: &CacheKey, mark: u64) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.get(key).is_some_and(|finished| *finished > mark)
    }

    /// Leads the flight for `key`, or follows the one already under way.
    pub(crate) fn join(&self, key: CacheKey) -> Flight<'_> {
        let mut in_flight = self.lock();
        if let Some(done) = in_flight.get(&key) {
            return Flight::Follower(done.clone());
        }
        let (done, receiver) = watch::channel(false);
        in_flight.insert(key, receiver);
        Flight::Leader(LeaderGuard {
            flights: self,
            key,
            done,
        })
    }
}

/// Waits up to `limit` for the leader; false when it took too long.
pub(crate) async fn wait_for_leader(mut done: watch::Receiver<bool>, limit: Duration) -> bool {
    // A leader dropped without finishing also releases its followers (the channel closes).
    let finished = tokio::time::timeout(limit, done.wait_for(|finished| *finished)).await;
    finished.is_ok()
}
