//! The locks that stand in for sled transactions.
//!
//! - One writer per cache key at a time: a write reads the key's old record, writes index
//!   records, then the record, then drops the old index records; two writers of one key
//!   interleaving those steps could leave an index record for a record that no longer exists
//!   and miss removing another. Holding the key's stripe for the few microseconds of the
//!   steps makes them one unit; writers of other keys mostly hold other stripes.
//! - `clear` alone: it empties the trees one by one, and a write landing between two of them
//!   would leave a record without its index records.
//! - One bounded write at a time (see `SledStore::put`).
//!
//! sled lets one process open a database, so every writer of a database is in this process,
//! also through several [`SledStore`](crate::SledStore)s made with `with_db` on one `Db` (the
//! way to have a second instance). The last two locks are therefore per database, shared by
//! every store on it ([`DatabaseLocks::of`]); key stripes are shared by the whole process
//! (two databases' keys sharing a stripe only wait a little).

use std::sync::{
    Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError, Weak,
};
use std::time::{SystemTime, UNIX_EPOCH};

use cache_core::{CacheKey, StoreError};

/// Enough stripes that two keys rarely share one among a few dozen concurrent writers.
const STRIPES: usize = 256;

static KEY_STRIPES: [Mutex<()>; STRIPES] = [const { Mutex::new(()) }; STRIPES];

// None of these is held across an `.await`. A holder that panicked left nothing half-done
// that the next one cannot finish (stale index records are dropped by their readers), so
// poisoning is ignored.

/// Permission to write (see [`DatabaseLocks::writing`]), until dropped.
pub(crate) struct Writing<'a> {
    _clearing: RwLockReadGuard<'a, ()>,
    _counting: RwLockReadGuard<'a, ()>,
}

/// Holds `key`'s stripe until dropped.
pub(crate) fn key(key: &CacheKey) -> MutexGuard<'static, ()> {
    KEY_STRIPES[stripe(key)]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The `totals` key naming a database for [`DatabaseLocks::of`].
const DATABASE_ID: &[u8] = b"locks_id";

/// The databases of this process with stores open, by the id each holds.
static DATABASES: Mutex<Vec<(u128, Weak<DatabaseLocks>)>> = Mutex::new(Vec::new());

/// The locks of one database, shared by every store on it in this process.
#[derive(Debug, Default)]
pub(crate) struct DatabaseLocks {
    clearing: RwLock<()>,
    /// Held by every write (shared) and by a count of the live bytes (alone): a write landing
    /// during the count changed the total the count then replaced.
    counting: RwLock<()>,
    bounded_writes: Mutex<()>,
    /// A bounded write of this process has counted the live bytes again (see
    /// `SledStore::recount_live_bytes`).
    recounted: std::sync::atomic::AtomicBool,
    /// A store with a bound was opened on this database in this process: from then on every
    /// write keeps the byte count and the creation index (see `SledStore::keeps_counts`).
    counts_kept: std::sync::atomic::AtomicBool,
    /// The next body id to give out; `None` until the first is asked for in this process
    /// (see `SledStore::free_body_id`).
    next_body_id: Mutex<Option<u64>>,
    /// Counts of the live bytes from the records (tests).
    #[cfg(test)]
    pub(crate) counts: std::sync::atomic::AtomicU64,
}

impl DatabaseLocks {
    /// The locks of the database whose `totals` tree this is. The database is known by an id
    /// it keeps in `totals` (written on first use): a copy of a database opened beside its
    /// original shares their locks, which only makes them wait for each other.
    pub(crate) fn of(totals: &sled::Tree) -> Result<Arc<DatabaseLocks>, StoreError> {
        let id = database_id(totals).map_err(StoreError::unavailable)?;
        let mut databases = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
        databases.retain(|(_, locks)| locks.strong_count() > 0);
        if let Some(locks) = databases
            .iter()
            .find(|(known, _)| *known == id)
            .and_then(|(_, locks)| locks.upgrade())
        {
            return Ok(locks);
        }
        let locks = Arc::new(DatabaseLocks::default());
        databases.push((id, Arc::downgrade(&locks)));
        Ok(locks)
    }

    /// Permission to write, refused at once (never blocking the executor) while a `clear`
    /// runs; it waits while the live bytes are counted again (see [`DatabaseLocks::counting`]:
    /// only at open and at the first eviction of a bounded store, whose writes run on the
    /// blocking pool).
    pub(crate) fn writing(&self) -> Result<Writing<'_>, StoreError> {
        let clearing = match self.clearing.try_read() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::backend(std::io::Error::other(
                    "the sled store is being cleared",
                )));
            }
        };
        let counting = self
            .counting
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(Writing {
            _clearing: clearing,
            _counting: counting,
        })
    }

    /// Waits until no write runs, and keeps new ones (and counts of the live bytes) out until
    /// dropped.
    pub(crate) fn clearing(&self) -> (RwLockWriteGuard<'_, ()>, RwLockWriteGuard<'_, ()>) {
        let clearing = self
            .clearing
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (clearing, self.counting())
    }

    /// Waits until no write runs, and keeps new ones waiting until dropped: for counting the
    /// live bytes again, which replaces the total every write adds to.
    pub(crate) fn counting(&self) -> RwLockWriteGuard<'_, ()> {
        self.counting
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True the first time it is asked in this process, for the database's first eviction:
    /// the live count it trusts may have drifted in a crash since it was last counted
    /// (unless [`DatabaseLocks::counted_again`] said it was counted since the open).
    pub(crate) fn first_eviction(&self) -> bool {
        !self
            .recounted
            .swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    /// The live bytes were just counted from the records (by an open): the first eviction
    /// trusts that count rather than counting again.
    pub(crate) fn counted_again(&self) {
        self.recounted
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A body id, the one after the last given out in this process; the first is
    /// `first_free()`. `None` once ids run out (past `u64::MAX`).
    pub(crate) fn next_body_id(
        &self,
        first_free: impl FnOnce() -> Result<u64, StoreError>,
    ) -> Result<Option<u64>, StoreError> {
        let mut next = self
            .next_body_id
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = match *next {
            Some(id) => id,
            None => first_free()?,
        };
        *next = Some(id.saturating_add(1));
        Ok((id < u64::MAX).then_some(id))
    }

    /// Body ids go on from `first_free` at least: ids below it are taken by bodies this
    /// process did not give out (a database imported, or two databases sharing these locks).
    pub(crate) fn body_ids_from(&self, first_free: u64) {
        let mut next = self
            .next_body_id
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *next = Some(next.map_or(first_free, |next| next.max(first_free)));
    }

    /// Every store on this database keeps the byte count and the creation index from now
    /// on. Called holding [`DatabaseLocks::counting`], so no write that skipped them is still
    /// running.
    pub(crate) fn keep_counts(&self) {
        self.counts_kept
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether [`DatabaseLocks::keep_counts`] was called. Read holding [`Writing`] (or
    /// [`DatabaseLocks::counting`]).
    pub(crate) fn counts_kept(&self) -> bool {
        self.counts_kept.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Holds the database's one bounded write.
    pub(crate) fn bounded_write(&self) -> MutexGuard<'_, ()> {
        self.bounded_writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The id `totals` holds, written first if it holds none (two stores opening a new database
/// at once agree: the first write wins).
fn database_id(totals: &sled::Tree) -> Result<u128, sled::Error> {
    static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let decode = |bytes: &[u8]| <[u8; 16]>::try_from(bytes).ok().map(u128::from_le_bytes);
    if let Some(id) = totals.get(DATABASE_ID)?.as_deref().and_then(decode) {
        return Ok(id);
    }
    // Unique among the databases of this process, which is all that is compared.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let fresh = nanos ^ (u128::from(std::process::id()) << 96) ^ u128::from(count);
    let written = totals.compare_and_swap(
        DATABASE_ID,
        None as Option<&[u8]>,
        Some(&fresh.to_le_bytes()[..]),
    )?;
    match written {
        Ok(()) => Ok(fresh),
        // Another store wrote one first (or a bad one is there: replaced).
        Err(current) => match current.current.as_deref().and_then(decode) {
            Some(id) => Ok(id),
            None => {
                totals.insert(DATABASE_ID, &fresh.to_le_bytes())?;
                Ok(fresh)
            }
        },
    }
}

/// The stripe of `key`: its first two hex digits (keys are digests, so uniformly spread).
fn stripe(key: &CacheKey) -> usize {
    let hex = key.as_str().as_bytes();
    let digit = |i: usize| {
        let byte = hex.get(i).copied().unwrap_or_default();
        (byte as char).to_digit(16).unwrap_or_default() as usize
    };
    (digit(0) << 4 | digit(1)) % STRIPES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_on_one_database_share_its_locks_and_other_databases_do_not() {
        let open = || sled::Config::new().temporary(true).open().unwrap();
        let (one, other) = (open(), open());
        let a = DatabaseLocks::of(&one.open_tree("totals").unwrap()).unwrap();
        let b = DatabaseLocks::of(&one.open_tree("totals").unwrap()).unwrap();
        let c = DatabaseLocks::of(&other.open_tree("totals").unwrap()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        let _clearing = a.clearing();
        assert!(b.writing().is_err());
        assert!(c.writing().is_ok());
        // A bad id is replaced, not trusted.
        let third = open();
        let totals = third.open_tree("totals").unwrap();
        totals.insert(DATABASE_ID, b"short").unwrap();
        let d = DatabaseLocks::of(&totals).unwrap();
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(totals.get(DATABASE_ID).unwrap().unwrap().len(), 16);
    }

    #[test]
    fn every_stripe_is_reachable_and_keys_spread() {
        let mut used = [0u32; STRIPES];
        for i in 0..=u8::MAX {
            let mut digest = [0u8; 16];
            digest[0] = i;
            used[stripe(&CacheKey::from_digest(digest))] += 1;
        }
        assert!(used.iter().all(|&n| n == 1), "{used:?}");
    }
}
