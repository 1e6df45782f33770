//! Group commit: a write that finds the writer connection busy joins a queue, and one task on
//! the blocking pool at a time takes the writer and commits every write queued by then in one
//! transaction. Each of these writes returns once its row is committed.
//!
//! Under many tasks writing at once (a crawler's first pass: every request a miss), each
//! write used to be a transaction of its own, every one a thread hop, a wait for the writer
//! and a commit writing its pages to the log; rows committed together share their pages and
//! the commit's work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::{StoreError, StoredEntry};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::connection::{shared_sqlite_error, sqlite_error};

/// What a queued write learns: its own outcome, the id of its row when written.
type Outcome = Result<i64, StoreError>;

/// A write waiting for the next group commit, and where its outcome goes.
#[derive(Debug)]
pub(crate) struct QueuedWrite {
    entry: StoredEntry,
    done: oneshot::Sender<Outcome>,
}

/// The writes waiting for the writer connection, and whether a task to commit them is on its
/// way.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    waiting: Mutex<Waiting>,
    committer_started: AtomicBool,
    /// The most value bytes that may wait (see [`WriteQueue::push`]).
    max_bytes: u64,
}

/// The queued writes and the bytes of their values.
#[derive(Debug, Default)]
struct Waiting {
    writes: Vec<QueuedWrite>,
    bytes: u64,
}

/// A write not queued: the writes waiting for the writer hold the queue's bytes already.
#[derive(Debug)]
pub(crate) struct QueueFull {
    waiting: u64,
    limit: u64,
}

impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes of SQLite writes are waiting for the writer (limit {}): this one is not \
             stored",
            self.waiting, self.limit
        )
    }
}

impl std::error::Error for QueueFull {}

impl WriteQueue {
    /// A queue holding up to `max_bytes` of values (one write of any size when empty).
    pub(crate) fn new(max_bytes: u64) -> Self {
        Self {
            waiting: Mutex::default(),
            committer_started: AtomicBool::new(false),
            max_bytes,
        }
    }

    /// Queues `entry`. Returns where its outcome will come, and whether the caller must
    /// start a committer ([`WriteQueue::take`] on the blocking pool): none is on its way.
    ///
    /// Refused when the writes waiting already hold [`WriteQueue::new`]'s bytes and this
    /// one would pass them, while a committer is on its way to take them: while the writer
    /// is held (a sweep, an eviction, another process's lock, a stalled disk) every miss
    /// queued its whole response, and the queue grew by the misses' bytes for as long as it
    /// lasted. With no committer on its way (one was dropped unrun), the write is queued and
    /// starts one: refused, nothing would ever take the queue again.
    pub(crate) fn push(
        &self,
        entry: StoredEntry,
    ) -> Result<(oneshot::Receiver<Outcome>, bool), QueueFull> {
        let (done, outcome) = oneshot::channel();
        let mut waiting = self.lock();
        let bytes = entry.value.len() as u64;
        let over = waiting.bytes.saturating_add(bytes) > self.max_bytes;
        // Under the queue's lock, with the push: a committer that took the queue before it
        // has cleared the flag, so this write starts another; one that takes it after finds
        // this write. Read and set in one step, so that of writes racing here, one starts a
        // committer and the others see it coming.
        let coming = self.committer_started.swap(true, Ordering::SeqCst);
        if over && coming && !waiting.writes.is_empty() {
            return Err(QueueFull {
                waiting: waiting.bytes,
                limit: self.max_bytes,
            });
        }
        waiting.bytes += bytes;
        waiting.writes.push(QueuedWrite { entry, done });
        Ok((outcome, !coming))
    }

    /// The writes queued now, for whoever holds the writer connection (the committer, or any
    /// other use of the writer, which commits them first). Clears the flag with them: a
    /// write queued after the take starts the next committer. With none queued, changes
    /// nothing (the committer that comes finds the queue empty).
    pub(crate) fn take(&self) -> Vec<QueuedWrite> {
        let mut waiting = self.lock();
        if waiting.writes.is_empty() {
            return Vec::new();
        }
        self.committer_started.store(false, Ordering::SeqCst);
        std::mem::take(&mut *waiting).writes
    }

    /// True while writes wait in the queue (a committer is on its way to take them): a write
    /// of the calling task then queues behind them rather than commit first, so two writes of
    /// one key land in the order they were made.
    pub(crate) fn has_waiting(&self) -> bool {
        self.committer_started.load(Ordering::SeqCst)
    }

    /// A committer started by [`WriteQueue::push`] will not run (dropped unrun, as a runtime
    /// shutting down drops the blocking tasks it has not started): the next write starts
    /// another, rather than every later one waiting for this one.
    pub(crate) fn committer_dropped(&self) {
        self.committer_started.store(false, Ordering::SeqCst);
    }

    /// Writes queued now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().writes.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes `writes` on `conn` (each by `insert`) in one transaction, then runs `after` (the
/// size bound's eviction), and tells each write its outcome. When the transaction fails and
/// it held several writes, each is written again alone, so that a failure is the write's
/// own and never another's.
pub(crate) fn commit(
    conn: &Connection,
    writes: Vec<QueuedWrite>,
    insert: impl Fn(&Connection, &StoredEntry) -> Result<i64, rusqlite::Error>,
    after: impl Fn(&Connection) -> Result<(), rusqlite::Error>,
    busy_timeout: Duration,
) {
    // A writer that stopped waiting has nothing to learn: failed sends are ignored.
    let each_alone = |writes: Vec<QueuedWrite>| {
        for write in writes {
            let outcome = alone(conn, &write.entry, &insert, &after, busy_timeout);
            let _ = write.done.send(outcome);
        }
    };
    let all = |writes: Vec<QueuedWrite>, outcome: Result<Vec<i64>, rusqlite::Error>| match outcome {
        Ok(rows) => {
            for (write, row) in writes.into_iter().zip(rows) {
                let _ = write.done.send(Ok(row));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for write in writes {
                let _ = write
                    .done
                    .send(Err(shared_sqlite_error(&error, busy_timeout)));
            }
        }
    };
    if writes.len() <= 1 {
        return each_alone(writes);
    }
    match in_one_transaction(conn, &writes, &insert) {
        Ok(rows) => {
            let evicted = after(conn).map(|()| rows);
            all(writes, evicted);
        }
        // The file's, not a write's: each would only meet it again (a lock held elsewhere
        // would be waited for once per write).
        Err(error) if !may_be_one_write_s(&error) => all(writes, Err(error)),
        Err(_) => each_alone(writes),
    }
}

/// Whether a group's failure may come from one of its writes (a constraint or a trigger
/// refusing a row, a value too big): then each is written again alone. A lock not had, a full
/// disk, an I/O error or a read-only file is the file's, and every write would meet it again.
fn may_be_one_write_s(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    !matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::NotADatabase
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::OutOfMemory
        )
    )
}

/// One write as a transaction of its own, then `after`.
fn alone(
    conn: &Connection,
    entry: &StoredEntry,
    insert: &impl Fn(&Connection, &StoredEntry) -> Result<i64, rusqlite::Error>,
    after: &impl Fn(&Connection) -> Result<(), rusqlite::Error>,
    busy_timeout: Duration,
) -> Outcome {
    insert(conn, entry)
        .and_then(|row| after(conn).map(|()| row))
        .map_err(|error| sqlite_error(error, busy_timeout))
}

/// Every write's insert between `BEGIN IMMEDIATE` and `COMMIT`; rolled back on any failure.
/// Gives the ids of the rows written, in the order of `writes`.
fn in_one_transaction(
    conn: &Connection,
    writes: &[QueuedWrite],
    insert: &impl Fn(&Connection, &StoredEntry) -> Result<i64, rusqlite::Error>,
) -> Result<Vec<i64>, rusqlite::Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let written = writes
        .iter()
        .map(|write| insert(conn, &write.entry))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|rows| conn.execute_batch("COMMIT").map(|()| rows));
    if written.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    written
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::may_be_one_write_s;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    /// A group that failed on a lock or the disk gives every write that error at once; only a
    /// failure a row may cause is retried write by write.
    #[test]
    fn only_a_row_s_failure_is_retried_alone() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_FULL,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_CORRUPT,
        ] {
            assert!(!may_be_one_write_s(&failure(code)), "{code}");
        }
        for code in [
            ffi::SQLITE_CONSTRAINT,
            ffi::SQLITE_TOOBIG,
            ffi::SQLITE_MISMATCH,
        ] {
            assert!(may_be_one_write_s(&failure(code)), "{code}");
        }
    }
}
