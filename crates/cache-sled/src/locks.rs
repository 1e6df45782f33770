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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError, Weak,
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

/// The start of the `totals` key [`same_database`] writes for a moment.
const SAME_DATABASE_MARK: &[u8] = b"locks_probe:";

/// The `totals` key under which a process's first open of the database writes an id of its
/// own, and which its last store removes when it goes (see [`DatabaseLocks::mark_open`]).
/// Found by an open, it says a process had the database open and never closed it (a crash,
/// a kill, an exit that dropped nothing): its writes under way may have left bodies no
/// record points to.
pub(crate) const OPEN_MARK: &[u8] = b"open_by";

/// The databases of this process with stores open, by the id each holds.
static DATABASES: Mutex<Vec<(u128, Weak<DatabaseLocks>)>> = Mutex::new(Vec::new());

/// The locks of one database, shared by every store on it in this process.
#[derive(Debug)]
pub(crate) struct DatabaseLocks {
    /// The database's `totals` tree: tells the database from a copy of it holding the same id
    /// (see [`DatabaseLocks::of`]).
    totals: sled::Tree,
    clearing: RwLock<()>,
    /// Held by every write (shared) and by a count of the live bytes (alone): a write landing
    /// during the count changed the total the count then replaced.
    counting: RwLock<()>,
    bounded_writes: Mutex<()>,
    /// The live bytes were counted from the records in this process (by an open, or by a
    /// bounded write's first eviction: see `SledStore::recount_live_bytes`).
    recounted: AtomicBool,
    /// A store with a bound was opened on this database in this process: from then on every
    /// write keeps the byte count and the creation index (see `SledStore::keeps_counts`).
    counts_kept: AtomicBool,
    /// The next body id to give out: past every body the database held at each open, and
    /// past every id given out since, so none is given out twice in this process (see
    /// `SledStore::free_body_id`).
    next_body_id: AtomicU64,
    /// The id this process wrote under [`OPEN_MARK`], once its first open settled.
    open_mark: OnceLock<u128>,
    /// A write failed midway: the mark stays (see [`DatabaseLocks::keep_open_mark`]).
    left_bodies: AtomicBool,
    /// Counts of the live bytes from the records (tests).
    #[cfg(test)]
    pub(crate) counts: AtomicU64,
    /// Tests: the next update of the live byte count fails, as one sled cannot write does.
    #[cfg(test)]
    pub(crate) fail_next_count: AtomicBool,
}

impl DatabaseLocks {
    fn new(totals: &sled::Tree) -> Self {
        Self {
            totals: totals.clone(),
            clearing: RwLock::default(),
            counting: RwLock::default(),
            bounded_writes: Mutex::default(),
            recounted: AtomicBool::default(),
            counts_kept: AtomicBool::default(),
            next_body_id: AtomicU64::default(),
            open_mark: OnceLock::new(),
            left_bodies: AtomicBool::default(),
            #[cfg(test)]
            counts: AtomicU64::default(),
            #[cfg(test)]
            fail_next_count: AtomicBool::default(),
        }
    }

    /// The locks of the database whose `totals` tree this is. The database is known by an id
    /// it keeps in `totals` (written on first use). A copy of a database (its files copied,
    /// or `Db::import`ed) holds its id too: opened beside the database, it is told apart by a
    /// mark written through one and looked for through the other, and gets an id and locks
    /// of its own.
    pub(crate) fn of(totals: &sled::Tree) -> Result<Arc<DatabaseLocks>, StoreError> {
        let mut databases = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
        databases.retain(|(_, locks)| locks.strong_count() > 0);
        let mut id = database_id(totals).map_err(StoreError::unavailable)?;
        let known = databases
            .iter()
            .find(|(known, _)| *known == id)
            .and_then(|(_, locks)| locks.upgrade());
        if let Some(locks) = known {
            if same_database(&locks.totals, totals).map_err(StoreError::unavailable)? {
                return Ok(locks);
            }
            id = fresh_id();
            totals
                .insert(DATABASE_ID, &id.to_le_bytes())
                .map_err(StoreError::unavailable)?;
        }
        let locks = Arc::new(DatabaseLocks::new(totals));
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
        !self.recounted.swap(true, Ordering::Relaxed)
    }

    /// The live bytes were just counted from the records (by an open): the first eviction
    /// trusts that count rather than counting again.
    pub(crate) fn counted_again(&self) {
        self.recounted.store(true, Ordering::Relaxed);
    }

    /// A body id none was given before in this process: the counter's, moved on. `None`
    /// once the counter is at `u64::MAX` (never given out).
    pub(crate) fn next_body_id(&self) -> Option<u64> {
        self.next_body_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| id.checked_add(1))
            .ok()
    }

    /// Body ids go on from `first_free` at least (never back): at each open, from past the
    /// bodies the database holds; in a write, from past bodies that appeared under ids not
    /// yet given out (imported into the open database).
    pub(crate) fn body_ids_from(&self, first_free: u64) {
        self.next_body_id.fetch_max(first_free, Ordering::Relaxed);
    }

    /// Every store on this database keeps the byte count and the creation index from now
    /// on. Called holding [`DatabaseLocks::counting`], so no write that skipped them is still
    /// running.
    pub(crate) fn keep_counts(&self) {
        self.counts_kept.store(true, Ordering::Release);
    }

    /// Whether [`DatabaseLocks::keep_counts`] was called. Read holding [`Writing`] (or
    /// [`DatabaseLocks::counting`]).
    pub(crate) fn counts_kept(&self) -> bool {
        self.counts_kept.load(Ordering::Acquire)
    }

    /// Marks the database open by this process, at its first open, before the open writes
    /// anything (holding [`DatabaseLocks::counting`]), and tells whether a process had left
    /// it open (its mark was there). Later opens in this process find nothing to do. The
    /// mark is this process's to remove only once [`DatabaseLocks::settled`] is told: a
    /// failed open leaves it for the next open to find (costing it a needless pass at
    /// worst).
    pub(crate) fn mark_open(&self) -> Result<OpenMark, sled::Error> {
        if self.open_mark.get().is_some() {
            return Ok(OpenMark {
                id: None,
                left_open: false,
            });
        }
        let left_open = self.totals.contains_key(OPEN_MARK)?;
        let id = fresh_id();
        self.totals.insert(OPEN_MARK, &id.to_le_bytes())?;
        Ok(OpenMark {
            id: Some(id),
            left_open,
        })
    }

    /// The open that wrote `mark` succeeded: the mark goes when these locks do (the last
    /// store on the database in this process), unless [`DatabaseLocks::keep_open_mark`].
    pub(crate) fn settled(&self, mark: OpenMark) {
        if let Some(id) = mark.id {
            let _ = self.open_mark.set(id);
        }
    }

    /// A write of this process failed midway and may have left a body no record points to:
    /// the database stays marked open after its last store goes, so the next process's first
    /// open goes over the records.
    pub(crate) fn keep_open_mark(&self) {
        self.left_bodies.store(true, Ordering::Relaxed);
    }

    /// Holds the database's one bounded write.
    pub(crate) fn bounded_write(&self) -> MutexGuard<'_, ()> {
        self.bounded_writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for DatabaseLocks {
    /// The last store on the database in this process went: its mark goes, unless an open
    /// made since (new locks: these were already going) marked it as its own. sled makes the
    /// removal durable with its next flush (when the database closes, at the latest); one
    /// lost with a crash before that costs the next open a needless sweep, nothing else.
    fn drop(&mut self) {
        let Some(id) = self.open_mark.get() else {
            return;
        };
        if self.left_bodies.load(Ordering::Relaxed) {
            return;
        }
        let ours = Some(&id.to_le_bytes()[..]);
        if let Err(error) = self
            .totals
            .compare_and_swap(OPEN_MARK, ours, None as Option<&[u8]>)
        {
            tracing::debug!(%error, "the sled cache's open mark stays: the next open sweeps");
        }
    }
}

/// What [`DatabaseLocks::mark_open`] did: the id it wrote (none at a later open in the
/// process), and whether a process had left the database open.
#[derive(Debug)]
pub(crate) struct OpenMark {
    id: Option<u128>,
    pub(crate) left_open: bool,
}

/// The id `totals` holds, written first if it holds none (two stores opening a new database
/// at once agree: the first write wins).
fn database_id(totals: &sled::Tree) -> Result<u128, sled::Error> {
    let decode = |bytes: &[u8]| <[u8; 16]>::try_from(bytes).ok().map(u128::from_le_bytes);
    if let Some(id) = totals.get(DATABASE_ID)?.as_deref().and_then(decode) {
        return Ok(id);
    }
    let fresh = fresh_id();
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

/// An id unique among the databases of this process (all that is compared), and unlike
/// those of other processes' databases in all likelihood.
fn fresh_id() -> u128 {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = MADE.fetch_add(1, Ordering::Relaxed);
    nanos ^ (u128::from(std::process::id()) << 96) ^ u128::from(count)
}

/// Whether `known` and `other` are the `totals` trees of one open database: a mark written
/// through `other` is found through `known`. The mark goes again either way.
fn same_database(known: &sled::Tree, other: &sled::Tree) -> Result<bool, sled::Error> {
    let mark = [SAME_DATABASE_MARK, &fresh_id().to_le_bytes()[..]].concat();
    other.insert(&mark, &[] as &[u8])?;
    let same = known.contains_key(&mark);
    other.remove(&mark)?;
    same
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

    /// A copy of a database's files holds its id: opened beside the database, it is told
    /// apart and gets an id and locks of its own (a `clear` of one never holds off the
    /// other's writes, a count of one is not the other's), and keeps them when opened again.
    #[test]
    fn a_copy_opened_beside_its_database_gets_locks_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (original, copy) = (dir.path().join("original"), dir.path().join("copy"));
        let totals = |db: &sled::Db| db.open_tree("totals").unwrap();
        {
            let db = sled::open(&original).unwrap();
            DatabaseLocks::of(&totals(&db)).unwrap();
            db.flush().unwrap();
        }
        test_support::wait_for_sled_lock(&original);
        copy_dir(&original, &copy);
        let (db, copied) = (sled::open(&original).unwrap(), sled::open(&copy).unwrap());
        let a = DatabaseLocks::of(&totals(&db)).unwrap();
        let b = DatabaseLocks::of(&totals(&copied)).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        let _clearing = a.clearing();
        assert!(b.writing().is_ok());
        assert!(Arc::ptr_eq(
            &b,
            &DatabaseLocks::of(&totals(&copied)).unwrap()
        ));
        assert!(Arc::ptr_eq(&a, &DatabaseLocks::of(&totals(&db)).unwrap()));
        let marks = |db: &sled::Db| totals(db).scan_prefix(SAME_DATABASE_MARK).count();
        assert_eq!((marks(&db), marks(&copied)), (0, 0), "the marks go");
    }

    /// A process's mark goes with its locks only once its open settled, and not after a
    /// body's removal failed: a failed open, or a body left behind, leaves it for the next
    /// process's open to find.
    #[test]
    fn the_open_mark_goes_with_the_locks_only_after_a_settled_open_and_no_body_left() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let totals = db.open_tree("totals").unwrap();
        let marked = || totals.contains_key(OPEN_MARK).unwrap();
        let locks = DatabaseLocks::of(&totals).unwrap();
        assert!(!locks.mark_open().unwrap().left_open);
        drop(locks);
        assert!(marked(), "a failed open leaves its mark");
        let locks = DatabaseLocks::of(&totals).unwrap();
        let mark = locks.mark_open().unwrap();
        assert!(mark.left_open);
        locks.settled(mark);
        assert!(
            !locks.mark_open().unwrap().left_open,
            "later opens: nothing to do"
        );
        drop(locks);
        assert!(!marked());
        let locks = DatabaseLocks::of(&totals).unwrap();
        let mark = locks.mark_open().unwrap();
        locks.settled(mark);
        locks.keep_open_mark();
        drop(locks);
        assert!(marked(), "a body was left behind");
    }

    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for item in std::fs::read_dir(from).unwrap() {
            let item = item.unwrap();
            let target = to.join(item.file_name());
            if item.file_type().unwrap().is_dir() {
                copy_dir(&item.path(), &target);
            } else {
                std::fs::copy(item.path(), target).unwrap();
            }
        }
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
