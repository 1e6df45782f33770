//! Deferred commits: a write on the calling task joins a transaction the writer connection
//! keeps open for up to the store's commit delay, and the writes made within it share one
//! commit.
//!
//! A commit in WAL mode appends every page the transaction changed to the log. A cache row
//! changes four B-trees (the table and its key, URL group and expiry indexes), the last three
//! at pages far apart, and committing each row alone wrote those pages again for every row,
//! with the commit's locking and checksums: most of a miss's time in the store. Rows
//! committed together share the pages they both touch and the commit's fixed work.
//!
//! What a deferral changes, and what keeps the store's promises:
//! - The writing store sees its writes at once: while a batch is open, a read of a key it may
//!   hold runs on the writer connection, inside the batch (or, the writer busy, after
//!   committing it), and every other use of the writer or of a reader connection commits the
//!   batch first, so deletes, listings and conditional writes meet every write made before
//!   them, in order. Reads of other keys go on in the quick readers' snapshots, which lack
//!   only the batch's writes: funnelling every read to the writer while a batch was open cost
//!   64 tasks mixing hits with one miss in ten about a tenth of their requests per second.
//! - Another store or process sees them once the batch commits: within the delay.
//! - A crash (or a process ended without dropping its stores) loses the writes of the open
//!   batch, as a power loss with `synchronous = NORMAL` loses the last commits. Dropping the
//!   last clone of the store commits it.
//! - SQLite may roll a whole transaction back when a statement in it fails (a full disk or
//!   file, an I/O error), and a commit may fail: the batch keeps its writes, and writes them
//!   again one by one, so a write reported stored is lost only when it fails alone too
//!   (said in a warning).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cache_core::{CacheKey, StoredEntry};
use rusqlite::Connection;

/// How long a write may wait for its commit, by default (see
/// [`SqliteStoreBuilder::commit_delay`](crate::SqliteStoreBuilder::commit_delay)).
pub const DEFAULT_COMMIT_DELAY: Duration = Duration::from_millis(1);

/// A batch commits at once when it holds this many writes...
const MAX_WRITES: usize = 64;

/// ...or this many bytes of values (its pages wait in SQLite's page cache until then).
const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Inserts one entry on a connection, giving the id of the row written.
pub(crate) type Insert = fn(&Connection, &StoredEntry) -> Result<i64, rusqlite::Error>;

/// The batch the writer connection holds open, if any. Changed only under the writer's lock;
/// [`OpenBatch::is_open`] is read without it, by reads choosing a connection.
#[derive(Debug, Default)]
pub(crate) struct OpenBatch {
    open: AtomicBool,
    /// A task to commit the batch when its delay is up is on its way.
    timer_armed: AtomicBool,
    /// The batch's writes (their values shared, not copied), to write again should SQLite
    /// roll the batch back. Locked only under the writer's lock: never contended.
    writes: Mutex<Writes>,
    /// The keys the batch holds, for reads on other connections to tell.
    keys: KeyBits,
}

/// A set of keys that may say yes for a key not in it (a bit per key's hash, 4,096 bits for
/// at most [`MAX_WRITES`] keys: one in 64 or fewer), never no for one in it. Marked and
/// cleared under the writer's lock; read without it.
#[derive(Debug)]
struct KeyBits([AtomicU64; KeyBits::WORDS]);

impl Default for KeyBits {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl KeyBits {
    const WORDS: usize = 64;

    /// The word and bit of `key`. Keys the middleware makes are digests, random in every
    /// byte, but a store is handed keys from anywhere (`CacheKey::from_digest`, fixtures
    /// sharing a prefix): all sixteen bytes are mixed in, so keys alike in a few bytes do not
    /// share a bit.
    fn place(key: &CacheKey) -> (usize, u64) {
        const ODD: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;
        let mixed = u128::from_le_bytes(key.digest()).wrapping_mul(ODD);
        let bit = usize::try_from(mixed >> 116).unwrap_or(0) % (Self::WORDS * 64);
        (bit / 64, 1 << (bit % 64))
    }

    fn mark(&self, key: &CacheKey) {
        let (word, bit) = Self::place(key);
        self.0[word].fetch_or(bit, Ordering::Release);
    }

    fn may_hold(&self, key: &CacheKey) -> bool {
        let (word, bit) = Self::place(key);
        self.0[word].load(Ordering::Acquire) & bit != 0
    }

    /// Once the batch's writes are committed (a read that finds its key's bit clear then
    /// finds the commit counted, and leaves a snapshot from before it).
    fn clear(&self) {
        for word in &self.0 {
            word.store(0, Ordering::Release);
        }
    }
}

#[derive(Debug, Default)]
struct Writes {
    entries: Vec<StoredEntry>,
    bytes: u64,
}

impl OpenBatch {
    /// True when writes may wait uncommitted on the writer: a read that must see them runs
    /// there.
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// True when the open batch may hold a write of `key`: a read of it must run on the
    /// writer (or after the commit). False for a key it does not hold, nearly always.
    pub(crate) fn may_hold(&self, key: &CacheKey) -> bool {
        self.is_open() && self.keys.may_hold(key)
    }

    /// True when a batch is open and no task to commit it is on its way: the caller starts
    /// one ([`OpenBatch::timer_fired`], then [`OpenBatch::commit`], after the delay). Asked
    /// after every write, whatever its outcome, so no batch is left open without one (also
    /// after a timer dropped unrun, or a failed write that could not end its batch).
    pub(crate) fn needs_timer(&self) -> bool {
        self.is_open() && !self.timer_armed.swap(true, Ordering::AcqRel)
    }

    /// True when a batch is open but SQLite ended its transaction behind its back (it may
    /// roll one back when a statement on the writer fails): its writes are not on the
    /// writer now, and the next commit writes them again.
    pub(crate) fn was_rolled_back(&self, conn: &Connection) -> bool {
        self.is_open() && conn.is_autocommit()
    }

    /// Writes `entry` with `insert` on the writer `conn` (its lock held): into the open
    /// batch, or a new one, committed when it is full; with a zero `delay`, alone and
    /// committed at once. A new batch takes SQLite's write lock with the connection's busy
    /// timeout, so a caller that set none gets `DatabaseBusy` at once when another
    /// connection holds it. Writes rolled back by SQLite are written again alone, each
    /// waiting up to `rewrite_wait` for the write lock. Gives the id of the row written (the
    /// row a rewrite moves elsewhere: a hint, see [`DecodedCopies::locate`]).
    ///
    /// [`DecodedCopies::locate`]: cache_core::decoded_copies::DecodedCopies::locate
    pub(crate) fn write(
        &self,
        conn: &Connection,
        entry: &StoredEntry,
        insert: Insert,
        delay: Duration,
        rewrite_wait: Duration,
    ) -> Result<i64, rusqlite::Error> {
        let began = conn.is_autocommit();
        if began {
            // A batch SQLite ended behind its back (a read on the writer failed and SQLite
            // rolled the transaction back) is written again first; its failures are its own.
            let _ = self.commit(conn, insert, rewrite_wait);
            if delay.is_zero() {
                return insert(conn, entry);
            }
            conn.execute_batch("BEGIN IMMEDIATE")?;
            self.open.store(true, Ordering::Release);
        }
        let mut writes = self.writes();
        let row = match insert(conn, entry) {
            Ok(row) => row,
            Err(error) => {
                // A failed statement leaves the batch's earlier writes in place, unless SQLite
                // rolled the whole transaction back: then they are written again.
                if began {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                if conn.is_autocommit() {
                    let earlier = std::mem::take(&mut *writes);
                    drop(writes);
                    let _ = write_alone(
                        conn,
                        earlier.entries,
                        insert,
                        rewrite_wait,
                        "a write failed",
                    );
                    self.keys.clear();
                    self.open.store(false, Ordering::Release);
                }
                return Err(error);
            }
        };
        writes.entries.push(entry.clone());
        writes.bytes += entry.value.len() as u64;
        self.keys.mark(&entry.meta.key);
        if delay.is_zero() || writes.entries.len() >= MAX_WRITES || writes.bytes >= MAX_BYTES {
            drop(writes);
            self.commit(conn, insert, rewrite_wait)?;
        }
        Ok(row)
    }

    /// Commits the open batch on the writer `conn` (its lock held); nothing when none is open.
    /// When the commit fails, or SQLite rolled the batch back before it, the batch's writes
    /// are written again one by one with `insert`, each waiting up to `rewrite_wait` for the
    /// write lock; the error is the newest write's, should it fail alone too (the others'
    /// failures are said in a warning). Readers see the batch open until then, so they wait
    /// for the writer rather than read without its writes.
    pub(crate) fn commit(
        &self,
        conn: &Connection,
        insert: Insert,
        rewrite_wait: Duration,
    ) -> Result<(), rusqlite::Error> {
        let batch = std::mem::take(&mut *self.writes());
        let written = if conn.is_autocommit() {
            write_alone(
                conn,
                batch.entries,
                insert,
                rewrite_wait,
                "SQLite rolled it back",
            )
        } else {
            match conn.execute_batch("COMMIT") {
                Ok(()) => Ok(()),
                Err(_) => {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    write_alone(
                        conn,
                        batch.entries,
                        insert,
                        rewrite_wait,
                        "its commit failed",
                    )
                }
            }
        };
        self.keys.clear();
        self.open.store(false, Ordering::Release);
        written
    }

    /// The commit timer woke: cleared before it commits, so a batch opened from now on arms
    /// another (one opened before is committed by this one).
    pub(crate) fn timer_fired(&self) {
        self.timer_armed.store(false, Ordering::Release);
    }

    fn writes(&self) -> MutexGuard<'_, Writes> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes `entries` (a batch SQLite rolled back) again, each in a transaction of its own,
/// waiting up to `wait` for the write lock (the batch held it; now another connection may).
/// The newest one's failure is returned; the others' are said in a warning.
fn write_alone(
    conn: &Connection,
    entries: Vec<StoredEntry>,
    insert: Insert,
    wait: Duration,
    why: &str,
) -> Result<(), rusqlite::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    conn.busy_timeout(wait)?;
    let mut lost = 0_usize;
    let mut newest = Ok(());
    let count = entries.len();
    for (n, entry) in entries.iter().enumerate() {
        if let Err(error) = insert(conn, entry) {
            lost += 1;
            if n + 1 == count {
                newest = Err(error);
            }
        }
    }
    if lost > 0 {
        tracing::warn!(
            lost,
            why,
            "SQLite cache: a batch of writes was rolled back, and some were not stored when \
             written again alone"
        );
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::{CacheKey, EntryMeta};

    /// How long a write again alone waits for the lock.
    const WAIT: Duration = Duration::from_secs(5);

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)")
            .unwrap();
        conn
    }

    fn entry(n: u8, bytes: usize) -> StoredEntry {
        let key = CacheKey::from_digest([n; 16]);
        let meta = EntryMeta::new(
            key,
            "https://example.com/",
            std::time::SystemTime::now(),
            None,
        );
        StoredEntry::new(meta, bytes::Bytes::from(vec![n; bytes]))
    }

    fn insert(conn: &Connection, entry: &StoredEntry) -> Result<i64, rusqlite::Error> {
        conn.execute(
            "INSERT OR REPLACE INTO t VALUES (?1, ?2)",
            (entry.meta.key.as_str(), &entry.value[..]),
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// Writes entry `n` through the batch; true when it waits there for its commit.
    fn write(batch: &OpenBatch, conn: &Connection, n: u8, delay: Duration) -> bool {
        batch
            .write(conn, &entry(n, 10), insert, delay, WAIT)
            .unwrap();
        batch.is_open()
    }

    #[test]
    fn writes_wait_in_one_batch_until_committed_and_the_first_arms_the_timer() {
        let (conn, batch) = (table(), OpenBatch::default());
        let delay = Duration::from_millis(1);
        assert!(!batch.needs_timer(), "no batch open");
        assert!(write(&batch, &conn, 1, delay), "waits");
        assert!(batch.needs_timer());
        assert!(write(&batch, &conn, 2, delay), "waits");
        assert!(!batch.needs_timer(), "one is on its way");
        assert!(batch.is_open() && !conn.is_autocommit());
        batch.commit(&conn, insert, WAIT).unwrap();
        assert!(!batch.is_open() && conn.is_autocommit());
        assert_eq!(rows(&conn), 2);
        // The armed timer has not fired: the next batch leaves it to that one.
        write(&batch, &conn, 3, delay);
        assert!(!batch.needs_timer());
        batch.timer_fired();
        batch.commit(&conn, insert, WAIT).unwrap();
        write(&batch, &conn, 4, delay);
        assert!(batch.needs_timer());
    }

    /// Reads of keys the batch holds go to the writer; of others, nearly never; after the
    /// commit, of none.
    #[test]
    fn the_batch_tells_the_keys_it_may_hold() {
        let (conn, batch) = (table(), OpenBatch::default());
        let delay = Duration::from_secs(60);
        for n in 0..8 {
            write(&batch, &conn, n, delay);
        }
        assert!((0..8).all(|n| batch.may_hold(&entry(n, 1).meta.key)));
        let others = (100..=255).filter(|n| batch.may_hold(&entry(*n, 1).meta.key));
        assert!(
            others.count() < 8,
            "most keys not in the batch are told apart"
        );
        batch.commit(&conn, insert, WAIT).unwrap();
        assert!((0..=255).all(|n| !batch.may_hold(&entry(n, 1).meta.key)));
    }

    /// A timer dropped unrun (its runtime shutting down) clears its mark: the batch it was to
    /// commit, still open, gets another at the next write.
    #[test]
    fn a_write_after_a_timer_that_never_ran_arms_another() {
        let (conn, batch) = (table(), OpenBatch::default());
        let delay = Duration::from_secs(60);
        write(&batch, &conn, 1, delay);
        assert!(batch.needs_timer());
        batch.timer_fired();
        write(&batch, &conn, 2, delay);
        assert!(batch.needs_timer());
    }

    /// A transaction SQLite ended behind the batch (as it may roll one back when a read on
    /// the writer fails): the batch's writes are written again by the next commit or write.
    #[test]
    fn a_batch_rolled_back_behind_its_back_is_written_again() {
        let (conn, batch) = (table(), OpenBatch::default());
        let delay = Duration::from_secs(60);
        batch
            .write(&conn, &entry(1, 1), insert, delay, WAIT)
            .unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        assert!(batch.was_rolled_back(&conn));
        batch.commit(&conn, insert, WAIT).unwrap();
        assert_eq!(rows(&conn), 1);
        batch
            .write(&conn, &entry(2, 1), insert, delay, WAIT)
            .unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        batch
            .write(&conn, &entry(3, 1), insert, delay, WAIT)
            .unwrap();
        assert!(batch.is_open());
        batch.commit(&conn, insert, WAIT).unwrap();
        assert_eq!(rows(&conn), 3);
    }

    #[test]
    fn a_full_batch_commits_at_once_by_count_and_by_bytes() {
        let (conn, batch) = (table(), OpenBatch::default());
        let delay = Duration::from_secs(60);
        for n in 0..MAX_WRITES - 1 {
            batch
                .write(&conn, &entry(n as u8, 1), insert, delay, WAIT)
                .unwrap();
            assert!(batch.is_open(), "write {n} waits");
        }
        batch
            .write(&conn, &entry(200, 1), insert, delay, WAIT)
            .unwrap();
        assert!(
            !batch.is_open() && conn.is_autocommit(),
            "committed at once"
        );
        let big = usize::try_from(MAX_BYTES).unwrap();
        batch
            .write(&conn, &entry(201, big), insert, delay, WAIT)
            .unwrap();
        assert!(
            !batch.is_open() && conn.is_autocommit(),
            "committed at once"
        );
        assert_eq!(rows(&conn), i64::try_from(MAX_WRITES).unwrap() + 1);
    }

    #[test]
    fn no_delay_commits_every_write() {
        let (conn, batch) = (table(), OpenBatch::default());
        batch
            .write(&conn, &entry(1, 1), insert, Duration::ZERO, WAIT)
            .unwrap();
        assert!(conn.is_autocommit() && !batch.is_open());
    }

    #[test]
    fn a_failed_write_keeps_the_batch_before_it_and_a_failed_first_write_ends_its_own() {
        let (conn, batch) = (table(), OpenBatch::default());
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON t WHEN NEW.v = x'09'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        let delay = Duration::from_secs(60);
        assert!(
            batch
                .write(&conn, &entry(9, 1), insert, delay, WAIT)
                .is_err()
        );
        assert!(
            conn.is_autocommit() && !batch.is_open(),
            "nothing left open"
        );
        batch
            .write(&conn, &entry(1, 1), insert, delay, WAIT)
            .unwrap();
        assert!(
            batch
                .write(&conn, &entry(9, 1), insert, delay, WAIT)
                .is_err()
        );
        assert!(batch.is_open(), "the first write still waits");
        batch.commit(&conn, insert, WAIT).unwrap();
        assert_eq!(rows(&conn), 1);
    }

    /// A commit SQLite refuses (here for a deferred foreign key left unmet by another
    /// statement in the transaction) rolls the batch back, and its writes are written again
    /// alone.
    #[test]
    fn a_failed_commit_writes_the_batch_again_alone() {
        let (conn, batch) = (table(), OpenBatch::default());
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (k TEXT PRIMARY KEY);
             CREATE TABLE child (k TEXT REFERENCES parent(k) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        let delay = Duration::from_secs(60);
        batch
            .write(&conn, &entry(1, 1), insert, delay, WAIT)
            .unwrap();
        batch
            .write(&conn, &entry(2, 1), insert, delay, WAIT)
            .unwrap();
        conn.execute("INSERT INTO child VALUES ('missing')", [])
            .unwrap();
        batch.commit(&conn, insert, WAIT).unwrap();
        assert!(conn.is_autocommit() && !batch.is_open());
        assert_eq!(rows(&conn), 2);
        let orphans: i64 = conn
            .query_row("SELECT COUNT(*) FROM child", [], |r| r.get(0))
            .unwrap();
        assert_eq!(orphans, 0, "the rest of the transaction stays rolled back");
    }

    /// A file that is full: the write that does not fit fails, and SQLite rolls the whole
    /// batch back with it; the batch's earlier writes are written again and kept.
    #[test]
    fn a_full_file_loses_only_the_write_that_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("full.sqlite")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB);
             PRAGMA max_page_count = 12;",
        )
        .unwrap();
        let batch = OpenBatch::default();
        let delay = Duration::from_secs(60);
        for n in 0..3 {
            batch
                .write(&conn, &entry(n, 1_000), insert, delay, WAIT)
                .unwrap();
        }
        let too_big = batch.write(&conn, &entry(9, 100_000), insert, delay, WAIT);
        assert_eq!(
            too_big.unwrap_err().sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull)
        );
        batch.commit(&conn, insert, WAIT).unwrap();
        assert_eq!(rows(&conn), 3);
    }
}
