//! Several processes on one file, and processes killed mid-write.
//!
//! Each test runs this test binary again as its child processes: the child is the same test
//! function, started with `CHILD_ROLE` set, and plays its part instead of the parent's.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cache_core::{CacheKey, CacheStore, EntryMeta, StoredEntry};
use cache_sqlite::SqliteStore;

const CHILD_ROLE: &str = "CACHE_SQLITE_TEST_CHILD";
const CHILD_PATH: &str = "CACHE_SQLITE_TEST_PATH";
const CHILD_ID: &str = "CACHE_SQLITE_TEST_ID";

fn key(owner: u64, n: u64) -> CacheKey {
    CacheKey::from_digest((u128::from(owner) << 64 | u128::from(n)).to_le_bytes())
}

/// A value that proves itself: owner, number and version, then a body whose length and bytes
/// follow from them. Any torn or mixed write fails [`check_value`].
fn value(owner: u64, n: u64, version: u64) -> Bytes {
    let mut out = Vec::new();
    for field in [owner, n, version] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    // From 64 bytes to ~150 KiB: small rows and overflow pages both.
    let len = ((n * 7919 + version * 104_729) % 150_000) as usize + 64;
    let seed = owner ^ n.rotate_left(17) ^ version.rotate_left(33);
    out.extend((0..len).map(|i| (seed.wrapping_add(i as u64 * 31) % 251) as u8));
    Bytes::from(out)
}

fn check_value(key_owner: u64, key_n: u64, stored: &StoredEntry) -> Result<u64, String> {
    let field = |i: usize| {
        stored
            .value
            .get(i * 8..i * 8 + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .ok_or("value shorter than its header")
    };
    let (owner, n, version) = (field(0)?, field(1)?, field(2)?);
    if (owner, n) != (key_owner, key_n) {
        return Err(format!(
            "value of {owner}/{n} under key {key_owner}/{key_n}"
        ));
    }
    if stored.value != value(owner, n, version) {
        return Err(format!("{owner}/{n} v{version}: body damaged"));
    }
    if stored.meta.url != url(owner, n) {
        return Err(format!("{owner}/{n}: metadata of another entry"));
    }
    Ok(version)
}

fn url(owner: u64, n: u64) -> String {
    format!("https://example.com/{owner}/{n}")
}

fn entry(owner: u64, n: u64, version: u64) -> StoredEntry {
    let meta = EntryMeta::new(key(owner, n), url(owner, n), SystemTime::now(), None);
    StoredEntry::new(meta, value(owner, n, version))
}

/// Starts this test again as a child process playing `role`.
fn spawn_child(test: &str, role: &str, path: &Path, id: u64) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, role)
        .env(CHILD_PATH, path)
        .env(CHILD_ID, id.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child process")
}

fn child_role() -> Option<(String, std::path::PathBuf, u64)> {
    let role = std::env::var(CHILD_ROLE).ok()?;
    let path = std::env::var(CHILD_PATH).expect("child path").into();
    let id = std::env::var(CHILD_ID)
        .expect("child id")
        .parse()
        .expect("id");
    Some((role, path, id))
}

/// Waits for `marker` on the child's stdout and returns the rest of its line from there
/// (the test harness prints its own text before it on the same line).
fn wait_for_line(child: &mut Child, marker: &str) -> String {
    let stdout = child.stdout.as_mut().expect("child stdout");
    next_line_with(&mut BufReader::new(stdout).lines(), marker)
}

/// Like [`wait_for_line`], on a reader kept across calls (a new one would lose what the
/// last one had buffered).
fn next_line_with<R: BufRead>(lines: &mut std::io::Lines<R>, marker: &str) -> String {
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(at) = line.find(marker) {
                    return line[at..].to_owned();
                }
            }
            other => panic!("child ended before printing {marker:?}: {other:?}"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------------------------------------

/// The writer killed with SIGKILL: writes, overwrites and deletes in a loop.
async fn crash_writer(path: &Path, id: u64) {
    let store = SqliteStore::open(path).expect("child opens the file");
    let mut version = id * 1_000_000;
    println!("ready");
    // Killed long before this; the deadline only ends an orphan whose parent died.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        for n in 0..200 {
            version += 1;
            store.put(entry(0, n, version)).await.expect("put");
            if n % 7 == 0 {
                store.delete(&key(0, (n * 13) % 200)).await.expect("delete");
            }
        }
    }
}

#[test]
fn sigkilled_writers_never_damage_the_file_or_an_entry() {
    const TEST: &str = "sigkilled_writers_never_damage_the_file_or_an_entry";
    if let Some((_, path, id)) = child_role() {
        runtime().block_on(crash_writer(&path, id));
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.sqlite");
    let mut seen_versions = 0u64;
    for round in 1..=20u64 {
        let mut child = spawn_child(TEST, "crash-writer", &path, round);
        wait_for_line(&mut child, "ready");
        // Let it write for a while, at a different point of its loop each round.
        std::thread::sleep(Duration::from_millis(40 + (round * 37) % 160));
        child.kill().expect("SIGKILL"); // SIGKILL on Unix: no destructor, no flush.
        child.wait().expect("reap");

        let conn = rusqlite::Connection::open(&path).expect("the file opens after a crash");
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(integrity, "ok", "round {round}");
        drop(conn);
        let store = SqliteStore::open(&path).expect("the store opens after a crash");
        runtime().block_on(async {
            for n in 0..200 {
                if let Some(stored) = store.get(&key(0, n)).await.expect("read") {
                    check_value(0, n, &stored).unwrap_or_else(|e| panic!("round {round}: {e}"));
                    seen_versions += 1;
                }
            }
        });
    }
    assert!(seen_versions > 0, "the writers wrote something");
    println!("20 SIGKILLs survived; {seen_versions} entries verified intact");
}

// ---------------------------------------------------------------------------------------------

const PROCESSES: u64 = 4;
const TASKS: u64 = 8;
const WRITES_PER_TASK: u64 = 40;

/// Wall-clock nanoseconds: comparable between processes on one machine.
fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// One of several processes: 8 tasks each write their own entries and read everyone's. Half
/// way it prints `half` and waits for `go` on stdin, so every process is still writing after
/// all have started; it reports `interval {start} {end}` of its writes, then `errors {n}`.
async fn busy_process(path: &Path, id: u64) {
    let store = std::sync::Arc::new(SqliteStore::open(path).expect("open"));
    let started = now_nanos();
    let mut errors = write_entries(&store, id, 0..WRITES_PER_TASK / 2).await;
    println!("half");
    let go = tokio::task::spawn_blocking(|| {
        std::io::stdin()
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("go"))
    });
    assert!(go.await.expect("stdin reader"), "stdin closed before go");
    errors.extend(write_entries(&store, id, WRITES_PER_TASK / 2..WRITES_PER_TASK).await);
    let ended = now_nanos();
    println!("interval {started} {ended}");
    println!("errors {}", errors.len());
    for error in errors {
        println!("error: {error}");
    }
}

/// Each task writes entries `range` of its own and reads another process's; the errors.
async fn write_entries(
    store: &std::sync::Arc<SqliteStore>,
    id: u64,
    range: std::ops::Range<u64>,
) -> Vec<String> {
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = std::sync::Arc::clone(store);
            let range = range.clone();
            tokio::spawn(async move {
                let owner = id * 100 + task;
                for n in range {
                    store.put(entry(owner, n, 1)).await?;
                    // Read entries other processes are writing at the same time.
                    let other = ((id + 1) % PROCESSES) * 100 + task;
                    if let Some(stored) = store.get(&key(other, n)).await? {
                        check_value(other, n, &stored).expect("intact entry from another process");
                    }
                }
                Ok::<_, cache_core::StoreError>(())
            })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        if let Err(error) = task.await.expect("task") {
            errors.push(format!("{error} ({error:?})"));
        }
    }
    errors
}

#[test]
fn four_processes_of_eight_tasks_share_one_file_without_lock_errors_or_lost_writes() {
    const TEST: &str =
        "four_processes_of_eight_tasks_share_one_file_without_lock_errors_or_lost_writes";
    if let Some((_, path, id)) = child_role() {
        runtime().block_on(busy_process(&path, id));
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.sqlite");
    // Create the file first so the children do not race to set it up.
    drop(SqliteStore::open(&path).expect("create"));
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|id| spawn_child(TEST, "busy", &path, id))
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|child| BufReader::new(child.stdout.take().expect("child stdout")).lines())
        .collect();
    // Every process halfway before any goes on: their second halves overlap.
    for lines in &mut outputs {
        next_line_with(lines, "half");
    }
    for child in &mut children {
        let stdin = child.stdin.as_mut().expect("child stdin");
        stdin.write_all(b"go\n").expect("tell the child to go on");
        stdin.flush().expect("flush");
    }
    let mut intervals = Vec::new();
    for (id, (child, lines)) in children.iter_mut().zip(&mut outputs).enumerate() {
        let interval = next_line_with(lines, "interval ");
        let times: Vec<u128> = interval
            .split_whitespace()
            .skip(1)
            .map(|t| t.parse().expect("a time"))
            .collect();
        intervals.push((times[0], times[1]));
        let report = next_line_with(lines, "errors ");
        assert_eq!(report, "errors 0", "process {id} surfaced store errors");
        assert!(child.wait().expect("wait").success(), "process {id}");
    }
    let last_start = intervals.iter().map(|i| i.0).max().unwrap();
    let first_end = intervals.iter().map(|i| i.1).min().unwrap();
    assert!(
        last_start < first_end,
        "all four processes were writing at once: {intervals:?}"
    );
    let store = SqliteStore::open(&path).expect("open");
    runtime().block_on(async {
        assert_eq!(
            store.count().await.unwrap(),
            PROCESSES * TASKS * WRITES_PER_TASK,
            "no write lost"
        );
        for id in 0..PROCESSES {
            for task in 0..TASKS {
                for n in 0..WRITES_PER_TASK {
                    let owner = id * 100 + task;
                    let stored = store.get(&key(owner, n)).await.unwrap().expect("written");
                    check_value(owner, n, &stored).unwrap();
                }
            }
        }
    });
}
