//! Long store work runs off the async executor: on a `current_thread` runtime, other tasks
//! (timers among them, and so the middleware's store timeout) keep running while a write
//! evicts thousands of entries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cache_core::{CacheKey, CacheStore, EntryMeta, StoredEntry};
use cache_sled::SledStore;

fn entry(i: u64, size: usize) -> StoredEntry {
    let key = CacheKey::from_digest((u128::from(i) + 1).to_le_bytes());
    let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i);
    let meta = EntryMeta::new(key, format!("https://example.com/{i}"), created, None);
    StoredEntry::new(meta, Bytes::from(vec![b'v'; size]))
}

#[tokio::test(flavor = "current_thread")]
async fn a_timer_fires_while_a_write_evicts_thousands_of_entries() {
    const ENTRIES: u64 = 5_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::open(dir.path().join("db")).expect("open");
    let unbounded = SledStore::builder().with_db(db.clone()).expect("store");
    for chunk in (0..ENTRIES).collect::<Vec<_>>().chunks(500) {
        let writes = chunk.iter().map(|&i| unbounded.put(entry(i, 1024)));
        for result in futures_util::future::join_all(writes).await {
            result.expect("put");
        }
    }
    // The same data under a bound it is far over: the next write evicts nearly everything.
    let bounded = SledStore::builder()
        .max_bytes(64 * 1024)
        .with_db(db)
        .expect("store");

    let writing = Arc::new(AtomicBool::new(false));
    let ticks_while_writing = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (writing, ticks) = (Arc::clone(&writing), Arc::clone(&ticks_while_writing));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if writing.load(Ordering::SeqCst) {
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    // Let the ticker start its first sleep.
    tokio::task::yield_now().await;
    writing.store(true, Ordering::SeqCst);
    bounded.put(entry(ENTRIES, 1024)).await.expect("put");
    writing.store(false, Ordering::SeqCst);
    ticker.abort();

    assert!(
        bounded.count().await.expect("count") < 100,
        "the write evicted"
    );
    assert!(
        ticks_while_writing.load(Ordering::SeqCst) > 0,
        "no timer fired during the write: it ran on the executor's only thread"
    );
}
