//! A write or a renewal cut short by its caller (a time limit) after its entry document is
//! in still gives the entry's chunks the entry's retention.

use std::time::{Duration, SystemTime};

use cache_core::CacheStore;
use cache_core::testing::entry;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, doc};

use super::MongoStore;

/// The deletion time (`d`) of the entry document and of each chunk.
async fn deletion_times(store: &MongoStore) -> (Option<Bson>, Vec<Option<Bson>>) {
    let entry = store
        .entries
        .find_one(doc! {})
        .await
        .expect("find the entry")
        .and_then(|entry| entry.get("d").cloned());
    let chunks: Vec<_> = store
        .chunks
        .find(doc! {})
        .projection(doc! { "d": 1 })
        .await
        .expect("find the chunks")
        .try_collect()
        .await
        .expect("read the chunks");
    let chunks = chunks.iter().map(|c| c.get("d").cloned()).collect();
    (entry, chunks)
}

/// The caller stops waiting (its time limit) as the entry document's request goes: one on its
/// way may still land, and the write then gave up the rest, leaving the chunks at their
/// provisional hour; the entry (fresh for a day) read as a miss once the TTL monitor removed them.
/// Everything from the entry document on now runs to its end: the entry is written and its
/// chunks live as long as it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_a_write_cut_after_its_entry_live_as_long_as_it() {
    let collection = test_support::unique_namespace("cut").replace('-', "_");
    let store = MongoStore::builder()
        .collection(collection)
        .open(&test_support::shared_mongo().uri())
        .await
        .expect("connect to the MongoDB-wire server");
    let gate = store.settle_gate.arm();
    let day = Some(SystemTime::now() + Duration::from_secs(24 * 3600));
    let big = entry(1, bytes::Bytes::from(vec![5u8; 9 << 20]), day);
    let putting = tokio::spawn({
        let store = store.clone();
        async move { store.put(big).await }
    });
    gate.reached().await;
    gate.cut(putting).await;
    let mut times = (None, Vec::new());
    for _ in 0..100 {
        times = deletion_times(&store).await;
        let (entry_at, chunks) = &times;
        if entry_at.is_some() && chunks.len() == 3 && chunks.iter().all(|at| at == entry_at) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (entry_at, chunks) = &times;
    assert!(
        entry_at.is_some() && chunks.len() == 3 && chunks.iter().all(|at| at == entry_at),
        "the chunks kept another deletion time than their entry's: {times:?}"
    );
    let day_at = entry_at.clone();

    // A renewal cut the same way (the entry's life extended by a week) moves them too: they
    // kept the day (or the entry did), and went a week before their entry.
    let gate = store.settle_gate.arm();
    let week = Some(SystemTime::now() + Duration::from_secs(7 * 24 * 3600));
    let renewing = tokio::spawn({
        let store = store.clone();
        async move { store.set_expiry(&cache_core::testing::key(1), week).await }
    });
    gate.reached().await;
    gate.cut(renewing).await;
    for _ in 0..100 {
        times = deletion_times(&store).await;
        let (entry_at, chunks) = &times;
        let renewed = entry_at.is_some() && *entry_at != day_at;
        if renewed && chunks.len() == 3 && chunks.iter().all(|at| at == entry_at) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "after the renewal (the entry's time was {day_at:?} before), the entry or its chunks did not take the new time: {times:?}"
    );
}

/// A renewal landing while the write that made the chunks is still settling them: the
/// renewal gave the entry and the chunks a week, then the write's update (sent before)
/// gave the chunks its day, and they went six days before their entry (a miss from then
/// on). A settling reads its entry again after its update, and follows the entry's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_settled_by_a_write_and_a_renewal_at_once_follow_the_entry() {
    let collection = test_support::unique_namespace("settle").replace('-', "_");
    let store = MongoStore::builder()
        .collection(collection)
        .open(&test_support::shared_mongo().uri())
        .await
        .expect("connect to the MongoDB-wire server");
    let day_time =
        cache_core::testing::renew_while_a_write_settles(&store, &store.chunks_gate, 9 << 20).await;
    let (entry_at, chunks) = deletion_times(&store).await;
    let renewed = match &entry_at {
        Some(Bson::DateTime(at)) => at.timestamp_millis(),
        other => panic!("the entry's deletion time: {other:?}"),
    };
    let day_millis = cache_core::time::to_millis(day_time);
    assert!(
        renewed > day_millis + 24 * 3600 * 1000,
        "renewed: {entry_at:?}"
    );
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    assert!(
        chunks.iter().all(|at| *at == entry_at),
        "the chunks kept another deletion time than their entry's ({entry_at:?}): {chunks:?}"
    );
}
