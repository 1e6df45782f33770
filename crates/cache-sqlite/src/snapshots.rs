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
//! thread ends the snapshots nobody used for [`SNAPSHOT_REUSE`] (it looks every
//! [`CLOSER_PERIODS`] of them: an unused snapshot lives about 15 ms at most), and exits once
//! none is open. It leaves snapshots in use alone: ending them would only make their next
//! reads begin anew, all at the same moment. A read that finds a snapshot out of date ends
//! it, and while the store shrinks its file ([`QuickReaders::pause`]) no snapshot begins, so
//! the log can be truncated.
//!
//! "Through this process" means through a store on the same file, found by its canonical
//! path: a commit by the application's own connection (or through a hard link) counts as
//! another process's, seen within [`SNAPSHOT_REUSE`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How long a quick reader keeps one read transaction: the most a read can lag behind
/// another process's commit. Each new one is a slow read (the WAL index's lock, shared by
/// every connection to the file, is met by both workers at once): at 1 ms that was about one
/// read in a hundred, and 64 tasks on SQLite hits had a p99 2.5-4.6× their median (about
/// 23 µs); at 5 ms, 1.9-3.1× (about 18 µs), over nine runs of each
/// (`-- profile-concurrent sqlite`). Another process's commits are seen 5 ms late at most,
/// nothing beside an HTTP freshness counted in seconds.
pub(crate) const SNAPSHOT_REUSE: Duration = Duration::from_millis(5);

/// The closer looks for unused snapshots every this many [`SNAPSHOT_REUSE`] periods (every
/// 10 ms). Each time, it takes a CPU from a thread that was running, whose request then
/// waits: looking every millisecond, that was 2,700 preempted worker threads in a 2-second
/// run of 64 tasks (`perf record -e sched:sched_switch`), a tail of 60-120 µs on 1 % of hits.
pub(crate) const CLOSER_PERIODS: u32 = 2;

/// Commits through this process, per file: every store's writer on the file counts its
/// commits in one counter, so a snapshot begun before one is never used after it.
static COMMITS: LazyLock<Mutex<HashMap<PathBuf, Weak<Commits>>>> = LazyLock::new(Default::default);

/// What [`Commits::last_at`] counts from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The commits to one file through this process: how many, and when the last one was.
#[derive(Debug, Default)]
pub(crate) struct Commits {
    count: AtomicU64,
    /// Microseconds from [`EPOCH`] to the last commit (0: none yet).
    last_at: AtomicU64,
}

impl Commits {
    /// Counts a commit made now.
    pub(crate) fn record(&self) {
        let now = micros_since_epoch(Instant::now());
        // The latest of two writers' times, should they store out of order.
        self.last_at.fetch_max(now, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Release);
    }

    /// How many were counted.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// True when one was made less than `window` before `now`.
    fn within(&self, window: Duration, now: Instant) -> bool {
        let last_at = self.last_at.load(Ordering::Relaxed);
        last_at != 0 && lately(last_at, window, now)
    }
}

/// Microseconds from [`EPOCH`] to `at`, at least 1 (0 stands for "never").
fn micros_since_epoch(at: Instant) -> u64 {
    let since = at.saturating_duration_since(*EPOCH);
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// True when `then` (from [`micros_since_epoch`]) is less than `window` before `now`.
fn lately(then: u64, window: Duration, now: Instant) -> bool {
    let elapsed = micros_since_epoch(now).saturating_sub(then);
    u128::from(elapsed) < window.as_micros()
}

/// The commits to the file at `path` (shared by every store on it in this process).
/// The path is made canonical (the file exists by now), so two spellings of one path share it.
pub(crate) fn commits_to(path: &Path) -> Arc<Commits> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut files = COMMITS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(commits) = files.get(&path).and_then(Weak::upgrade) {
        return commits;
    }
    files.retain(|_, commits| commits.strong_count() > 0);
    let commits = Arc::new(Commits::default());
    files.insert(path, Arc::downgrade(&commits));
    commits
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
    commits: Arc<Commits>,
    /// How often the closer looks for unused snapshots.
    closer_period: Duration,
    /// Snapshots open now.
    open: AtomicUsize,
    /// A closer thread is running. A mutex, not a flag: starting one and seeing it stop
    /// must not interleave (a snapshot could be left with no closer).
    closer_running: Mutex<bool>,
    /// Shrinks in progress: no snapshot begins while one runs.
    pauses: AtomicUsize,
    /// When a read last found no current snapshot (see [`micros_since_epoch`]; 0: never).
    last_unserved_read: AtomicU64,
}

/// A free connection, or `None` when another read holds it. A connection whose holder
/// panicked is free (its snapshot, if any, is ended by whoever takes it next).
fn take(connection: &Mutex<QuickConnection>) -> Option<MutexGuard<'_, QuickConnection>> {
    match connection.try_lock() {
        Ok(conn) => Some(conn),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl QuickReaders {
    /// Quick readers over `connections`; snapshots serve for `reuse` ([`SNAPSHOT_REUSE`]),
    /// the closer looks for unused ones every `closer_period`.
    pub(crate) fn new(
        connections: Vec<Connection>,
        commits: Arc<Commits>,
        reuse: Duration,
        closer_period: Duration,
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
            closer_period,
            open: AtomicUsize::new(0),
            closer_running: Mutex::new(false),
            pauses: AtomicUsize::new(0),
            last_unserved_read: AtomicU64::new(0),
        })
    }

    /// A free connection whose snapshot may serve a read now. Out-of-date snapshots it
    /// passes are ended (they would hold back checkpoints until the closer came).
    pub(crate) fn current(&self) -> Option<MutexGuard<'_, QuickConnection>> {
        if self.open.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let commits = self.commits.count();
        let now = Instant::now();
        for connection in &self.connections {
            let Some(mut conn) = take(connection) else {
                continue;
            };
            if conn.is_current(commits, now, self.reuse) {
                if let Some(snapshot) = &mut conn.snapshot {
                    snapshot.used = now;
                }
                return Some(conn);
            }
            if conn.snapshot.is_some() {
                self.end(&mut conn);
            }
        }
        None
    }

    /// For a read that found no current snapshot: true when it should begin one. Not when
    /// something was committed through this process less than the reuse window ago (a
    /// reader's page cache goes whenever the file changed since its last read, where the
    /// writer's holds what was just written, and commits that come that often would soon end
    /// the snapshot); nor for a lone read, when no other read came within the window before
    /// it (the snapshot would serve no read after it, and the first one open starts the
    /// closer thread).
    pub(crate) fn snapshot_pays(&self) -> bool {
        let now = Instant::now();
        if self.commits.within(self.reuse, now) {
            return false;
        }
        let previous = self
            .last_unserved_read
            .swap(micros_since_epoch(now), Ordering::Relaxed);
        previous != 0 && lately(previous, self.reuse, now)
    }

    /// Any free connection, with a new snapshot begun (its old one ended): `None` when all
    /// are busy. Without a snapshot when one cannot begin (no closer thread, or `BEGIN`
    /// failed): then the read is a transaction of its own, as any autocommit read.
    pub(crate) fn any(self: &Arc<Self>) -> Option<MutexGuard<'_, QuickConnection>> {
        let mut conn = self.connections.iter().find_map(take)?;
        self.end(&mut conn);
        if !conn.conn.is_autocommit() {
            // A transaction that would not end: reading in it could be arbitrarily stale.
            return None;
        }
        if self.pauses.load(Ordering::SeqCst) > 0 {
            return Some(conn);
        }
        // Read before the transaction begins: a commit between the two makes the snapshot
        // look older than it is (ended sooner), never newer.
        let commits = self.commits.count();
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

    /// No snapshot begins until the guard is dropped (reads are transactions of their own
    /// meanwhile), and the idle ones end now: for a shrink, whose checkpoint must reach the
    /// end of the log. Call [`QuickReaders::end_idle`] again just before that checkpoint, for
    /// the snapshots in use now.
    pub(crate) fn pause(&self) -> Paused<'_> {
        self.pauses.fetch_add(1, Ordering::SeqCst);
        self.end_idle();
        Paused(self)
    }

    /// Ends the snapshots of free connections no read used since `since`. Returns the
    /// snapshots still open.
    fn end_unused_since(&self, since: Instant) -> usize {
        for connection in &self.connections {
            if let Some(mut conn) = take(connection) {
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
        let mut running = self
            .closer_running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *running {
            return true;
        }
        let readers = Arc::downgrade(self);
        *running = std::thread::Builder::new()
            .name("sqlite-snapshots".into())
            .spawn(move || close_unused_snapshots(&readers))
            .is_ok();
        *running
    }
}

/// While it lives, no quick reader begins a snapshot (see [`QuickReaders::pause`]).
pub(crate) struct Paused<'a>(&'a QuickReaders);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.pauses.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The closer thread: every `closer_period`, ends the snapshots of free connections that no
/// read used for `reuse`, until none is open or the store is gone.
fn close_unused_snapshots(readers: &Weak<QuickReaders>) {
    loop {
        let Some(period) = readers.upgrade().map(|r| r.closer_period) else {
            return;
        };
        std::thread::sleep(period);
        let Some(readers) = readers.upgrade() else {
            return;
        };
        let unused_since = Instant::now()
            .checked_sub(readers.reuse)
            .unwrap_or_else(Instant::now);
        readers.end_unused_since(unused_since);
        // Under the lock a snapshot's beginning also takes (after counting itself open):
        // either it is counted here, or it finds no closer running and starts one.
        let mut running = readers
            .closer_running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if readers.open.load(Ordering::SeqCst) == 0 {
            *running = false;
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
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let a = commits_to(&path);
        let again = commits_to(&dir.path().join("sub/../a.sqlite"));
        let b = commits_to(&dir.path().join("b.sqlite"));
        assert!(Arc::ptr_eq(&a, &again));
        assert!(!Arc::ptr_eq(&a, &b));
    }

    /// A reader that panicked holding a connection leaves it usable: its snapshot is ended
    /// by the next sweep, and the count of open snapshots comes back to zero (else the log
    /// could never be checkpointed past it).
    #[test]
    fn a_panicking_reader_does_not_leave_its_snapshot_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sqlite");
        let setup = Connection::open(&path).unwrap();
        setup.pragma_update(None, "journal_mode", "WAL").unwrap();
        setup.execute_batch("CREATE TABLE t (x)").unwrap();
        let readers = QuickReaders::new(
            vec![Connection::open(&path).unwrap()],
            Arc::new(Commits::default()),
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        );
        {
            let conn = readers.any().unwrap();
            conn.conn
                .query_row("SELECT count(*) FROM t", [], |_| Ok(()))
                .unwrap();
        }
        assert_eq!(readers.open_now(), 1);
        let holder = Arc::clone(&readers);
        let panicked = std::thread::spawn(move || {
            let _conn = holder.connections[0].lock().unwrap();
            panic!("a read panicked");
        })
        .join();
        assert!(panicked.is_err() && readers.connections[0].is_poisoned());
        readers.end_idle();
        assert_eq!(readers.open_now(), 0);
        assert!(readers.any().is_some(), "the connection serves again");
    }
}
