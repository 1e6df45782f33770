//! Single-flight: concurrent identical cacheable misses send one request to the origin. The
//! first (the leader) fetches and stores; the others wait for it, then read what it stored.
//!
//! A leaf: calls nothing else in the crate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cache_core::CacheKey;
use tokio::sync::Notify;

/// How many recently finished flights are remembered (see [`Flights::finished_since`]).
const RECENT_LIMIT: usize = 4096;

/// Keys are digests already: a fast hash is enough (the default one cost more than the rest of
/// a flight's bookkeeping).
type ByKey<V> = HashMap<CacheKey, V, foldhash::fast::RandomState>;

/// The requests in flight, by key, and the keys whose flights finished recently. Shared
/// with each leader's guard, which may outlive the request's future (a body stored as the
/// caller reads it keeps its flight until then).
#[derive(Debug, Default)]
pub(crate) struct Flights(Arc<Table>);

#[derive(Debug, Default)]
struct Table {
    in_flight: Mutex<ByKey<Arc<Landing>>>,
    /// Key → the sequence number its last flight finished at.
    recent: Mutex<ByKey<u64>>,
    finished: AtomicU64,
}

/// How followers learn that their leader is done: a flag and the waiters to wake. Lighter
/// than a `watch` channel (whose eight waiter lists were allocated and walked on every miss,
/// followed or not).
#[derive(Debug, Default)]
pub(crate) struct Landing {
    done: AtomicBool,
    waiters: Notify,
}

/// This request's part in a flight.
pub(crate) enum Flight {
    /// Fetch; followers are released when the guard drops (stored, failed or cancelled).
    Leader(LeaderGuard),
    /// Wait for the leader, then look in the cache.
    Follower(Arc<Landing>),
}

pub(crate) struct LeaderGuard {
    flights: Arc<Table>,
    key: CacheKey,
    landing: Arc<Landing>,
}

impl std::fmt::Debug for LeaderGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderGuard")
            .field("key", &self.key)
            .finish()
    }
}

impl Drop for LeaderGuard {
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
        // Once out of the table no follower can join: the landing's other holders are all
        // the followers there will be, and with none, nobody is told.
        drop(self.flights.lock().remove(&self.key));
        self.landing.done.store(true, Ordering::Release);
        if Arc::strong_count(&self.landing) > 1 {
            self.landing.waiters.notify_waiters();
        }
    }
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, ByKey<Arc<Landing>>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Flights {
    /// A mark to take before reading the cache, for [`finished_since`](Self::finished_since).
    pub(crate) fn mark(&self) -> u64 {
        self.0.finished.load(Ordering::Acquire)
    }

    /// True when a flight for `key` finished after `mark` was taken: what it stored may not
    /// have been there when the cache was read.
    pub(crate) fn finished_since(&self, key: &CacheKey, mark: u64) -> bool {
        let recent = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.get(key).is_some_and(|finished| *finished > mark)
    }

    /// Leads the flight for `key`, or follows the one already under way.
    pub(crate) fn join(&self, key: CacheKey) -> Flight {
        let mut in_flight = self.0.lock();
        if let Some(landing) = in_flight.get(&key) {
            return Flight::Follower(Arc::clone(landing));
        }
        let landing = Arc::new(Landing::default());
        in_flight.insert(key, Arc::clone(&landing));
        Flight::Leader(LeaderGuard {
            flights: Arc::clone(&self.0),
            key,
            landing,
        })
    }
}

/// Waits up to `limit` for the leader; false when it took too long. A leader dropped
/// without finishing also releases its followers.
pub(crate) async fn wait_for_leader(landing: Arc<Landing>, limit: Duration) -> bool {
    let landed = async {
        // Made before the flag is read: a `Notified` counts every `notify_waiters` from its
        // creation on, so a landing between the read and the await is not missed.
        let woken = landing.waiters.notified();
        if !landing.done.load(Ordering::Acquire) {
            woken.await;
        }
    };
    tokio::time::timeout(limit, landed).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey::from_digest([7; 16])
    }

    fn join(flights: &Flights) -> Flight {
        flights.join(key())
    }

    /// Followers waiting when their leader lands are woken, and one that joined before the
    /// landing but waits only after it is released at once (the landing is not missed).
    #[tokio::test]
    async fn followers_are_released_whenever_they_wait() {
        let flights = Flights::default();
        let Flight::Leader(leader) = join(&flights) else {
            panic!("the first request leads");
        };
        let (Flight::Follower(waiting), Flight::Follower(late)) = (join(&flights), join(&flights))
        else {
            panic!("later requests follow");
        };
        let waiting = tokio::spawn(wait_for_leader(waiting, Duration::from_secs(30)));
        tokio::task::yield_now().await;
        let released_at = std::time::Instant::now();
        drop(leader);
        assert!(waiting.await.unwrap(), "the waiting follower is released");
        assert!(wait_for_leader(late, Duration::from_secs(30)).await);
        assert!(released_at.elapsed() < Duration::from_secs(10));
        // Landed and out of the table: the next request leads a new flight.
        assert!(matches!(join(&flights), Flight::Leader(_)));
    }

    /// A leader that never lands lets its followers go after their wait.
    #[tokio::test]
    async fn a_follower_gives_up_after_its_wait() {
        let flights = Flights::default();
        let _leader = join(&flights);
        let Flight::Follower(landing) = join(&flights) else {
            panic!("the second request follows");
        };
        assert!(!wait_for_leader(landing, Duration::from_millis(20)).await);
    }
}
