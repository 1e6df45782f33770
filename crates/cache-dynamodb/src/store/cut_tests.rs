//! A write or a renewal cut short by its caller (a time limit) after its entry item is in
//! still gives the entry's chunks the entry's retention.

use std::time::{Duration, SystemTime};

use cache_core::CacheStore;
use cache_core::testing::entry;

use super::DynamoStore;
use crate::items::{DELETE_AT, KEY};

/// The deletion time (`l`) of every item of the store's table, by key.
async fn deletion_times(store: &DynamoStore) -> Vec<(String, Option<String>)> {
    let items = store
        .client
        .scan()
        .table_name(&store.table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default();
    items
        .into_iter()
        .map(|item| {
            let key = item[KEY].as_s().expect("a key").clone();
            let at = item
                .get(DELETE_AT)
                .map(|l| l.as_n().expect("a number").clone());
            (key, at)
        })
        .collect()
}

/// The caller stops waiting (its time limit) as the entry item's request goes: one on its
/// way may still land, and the write then gave up the rest, leaving the chunks at their
/// provisional hour; the entry (fresh for a day) read as a miss once DynamoDB removed them.
/// Everything from the entry item on now runs to its end: the entry is written and its
/// chunks live as long as it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_a_write_cut_after_its_entry_live_as_long_as_it() {
    let store = DynamoStore::builder()
        .table(test_support::unique_namespace("cut"))
        .open_local(&test_support::shared_dynamo().endpoint(), "us-east-1")
        .await
        .expect("connect to DynamoDB Local");
    let gate = store.settle_gate.arm();
    let day = Some(SystemTime::now() + Duration::from_secs(24 * 3600));
    let big = entry(1, bytes::Bytes::from(vec![5u8; 1_000_000]), day);
    let putting = tokio::spawn({
        let store = store.clone();
        async move { store.put(big).await }
    });
    gate.reached().await;
    gate.cut(putting).await;
    let mut times = Vec::new();
    for _ in 0..100 {
        times = deletion_times(&store).await;
        let entry_at = times
            .iter()
            .find(|(k, _)| !k.contains('#'))
            .map(|(_, at)| at);
        if times.len() == 4 && times.iter().all(|(_, at)| Some(at) == entry_at) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entry_at = times
        .iter()
        .find(|(k, _)| !k.contains('#'))
        .map(|(_, at)| at);
    assert!(
        times.len() == 4 && times.iter().all(|(_, at)| Some(at) == entry_at),
        "the chunks kept another deletion time than their entry's: {times:?}"
    );
    let day_at = entry_at.cloned();

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
        let entry_at = times
            .iter()
            .find(|(k, _)| !k.contains('#'))
            .map(|(_, at)| at);
        let renewed = entry_at != day_at.as_ref();
        if renewed && times.len() == 4 && times.iter().all(|(_, at)| Some(at) == entry_at) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "after the renewal (the entry's time was {day_at:?} before), the entry or its chunks did not take the new time: {times:?}"
    );
}

/// A renewal landing while the write that made the chunks is still settling them: the
/// renewal gave the entry and the chunks a week, then the write's updates (sent before)
/// gave the chunks its day, and they went six days before their entry (a miss from then
/// on). A settling reads its entry again after its updates, and follows the entry's time.
#[tokio::test(flavor = "multi_thread")]
async fn chunks_settled_by_a_write_and_a_renewal_at_once_follow_the_entry() {
    let store = DynamoStore::builder()
        .table(test_support::unique_namespace("settle"))
        .open_local(&test_support::shared_dynamo().endpoint(), "us-east-1")
        .await
        .expect("connect to DynamoDB Local");
    let day_time =
        cache_core::testing::renew_while_a_write_settles(&store, &store.chunks_gate, 1_000_000)
            .await;
    let times = deletion_times(&store).await;
    let seconds = |at: &Option<String>| at.as_deref().and_then(|n| n.parse::<u64>().ok());
    let entry_at = times
        .iter()
        .find(|(k, _)| !k.contains('#'))
        .map(|(_, at)| at);
    let renewed_to = entry_at.and_then(seconds).unwrap_or(0);
    let day_seconds = day_time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(renewed_to > day_seconds + 24 * 3600, "renewed: {times:?}");
    assert_eq!(times.len(), 4, "the entry and its three chunks: {times:?}");
    assert!(
        times.iter().all(|(_, at)| Some(at) == entry_at),
        "the chunks kept another deletion time than their entry's: {times:?}"
    );
}
