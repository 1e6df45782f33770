//! The SQLite file shrinks after deletes (`clear` and `delete_expired`), and a byte bound
//! holds under a write storm.

use bytes::Bytes;
use cache_core::CacheStore;
use cache_core::testing::entry;
use cache_sqlite::SqliteStore;

fn file_size(path: &std::path::Path) -> u64 {
    let wal = path.with_extension("sqlite-wal");
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// The files' size once the writes put are committed: the last of them share a commit
/// that comes within the store's commit delay (1 ms), and only then reach the files, so a
/// size read at once missed up to a batch (4 MiB).
async fn size_once_committed(path: &std::path::Path, at_least: u64) -> u64 {
    for _ in 0..200 {
        let size = file_size(path);
        if size > at_least {
            return size;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    file_size(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_shrinks_after_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrink.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    for n in 0..200 {
        store
            .put(entry(n, Bytes::from(vec![b'z'; 50_000]), None))
            .await
            .unwrap();
    }
    let full = size_once_committed(&path, 9_000_000).await;
    assert!(full > 9_000_000, "10 MB written, file is {full} bytes");
    assert_eq!(store.clear().await.unwrap(), 200);
    let cleared = file_size(&path);
    assert!(
        cleared < 1_000_000,
        "file still {cleared} bytes after clear (was {full})"
    );
}

/// `delete_expired` gives the space of what it deleted back to the file system, keeping the
/// entries that have not expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_shrinks_after_delete_expired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("expired.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let now = std::time::SystemTime::now();
    let past = now - std::time::Duration::from_secs(60);
    for n in 0..200 {
        // 180 expired entries, 20 that never expire.
        let expires = (n >= 20).then_some(past);
        store
            .put(entry(n, Bytes::from(vec![b'e'; 50_000]), expires))
            .await
            .unwrap();
    }
    let full = size_once_committed(&path, 9_000_000).await;
    assert!(full > 9_000_000, "10 MB written, file is {full} bytes");
    assert_eq!(store.delete_expired(now).await.unwrap(), 180);
    let shrunk = file_size(&path);
    assert!(
        shrunk < 2_000_000,
        "file still {shrunk} bytes after deleting 9 of its 10 MB (was {full})"
    );
    assert_eq!(store.count().await.unwrap(), 20, "the live entries stay");
    for n in 0..20 {
        let kept = store.get(&cache_core::testing::key(n)).await.unwrap();
        assert_eq!(kept.expect("kept").value.len(), 50_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_bound_holds_under_a_write_storm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounded.sqlite");
    let store = SqliteStore::builder(&path)
        .max_bytes(2_000_000)
        .open()
        .unwrap();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..100 {
                    store
                        .put(entry(w * 1000 + n, Bytes::from(vec![b'q'; 40_000]), None))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let count = store.count().await.unwrap();
    assert!(
        count * 40_000 <= 2_000_000,
        "{count} entries of 40 kB kept under a 2 MB bound"
    );
    assert!(count >= 10, "eviction keeps recent entries, kept {count}");
    // The entry written last survives the eviction it triggers.
    store
        .put(entry(9_999, Bytes::from(vec![b'l'; 40_000]), None))
        .await
        .unwrap();
    assert!(
        store
            .get(&cache_core::testing::key(9_999))
            .await
            .unwrap()
            .is_some()
    );
}

/// The bound evicts by write order: an entry written again (a renewal) counts as new, and the
/// entries written longest ago go first, whatever their creation times say. The creation-time
/// index earlier versions kept for this is dropped from their files.
#[tokio::test]
async fn the_bound_evicts_the_entries_written_longest_ago() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("order.sqlite");
    {
        // A file as an earlier version left it, with its creation-time index.
        let store = SqliteStore::open(&path).unwrap();
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE INDEX reqwest_cache_entries_created_at ON reqwest_cache_entries(created_at)",
        )
        .unwrap();
    }
    let store = SqliteStore::builder(&path)
        .max_bytes(1_500_000)
        .open()
        .unwrap();
    let index_left: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'reqwest_cache_entries_created_at'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(index_left, 0, "the creation-time index is dropped");

    let value = |byte| Bytes::from(vec![byte; 40_000]);
    // Entry 0 is created "last" (its creation time is in the future) but written first.
    let mut future = entry(0, value(b'f'), None);
    future.meta.created_at = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    store.put(future).await.unwrap();
    for n in 1..20 {
        store.put(entry(n, value(b'a'), None)).await.unwrap();
    }
    // Entry 1 is written again: now the newest.
    store.put(entry(1, value(b'r'), None)).await.unwrap();
    for n in 20..45 {
        store.put(entry(n, value(b'b'), None)).await.unwrap();
    }
    let has = |n| {
        let store = store.clone();
        async move {
            store
                .get(&cache_core::testing::key(n))
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(!has(0).await, "written first: evicted first");
    assert!(!has(2).await, "written early: evicted");
    assert!(has(1).await, "written again: kept");
    assert!(has(44).await, "written last: kept");
}

/// An entry larger than the bound by itself is refused, and the entries stored stay: written,
/// its eviction deleted every other entry, then the entry itself, and its `put` said it was
/// stored. One in bounds still evicts the oldest, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_over_the_bound_alone_is_refused_and_evicts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(dir.path().join("bounded.sqlite"))
        .max_bytes(4 << 20)
        .open()
        .unwrap();
    for n in 0..10 {
        store
            .put(entry(n, Bytes::from(vec![b'k'; 100_000]), None))
            .await
            .unwrap();
    }
    // Over the bound, and just under it (the file's own pages and the row's overflow
    // links take the rest).
    for len in [6 << 20, (4 << 20) - 8 * 1024] {
        let refused = store
            .put(entry(100, Bytes::from(vec![b'b'; len]), None))
            .await;
        assert!(
            matches!(refused, Err(cache_core::StoreError::TooLarge { .. })),
            "{len}: {refused:?}"
        );
        assert_eq!(
            store.count().await.unwrap(),
            10,
            "{len}: the stored entries stay"
        );
        let key = cache_core::testing::key(100);
        assert!(store.get(&key).await.unwrap().is_none());
    }
}

/// The largest value the store says it takes (`max_value_bytes`) is stored and stays: its
/// eviction makes room for it, never deleting it too (it may take every other entry). Also in
/// files of small pages, whose overflow links and pointer map take more of each page: made by
/// the store (`page_size` given as a pragma: with its pointer map) or before it (without).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_value_it_takes_is_stored_and_stays() {
    for (page_size, made_before) in [(512, false), (1024, false), (4096, false), (1024, true)] {
        let what = format!("pages of {page_size}, made before the store: {made_before}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("largest.sqlite");
        if made_before {
            rusqlite::Connection::open(&path)
                .unwrap()
                .execute_batch(&format!(
                    "PRAGMA page_size = {page_size}; CREATE TABLE t (x);"
                ))
                .unwrap();
        }
        let store = SqliteStore::builder(&path)
            .pragma("page_size", page_size.to_string())
            .max_bytes(4 << 20)
            .open()
            .unwrap();
        let file = rusqlite::Connection::open(&path).unwrap();
        let pragma = |name: &str| -> i64 {
            file.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(pragma("page_size"), page_size, "{what}");
        // 2: incremental, which keeps a pointer map.
        assert_eq!(pragma("auto_vacuum") == 2, !made_before, "{what}");
        for n in 0..10 {
            store
                .put(entry(n, Bytes::from(vec![b'k'; 100_000]), None))
                .await
                .unwrap();
        }
        let max = store.max_value_bytes().unwrap();
        let mut largest = entry(100, Bytes::new(), None);
        let len = max as usize - largest.meta.url.len();
        largest.value = Bytes::from(vec![b'l'; len]);
        store.put(largest).await.unwrap();
        let read = store.get(&cache_core::testing::key(100)).await.unwrap();
        assert_eq!(read.expect(&what).value.len(), len, "{what}");
    }
}
