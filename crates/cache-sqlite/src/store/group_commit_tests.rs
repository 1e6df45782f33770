//! Group commit on a real file: writes queued while the writer is busy are committed together,
//! and a group that fails gives each write its own outcome.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::testing::{entry, key};
use cache_core::{CacheStore, StoreError};

use super::{SqliteStore, TABLE};
use crate::snapshots::commits_to;

const WRITES: u64 = 20;

/// Starts `WRITES` puts (entries 1..=WRITES) while the test holds the writer connection, and
/// waits until every one is queued: none can commit before the writer is let go. Waits on
/// this thread (the puts run on the runtime's workers).
fn queued_while_busy(
    store: &SqliteStore,
) -> (
    std::sync::MutexGuard<'_, rusqlite::Connection>,
    Vec<tokio::task::JoinHandle<Result<(), StoreError>>>,
) {
    let busy = store.inner.writer.lock().unwrap();
    let puts = (1..=WRITES)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put(entry(n, Bytes::from(vec![b'x'; 512]), None))
                    .await
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.inner.queue.len() < WRITES as usize {
        assert!(Instant::now() < deadline, "the puts never queued");
        std::thread::sleep(Duration::from_millis(1));
    }
    (busy, puts)
}

/// Twenty writes waiting for the writer are one commit, not twenty, and each is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_waiting_for_the_writer_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let commits = commits_to(&path);
    let (busy, puts) = queued_while_busy(&store);
    let before = commits.count();
    drop(busy);
    for put in puts {
        put.await.unwrap().unwrap();
    }
    assert_eq!(commits.count() - before, 1, "one group commit");
    for n in 1..=WRITES {
        assert!(store.get(&key(n)).await.unwrap().is_some(), "entry {n}");
    }
}

/// A group whose transaction fails is written again write by write: the write SQLite refuses
/// (here a trigger refuses one key) fails alone, with its own error, and the others are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_in_a_group_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let refused = key(7);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON {TABLE} WHEN NEW.key = '{}'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            refused.as_str()
        ))
        .unwrap();
    let (busy, puts) = queued_while_busy(&store);
    drop(busy);
    for (n, put) in (1..=WRITES).zip(puts) {
        let outcome = put.await.unwrap();
        if n == 7 {
            let error = outcome.expect_err("the refused write fails");
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            assert!(
                cause
                    .as_deref()
                    .is_some_and(|c| c.contains("refused by the test")),
                "{error}: {cause:?}"
            );
            assert!(store.get(&key(n)).await.unwrap().is_none());
        } else {
            outcome.unwrap_or_else(|e| panic!("entry {n} failed with the refused one: {e}"));
            assert!(store.get(&key(n)).await.unwrap().is_some(), "entry {n}");
        }
    }
}

/// A committer dropped without running (as a runtime shutting down drops blocking tasks it has
/// not started) lets the next queued write start another: that write, and the one the dropped
/// committer was for, are committed, where the next write would wait for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committer_dropped_unrun_does_not_stall_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("g.sqlite")).unwrap();
    both_commit_after_a_dropped_committer(&store, Bytes::from_static(b"one")).await;
}

/// Queues entry 1 (`first`) with its committer dropped unrun, then puts entry 2 while the
/// writer is held (so that it queues rather than writes at once); both must be committed,
/// each within 30 s.
async fn both_commit_after_a_dropped_committer(store: &SqliteStore, first: Bytes) {
    let (orphan, start) = store.inner.queue.push(entry(1, first, None)).unwrap();
    assert!(start, "the first queued write starts a committer");
    drop(super::Committer(Some(std::sync::Arc::clone(&store.inner))));
    let busy = store.inner.writer.lock().unwrap();
    let later = {
        let store = store.clone();
        tokio::spawn(async move { store.put(entry(2, Bytes::from_static(b"two"), None)).await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.inner.queue.len() < 2 && !later.is_finished() {
        assert!(Instant::now() < deadline, "the later write never queued");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(busy);
    tokio::time::timeout(Duration::from_secs(30), later)
        .await
        .expect("the later write waited for ever")
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), orphan)
        .await
        .expect("the first write waited for ever")
        .unwrap()
        .unwrap();
    for n in [1, 2] {
        assert!(store.get(&key(n)).await.unwrap().is_some(), "entry {n}");
    }
}

/// While the writer is held, writes wait up to the queue's bytes and the next fails at once
/// with `Full`, storing nothing; those queued are committed once the writer is free, and
/// writes queue again. One write larger than the limit is queued when it waits alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The writer is held across the refused put on purpose: the puts run on other workers.
#[allow(clippy::await_holding_lock)]
async fn writes_waiting_for_the_writer_are_bounded_by_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(dir.path().join("g.sqlite"))
        .max_queued_bytes(4 * 1024)
        .open()
        .unwrap();
    let value = || Bytes::from(vec![b'x'; 1024]);
    let put = |n: u64, value: Bytes| {
        let store = store.clone();
        tokio::spawn(async move { store.put(entry(n, value, None)).await })
    };
    let busy = store.inner.writer.lock().unwrap();
    let queued: Vec<_> = (1..=4).map(|n| put(n, value())).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.inner.queue.len() < 4 {
        assert!(Instant::now() < deadline, "the puts never queued");
        std::thread::sleep(Duration::from_millis(1));
    }
    let refused = tokio::time::timeout(Duration::from_secs(5), put(5, value())).await;
    assert!(
        matches!(refused, Ok(Ok(Err(StoreError::Full { .. })))),
        "not refused at once: {refused:?}"
    );
    drop(busy);
    for put in queued {
        put.await.unwrap().unwrap();
    }
    assert!(
        store.get(&key(5)).await.unwrap().is_none(),
        "refused, not stored"
    );
    let busy = store.inner.writer.lock().unwrap();
    let large = put(6, Bytes::from(vec![b'y'; 16 * 1024]));
    while store.inner.queue.len() < 1 {
        assert!(Instant::now() < deadline, "the large put never queued");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(busy);
    large.await.unwrap().unwrap();
    for n in [1, 2, 3, 4, 6] {
        assert!(store.get(&key(n)).await.unwrap().is_some(), "entry {n}");
    }
}

/// A full queue whose committer was dropped unrun (a runtime shutting down) takes the next
/// write, which starts another committer: both are committed. Refused, the write started
/// nothing, and every later one was refused too, for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_whose_committer_was_dropped_takes_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(dir.path().join("g.sqlite"))
        .max_queued_bytes(1024)
        .open()
        .unwrap();
    both_commit_after_a_dropped_committer(&store, Bytes::from(vec![b'x'; 4096])).await;
}

/// A delete comes after the writes queued before it, even when their committer has not run
/// yet (here none is started): it commits them first, then deletes. Run first, it found
/// nothing, and a write whose caller had stopped waiting landed after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_comes_after_the_writes_queued_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("g.sqlite")).unwrap();
    let written = entry(1, Bytes::from_static(b"queued"), None);
    let (outcome, _start_committer) = store.inner.queue.push(written).unwrap();
    assert!(
        store.delete(&key(1)).await.unwrap(),
        "the queued write, deleted"
    );
    outcome.await.unwrap().unwrap();
    assert!(store.get(&key(1)).await.unwrap().is_none());
    assert_eq!(store.inner.queue.len(), 0);
}

/// A write of the calling task does not overtake the writes queued before it: of two writes
/// of one key, the later stays. It used to commit at once, and the older queued write landed
/// over it when its committer came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_write_queues_behind_the_writes_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("g.sqlite")).unwrap();
    let older = entry(1, Bytes::from_static(b"older"), None);
    let (older_outcome, _start_committer) = store.inner.queue.push(older).unwrap();
    let writing = store.clone();
    let newer = tokio::spawn(async move {
        let newer = entry(1, Bytes::from_static(b"newer"), None);
        writing.put(newer).await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !newer.is_finished() && store.inner.queue.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the newer write neither queued nor finished"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // The committer the first write would have started.
    store.inner.commit_queued();
    newer.await.unwrap().unwrap();
    older_outcome.await.unwrap().unwrap();
    let read = store.get(&key(1)).await.unwrap().unwrap();
    assert_eq!(read.value, "newer");
}
