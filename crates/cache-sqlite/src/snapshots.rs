//! The quick readers, and the read transactions they keep open between reads.
//!
//! Every read transaction in WAL mode begins and ends by locking a slot of the WAL index, and
//! SQLite guards those slots with a mutex it shares between every connection to the file in
//! the process (POSIX locks are per process). Under many tasks on several threads, the threads
//! meet on that mutex, and the one that finds it taken sleeps in the kernel: tens of µs on a
//! virtual machine, for a read that takes five. A quick reader therefore keeps its read
//! transaction (its *snapshot*) for the reads after it, and begins a new one only when
//! - something was committed to the file through this process since it began (every writer
//!   counts its commits in [`commits_to`]), so this process's writes are seen at once, or
//! - it is [`SNAPSHOT_REUSE`] old: another process's writes are seen that late at most.
//!
//! An idle snapshot would hold back checkpoints (this process's and others'), so a closer
//! thread ends the snapshots nobody used for [`SNAPSHOT_REUSE`], and exits once none is open.
//! It leaves snapshots in use alone: ending them would only make their next reads begin anew,
//! all at the same moment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How long a quick reader keeps one read transaction: the most a read can lag behind
/// another process's commit.
pub(crate) const SNAPSHOT_REUSE: Duration = Duration::from_millis(1);

/// The closer looks for unused snapshots every this many [`SNAPSHOT_REUSE`] periods. Each
/// time, it takes a CPU from a thread that was running, whose request then waits: every
/// millisecond, that was 2,700 preempted worker threads in a 2-second run of 64 tasks
/// (`perf record -e sched:sched_switch`), a tail of 60-120 µs on 1 % of hits.
const CLOSER_PERIODS: u32 = 10;

/// Commits through this process, per file: every store's writer on the file counts its
/// commits in one counter, so a snapshot begun before one is never used after it.
static COMMITS: LazyLock<Mutex<HashMap<PathBuf, Weak<AtomicU64>>>> =
    LazyLock::new(Default::default);

/// The commit counter of the file at `path` (shared by every store on it in this process).
/// The path is made canonical (the file exists by now), so two spellings of one path share it.
pub(crate) fn commits_to(path: &Path) -> Arc<AtomicU64> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut files = COMMITS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(counter) = files.get(&path).and_then(Weak::upgrade) {
        return counter;
    }
    files.retain(|_, counter| counter.strong_count() > 0);
    let counter = Arc::new(AtomicU64::new(0));
    files.insert(path, Arc::downgrade(&counter));
    counter
}

/// A read transaction a quick reader keeps open.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    began: Instant,
    /// The file's commit count before it began.
    commits: u64,
    /// When a read last used it.
    used: Instant,
}

/// A quick reader's connection and the snapshot it holds, if any.
#[derive(Debug)]
pub(crate) struct QuickConnection {
    pub(crate) conn: Connection,
    snapshot: Option<Snapshot>,
}

impl QuickConnection {
    /// True when its snapshot may serve a read now.
    fn is_current(&self, commits: u64, now: Instant, reuse: Duration) -> bool {
        self.snapshot.is_some_and(|snapshot| {
            snapshot.commits == commits && now.duration_since(snapshot.began) < reuse
        })
    }

    /// True when it holds a snapshot no read used since `since`.
    fn idle_since(&self, since: Instant) -> bool {
        self.snapshot.is_some_and(|snapshot| snapshot.used <= since)
    }

    /// Ends its transaction, if one is open; true when it was a snapshot it kept. A read
    /// transaction's end cannot fail in practice; should it, the rollback after it ends the
    /// transaction all the same.
    fn end_snapshot(&mut self) -> bool {
        let kept = self.snapshot.take().is_some();
        if !self.conn.is_autocommit() && self.conn.execute_batch("COMMIT").is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        kept
    }
}

/// The quick readers and their snapshots.
#[derive(Debug)]
pub(crate) struct QuickReaders {
    connections: Vec<Mutex<QuickConnection>>,
    /// How long a snapshot serves ([`SNAPSHOT_REUSE`]; longer in tests), and how long one
    /// stays open unused.
    reuse: Duration,
    /// Commits to the file through this process.
    commits: Arc<AtomicU64>,
    /// Snapshots open now.
    open: AtomicUsize,
    /// A closer thread is running.
    closing: AtomicBool,
}

impl QuickReaders {
    pub(crate) fn new(
        connections: Vec<Connection>,
        commits: Arc<AtomicU64>,
        reuse: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            connections: connections
                .into_iter()
                .map(|conn| {
                    Mutex::new(QuickConnection {
                        conn,
                        snapshot: None,
                    })
                })
                .collect(),
            reuse,
            commits,
            open: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
        })
    }

    /// A free connection whose snapshot may serve a read now.
    pub(crate) fn current(&self) -> Option<MutexGuard<'_, QuickConnection>> {
        if self.open.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let commits = self.commits.load(Ordering::Acquire);
        let now = Instant::now();
        let mut conn = self
            .connections
            .iter()
            .filter_map(|c| c.try_lock().ok())
            .find(|c| c.is_current(commits, now, self.reuse))?;
        if let Some(snapshot) = &mut conn.snapshot {
            snapshot.used = now;
        }
        Some(conn)
    }

    /// Any free connection, with a new snapshot begun (its old one ended): `None` when all
    /// are busy. Without a snapshot when one cannot begin (no closer thread, or `BEGIN`
    /// failed): then the read is a transaction of its own, as any autocommit read.
    pub(crate) fn any(self: &Arc<Self>) -> Option<MutexGuard<'_, QuickConnection>> {
        let mut conn = self.connections.iter().find_map(|c| c.try_lock().ok())?;
        self.end(&mut conn);
        // Read before the transaction begins: a commit between the two makes the snapshot
        // look older than it is (ended sooner), never newer.
        let commits = self.commits.load(Ordering::Acquire);
        // Counted before the closer is looked for: a closer that finds none open and exits
        // does so before this count, and then this call starts another.
        self.open.fetch_add(1, Ordering::SeqCst);
        if self.ensure_closer() && conn.conn.execute_batch("BEGIN").is_ok() {
            let now = Instant::now();
            conn.snapshot = Some(Snapshot {
                began: now,
                commits,
                used: now,
            });
        } else {
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
        Some(conn)
    }

    /// Ends the transaction of `conn`, if one is open: a read on it failed (the transaction
    /// may be left in any state), or a new snapshot is to begin.
    pub(crate) fn end(&self, conn: &mut QuickConnection) {
        if conn.end_snapshot() {
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Ends the snapshots of the free connections; before a checkpoint that must reach the
    /// end of the log.
    pub(crate) fn end_idle(&self) {
        self.end_unused_since(Instant::now());
    }

    /// Ends the snapshots of free connections no read used since `since`. Returns the
    /// snapshots still open.
    fn end_unused_since(&self, since: Instant) -> usize {
        for connection in &self.connections {
            if let Ok(mut conn) = connection.try_lock() {
                if conn.idle_since(since) {
                    self.end(&mut conn);
                }
            }
        }
        self.open.load(Ordering::SeqCst)
    }

    /// Snapshots open now.
    #[cfg(test)]
    pub(crate) fn open_now(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// True when a closer thread runs (started here if none did).
    fn ensure_closer(self: &Arc<Self>) -> bool {
        if self.closing.swap(true, Ordering::SeqCst) {
            return true;
        }
        let readers = Arc::downgrade(self);
        let started = std::thread::Builder::new()
            .name("sqlite-snapshots".into())
            .spawn(move || close_unused_snapshots(&readers));
        if started.is_err() {
            self.closing.store(false, Ordering::SeqCst);
        }
        started.is_ok()
    }
}

/// The closer thread: every `reuse` ([`SNAPSHOT_REUSE`]), ends the snapshots of free
/// connections that no read used for as long, until none is open or the store is gone.
fn close_unused_snapshots(readers: &Weak<QuickReaders>) {
    loop {
        let Some(period) = readers.upgrade().map(|r| r.reuse) else {
            return;
        };
        std::thread::sleep(period * CLOSER_PERIODS);
        let Some(readers) = readers.upgrade() else {
            return;
        };
        let unused_since = Instant::now()
            .checked_sub(period)
            .unwrap_or_else(Instant::now);
        if readers.end_unused_since(unused_since) > 0 {
            continue;
        }
        readers.closing.store(false, Ordering::SeqCst);
        // A snapshot begun after the sweep saw `closing` still set and counts on this thread.
        if readers.open.load(Ordering::SeqCst) == 0 || readers.closing.swap(true, Ordering::SeqCst)
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_snapshot(began: Instant, commits: u64) -> QuickConnection {
        QuickConnection {
            conn: Connection::open_in_memory().unwrap(),
            snapshot: Some(Snapshot {
                began,
                commits,
                used: began,
            }),
        }
    }

    /// A snapshot serves while no commit came after it and it is younger than the window.
    #[test]
    fn a_snapshot_serves_until_a_commit_or_the_end_of_its_window() {
        let began = Instant::now();
        let window = Duration::from_millis(1);
        let conn = with_snapshot(began, 7);
        assert!(conn.is_current(7, began, window));
        assert!(conn.is_current(7, began + window / 2, window));
        assert!(!conn.is_current(7, began + window, window));
        assert!(!conn.is_current(8, began, window));
        let none = QuickConnection {
            conn: Connection::open_in_memory().unwrap(),
            snapshot: None,
        };
        assert!(!none.is_current(7, began, window));
    }

    /// Idle means unused since the time asked about; a connection without a snapshot is
    /// never idle (there is nothing to end).
    #[test]
    fn a_snapshot_is_idle_when_unused_since() {
        let began = Instant::now();
        let conn = with_snapshot(began, 0);
        assert!(conn.idle_since(began));
        assert!(conn.idle_since(began + Duration::from_millis(1)));
        assert!(!conn.idle_since(began - Duration::from_millis(1)));
        let none = QuickConnection {
            conn: Connection::open_in_memory().unwrap(),
            snapshot: None,
        };
        assert!(!none.idle_since(began));
    }

    /// One counter per file, whatever the spelling of its path; another file has its own.
    #[test]
    fn commit_counters_are_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        std::fs::write(&path, b"").unwrap();
        std::fs::write(dir.path().join("b.sqlite"), b"").unwrap();
        let a = commits_to(&path);
        let again = commits_to(&dir.path().join(".").join("a.sqlite"));
        let b = commits_to(&dir.path().join("b.sqlite"));
        assert!(Arc::ptr_eq(&a, &again));
        assert!(!Arc::ptr_eq(&a, &b));
    }
}
