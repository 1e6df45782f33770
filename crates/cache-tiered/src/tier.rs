//! The memory tier and what keeps it coherent: a guard that stops a fill racing with an
//! invalidation from leaving a stale copy, the flag that says whether memory may answer
//! first, and the per-entry memory deadlines (of the memory TTL, and of fail-open copies).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoredEntry};
use futures_util::FutureExt;

/// Independent invalidation counters: a write of one key spoils only the fills of keys on
/// its stripe, not every fill in flight.
const STRIPES: usize = 64;

/// The value of a key's invalidation counters when a fill began: if it changed by the time
/// the copy is in memory, an invalidation may have come in between and the copy is dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Guard(u64);

/// The memory in front of the backing store, and its coherence bookkeeping.
pub(crate) struct Tier {
    memory: MemoryStore,
    /// Bumped for each key invalidated (written, deleted or changed elsewhere), on the key's
    /// stripe.
    stripes: [AtomicU64; STRIPES],
    /// Held by a fill of a key on the stripe while it puts its copy and that copy's deadline:
    /// two fills racing each keep their own deadline with their own copy.
    fills: [std::sync::Mutex<()>; STRIPES],
    /// Bumped as each flush begins: fills that began before no longer stick.
    flushes: AtomicU64,
    /// Bumped once each flush has emptied memory: what the stats report, so that whoever
    /// sees a flush counted sees memory emptied by it.
    flushed: AtomicU64,
    /// Whether memory answers before the backing store: always without an invalidation
    /// source; with one, only while its subscription is live.
    live: AtomicBool,
    /// When each copy stops being served from memory.
    deadlines: Deadlines,
    invalidations: AtomicU64,
}

/// How long copies are served from memory, and until when each one is.
struct Deadlines {
    /// The memory TTL, if any: without one, copies are served until dropped, except
    /// fail-open copies.
    ttl: Option<Duration>,
    /// Each copy's deadline (`None`: none). A copy with no entry here is not served, so a
    /// deadline evicted from this bounded map only costs a refill.
    until: quick_cache::sync::Cache<CacheKey, Option<Instant>>,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier")
            .field("memory", &self.memory)
            .field("live", &self.is_live())
            .field("memory_ttl", &self.deadlines.ttl)
            .finish()
    }
}

impl Tier {
    pub(crate) fn new(memory: MemoryStore, memory_ttl: Option<Duration>, live: bool) -> Self {
        let deadlines = Deadlines {
            ttl: memory_ttl,
            // At least as many as memory holds.
            until: quick_cache::sync::Cache::new(memory.capacity().max(16)),
        };
        Self {
            memory,
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            fills: std::array::from_fn(|_| std::sync::Mutex::new(())),
            flushes: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            live: AtomicBool::new(live),
            deadlines,
            invalidations: AtomicU64::new(0),
        }
    }

    pub(crate) fn memory(&self) -> &MemoryStore {
        &self.memory
    }

    pub(crate) fn memory_ttl(&self) -> Option<Duration> {
        self.deadlines.ttl
    }

    /// Whether reads may be answered from memory without asking the backing store.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Lets memory answer before the backing store again.
    pub(crate) fn start_answering_first(&self) {
        self.live.store(true, Ordering::Release);
    }

    /// Stops memory answering before the backing store; true if it did until now.
    pub(crate) fn stop_answering_first(&self) -> bool {
        self.live.swap(false, Ordering::AcqRel)
    }

    /// Whether memory may answer with this copy now: only before its expiry (the backing
    /// store keeps every entry at least that long, so memory never outlives it) and before
    /// the copy's deadline, if it has one.
    pub(crate) fn serves(&self, meta: &EntryMeta) -> bool {
        if meta.is_expired(SystemTime::now()) {
            return false;
        }
        match self.deadlines.until.get(&meta.key) {
            Some(Some(deadline)) => Instant::now() < deadline,
            Some(None) => true,
            None => false,
        }
    }

    /// The key's counters now, taken before reading or writing the backing store.
    pub(crate) fn guard(&self, key: &CacheKey) -> Guard {
        let stripe = self.stripes[stripe_of(key)].load(Ordering::SeqCst);
        Guard(stripe.wrapping_add(self.flushes.load(Ordering::SeqCst)))
    }

    /// Marks the key as changed: fills that began before no longer stick.
    fn bump(&self, key: &CacheKey) {
        self.stripes[stripe_of(key)].fetch_add(1, Ordering::SeqCst);
    }

    /// Puts a copy of what the backing store holds into memory, served until the memory
    /// TTL if any, unless the key changed since `guard` was taken.
    pub(crate) fn fill(&self, entry: StoredEntry, guard: Guard) {
        self.fill_for(entry, guard, self.deadlines.ttl);
    }

    /// Puts a copy the backing store may not hold (its write failed) into memory, served for
    /// at most `lifetime`: no invalidation will come for a key the backing store never
    /// stored, so without a deadline it would be served here, and nowhere else, until it
    /// expires.
    pub(crate) fn fill_briefly(&self, entry: StoredEntry, guard: Guard, lifetime: Duration) {
        let lifetime = self.deadlines.ttl.map_or(lifetime, |ttl| ttl.min(lifetime));
        self.fill_for(entry, guard, Some(lifetime));
    }

    /// The copy goes in first and the guard is checked after: an invalidation either finds
    /// the copy and drops it, or has changed the counters before the check, which drops it.
    fn fill_for(&self, entry: StoredEntry, guard: Guard, lifetime: Option<Duration>) {
        let key = entry.meta.key;
        if lifetime.is_some_and(|l| l.is_zero()) {
            return;
        }
        let _filling = self.fills[stripe_of(&key)]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A copy memory refuses (too large) is not kept, and neither is the older copy it
        // replaces: memory leaves that one in place when it refuses. Its deadline is set
        // only once the copy is in, so a refused fill never extends the older copy's life.
        if !matches!(self.memory.put(entry).now_or_never(), Some(Ok(()))) {
            self.remove(&key);
            return;
        }
        // A lifetime past what an `Instant` reaches (`memory_ttl(Duration::MAX)`, meaning
        // for good) is no deadline, where adding it panicked.
        let deadline = lifetime.and_then(|l| Instant::now().checked_add(l));
        self.deadlines.until.insert(key, deadline);
        if self.guard(&key) != guard {
            self.remove(&key);
        }
    }

    /// The memory copy, if any, without judging it.
    pub(crate) fn copy(&self, key: &CacheKey) -> Option<StoredEntry> {
        self.memory.get(key).now_or_never().and_then(Result::ok)?
    }

    /// Drops the memory copy of `key` (changed elsewhere, or here).
    pub(crate) fn invalidate(&self, key: &CacheKey) {
        self.bump(key);
        self.remove(key);
    }

    /// An invalidation from another process (or from our own write, echoed by the server).
    /// Counted once the copy is gone: whoever sees the count has seen the drop.
    pub(crate) fn invalidated(&self, key: &CacheKey) {
        self.invalidate(key);
        self.invalidations.fetch_add(1, Ordering::Release);
    }

    fn remove(&self, key: &CacheKey) {
        let _ = self.memory.delete(key).now_or_never();
        self.deadlines.until.remove(key);
    }

    /// Drops every memory copy: fills in flight no longer stick.
    pub(crate) fn flush(&self) {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        let _ = self.memory.clear().now_or_never();
        self.deadlines.until.clear();
        self.flushed.fetch_add(1, Ordering::Release);
    }

    /// Keys dropped on notice from the invalidation source so far.
    pub(crate) fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Acquire)
    }

    /// Flushes so far (clears, lost and regained subscriptions).
    pub(crate) fn flushes(&self) -> u64 {
        self.flushed.load(Ordering::Acquire)
    }
}

/// The stripe of a key: its first two hex digits (keys are digests, spread evenly).
fn stripe_of(key: &CacheKey) -> usize {
    let hex = key.as_str().as_bytes();
    let (a, b) = (
        usize::from(hex.first().copied().unwrap_or(0)),
        usize::from(hex.get(1).copied().unwrap_or(0)),
    );
    (a * 31 + b) % STRIPES
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(n: u64, value: &'static str) -> StoredEntry {
        sized(n, Bytes::from_static(value.as_bytes()))
    }

    fn sized(n: u64, value: Bytes) -> StoredEntry {
        let key = CacheKey::from_digest(u128::from(n).to_le_bytes());
        let meta = EntryMeta::new(
            key,
            format!("https://example.com/{n}"),
            SystemTime::now(),
            None,
        );
        StoredEntry::new(meta, value)
    }

    /// Two fills of one key racing (a read's copy of what the backing store holds, a failed
    /// write's brief copy): the copy memory keeps has its own fill's deadline. The brief copy
    /// was left with the read's (none) when the read's deadline landed last, and then was
    /// served for good although the backing store never held it.
    #[test]
    fn racing_fills_keep_each_copy_with_its_own_deadline() {
        let tier = Tier::new(MemoryStore::new(), None, true);
        let read = entry(1, "read");
        let key = read.meta.key;
        let failed_write = entry(1, "failed write");
        for round in 0..5_000 {
            let guard = tier.guard(&key);
            std::thread::scope(|scope| {
                scope.spawn(|| tier.fill(read.clone(), guard));
                scope.spawn(|| {
                    tier.fill_briefly(failed_write.clone(), guard, Duration::from_secs(60))
                });
            });
            let copy = tier.copy(&key).expect("a copy");
            let deadline = tier.deadlines.until.get(&key).expect("a deadline entry");
            assert_eq!(
                copy.value == failed_write.value,
                deadline.is_some(),
                "round {round}: {:?} with deadline {deadline:?}",
                copy.value
            );
        }
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_does_not_stick() {
        let tier = Tier::new(MemoryStore::new(), None, true);
        let old = entry(1, "old");
        let key = old.meta.key;
        let guard = tier.guard(&key);
        // Another process wrote the key while we were reading the old value.
        tier.invalidated(&key);
        tier.fill(old.clone(), guard);
        assert_eq!(tier.copy(&key), None, "stale copy dropped");
        // A fill with a fresh guard sticks.
        tier.fill(old.clone(), tier.guard(&key));
        assert_eq!(tier.copy(&key), Some(old));
        assert_eq!(tier.invalidations(), 1);
    }

    /// Fills a copy, then runs `act` on another thread while this one waits until `count`
    /// has grown, `rounds` times: the copy must be gone whenever the count shows it.
    fn assert_counted_once_done(
        rounds: u64,
        act: impl Fn(&Tier, &CacheKey) + Sync,
        count: impl Fn(&Tier) -> u64,
    ) {
        let tier = Tier::new(MemoryStore::new(), None, true);
        let e = entry(1, "a");
        let key = e.meta.key;
        for round in 0..rounds {
            tier.fill(e.clone(), tier.guard(&key));
            std::thread::scope(|scope| {
                scope.spawn(|| act(&tier, &key));
                while count(&tier) <= round {
                    std::hint::spin_loop();
                }
                assert_eq!(tier.copy(&key), None, "round {round}: counted, still held");
            });
        }
    }

    /// The count of invalidations is what tells a watcher (the two-process test, a user's
    /// metrics) that a notice was acted on: once it shows one, the copy is gone. It was
    /// counted before the drop, and a watcher could still find the copy.
    #[test]
    fn a_counted_invalidation_has_dropped_its_copy() {
        assert_counted_once_done(20_000, Tier::invalidated, Tier::invalidations);
    }

    /// As with invalidations: once a flush is counted, memory holds nothing it held before.
    /// Fewer rounds: each flush empties every shard.
    #[test]
    fn a_counted_flush_has_emptied_memory() {
        assert_counted_once_done(1_000, |tier, _| tier.flush(), Tier::flushes);
    }

    #[test]
    fn a_flush_spoils_every_fill_in_flight() {
        let tier = Tier::new(MemoryStore::new(), None, true);
        let a = entry(1, "a");
        let guard = tier.guard(&a.meta.key);
        tier.flush();
        tier.fill(a.clone(), guard);
        assert_eq!(tier.copy(&a.meta.key), None);
    }

    #[test]
    fn copies_are_served_only_before_expiry_and_deadline() {
        let tier = Tier::new(MemoryStore::new(), None, true);
        let mut e = entry(1, "a");
        assert!(!tier.serves(&e.meta), "never filled");
        tier.fill(e.clone(), tier.guard(&e.meta.key));
        assert!(tier.serves(&e.meta), "no memory TTL: no deadline");
        e.meta.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
        assert!(!tier.serves(&e.meta), "expired: the backing store decides");
        let with_ttl = Tier::new(MemoryStore::new(), Some(Duration::from_secs(60)), true);
        let e = entry(2, "b");
        assert!(!with_ttl.serves(&e.meta), "never filled: no deadline");
        with_ttl.fill(e.clone(), with_ttl.guard(&e.meta.key));
        assert!(with_ttl.serves(&e.meta));
        let zero = Tier::new(MemoryStore::new(), Some(Duration::ZERO), true);
        zero.fill(e.clone(), zero.guard(&e.meta.key));
        assert_eq!(zero.copy(&e.meta.key), None, "a zero TTL keeps nothing");
    }

    #[test]
    fn a_memory_ttl_of_duration_max_keeps_copies_for_good() {
        let tier = Tier::new(MemoryStore::new(), Some(Duration::MAX), true);
        let e = entry(1, "a");
        tier.fill(e.clone(), tier.guard(&e.meta.key));
        assert!(tier.serves(&e.meta));
        let e = entry(2, "b");
        tier.fill_briefly(e.clone(), tier.guard(&e.meta.key), Duration::MAX);
        assert_eq!(tier.copy(&e.meta.key), Some(e));
    }

    /// The backing store's value grew too large for memory: the smaller copy it replaces
    /// is dropped, not kept (nor, with a memory TTL, given a new deadline).
    #[test]
    fn a_copy_too_large_for_memory_drops_the_older_copy() {
        for ttl in [None, Some(Duration::from_secs(3600))] {
            let tier = Tier::new(MemoryStore::bounded(100, 64 << 10), ttl, true);
            let small = entry(1, "v1");
            let key = small.meta.key;
            tier.fill(small.clone(), tier.guard(&key));
            assert_eq!(tier.copy(&key), Some(small.clone()), "{ttl:?}");
            assert!(tier.serves(&small.meta), "{ttl:?}");
            let large = sized(1, Bytes::from(vec![b'x'; 1 << 20]));
            tier.fill(large, tier.guard(&key));
            assert_eq!(tier.copy(&key), None, "{ttl:?}: v1 must not outlive v2");
            if ttl.is_some() {
                assert!(!tier.serves(&small.meta), "no deadline left for v1");
            }
        }
    }
}
