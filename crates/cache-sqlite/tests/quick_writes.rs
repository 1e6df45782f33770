//! Small writes commit on the calling task (no hop to the blocking pool) but never
//! checkpoint there, and never wait there for another connection's lock.

use std::time::Duration;

use bytes::Bytes;
use cache_core::CacheStore;
use cache_core::testing::entry;
use cache_sqlite::SqliteStore;

fn wal_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path.with_extension("sqlite-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// 24 MB of small writes: the log is checkpointed along the way (on the blocking pool), so
/// it stays near SQLite's threshold of 1,000 pages instead of holding everything written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_checkpointed_while_small_writes_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quick.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let mut largest = 0;
    for n in 0..3_000 {
        store
            .put(entry(n, Bytes::from(vec![b'q'; 8_000]), None))
            .await
            .unwrap();
        largest = largest.max(wal_size(&path));
    }
    assert_eq!(store.count().await.unwrap(), 3_000);
    assert!(
        largest < 12_000_000,
        "the log grew to {largest} bytes: nothing checkpointed it"
    );
}

/// Another connection holds SQLite's write lock: the write does not fail at once (as a
/// zero-timeout quick write would) but waits on the blocking pool, and lands once the lock
/// is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_a_lock_held_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.sqlite");
    let store = SqliteStore::builder(&path)
        .busy_timeout(Duration::from_secs(30))
        .open()
        .unwrap();
    let store_ = store.clone();
    let put = while_locked_elsewhere(&path, "the write", async move {
        store_.put(entry(1, Bytes::from_static(b"v"), None)).await
    })
    .await;
    put.expect("the write landed after the lock was released");
    assert!(
        store
            .get(&cache_core::testing::key(1))
            .await
            .unwrap()
            .is_some()
    );
}

/// Reads on the calling task borrow the writer connection with a short busy timeout: they
/// give it its own back, so a delete (which goes straight to the writer, on the blocking
/// pool) still waits for a lock held elsewhere instead of failing after the short one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_the_writer_leave_its_busy_timeout_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lent.sqlite");
    let store = SqliteStore::builder(&path)
        .busy_timeout(Duration::from_secs(30))
        .open()
        .unwrap();
    let key = cache_core::testing::key(1);
    store
        .put(entry(1, Bytes::from_static(b"v"), None))
        .await
        .unwrap();
    let codec = cache_core::codec::EntryCodec::new();
    // "Not now" (`None`) is a right answer while the write's commit holds the writer.
    let mut read_at_once = None;
    for _ in 0..1000 {
        read_at_once = store.get_decoded_now(&key, &codec);
        if read_at_once.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(matches!(read_at_once, Some(Ok(Some(_)))));
    assert!(store.get(&key).await.unwrap().is_some());
    let store_ = store.clone();
    let deleted = while_locked_elsewhere(
        &path,
        "the delete",
        async move { store_.delete(&key).await },
    )
    .await;
    assert!(deleted.expect("deleted once the lock was released"));
}

/// Runs `operation` while another connection holds SQLite's write lock on `path`: it must
/// still be waiting after 300 ms (not given up, not gone around the lock); then the lock is
/// released and what it gave is returned.
async fn while_locked_elsewhere<T: Send + 'static>(
    path: &std::path::Path,
    what: &str,
    operation: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let other = rusqlite::Connection::open(path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let running = tokio::spawn(operation);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !running.is_finished(),
        "{what} gave up or went around the lock"
    );
    other.execute_batch("COMMIT").unwrap();
    running.await.unwrap()
}
