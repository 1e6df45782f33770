//! A write or a renewal cut short by its caller (a time limit) after its entry item is in
//! still gives the entry's chunks the entry's retention, as does a renewal landing while a
//! write settles them ([`cache_core::testing`]'s scenarios, on DynamoDB Local).

use cache_core::testing::Retention;

use super::DynamoStore;
use crate::items::{DELETE_AT, KEY};

/// The chunks of the 1 MB value the scenarios write.
const CHUNKS: usize = 3;

/// A store on DynamoDB Local, in a table of its own.
async fn store(name: &str) -> DynamoStore {
    DynamoStore::builder()
        .table(test_support::unique_namespace(name))
        .open_local(&test_support::shared_dynamo().endpoint(), "us-east-1")
        .await
        .expect("connect to DynamoDB Local")
}

/// The deletion time (`l`) of the entry item and of each chunk item (keys with a `#`).
async fn deletion_times(store: &DynamoStore) -> Retention {
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
    let mut times = Retention {
        entry: None,
        chunks: Vec::new(),
    };
    for item in items {
        let at = item.get(DELETE_AT).map(|l| {
            let seconds = l.as_n().expect("a number").parse().expect("a number");
            crate::items::from_ttl_seconds(seconds)
        });
        match item[KEY].as_s().expect("a key").contains('#') {
            true => times.chunks.push(at),
            false => times.entry = Some(at),
        }
    }
    times
}

/// The caller stops waiting (its time limit) as the entry item's request goes: one on its
/// way may still land, and the write then gave up the rest, leaving the chunks at their
/// provisional hour; the entry (fresh for a day) read as a miss once DynamoDB removed them.
/// Everything from the entry item on now runs to its end: the entry is written and its
/// chunks live as long as it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_a_write_cut_after_its_entry_live_as_long_as_it() {
    let store = store("cut").await;
    let read = || deletion_times(&store);
    cache_core::testing::chunks_follow_cut_writes_and_renewals(
        &store,
        &store.settle_gate,
        1_000_000,
        CHUNKS,
        read,
    )
    .await;
}

/// A renewal landing while the write that made the chunks is still settling them: the
/// renewal gave the entry and the chunks a week, then the write's updates (sent before)
/// gave the chunks its day, and they went six days before their entry (a miss from then
/// on). A settling reads its entry again after its updates, and follows the entry's time.
#[tokio::test(flavor = "multi_thread")]
async fn chunks_settled_by_a_write_and_a_renewal_at_once_follow_the_entry() {
    let store = store("settle").await;
    let read = || deletion_times(&store);
    cache_core::testing::chunks_follow_a_renewal_landing_as_a_write_settles(
        &store,
        &store.chunks_gate,
        1_000_000,
        CHUNKS,
        read,
    )
    .await;
}
