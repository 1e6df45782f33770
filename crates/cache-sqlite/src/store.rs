//! [`SqliteStore`]: the [`CacheStore`] over one SQLite file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::codec::EntryCodec;
use cache_core::decoded_copies::{DEFAULT_DECODED_COPIES_BYTES, DecodedCopies, KeptCopy};
use cache_core::store::{Decoded, DecodedEntry};
use cache_core::time::{from_millis, to_millis};
use cache_core::{CacheKey, CacheStore, CachedResponse, EntryMeta, StoreError, StoredEntry};
use futures_core::stream::BoxStream;
use rusqlite::{Connection, OptionalExtension, params};

use crate::connection::{
    TABLE, create_schema, incremental_vacuum, open_connection, shrink, sqlite_error, table_name,
    used_bytes,
};
use crate::group_commit::{self, WriteQueue};
use crate::open_batch::{DEFAULT_COMMIT_DELAY, OpenBatch};
use crate::snapshots::{
    CLOSER_PERIODS, Commits, QuickConnection, QuickReaders, SNAPSHOT_REUSE, commits_to,
};

/// How long a read on the calling task may wait for a lock before it moves to the blocking
/// pool.
const QUICK_BUSY_TIMEOUT: Duration = Duration::from_millis(20);

/// How many rows one `entries()` page reads.
const PAGE_SIZE: usize = 512;

/// The most bytes of values waiting for the writer connection, by default (see
/// [`SqliteStoreBuilder::max_queued_bytes`]).
pub const DEFAULT_MAX_QUEUED_BYTES: u64 = 64 * 1024 * 1024;

/// The largest value stored, with its URL: SQLite's compiled-in limit on a string, a blob
/// and a whole row (10^9 bytes) less room for the row's other columns.
pub const MAX_VALUE_BYTES: u64 = 999_000_000;

/// Refuses as too large an entry whose row SQLite would refuse (`SQLITE_TOOBIG`, a backend
/// error): the limit holds for the whole row, and the row holds the URL beside the value.
/// Also one over `max_row`, the largest the store's own bound (`max_bytes`) holds beside the
/// file's own pages ([`largest_row_within`]): written, its eviction deleted every other
/// entry, a twentieth of the table at a time, then the entry itself, and the write said it
/// was stored.
fn check_row_size(entry: &StoredEntry, max_row: Option<u64>) -> Result<(), StoreError> {
    row_size_allowed(entry.value.len(), entry.meta.url.len())?;
    let row = entry.value.len() as u64 + entry.meta.url.len() as u64;
    StoreError::check_size(row, max_row)
}

/// The largest row a file bounded to `max_bytes` holds, alone, in pages of `page_size`: less
/// the pages any file has (the header page, the roots of the table and its indexes, a
/// pointer-map page, the free-list: 16 pages is room to spare); of each page of the rest, a
/// row's overflow page holds `page_size - 4` bytes (a link to the next), and the pointer map
/// takes 5 bytes a page.
fn largest_row_within(max_bytes: u64, page_size: u64) -> u64 {
    let page_size = page_size.max(512);
    max_bytes.saturating_sub(16 * page_size) / (page_size + 5) * (page_size - 4)
}

/// [`check_row_size`] of a value and a URL of these lengths.
fn row_size_allowed(value: usize, url: usize) -> Result<(), StoreError> {
    StoreError::check_size(value as u64 + url as u64, Some(MAX_VALUE_BYTES))
}

/// Builds a [`SqliteStore`] with settings other than the defaults.
///
/// ```no_run
/// use cache_sqlite::SqliteStore;
/// use std::time::Duration;
///
/// let store = SqliteStore::builder("/var/cache/myapp/http.sqlite")
///     .busy_timeout(Duration::from_secs(30))
///     .readers(8)
///     .open()?;
/// # Ok::<(), cache_core::StoreError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    busy_timeout: Duration,
    readers: usize,
    max_bytes: Option<u64>,
    pragmas: Vec<(String, String)>,
    decoded_copies: u64,
    max_queued_bytes: u64,
    commit_delay: Duration,
    /// How long a quick reader keeps its read transaction, and how often unused ones are
    /// looked for (not settings: tests lengthen them).
    snapshot_reuse: Duration,
    snapshot_closer_period: Duration,
}

impl SqliteStoreBuilder {
    /// Runs `PRAGMA name = value` on every connection the store opens, after its own
    /// settings (WAL, `synchronous = NORMAL`): for `cache_size`, `mmap_size`,
    /// `max_page_count` and the like. `page_size` runs first, before the file is first
    /// written: it sets a new file's page size (an existing file keeps its own). Pragmas that
    /// change the journal or locking modes break the store's guarantees; don't.
    ///
    /// ```no_run
    /// let store = cache_sqlite::SqliteStore::builder("http_cache.sqlite")
    ///     .pragma("mmap_size", "268435456")
    ///     .open()?;
    /// # Ok::<(), cache_core::StoreError>(())
    /// ```
    pub fn pragma(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pragmas.push((name.into(), value.into()));
        self
    }

    /// How long a call waits for another connection or process holding the lock before it
    /// fails with [`StoreError::Timeout`] (default 10 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Bound the database to about this many bytes (default: unbounded). When a write takes
    /// it past the bound, the entries written longest ago are deleted, a twentieth of the
    /// table at a time, and the freed pages returned to the file system. An entry the bound
    /// cannot hold by itself, beside the file's own pages (16 pages, and the links and
    /// pointer map of the entry's pages), is refused ([`StoreError::TooLarge`]), evicting
    /// nothing.
    ///
    /// The bound is on the whole file: in a file shared with another tool's tables, theirs
    /// count too, and where they alone are over it the cache keeps nothing (said once, as a
    /// warning). Give a bounded cache a file of its own.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Keep decoded copies of entries read again (a key is kept from its second read, or from
    /// its write when the writer hands over its response: `put_decoded`), up to
    /// about `max_bytes` of memory (default [`DEFAULT_DECODED_COPIES_BYTES`], 32 MiB;
    /// 0 keeps none): a read whose row is unchanged (value, creation and expiry, compared in
    /// place) then skips copying the value out and decoding it. Every read still reads the file, so
    /// a copy never outlives a change, whoever makes it (another process's, within the 5 ms
    /// a read transaction is kept: see the crate's documentation).
    pub fn decoded_copies(mut self, max_bytes: u64) -> Self {
        self.decoded_copies = max_bytes;
        self
    }

    /// The most bytes of values that may wait for the writer connection while it is busy
    /// (default [`DEFAULT_MAX_QUEUED_BYTES`], 64 MiB). Past it, a write fails at once with
    /// [`StoreError::Full`] (the middleware serves the response and stores nothing); a
    /// write larger than the limit is still queued alone. While the writer is held (a sweep
    /// of a large file, an eviction, another process's lock, a stalled disk), every write
    /// waits in memory with its whole value: without a limit, a busy client's misses held
    /// their responses for as long as that lasted.
    ///
    /// ```no_run
    /// let store = cache_sqlite::SqliteStore::builder("http_cache.sqlite")
    ///     .max_queued_bytes(16 * 1024 * 1024)
    ///     .open()?;
    /// # Ok::<(), cache_core::StoreError>(())
    /// ```
    pub fn max_queued_bytes(mut self, bytes: u64) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// How long a write may wait for its commit (default [`DEFAULT_COMMIT_DELAY`], 1 ms;
    /// zero commits each write before its `put` returns).
    ///
    /// A write made on the calling task joins a transaction the writer keeps open for up to
    /// this long (or until it holds 64 writes or 4 MiB), and the writes within it share one
    /// commit: a cache row changes four B-trees, and committing rows one by one wrote their
    /// pages to the log again for each. The store's own reads, deletes and listings see a
    /// write as soon as its `put` returns; another store on the file, or another process,
    /// once it commits. A crash loses the writes not yet committed, as a power loss with
    /// `synchronous = NORMAL` loses the last commits; dropping the store commits them. An
    /// open batch holds SQLite's write lock: where other processes write the same file
    /// heavily, zero lets them have it between any two writes.
    ///
    /// ```no_run
    /// // Every write committed before its `put` returns.
    /// let store = cache_sqlite::SqliteStore::builder("http_cache.sqlite")
    ///     .commit_delay(std::time::Duration::ZERO)
    ///     .open()?;
    /// # Ok::<(), cache_core::StoreError>(())
    /// ```
    pub fn commit_delay(mut self, delay: Duration) -> Self {
        self.commit_delay = delay;
        self
    }

    /// How many reader connections to keep (default 4, at least 1). Reads run in parallel
    /// up to this many; writes go through one writer connection.
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// Opens (creating if needed) the file and its table.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the file cannot be opened or is not a database;
    /// [`StoreError::Timeout`] when another process holds it locked past the busy timeout.
    pub fn open(self) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::unavailable)?;
        }
        let mut writer = open_connection(&self.path, self.busy_timeout, &self.pragmas)?;
        create_schema(&writer, self.busy_timeout)?;
        let page_size: i64 = writer
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(|e| sqlite_error(e, self.busy_timeout))?;
        let page_size = u64::try_from(page_size).unwrap_or(4096);
        let max_row = self.max_bytes.map(|max| largest_row_within(max, page_size));
        let commits = commits_to(&self.path);
        // Opened with the full busy timeout (setting WAL mode may wait for another process),
        // then given the short one their reads use.
        let quick_readers = (0..2)
            .map(|_| {
                let conn = open_connection(&self.path, self.busy_timeout, &self.pragmas)?;
                conn.busy_timeout(QUICK_BUSY_TIMEOUT)
                    .map_err(|e| sqlite_error(e, QUICK_BUSY_TIMEOUT))?;
                Ok(conn)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let quick_readers = QuickReaders::new(
            quick_readers,
            Arc::clone(&commits),
            self.snapshot_reuse,
            self.snapshot_closer_period,
        );
        let checkpoints = Arc::new(Checkpoints::default());
        checkpoints.watch(
            &mut writer,
            commits,
            Arc::clone(&quick_readers),
            self.busy_timeout,
        )?;
        let readers = (0..self.readers)
            .map(|_| open_connection(&self.path, self.busy_timeout, &self.pragmas).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: self.path,
                busy_timeout: self.busy_timeout,
                max_bytes: self.max_bytes,
                max_row,
                writer: Mutex::new(writer),
                checkpoints,
                readers,
                quick_readers,
                next_reader: AtomicUsize::new(0),
                copies: DecodedCopies::new(self.decoded_copies),
                queue: WriteQueue::new(self.max_queued_bytes),
                batch: OpenBatch::default(),
                commit_delay: self.commit_delay,
            }),
        })
    }
}

/// A [`CacheStore`] in one SQLite file (WAL mode), shareable by many tasks and processes.
///
/// Cloning is cheap and shares the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    busy_timeout: Duration,
    max_bytes: Option<u64>,
    /// The largest row `max_bytes` holds (see [`largest_row_within`]).
    max_row: Option<u64>,
    writer: Mutex<Connection>,
    /// When the writer's log is checkpointed (never during a quick write).
    checkpoints: Arc<Checkpoints>,
    readers: Vec<Mutex<Connection>>,
    /// Readers used on the calling task, with a short busy timeout, and the read
    /// transactions they keep between reads.
    quick_readers: Arc<QuickReaders>,
    next_reader: AtomicUsize,
    /// Decoded forms of rows the quick readers read.
    copies: DecodedCopies,
    /// Writes waiting for the writer connection: committed together.
    queue: WriteQueue,
    /// Writes made on the calling task that wait on the writer for their commit.
    batch: OpenBatch,
    commit_delay: Duration,
}

impl SqliteStore {
    /// Opens the cache file at `path` with default settings. A path without an extension gets
    /// `.sqlite` appended (`"demo_cache"` → `demo_cache.sqlite`), as requests-cache does; a
    /// path with one is used as is. Missing parent directories are created.
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder(path).open()
    }

    /// A builder for a store at `path` (extension rule as [`SqliteStore::open`]).
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        let mut path = path.as_ref().to_path_buf();
        if path.extension().is_none() {
            path.set_extension("sqlite");
        }
        SqliteStoreBuilder {
            path,
            busy_timeout: Duration::from_secs(10),
            readers: 4,
            max_bytes: None,
            pragmas: Vec::new(),
            decoded_copies: DEFAULT_DECODED_COPIES_BYTES,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            commit_delay: DEFAULT_COMMIT_DELAY,
            snapshot_reuse: SNAPSHOT_REUSE,
            snapshot_closer_period: SNAPSHOT_REUSE * CLOSER_PERIODS,
        }
    }

    /// The file this store uses.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// An indexed read in WAL mode does not wait for writers: run it on the calling thread
    /// when a quick reader is free, as a thread hop would cost several times the read.
    /// `None` when none is free, the file is locked (WAL recovery, another process's
    /// checkpoint) or the value is large: then the read goes to the blocking pool.
    fn quick_read(&self, key: &CacheKey) -> Option<Result<Option<StoredEntry>, StoreError>> {
        let mut conn = self.quick_reader(key)?;
        let read = read_entry(&conn, *key, QUICK_READ_ENTRY);
        self.quick_answer(&mut conn, read)
    }

    /// [`SqliteStore::quick_read`], decoded: the kept copy when the row is the one it came from.
    fn quick_read_decoded(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        let mut conn = self.quick_reader(key)?;
        let read = read_decoded(&conn, &self.inner.copies, *key, codec);
        self.quick_answer(&mut conn, read)
    }

    /// A connection for a read on the calling task: a free quick reader whose snapshot is
    /// current (see [`crate::snapshots`]); else, when reads come often and nothing was
    /// committed lately ([`QuickReaders::snapshot_pays`]), a free quick reader with a new
    /// snapshot, which the reads after this one use without a transaction of their own; else
    /// the writer when it is free; else a reader with a new snapshot.
    ///
    /// A read in a transaction of its own begins and ends one, locking and unlocking a slot of
    /// the log's index (two `fcntl` calls): a SQLite hit took 4.6 µs so and takes 2.5 µs in a
    /// snapshot, a hit on a varying response (two reads) 7.9 µs and 3.9 µs (pinned medians,
    /// `profile-hits sqlite`). Just after a commit the writer comes first: its page cache
    /// holds what was just written, while a reader connection drops its whole cache whenever
    /// the file changed since its last read, and reads the pages again (a lookup of a key just
    /// missed: 17 µs on a reader, 10 µs on the writer).
    ///
    /// While writes wait for their commit on the writer ([`crate::open_batch`]), only the
    /// writer sees them: a read of `key` when the batch may hold it runs there, or, the writer
    /// busy, on the blocking pool after the commit.
    fn quick_reader(&self, key: &CacheKey) -> Option<QuickReader<'_>> {
        if self.inner.batch.may_hold(key) {
            return self.writer_as_quick_reader();
        }
        let readers = &self.inner.quick_readers;
        if let Some(reader) = readers.current() {
            return Some(QuickReader::Reader(reader));
        }
        if readers.snapshot_pays() {
            if let Some(reader) = readers.any() {
                return Some(QuickReader::Reader(reader));
            }
        }
        if let Some(writer) = self.writer_as_quick_reader() {
            return Some(writer);
        }
        readers.any().map(QuickReader::Reader)
    }

    /// The writer for a read on the calling task, when it is free (and holds the writes
    /// waiting for their commit: not after SQLite rolled them back, when they are written
    /// again before a read on the blocking pool).
    fn writer_as_quick_reader(&self) -> Option<QuickReader<'_>> {
        let writer = self.inner.writer.try_lock().ok()?;
        if self.inner.batch.was_rolled_back(&writer) {
            return None;
        }
        // Its busy timeout is the long one writes wait with.
        writer.busy_timeout(QUICK_BUSY_TIMEOUT).ok()?;
        Some(QuickReader::Writer {
            conn: writer,
            restore_busy_timeout: self.inner.busy_timeout,
        })
    }

    /// What a quick read says: `None` when it could not answer (busy, or a value too large
    /// to read on the calling task), for the caller to read on the blocking pool.
    fn quick_answer<T>(
        &self,
        conn: &mut QuickReader<'_>,
        read: Result<Result<T, Oversized>, rusqlite::Error>,
    ) -> Option<Result<T, StoreError>> {
        if let (Err(_), QuickReader::Reader(reader)) = (&read, conn) {
            // The transaction may be left in any state: the next read begins anew.
            self.inner.quick_readers.end(reader);
        }
        match read {
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => None,
            Err(e) => Some(Err(sqlite_error(e, self.inner.busy_timeout))),
            Ok(Ok(found)) => Some(Ok(found)),
            Ok(Err(Oversized)) => None,
        }
    }

    /// Writes a small entry on the calling task when the writer connection is free and
    /// SQLite's write lock is held already or can be had at once (busy timeout zero): an
    /// insert of at most [`QUICK_MAX_VALUE`] bytes, into the batch waiting for its commit
    /// ([`crate::open_batch`]), no sync, no checkpoint (that goes to the blocking pool).
    /// `None` when it cannot: then the write goes to the blocking pool. Gives the id of the
    /// row written.
    fn quick_write(&self, entry: &StoredEntry) -> Option<Result<i64, StoreError>> {
        if self.inner.max_bytes.is_some()
            || entry.value.len() as i64 > QUICK_MAX_VALUE
            || self.inner.queue.has_waiting()
        {
            return None;
        }
        let conn = self.inner.writer.try_lock().ok()?;
        if self.inner.batch.was_rolled_back(&conn) {
            // Its writes are written again on the blocking pool, waiting for the lock as
            // long as writes there do (the queue's committer takes the writer: see
            // `Inner::writer`), this one after them.
            return None;
        }
        conn.busy_timeout(Duration::ZERO).ok()?;
        self.inner.checkpoints.quick.store(true, Ordering::Relaxed);
        let written = self.inner.batch.write(
            &conn,
            entry,
            insert_entry,
            self.inner.commit_delay,
            QUICK_BUSY_TIMEOUT,
        );
        self.inner.checkpoints.quick.store(false, Ordering::Relaxed);
        // On failure the writer keeps a short timeout (as after a quick read): the write
        // itself is done, and may wait in the batch, so it is not reported failed.
        let _ = conn.busy_timeout(self.inner.busy_timeout);
        drop(conn);
        if self.inner.batch.needs_timer() {
            CommitTimer::start(&self.inner);
        }
        match written {
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => None,
            Err(e) => Some(Err(sqlite_error(e, self.inner.busy_timeout))),
            Ok(row) => {
                if self.inner.checkpoints.due.swap(false, Ordering::Relaxed) {
                    let inner = Arc::clone(&self.inner);
                    tokio::task::spawn_blocking(move || inner.checkpoint());
                }
                Some(Ok(row))
            }
        }
    }

    /// [`CacheStore::put`], giving the id of the row written: on the calling task when it
    /// can ([`SqliteStore::quick_write`]), else by the next group commit.
    async fn write_row(&self, entry: StoredEntry) -> Result<i64, StoreError> {
        check_row_size(&entry, self.inner.max_row)?;
        if let Some(written) = self.quick_write(&entry) {
            return written;
        }
        // The writer is busy (or the write is not a quick one): the next group commit takes
        // it. The commit runs whether or not this future is still awaited, as a write handed
        // to the blocking pool always did.
        let (outcome, start_committer) = self.inner.queue.push(entry).map_err(StoreError::full)?;
        if start_committer {
            let committer = Committer(Some(Arc::clone(&self.inner)));
            tokio::task::spawn_blocking(move || committer.run());
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::backend(
                "the SQLite write was dropped before its commit (the runtime is shutting down?)",
            ))
        })
    }

    /// Runs `f` on Tokio's blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let busy_timeout = inner.busy_timeout;
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(StoreError::backend)?
            .map_err(|e| sqlite_error(e, busy_timeout))
    }
}

impl Inner {
    /// The writer connection, with the writes waiting for it committed first (the open
    /// batch's, then the queue's): whatever runs on it next comes after them, in its own
    /// transaction. So a delete comes after every write begun before it, also one whose
    /// caller stopped waiting (a store timeout), which the middleware deletes again when an
    /// unsafe request changed its URL meanwhile: run first, the delete would find nothing and
    /// the write land after it.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.commit_batch(&conn);
        self.commit_queued_on(&conn);
        conn
    }

    /// Commits the writes waiting on the writer `conn` (its lock held), if any. A write that
    /// fails there is lost (said by [`OpenBatch::commit`]); what runs next is unaffected.
    fn commit_batch(&self, conn: &Connection) {
        let _ = self.batch.commit(conn, insert_entry, self.busy_timeout);
    }

    /// Returns free pages to the file system ([`shrink`]) with no quick reader's snapshot
    /// in the way of the truncating checkpoint: none begins meanwhile, and the idle ones end
    /// just before it.
    fn shrink(&self, conn: &Connection) -> Result<(), rusqlite::Error> {
        let _paused = self.quick_readers.pause();
        shrink(conn, || self.quick_readers.end_idle())
    }

    /// Commits every queued write in one transaction (see [`group_commit`]), then evicts to
    /// the size bound once for them all: taking the writer does it ([`Inner::writer`]).
    fn commit_queued(&self) {
        drop(self.writer());
    }

    /// [`Inner::commit_queued`] on the writer `conn` (its lock held); nothing when no write
    /// is queued.
    fn commit_queued_on(&self, conn: &Connection) {
        let writes = self.queue.take();
        if writes.is_empty() {
            return;
        }
        let evict = |conn: &Connection| match self.max_bytes {
            Some(max) => evict_oldest_beyond(conn, max),
            None => Ok(()),
        };
        group_commit::commit(conn, writes, insert_entry, evict, self.busy_timeout);
    }

    /// A passive checkpoint of the log a quick write left due; a failure only delays it
    /// (the next write past the threshold asks again).
    fn checkpoint(&self) {
        self.checkpoints.before_checkpoint(&self.quick_readers);
        if let Err(error) = self
            .writer()
            .execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
        {
            tracing::debug!(%error, "SQLite checkpoint failed; retried after a later write");
        }
    }

    /// A free reader connection if there is one, else the next in turn; writes waiting for
    /// their commit are committed first, so the read sees them.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.commit_open_batch();
        for conn in &self.readers {
            if let Ok(guard) = conn.try_lock() {
                return guard;
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Commits the batch open on the writer, if any, without waiting behind whatever else
    /// holds the writer (a sweep, another process's lock): whoever took it by
    /// [`Inner::writer`] committed the batch first.
    fn commit_open_batch(&self) {
        while self.batch.is_open() {
            match self.writer.try_lock() {
                Ok(conn) => self.commit_batch(&conn),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                    self.commit_batch(&poisoned.into_inner());
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
    }
}

/// The task a deferred write starts on the blocking pool: commits the batch after the delay
/// (and any batch opened since, early). It holds the store weakly: dropping the last clone
/// meanwhile commits at once ([`Inner`]'s `Drop`), not when this wakes. Dropped unrun (a
/// runtime shutting down drops the blocking tasks it has not started), it commits now.
struct CommitTimer {
    inner: std::sync::Weak<Inner>,
    ran: bool,
}

impl CommitTimer {
    /// Starts one for `inner`'s open batch; outside a Tokio runtime, commits it now.
    fn start(inner: &Arc<Inner>) {
        let timer = Self {
            inner: Arc::downgrade(inner),
            ran: false,
        };
        let delay = inner.commit_delay;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || timer.run(delay))),
            Err(_) => drop(timer),
        }
    }

    fn run(mut self, delay: Duration) {
        std::thread::sleep(delay);
        self.ran = true;
        if let Some(inner) = self.inner.upgrade() {
            inner.batch.timer_fired();
            drop(inner.writer());
        }
    }
}

impl Drop for CommitTimer {
    fn drop(&mut self) {
        if self.ran {
            return;
        }
        if let Some(inner) = self.inner.upgrade() {
            inner.batch.timer_fired();
            // Whoever holds the writer now does not hold it long (a quick read or write).
            inner.commit_open_batch();
        }
    }
}

impl Drop for Inner {
    /// The last clone of the store commits the writes waiting for their commit.
    fn drop(&mut self) {
        let conn = self.writer.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = self.batch.commit(conn, insert_entry, self.busy_timeout);
    }
}

/// A connection lent to one read on the calling task (see `SqliteStore::quick_reader`).
enum QuickReader<'a> {
    /// The writer, read in a transaction of its own (or, while a batch is open, inside the
    /// batch's).
    Writer {
        conn: MutexGuard<'a, Connection>,
        /// The writer's own busy timeout, given back when the read is done.
        restore_busy_timeout: Duration,
    },
    /// A quick reader, in its snapshot.
    Reader(MutexGuard<'a, QuickConnection>),
}

impl std::ops::Deref for QuickReader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Self::Writer { conn, .. } => conn,
            Self::Reader(reader) => &reader.conn,
        }
    }
}

impl Drop for QuickReader<'_> {
    fn drop(&mut self) {
        if let Self::Writer {
            conn,
            restore_busy_timeout,
        } = self
        {
            // On failure the writer keeps the short timeout: a later write that finds the
            // file busy fails sooner and goes to the network, nothing worse.
            let _ = conn.busy_timeout(*restore_busy_timeout);
        }
    }
}

/// Deletes the oldest entries by write order (the rowid: `INSERT OR REPLACE` gives a written
/// row the highest), a twentieth of the table at a time, until the database uses at most
/// `max` bytes.
fn evict_oldest_beyond(conn: &Connection, max: u64) -> Result<(), rusqlite::Error> {
    loop {
        let used = used_bytes(conn)?;
        if used <= max {
            break;
        }
        let count: i64 =
            conn.query_row(&format!("SELECT COUNT(*) FROM {TABLE}"), [], |r| r.get(0))?;
        if count == 0 {
            warn_bound_below_other_tables(used, max);
            break;
        }
        let batch = (count / 20).max(1);
        conn.execute(
            &format!(
                "DELETE FROM {TABLE} WHERE rowid IN
                 (SELECT rowid FROM {TABLE} ORDER BY rowid LIMIT ?1)"
            ),
            [batch],
        )?;
        incremental_vacuum(conn)?;
    }
    Ok(())
}

/// Says once a process that the database is over `max` with the cache's table empty: the
/// bound counts the whole file, and other tables in it (another tool's) take it all, so every
/// bounded write evicts every entry, its own included.
fn warn_bound_below_other_tables(used: u64, max: u64) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            used,
            max,
            "the SQLite cache's max_bytes counts the whole database file, and its other tables \
             alone are over it: the cache keeps nothing (raise the bound or use a file of its own)"
        );
    }
}

/// Inserts (or replaces) one entry, giving the id of its row.
fn insert_entry(conn: &Connection, entry: &StoredEntry) -> Result<i64, rusqlite::Error> {
    const INSERT: &str = concat!(
        "INSERT OR REPLACE INTO ",
        table_name!(),
        " (key, url, created_at, expires_at, url_group, variant_of, value)",
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    );
    let mut stmt = conn.prepare_cached(INSERT)?;
    let meta = &entry.meta;
    stmt.execute(params![
        meta.key.as_str(),
        meta.url,
        to_millis(meta.created_at),
        meta.expires_at.map(to_millis),
        meta.url_group.as_ref().map(CacheKey::as_str),
        meta.variant_of.as_ref().map(CacheKey::as_str),
        &entry.value[..],
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Pages in the write-ahead log past which it is checkpointed: SQLite's own default.
const CHECKPOINT_PAGES: i32 = 1000;

/// After a checkpoint, the log grows by this many more pages before the next is begun, unless
/// it started over. A checkpoint a reader stops short (another process's, or a quick reader
/// in use) cannot start the log over; SQLite's own rule would then checkpoint again at every
/// commit, two `fsync`s each, until one gets through.
const CHECKPOINT_RETRY_PAGES: i32 = 100;

/// The writer's checkpoints, in place of SQLite's automatic ones: a commit past
/// [`CHECKPOINT_PAGES`] checkpoints at once on the blocking pool, but a quick write (on
/// the runtime's thread) only marks it due, and the store runs it on the blocking pool. While
/// the log does not start over, the next one waits for [`CHECKPOINT_RETRY_PAGES`] more.
#[derive(Debug, Default)]
struct Checkpoints {
    /// A quick write is committing.
    quick: AtomicBool,
    /// A quick write passed the threshold.
    due: AtomicBool,
    /// The log's pages at the last commit, and past how many the next checkpoint begins.
    log: Mutex<LogPages>,
    /// Checkpoints begun (tests).
    #[cfg(test)]
    begun: std::sync::atomic::AtomicU64,
}

impl Checkpoints {
    /// Whether a commit that left `pages` in the log begins a checkpoint: past
    /// [`CHECKPOINT_PAGES`], and [`CHECKPOINT_RETRY_PAGES`] past the last one begun while the
    /// log has not started over since. Called by the writer's hook only (one at a time).
    fn is_due(&self, pages: i32) -> bool {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        // Fewer pages than at the last commit: the log started over.
        if pages < log.last {
            log.next_checkpoint_at = CHECKPOINT_PAGES;
        }
        log.last = pages;
        let due = pages >= log.next_checkpoint_at;
        if due {
            log.next_checkpoint_at = pages.saturating_add(CHECKPOINT_RETRY_PAGES);
        }
        due
    }

    /// Ends the snapshots of `readers` (the store's quick readers) no read holds now, so the
    /// checkpoint can reach the end of the log
    /// and the next write can start the log again. A snapshot is kept up to 5 ms; one begun
    /// by the last read before a commit would otherwise stop the checkpoint short, and the
    /// log would keep growing until a later checkpoint found no snapshot in the way.
    fn before_checkpoint(&self, readers: &QuickReaders) {
        #[cfg(test)]
        self.begun.fetch_add(1, Ordering::Relaxed);
        readers.end_idle();
    }

    /// Installs the commit hook on the writer (it replaces SQLite's automatic checkpoints).
    /// It also counts the commits in `commits` (SQLite calls the hook after each commit):
    /// a quick reader's snapshot from before one is not used after it. `readers` are the
    /// store's quick readers.
    fn watch(
        self: &Arc<Self>,
        writer: &mut Connection,
        commits: Arc<Commits>,
        readers: Arc<QuickReaders>,
        busy: Duration,
    ) -> Result<(), StoreError> {
        let this = Arc::clone(self);
        writer
            .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
                commits.record();
                if !this.is_due(pages) {
                    return Ok(());
                }
                if this.quick.load(Ordering::Relaxed) {
                    this.due.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                // Passive: never waits for readers; a checkpoint left short is finished by a
                // later one.
                this.before_checkpoint(&readers);
                let _ = wal.checkpoint();
                Ok(())
            }))
            .map_err(|e| sqlite_error(e, busy))
    }
}

/// A group commit handed to the blocking pool. Dropped without running (a runtime shutting
/// down drops the blocking tasks it has not started), it lets the next write start another.
struct Committer(Option<Arc<Inner>>);

impl Committer {
    fn run(mut self) {
        if let Some(inner) = self.0.take() {
            inner.commit_queued();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if let Some(inner) = &self.0 {
            inner.queue.committer_dropped();
        }
    }
}

/// The writer's log as its commit hook last saw it.
#[derive(Debug)]
struct LogPages {
    last: i32,
    next_checkpoint_at: i32,
}

impl Default for LogPages {
    fn default() -> Self {
        Self {
            last: 0,
            next_checkpoint_at: CHECKPOINT_PAGES,
        }
    }
}

/// The metadata columns, in the order [`meta_from_row`] reads them.
const META_COLUMNS: &str = "key, url, created_at, expires_at, url_group, variant_of";

/// [`QUICK_MAX_VALUE`] as a literal, for SQL (`concat!`): 128 KiB.
macro_rules! quick_max_value {
    () => {
        131072
    };
}

/// Values up to this size are read on the calling task by the quick readers; a larger one
/// would hold the runtime thread for its whole copy, so it is read on the blocking pool.
const QUICK_MAX_VALUE: i64 = quick_max_value!();

/// Where a listing page ended: its last key, byte for byte and of the type SQLite holds it
/// in. A key of another type (a BLOB, from another program) sorts after every text key, and
/// the next page starts after it; text that is not UTF-8 (another program's) is bound back
/// as the same text: read as a `Value`, it failed the page, so every listing of the store.
#[derive(Debug, Clone)]
enum KeyCursor {
    Text(Vec<u8>),
    Other(rusqlite::types::Value),
}

impl KeyCursor {
    fn of(key: rusqlite::types::ValueRef<'_>) -> Self {
        use rusqlite::types::{Value, ValueRef};
        match key {
            ValueRef::Text(text) => Self::Text(text.to_vec()),
            ValueRef::Blob(blob) => Self::Other(Value::Blob(blob.to_vec())),
            ValueRef::Integer(n) => Self::Other(Value::Integer(n)),
            ValueRef::Real(x) => Self::Other(Value::Real(x)),
            ValueRef::Null => Self::Other(Value::Null),
        }
    }
}

impl rusqlite::ToSql for KeyCursor {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Self::Text(text) => Ok(rusqlite::types::ToSqlOutput::Borrowed(
                rusqlite::types::ValueRef::Text(text),
            )),
            Self::Other(value) => value.to_sql(),
        }
    }
}

/// The metadata of a row selected with [`META_COLUMNS`] first; `None` for a row whose key is
/// not a cache key, or with a column of another type ([`is_foreign_column`]): not ours,
/// skipped.
fn meta_from_row(row: &rusqlite::Row<'_>) -> Result<Option<EntryMeta>, rusqlite::Error> {
    let text = row.get_ref(0)?.as_str().ok();
    let Some(key) = text.and_then(|k| k.parse::<CacheKey>().ok()) else {
        tracing::warn!(
            key = text.unwrap_or("(not text)"),
            "row with an invalid cache key in the SQLite cache: skipped"
        );
        return Ok(None);
    };
    passing_over_foreign(meta_after_key(row, key, 1).map(Some), &key)
}

/// Whether `error` is a column holding another type than the store writes there (TEXT for
/// the value, REAL for a time, a BLOB for a URL, text that is not UTF-8): a row edited by hand
/// or by another program, which is no entry rather than a failure of every read of it.
fn is_foreign_column(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..)
    )
}

/// `read` of the row under `key`, with a row of foreign columns taken as none (logged).
fn passing_over_foreign<T: Default>(
    read: Result<T, rusqlite::Error>,
    key: &CacheKey,
) -> Result<T, rusqlite::Error> {
    match read {
        Err(error) if is_foreign_column(&error) => {
            tracing::warn!(%key, %error, "row with a column of another type in the SQLite cache: skipped");
            Ok(T::default())
        }
        read => read,
    }
}

/// The metadata of the row under `key` from the columns after the key in [`META_COLUMNS`]
/// order, starting at column `first`. Text is read in place (no copy) but for the URL the
/// metadata keeps.
fn meta_after_key(
    row: &rusqlite::Row<'_>,
    key: CacheKey,
    first: usize,
) -> Result<EntryMeta, rusqlite::Error> {
    // A key column that is no key makes the row foreign (passed over as none, and replaced
    // by the next write): read as none, a damaged URL group hid the entry from every
    // invalidation of its URL while hits went on serving it.
    let optional_key = |column: usize| -> Result<Option<CacheKey>, rusqlite::Error> {
        let text = row.get_ref(column)?.as_str_or_null()?;
        CacheKey::parse_optional(text).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(
                column,
                rusqlite::types::Type::Text,
                Box::new(error),
            )
        })
    };
    // A creation before 1970 (another program's) reads as 1970, which no delete or renewal
    // by creation time (`created_at = ?`) would then match: the row is foreign.
    let created_at: i64 = row.get(first + 1)?;
    if created_at < 0 {
        return Err(rusqlite::Error::IntegralValueOutOfRange(
            first + 1,
            created_at,
        ));
    }
    Ok(EntryMeta::new(
        key,
        row.get::<_, String>(first)?,
        from_millis(created_at),
        row.get::<_, Option<i64>>(first + 2)?.map(from_millis),
    )
    .with_url_group(optional_key(first + 3)?)
    .with_variant_of(optional_key(first + 4)?))
}

/// The read of one entry: its metadata but the key (known), then its value. Literals, so a
/// read formats nothing, and short, as rusqlite's statement cache hashes the text on every
/// use.
const READ_ENTRY: &str = concat!(
    "SELECT url, created_at, expires_at, url_group, variant_of, value FROM ",
    table_name!(),
    " WHERE key = ?1"
);

/// The quick reads' first six columns, as a literal for `concat!`: [`READ_ENTRY`]'s, the value
/// only up to [`QUICK_MAX_VALUE`] bytes (its length is in the row's header; a longer one is
/// not read, and is NULL here).
macro_rules! quick_entry_columns {
    () => {
        concat!(
            "SELECT url, created_at, expires_at, url_group, variant_of,",
            " CASE WHEN length(value) <= ",
            quick_max_value!(),
            " THEN value END"
        )
    };
}

/// [`READ_ENTRY`] on the calling task ([`quick_entry_columns`]), then the row's id (see
/// [`read_decoded`]).
const QUICK_READ_ENTRY: &str = concat!(
    quick_entry_columns!(),
    ", rowid FROM ",
    table_name!(),
    " WHERE key = ?1"
);

/// [`QUICK_READ_ENTRY`] of the row with a given id, and its key: where a decoded copy's row
/// was last found (see [`read_decoded`]).
const QUICK_READ_AT: &str = concat!(
    quick_entry_columns!(),
    ", key FROM ",
    table_name!(),
    " WHERE rowid = ?1"
);

/// The entry under `key`, with [`READ_ENTRY`] or [`QUICK_READ_ENTRY`]. A value the quick read
/// leaves out is `Err(Oversized)`, for the caller to read it elsewhere.
fn read_entry(
    conn: &Connection,
    key: CacheKey,
    sql: &str,
) -> Result<Result<Option<StoredEntry>, Oversized>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let row = stmt
        .query_row([key.as_str()], |row| {
            let meta = meta_after_key(row, key, 0)?;
            let value: Option<Vec<u8>> = row.get(5)?;
            Ok((meta, value))
        })
        .optional();
    let row = passing_over_foreign(row, &key)?;
    Ok(match row {
        None => Ok(None),
        Some((meta, Some(value))) => Ok(Some(StoredEntry::new(meta, Bytes::from(value)))),
        Some((_, None)) => Err(Oversized),
    })
}

/// The entry under `key` decoded, with [`QUICK_READ_AT`] or [`QUICK_READ_ENTRY`]: the kept
/// copy when the row's value and times, compared where SQLite holds them, are those it came
/// from (see [`same_meta`]); else the value copied out and decoded (and kept).
///
/// A copy remembers the id of the row written or last read ([`DecodedCopies::locate`]), and
/// the read looks there first: one search of the table's B-tree by id instead of two (the
/// key's index, comparing key text at each step, then the table by the id found there). A
/// hit took 2.65 µs and takes 2.45 (a varying response's two reads 4.15 and 3.67 µs; over
/// 10,000 URLs 5.25 and 4.9 µs: pinned medians, `profile-hits sqlite`). The row there is the
/// entry only if its key is this key (a row replaced since, or renumbered by a `VACUUM`, is
/// elsewhere, and a deleted row's id is given again); else the key's index is searched as
/// without a copy.
fn read_decoded(
    conn: &Connection,
    copies: &DecodedCopies,
    key: CacheKey,
    codec: &EntryCodec,
) -> Result<Result<DecodedEntry, Oversized>, rusqlite::Error> {
    let mut copy = copies.kept_prefetched(&key, codec);
    let location = copy.as_ref().and_then(KeptCopy::location);
    // The row at the copy's id, when it holds the key: the entry (or, of foreign columns,
    // none), as the key's search would find it.
    let mut at_id = None;
    if let Some(rowid) = location {
        let mut stmt = conn.prepare_cached(QUICK_READ_AT)?;
        at_id = stmt
            .query_row([rowid], |row| {
                if row.get_ref(6)?.as_str().ok() != Some(key.as_str()) {
                    return Ok(None);
                }
                let read = row_read(row, &key, copies, &mut copy).map(|read| Some((rowid, read)));
                passing_over_foreign(read, &key).map(Some)
            })
            .optional()?
            .flatten();
    }
    let found = match at_id {
        Some(found) => found,
        None => {
            let mut stmt = conn.prepare_cached(QUICK_READ_ENTRY)?;
            let row = stmt
                .query_row([key.as_str()], |row| {
                    let rowid = row.get(6)?;
                    row_read(row, &key, copies, &mut copy).map(|read| (rowid, read))
                })
                .optional();
            passing_over_foreign(row, &key)?
        }
    };
    Ok(match found {
        None => {
            // Deleted elsewhere (another process, another program), or foreign: so is its
            // copy's use.
            copies.forget_unused(&key, copy);
            Ok(None)
        }
        Some((_, Err(Oversized))) => Err(Oversized),
        Some((rowid, Ok(RowRead::Kept(kept)))) => {
            if location != Some(rowid) {
                copies.locate(&key, &kept, rowid);
            }
            Ok(Some(Ok(kept)))
        }
        Some((rowid, Ok(RowRead::Found(entry)))) => {
            let value = entry.value.clone();
            Ok(Some(copies.decode_found_at(
                &key,
                entry,
                value,
                codec,
                Some(rowid),
            )))
        }
    })
}

/// What [`row_read`] made of a row.
enum RowRead {
    /// The copy looked up before the read answered for it.
    Kept(Arc<Decoded>),
    /// The row's entry, its value copied out, to decode.
    Found(StoredEntry),
}

/// The entry in `row` (selected as [`QUICK_READ_ENTRY`]'s first six columns), answered by
/// `copy` when it was made from it. The copy is taken once the value reads as one: a row
/// passed over as foreign (a value that is no blob) leaves it for the caller to drop.
fn row_read(
    row: &rusqlite::Row<'_>,
    key: &CacheKey,
    copies: &DecodedCopies,
    copy: &mut Option<KeptCopy>,
) -> Result<Result<RowRead, Oversized>, rusqlite::Error> {
    let value = row.get_ref(5)?.as_blob_or_null()?;
    let copy = copy.take();
    let Some(value) = value else {
        copies.forget_unused(key, copy);
        return Ok(Err(Oversized));
    };
    if let Some(kept) = copies.answer(key, copy, value, |meta| same_meta(row, meta)) {
        return Ok(Ok(RowRead::Kept(kept)));
    }
    let meta = meta_after_key(row, *key, 0)?;
    Ok(Ok(RowRead::Found(StoredEntry::new(
        meta,
        Bytes::copy_from_slice(value),
    ))))
}

/// True when the row's creation and expiry columns (in [`READ_ENTRY`] order) hold `meta`'s; a
/// column that cannot be read counts as different. The URL, group and Vary parent are written
/// with the value by one statement, and no statement changes them alone, so a copy made from
/// the same value and times answers for them (as Redis's copies do): comparing the three
/// text columns too cost about 1.1 k instructions a read, 3.5 % of a hit. (Another program
/// editing only those columns is not seen until the value or a time changes.)
fn same_meta(row: &rusqlite::Row<'_>, meta: &EntryMeta) -> bool {
    row.get::<_, i64>(1).ok() == Some(to_millis(meta.created_at))
        && row.get::<_, Option<i64>>(2).ok() == Some(meta.expires_at.map(to_millis))
}

/// A row's key column (URL group, Vary parent) as a read takes it: none, or a key.
macro_rules! key_column_is_readable {
    ($column:literal) => {
        concat!(
            "(",
            $column,
            " IS NULL OR ",
            $column,
            " = '' OR (typeof(",
            $column,
            ") = 'text' AND length(",
            $column,
            ") = 32 AND ",
            $column,
            " NOT GLOB '*[^0-9a-f]*'))"
        )
    };
}

/// The renewal of an entry's expiry, of a row a read takes for an entry only: one with
/// columns of other types, or a group or parent that is no key (another program's row, a
/// hand edit), is passed over by reads and left as it is here (it was renewed, and the call
/// said so).
const SET_EXPIRY: &str = concat!(
    "UPDATE ",
    table_name!(),
    " SET expires_at = ?1 WHERE key = ?2",
    " AND typeof(value) = 'blob' AND typeof(created_at) = 'integer' AND created_at >= 0",
    " AND (expires_at IS NULL OR typeof(expires_at) = 'integer')",
    " AND typeof(url) = 'text' AND ",
    key_column_is_readable!("url_group"),
    " AND ",
    key_column_is_readable!("variant_of")
);

/// A value too large to read where it was asked for.
struct Oversized;

#[async_trait]
impl CacheStore for SqliteStore {
    /// SQLite's bound on a row ([`MAX_VALUE_BYTES`]), or the largest row the store's
    /// `max_bytes` holds when lower.
    fn max_value_bytes(&self) -> Option<u64> {
        Some(
            self.inner
                .max_row
                .map_or(MAX_VALUE_BYTES, |max| max.min(MAX_VALUE_BYTES)),
        )
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        if let Some(read) = self.quick_read(key) {
            return read;
        }
        let key = *key;
        let read = self.blocking(move |inner| read_entry(&inner.reader(), key, READ_ENTRY));
        Ok(read.await?.unwrap_or_default())
    }

    /// The quick read of [`SqliteStore::get`], decoded: a hit needs no future when a quick
    /// reader is free.
    fn get_decoded_now(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        self.quick_read_decoded(key, codec)
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.write_row(entry).await.map(drop)
    }

    /// Written as [`CacheStore::put`], then the writer's response is kept as the entry's
    /// decoded copy (when copies are kept), with the id of the row written
    /// ([`DecodedCopies::locate`]): its first read decodes nothing and searches no index. The
    /// copy answers only for the very bytes and times written, so another writer's later
    /// write shows. None for a value over the quick read (128 KiB): it is read on the writer,
    /// without copies.
    async fn put_decoded(
        &self,
        entry: StoredEntry,
        response: CachedResponse,
    ) -> Result<(), StoreError> {
        if entry.value.len() > QUICK_MAX_VALUE as usize {
            self.inner.copies.forget(&entry.meta.key);
            return self.put(entry).await;
        }
        let written = entry.clone();
        let row = self.write_row(entry).await?;
        self.inner
            .copies
            .keep_written_found_at(&written, response, Some(row));
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let key = *key;
        let deleted = self
            .blocking(move |inner| {
                let conn = inner.writer();
                let mut stmt =
                    conn.prepare_cached(&format!("DELETE FROM {TABLE} WHERE key = ?1"))?;
                Ok(stmt.execute([key.as_str()])? > 0)
            })
            .await;
        // Never served once the row is gone; dropped now so its memory goes too.
        self.inner.copies.forget(&key);
        deleted
    }

    /// The check and the write in one `IMMEDIATE` transaction: no other writer, in this
    /// process or another, comes between them.
    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        check_row_size(&entry, self.inner.max_row)?;
        let created_at = to_millis(created_at);
        self.blocking(move |inner| {
            let mut conn = inner.writer();
            let transaction =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Compared as SQLite holds it: text that is no UTF-8 (another program's) failed
            // the renewal as a `Value`.
            let current_is_the_read = transaction
                .query_row(
                    &format!("SELECT created_at FROM {TABLE} WHERE key = ?1"),
                    [entry.meta.key.as_str()],
                    |row| Ok(row.get_ref(0)? == rusqlite::types::ValueRef::Integer(created_at)),
                )
                .optional()?;
            // Anything but the time read (another time, another type, no row): not renewed.
            if current_is_the_read != Some(true) {
                return Ok(false);
            }
            insert_entry(&transaction, &entry)?;
            transaction.commit()?;
            if let Some(max) = inner.max_bytes {
                evict_oldest_beyond(&conn, max)?;
            }
            Ok(true)
        })
        .await
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let (key, created_at) = (*key, to_millis(created_at));
        let deleted = self
            .blocking(move |inner| {
                let conn = inner.writer();
                let mut stmt = conn.prepare_cached(&format!(
                    "DELETE FROM {TABLE} WHERE key = ?1 AND created_at = ?2"
                ))?;
                Ok(stmt.execute(rusqlite::params![key.as_str(), created_at])? > 0)
            })
            .await;
        if matches!(deleted, Ok(true)) {
            self.inner.copies.forget(&key);
        }
        deleted
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        // Keyset pagination: each page is one short read, so a long listing never holds a
        // read transaction open (which would stop WAL checkpoints).
        // The page's last key is kept as SQLite holds it (see `KeyCursor`).
        let first = KeyCursor::Text(Vec::new());
        let pages = futures_util::stream::try_unfold(Some(first), move |after| async move {
            let Some(after) = after else { return Ok(None) };
            let rows = self
                .blocking(move |inner| {
                    let conn = inner.reader();
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT {META_COLUMNS} FROM {TABLE}
                         WHERE key > ?1 ORDER BY key LIMIT {PAGE_SIZE}"
                    ))?;
                    let rows = stmt.query_map([after], |row| {
                        Ok((KeyCursor::of(row.get_ref(0)?), meta_from_row(row)?))
                    })?;
                    rows.collect::<Result<Vec<_>, _>>()
                })
                .await?;
            let next = (rows.len() == PAGE_SIZE).then(|| rows[rows.len() - 1].0.clone());
            let metas: Vec<Result<EntryMeta, StoreError>> = rows
                .into_iter()
                .filter_map(|(_, meta)| meta.map(Ok))
                .collect();
            Ok(Some((futures_util::stream::iter(metas), next)))
        });
        Box::pin(futures_util::TryStreamExt::try_flatten(pages))
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let url_group = *url_group;
        self.blocking(move |inner| {
            let conn = inner.reader();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {META_COLUMNS} FROM {TABLE} WHERE url_group = ?1"
            ))?;
            let rows = stmt.query_map([url_group.as_str()], meta_from_row)?;
            let metas = rows.collect::<Result<Vec<Option<EntryMeta>>, _>>()?;
            Ok(metas.into_iter().flatten().collect())
        })
        .await
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.blocking(|inner| {
            let conn = inner.writer();
            let removed = conn.execute(&format!("DELETE FROM {TABLE}"), [])?;
            inner.shrink(&conn)?;
            inner.copies.clear();
            Ok(removed as u64)
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.blocking(|inner| {
            inner
                .reader()
                .query_row(&format!("SELECT COUNT(*) FROM {TABLE}"), [], |row| {
                    row.get::<_, i64>(0)
                })
                .map(|n| n as u64)
        })
        .await
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let now = to_millis(now);
        self.blocking(move |inner| {
            let conn = inner.writer();
            let removed = conn.execute(
                &format!("DELETE FROM {TABLE} WHERE expires_at IS NOT NULL AND expires_at <= ?1"),
                [now],
            )?;
            // An expiry of another type (TEXT or BLOB, from another program; they sort after
            // every number, so this reads the index's end) never comes: such a row is no entry.
            let removed = removed
                + conn.execute(&format!("DELETE FROM {TABLE} WHERE expires_at >= ''"), [])?;
            if removed > 0 {
                inner.shrink(&conn)?;
            }
            Ok(removed as u64)
        })
        .await
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let key = *key;
        let expires_at = expires_at.map(to_millis);
        self.blocking(move |inner| {
            let updated = inner
                .writer()
                .execute(SET_EXPIRY, params![expires_at, key.as_str()])?;
            Ok(updated > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's limit holds for the whole row: a URL beside a value at the limit is too
    /// large too (SQLite refused it as `SQLITE_TOOBIG`, a backend error).
    #[test]
    fn the_row_limit_counts_the_url() {
        let limit = MAX_VALUE_BYTES as usize;
        assert!(row_size_allowed(limit, 0).is_ok());
        assert!(row_size_allowed(limit - 100, 100).is_ok());
        for (value, url) in [(limit, 1), (limit - 100, 101), (1, limit)] {
            assert!(
                matches!(
                    row_size_allowed(value, url),
                    Err(StoreError::TooLarge { .. })
                ),
                "{value} + {url}"
            );
        }
    }
    use cache_core::testing::{entry, group, grouped_entry, key};
    use std::time::Instant;

    /// Long enough that only a commit ends a snapshot during a test.
    const FOREVER: Duration = Duration::from_secs(3600);

    /// A store whose writes commit before `put` returns (these tests follow the commits; the
    /// deferred ones have tests of their own), keeping a read transaction `snapshot_reuse`.
    fn store_at(path: &Path, snapshot_reuse: Duration) -> SqliteStore {
        let mut builder = SqliteStore::builder(path).commit_delay(Duration::ZERO);
        builder.snapshot_reuse = snapshot_reuse;
        builder.snapshot_closer_period = snapshot_reuse * CLOSER_PERIODS;
        builder.open().unwrap()
    }

    /// A checkpoint first ends the quick readers' idle snapshots: one a read left open before
    /// the last commit would otherwise stop it short of the log's end (and keep the log from
    /// starting over at the next write).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_ends_idle_snapshots_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let store = store_at(&path, FOREVER);
        let value = || Bytes::from(vec![b'x'; 1024]);
        for n in 0..10 {
            store.put(entry(n, value(), None)).await.unwrap();
        }
        assert!(read_on_a_quick_reader(&store, 0).is_some());
        assert_eq!(
            store.inner.quick_readers.open_now(),
            1,
            "the read kept its snapshot"
        );
        store.put(entry(10, value(), None)).await.unwrap();
        store.inner.checkpoint();
        let (log, checkpointed): (i64, i64) = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(1)?, row.get(2)?))
            })
            .unwrap();
        assert!(log > 0);
        assert_eq!(
            checkpointed, log,
            "the checkpoint stopped short of the log's end"
        );
    }

    /// While a reader holds the log (here another connection's read transaction, as another
    /// process's), checkpoints cannot finish: one is begun per `CHECKPOINT_RETRY_PAGES` the log
    /// grows, not one per commit (which was over a thousand here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_held_short_is_retried_as_the_log_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let store = store_at(&path, SNAPSHOT_REUSE);
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row(&format!("SELECT COUNT(*) FROM {TABLE}"), [], |row| {
                row.get(0)
            })
            .unwrap();
        for n in 0..1_500 {
            store
                .put(entry(n, Bytes::from(vec![b'x'; 1024]), None))
                .await
                .unwrap();
        }
        // One begun on the blocking pool holds the writer: it is counted once this is had.
        drop(store.inner.writer.lock().unwrap());
        let log = std::fs::metadata(dir.path().join("c.sqlite-wal"))
            .unwrap()
            .len();
        let pages = i64::try_from(log / (4096 + 24)).unwrap();
        assert!(
            pages > 2 * i64::from(CHECKPOINT_PAGES),
            "{pages} pages in the log"
        );
        let most = (pages - i64::from(CHECKPOINT_PAGES)) / i64::from(CHECKPOINT_RETRY_PAGES) + 2;
        let begun = i64::try_from(store.inner.checkpoints.begun.load(Ordering::Relaxed)).unwrap();
        assert!(
            (1..=most).contains(&begun),
            "{begun} checkpoints begun over {pages} pages (at most {most})"
        );
        reader.execute_batch("COMMIT").unwrap();
    }

    /// A read on the calling task while the writer is busy, as under many threads: on a
    /// quick reader, in its snapshot. The value, if any.
    fn read_on_a_quick_reader(store: &SqliteStore, n: u64) -> Option<Bytes> {
        let _busy = store.inner.writer.lock().unwrap();
        let read = store.quick_read(&key(n)).expect("a quick reader is free");
        read.unwrap().map(|found| found.value)
    }

    /// A read while the writer is free (one task reading): on the writer just after a commit,
    /// whose page cache holds what was written, and for a lone read; in a snapshot once
    /// nothing was committed for the reuse window and reads come within it of each other, so
    /// the reads after it begin no transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_take_a_snapshot_when_commits_are_quiet_and_reads_frequent() {
        let dir = tempfile::tempdir().unwrap();
        // Long enough that a loaded machine never spends it between two steps meant to be
        // within it.
        let reuse = Duration::from_secs(3);
        let store = store_at(&dir.path().join("s.sqlite"), reuse);
        let readers = &store.inner.quick_readers;
        let read = |expected: &str| {
            let read = store.quick_read(&key(5)).expect("a quick read").unwrap();
            assert_eq!(read.unwrap().value, expected);
        };
        store
            .put(entry(5, Bytes::from_static(b"five"), None))
            .await
            .unwrap();
        read("five");
        read("five");
        assert_eq!(
            readers.open_now(),
            0,
            "just after a commit, the writer reads"
        );
        std::thread::sleep(reuse + Duration::from_millis(50));
        read("five");
        assert_eq!(readers.open_now(), 0, "a lone read begins no snapshot");
        read("five");
        assert_eq!(
            readers.open_now(),
            1,
            "frequent reads of a quiet store: a snapshot"
        );
        // A commit is seen at once all the same, and the read after it is the writer's.
        store
            .put(entry(5, Bytes::from_static(b"5"), None))
            .await
            .unwrap();
        read("5");
        assert_eq!(
            readers.open_now(),
            0,
            "the snapshot before the commit ended"
        );
    }

    /// A row deleted from outside the store (another process, another program), or given a
    /// value that is no blob (a foreign row, passed over), takes its copy at the next read,
    /// which finds none: looked up before each read, the copy was kept from eviction without
    /// ever answering again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_row_gone_elsewhere_takes_its_copy_at_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = store_at(&path, Duration::ZERO);
        let codec = EntryCodec::new();
        let other = rusqlite::Connection::open(&path).unwrap();
        for change in [
            concat!("DELETE FROM ", table_name!()),
            concat!("UPDATE ", table_name!(), " SET value = 'no blob'"),
        ] {
            let response = cache_core::testing::sample_response();
            let value = codec.encode(Some(&key(1)), &response).unwrap();
            store
                .put_decoded(entry(1, value, None), response)
                .await
                .unwrap();
            assert!(store.inner.copies.weight() > 0, "the write's copy");
            assert_eq!(other.execute(change, []).unwrap(), 1);
            let read = store.get_decoded_now(&key(1), &codec).unwrap().unwrap();
            assert!(read.is_none(), "{change}");
            assert_eq!(store.inner.copies.weight(), 0, "the copy stayed: {change}");
        }
    }

    /// A value over the quick read gets no copy at its write: such values are read on the
    /// writer, without copies, and its copy (weighing the whole value) never answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_value_over_the_quick_read_gets_no_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(&dir.path().join("s.sqlite"), FOREVER);
        let codec = EntryCodec::new();
        let mut response = cache_core::testing::sample_response();
        response.body = Bytes::from(vec![7u8; QUICK_MAX_VALUE as usize + 1]);
        let value = codec.encode(Some(&key(1)), &response).unwrap();
        store
            .put_decoded(entry(1, value, None), response.clone())
            .await
            .unwrap();
        assert_eq!(store.inner.copies.weight(), 0, "a copy was kept");
        let read = store.get_decoded(&key(1), &codec).await.unwrap();
        let decoded = read.expect("found").expect("decodes");
        let cache_core::Entry::Response(found) = &decoded.entry else {
            panic!("a response");
        };
        assert_eq!(found.body, response.body);
    }

    /// A response written with `put_decoded` is the entry's decoded copy from the write on:
    /// the first read returns that copy (no decoding), equal to decoding the row; an entry
    /// written as bytes alone has none until read twice; a later write of other bytes is
    /// read as those bytes, not as the copy.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_written_response_is_the_first_read_s_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(&dir.path().join("s.sqlite"), FOREVER);
        let codec = EntryCodec::new();
        let response = cache_core::testing::sample_response();
        let value = codec.encode(Some(&key(1)), &response).unwrap();
        let copy_of =
            |n: u64, value: &Bytes| store.inner.copies.get(&key(n), value, &codec, |_| true);
        store
            .put_decoded(entry(1, value.clone(), None), response.clone())
            .await
            .unwrap();
        let kept = copy_of(1, &value).expect("kept at the write");
        let read = store
            .get_decoded_now(&key(1), &codec)
            .expect("a quick read")
            .unwrap()
            .unwrap()
            .expect("decodes");
        assert!(Arc::ptr_eq(&kept, &read), "the first read decoded anew");
        let decoded = entry(1, value.clone(), None)
            .decode(&key(1), &codec)
            .unwrap();
        assert_eq!(*read, *decoded);
        store.put(entry(2, value.clone(), None)).await.unwrap();
        assert!(copy_of(2, &value).is_none());
        let mut changed = response;
        changed.body = Bytes::from_static(b"changed");
        let other = codec.encode(Some(&key(1)), &changed).unwrap();
        store.put(entry(1, other, None)).await.unwrap();
        let read = store
            .get_decoded(&key(1), &codec)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let cache_core::Entry::Response(read) = &read.entry else {
            panic!("not a response");
        };
        assert_eq!(read.body, "changed");
    }

    /// The response written for `key(n)` with `body`, through `put_decoded` (keeping its
    /// copy), and the row's id.
    async fn written_with_copy(store: &SqliteStore, n: u64, body: &'static str) -> i64 {
        let mut response = cache_core::testing::sample_response();
        response.body = Bytes::from_static(body.as_bytes());
        let value = EntryCodec::new().encode(Some(&key(n)), &response).unwrap();
        store
            .put_decoded(entry(n, value, None), response)
            .await
            .unwrap();
        let conn = Connection::open(&store.inner.path).unwrap();
        conn.query_row(
            concat!("SELECT rowid FROM ", table_name!(), " WHERE key = ?1"),
            [key(n).as_str()],
            |row| row.get(0),
        )
        .unwrap()
    }

    /// The body of `key(n)`'s entry read decoded on the calling task, and whether the read
    /// was the copy kept before it.
    fn read_body(store: &SqliteStore, n: u64) -> (Bytes, bool) {
        let codec = EntryCodec::new();
        let kept = store.inner.copies.kept(&key(n), &codec);
        let read = store
            .get_decoded_now(&key(n), &codec)
            .expect("a quick read")
            .unwrap()
            .expect("found")
            .expect("decodes");
        let cache_core::Entry::Response(response) = &read.entry else {
            panic!("a response");
        };
        let value = cache_core::encode(response).unwrap();
        let answered = kept
            .and_then(|kept| kept.answers(&value, |_| true))
            .is_some_and(|kept| Arc::ptr_eq(&kept, &read));
        (response.body.clone(), answered)
    }

    /// Where a copy's row is: the id its copy remembers.
    fn located_at(store: &SqliteStore, n: u64) -> Option<i64> {
        let kept = store.inner.copies.kept(&key(n), &EntryCodec::new());
        kept.expect("a copy").location()
    }

    /// A copy remembers the id of the row written (its read looks there before searching the
    /// key's index); a row moved elsewhere (rewritten by another process, renumbered by a
    /// `VACUUM`) is found by its key all the same, the copy still answers it, and remembers
    /// where it is now.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_finds_its_row_by_id_and_follows_it_when_it_moves() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(&dir.path().join("s.sqlite"), Duration::ZERO);
        let row = written_with_copy(&store, 1, "one").await;
        assert_eq!(located_at(&store, 1), Some(row), "the write's row");
        assert_eq!(read_body(&store, 1), (Bytes::from_static(b"one"), true));
        let other = Connection::open(dir.path().join("s.sqlite")).unwrap();
        other
            .execute(
                concat!(
                    "UPDATE ",
                    table_name!(),
                    " SET rowid = 777 WHERE rowid = ?1"
                ),
                [row],
            )
            .unwrap();
        assert_eq!(read_body(&store, 1), (Bytes::from_static(b"one"), true));
        assert_eq!(located_at(&store, 1), Some(777), "where the read found it");
        assert_eq!(read_body(&store, 1), (Bytes::from_static(b"one"), true));
    }

    /// The row at a copy's remembered id holding another key (rows swapped by another
    /// program; ids of deleted rows are used again) is not the copy's entry: the read finds
    /// its own row by key. Taken for it, the other key's response was served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_s_row_id_holding_another_key_is_not_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(&dir.path().join("s.sqlite"), Duration::ZERO);
        let first = written_with_copy(&store, 1, "one").await;
        let second = written_with_copy(&store, 2, "two").await;
        let other = Connection::open(dir.path().join("s.sqlite")).unwrap();
        let move_row = |from: i64, to: i64| {
            other
                .execute(
                    concat!("UPDATE ", table_name!(), " SET rowid = ?2 WHERE rowid = ?1"),
                    [from, to],
                )
                .unwrap();
        };
        move_row(first, 1000);
        move_row(second, first);
        move_row(1000, second);
        assert_eq!(read_body(&store, 1).0, "one");
        assert_eq!(read_body(&store, 2).0, "two");
        assert_eq!(located_at(&store, 1), Some(second));
        // Gone, with another key's row at its id: not found.
        other
            .execute(
                concat!("DELETE FROM ", table_name!(), " WHERE key = ?1"),
                [key(1).as_str()],
            )
            .unwrap();
        move_row(first, second);
        let read = store.get_decoded_now(&key(1), &EntryCodec::new());
        assert!(read.expect("a quick read").unwrap().is_none());
        assert_eq!(read_body(&store, 2).0, "two");
    }

    /// Writes through the store (put, overwrite, delete) are seen by the very next read,
    /// though that read's connection keeps a snapshot from before them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn this_process_s_writes_end_the_snapshots_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(&dir.path().join("s.sqlite"), FOREVER);
        assert_eq!(read_on_a_quick_reader(&store, 1), None);
        store
            .put(entry(1, Bytes::from_static(b"first"), None))
            .await
            .unwrap();
        assert_eq!(read_on_a_quick_reader(&store, 1).unwrap(), "first");
        store
            .put(entry(1, Bytes::from_static(b"second"), None))
            .await
            .unwrap();
        assert_eq!(read_on_a_quick_reader(&store, 1).unwrap(), "second");
        assert!(store.delete(&key(1)).await.unwrap());
        assert_eq!(read_on_a_quick_reader(&store, 1), None);
    }

    /// Two stores on one file in one process (the path spelled two ways) count commits
    /// together: a write committed through one is seen at once through the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_on_one_file_share_their_commit_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let reading = store_at(&dir.path().join("s.sqlite"), FOREVER);
        let writing = store_at(&dir.path().join("sub/../s.sqlite"), FOREVER);
        assert_eq!(read_on_a_quick_reader(&reading, 2), None);
        writing
            .put(entry(2, Bytes::from_static(b"from the other store"), None))
            .await
            .unwrap();
        assert_eq!(
            read_on_a_quick_reader(&reading, 2).unwrap(),
            "from the other store"
        );
    }

    /// A store deferring its commits by `delay`.
    fn deferring(path: &Path, delay: Duration) -> SqliteStore {
        SqliteStore::builder(path)
            .commit_delay(delay)
            .open()
            .unwrap()
    }

    /// The rows another connection sees (as another process would): the committed ones.
    fn committed_rows(path: &Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.query_row(&format!("SELECT COUNT(*) FROM {TABLE}"), [], |r| r.get(0))
            .unwrap()
    }

    /// Long enough that a deferred write is not committed by its timer during a test.
    const LONG_DELAY: Duration = Duration::from_secs(2);

    /// Writes `value` under key `n`.
    async fn put(store: &SqliteStore, n: u64, value: &'static str) {
        let value = Bytes::from_static(value.as_bytes());
        store.put(entry(n, value, None)).await.unwrap();
    }

    /// A deferred write is read at once by its store: on the calling task on the writer,
    /// inside the open batch, and on the blocking pool (a reader connection), which commits
    /// it first. Another connection sees it only once committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deferred_write_is_seen_at_once_by_its_store_and_by_others_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        let store = deferring(&path, LONG_DELAY);
        put(&store, 1, "one").await;
        put(&store, 2, "two").await;
        assert!(store.inner.batch.is_open());
        assert_eq!(committed_rows(&path), 0, "committed before its delay");
        let read = store.quick_read(&key(1)).expect("the writer is free");
        assert_eq!(read.unwrap().unwrap().value, "one");
        assert!(
            store.inner.batch.is_open(),
            "a read on the writer commits nothing"
        );
        assert_eq!(store.count().await.unwrap(), 2);
        assert!(!store.inner.batch.is_open());
        assert_eq!(committed_rows(&path), 2);
    }

    /// With the writer busy, a read does not fall back to a quick reader, whose snapshot
    /// lacks the deferred write: it goes to the blocking pool, which waits for the writer and
    /// commits the write before reading.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_while_the_writer_is_busy_waits_for_the_deferred_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = deferring(&dir.path().join("d.sqlite"), LONG_DELAY);
        // A snapshot that began before the write, on each quick reader.
        for _ in 0..2 {
            assert_eq!(read_on_a_quick_reader(&store, 1), None);
        }
        put(&store, 1, "one").await;
        let busy = store.inner.writer.lock().unwrap();
        assert!(
            store.quick_read(&key(1)).is_none(),
            "read without the write"
        );
        drop(busy);
        assert_eq!(store.get(&key(1)).await.unwrap().unwrap().value, "one");
    }

    /// Ends the writer's transaction as SQLite does when it rolls one back on an error.
    fn roll_back_behind_the_batch(store: &SqliteStore) {
        let writer = store.inner.writer.lock().unwrap();
        writer.execute_batch("ROLLBACK").unwrap();
    }

    /// While a batch is open, a read of a key it does not hold goes on in a quick reader's
    /// snapshot (here with the writer busy), which lacks only the batch's writes; a read of
    /// one it holds waits for the writer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_of_keys_outside_the_batch_stay_on_the_quick_readers() {
        let dir = tempfile::tempdir().unwrap();
        let store = deferring(&dir.path().join("d.sqlite"), LONG_DELAY);
        put(&store, 2, "two").await;
        assert_eq!(store.count().await.unwrap(), 1, "committed by the listing");
        put(&store, 1, "one").await;
        let busy = store.inner.writer.lock().unwrap();
        let outside = store
            .quick_read(&key(2))
            .expect("a quick reader, not the writer");
        assert_eq!(outside.unwrap().unwrap().value, "two");
        assert!(
            store.quick_read(&key(1)).is_none(),
            "read without the write"
        );
        drop(busy);
        assert_eq!(store.get(&key(1)).await.unwrap().unwrap().value, "one");
    }

    /// A transaction SQLite rolled back behind the batch (as it may when a read on the
    /// writer fails; here rolled back by hand): reads do not read the writer without the
    /// batch's writes, and a write does not join it; both go to the blocking pool, where the
    /// batch is written again first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_sqlite_rolled_back_is_written_again_before_reads_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        let store = deferring(&path, LONG_DELAY);
        put(&store, 1, "one").await;
        roll_back_behind_the_batch(&store);
        assert_eq!(store.get(&key(1)).await.unwrap().unwrap().value, "one");
        put(&store, 2, "two").await;
        roll_back_behind_the_batch(&store);
        put(&store, 3, "three").await;
        assert_eq!(store.get(&key(2)).await.unwrap().unwrap().value, "two");
        assert_eq!(store.get(&key(3)).await.unwrap().unwrap().value, "three");
        assert_eq!(committed_rows(&path), 3);
    }

    /// Deletes, conditional writes and listings come after the deferred writes made before
    /// them, as if each write had committed on its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_deferred_are_met_by_what_the_store_does_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        let store = deferring(&path, LONG_DELAY);
        store.put(grouped_entry(1, 7, None)).await.unwrap();
        assert_eq!(store.entries_for_url(&group(7)).await.unwrap().len(), 1);
        store.put(grouped_entry(2, 7, None)).await.unwrap();
        assert!(
            store.delete(&key(2)).await.unwrap(),
            "the deferred row deleted"
        );
        store.put(grouped_entry(3, 7, None)).await.unwrap();
        let created = store.get(&key(3)).await.unwrap().unwrap().meta.created_at;
        assert!(store.delete_if_created(&key(3), created).await.unwrap());
        assert_eq!(committed_rows(&path), 1);
    }

    /// Dropping the last clone of the store commits its deferred writes then, not when the
    /// delay is up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_store_commits_its_deferred_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        let store = deferring(&path, LONG_DELAY);
        put(&store, 1, "one").await;
        let clone = store.clone();
        drop(store);
        assert_eq!(committed_rows(&path), 0, "a clone still holds the batch");
        drop(clone);
        assert_eq!(committed_rows(&path), 1);
    }

    /// Unmet, a deferred write is committed by its timer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_timer_commits_a_deferred_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        let store = deferring(&path, Duration::from_millis(20));
        put(&store, 1, "one").await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while committed_rows(&path) == 0 {
            assert!(Instant::now() < deadline, "never committed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!store.inner.batch.is_open());
    }

    /// A write this process does not count (another process's: here a connection of its
    /// own) is seen once the snapshot before it is [`SNAPSHOT_REUSE`] old. The closer never
    /// comes here, so only the snapshot's age can end it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_process_s_write_is_seen_within_the_reuse_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut builder = SqliteStore::builder(&path).commit_delay(Duration::ZERO);
        builder.snapshot_closer_period = FOREVER;
        let store = builder.open().unwrap();
        store
            .put(entry(3, Bytes::from_static(b"old"), None))
            .await
            .unwrap();
        assert_eq!(read_on_a_quick_reader(&store, 3).unwrap(), "old");
        let other = Connection::open(&path).unwrap();
        other
            .execute(
                &format!("UPDATE {TABLE} SET value = ?1 WHERE key = ?2"),
                params![&b"new"[..], key(3).as_str()],
            )
            .unwrap();
        std::thread::sleep(SNAPSHOT_REUSE * 2);
        assert_eq!(read_on_a_quick_reader(&store, 3).unwrap(), "new");
    }

    /// Once reads stop, their snapshots end: nothing holds the log back, and another
    /// process's checkpoint can truncate it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_snapshots_end_and_the_log_can_be_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = store_at(&path, SNAPSHOT_REUSE);
        for n in 0..20 {
            store
                .put(entry(n, Bytes::from(vec![b'x'; 4_000]), None))
                .await
                .unwrap();
        }
        assert_eq!(read_on_a_quick_reader(&store, 1).unwrap().len(), 4_000);
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.inner.quick_readers.open_now() > 0 {
            assert!(Instant::now() < deadline, "a snapshot stayed open");
            std::thread::sleep(SNAPSHOT_REUSE);
        }
        let other = Connection::open(&path).unwrap();
        let (busy, log_frames): (i64, i64) = other
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((busy, log_frames), (0, 0));
        assert_eq!(
            std::fs::metadata(path.with_extension("sqlite-wal"))
                .unwrap()
                .len(),
            0
        );
        // The store reads on, in new snapshots.
        assert_eq!(read_on_a_quick_reader(&store, 2).unwrap().len(), 4_000);
    }

    /// While the store shrinks its file, reads begin no snapshot (one would keep the log
    /// from being truncated), and they read all the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_snapshot_begins_while_the_file_shrinks() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(&dir.path().join("s.sqlite"), FOREVER);
        store
            .put(entry(4, Bytes::from_static(b"kept"), None))
            .await
            .unwrap();
        assert_eq!(read_on_a_quick_reader(&store, 4).unwrap(), "kept");
        assert_eq!(store.inner.quick_readers.open_now(), 1);
        let paused = store.inner.quick_readers.pause();
        assert_eq!(store.inner.quick_readers.open_now(), 0);
        assert_eq!(read_on_a_quick_reader(&store, 4).unwrap(), "kept");
        assert_eq!(store.inner.quick_readers.open_now(), 0);
        drop(paused);
        assert_eq!(read_on_a_quick_reader(&store, 4).unwrap(), "kept");
        assert_eq!(store.inner.quick_readers.open_now(), 1);
    }
}

#[cfg(test)]
mod group_commit_tests;
