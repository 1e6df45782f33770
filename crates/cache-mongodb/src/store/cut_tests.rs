//! A write or a renewal cut short by its caller (a time limit) after its entry document is
//! in still gives the entry's chunks the entry's retention, as does a renewal landing while
//! a write settles them ([`cache_core::testing`]'s scenarios, on the MongoDB-wire server).

use std::time::SystemTime;

use cache_core::testing::Retention;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};

use super::MongoStore;

/// The chunks of the 9 MiB value the scenarios write.
const CHUNKS: usize = 3;

/// A store on the MongoDB-wire server, in a collection of its own.
async fn store(name: &str) -> MongoStore {
    let collection = test_support::unique_namespace(name).replace('-', "_");
    MongoStore::builder()
        .collection(collection)
        .open(&test_support::shared_mongo().uri())
        .await
        .expect("connect to the MongoDB-wire server")
}

/// A document's deletion time (`d`): a date, or null (or none) for never.
fn deletion_time(document: &Document) -> Option<SystemTime> {
    match document.get("d") {
        Some(Bson::DateTime(at)) => Some(cache_core::time::from_millis(at.timestamp_millis())),
        None | Some(Bson::Null) => None,
        Some(other) => panic!("a deletion time that is no date: {other:?}"),
    }
}

/// The deletion time (`d`) of the entry document and of each chunk.
async fn deletion_times(store: &MongoStore) -> Retention {
    let entry = store
        .entries
        .find_one(doc! {})
        .await
        .expect("find the entry")
        .map(|entry| deletion_time(&entry));
    let chunks: Vec<Document> = store
        .chunks
        .find(doc! {})
        .projection(doc! { "d": 1 })
        .await
        .expect("find the chunks")
        .try_collect()
        .await
        .expect("read the chunks");
    let chunks = chunks.iter().map(deletion_time).collect();
    Retention { entry, chunks }
}

/// The caller stops waiting (its time limit) as the entry document's request goes: one on its
/// way may still land, and the write then gave up the rest, leaving the chunks at their
/// provisional hour; the entry (fresh for a day) read as a miss once the TTL monitor removed them.
/// Everything from the entry document on now runs to its end: the entry is written and its
/// chunks live as long as it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_a_write_cut_after_its_entry_live_as_long_as_it() {
    let store = store("cut").await;
    let read = || deletion_times(&store);
    cache_core::testing::chunks_follow_cut_writes_and_renewals(
        &store,
        &store.settle_gate,
        9 << 20,
        CHUNKS,
        read,
    )
    .await;
}

/// A renewal landing while the write that made the chunks is still settling them: the
/// renewal gave the entry and the chunks a week, then the write's update (sent before)
/// gave the chunks its day, and they went six days before their entry (a miss from then
/// on). A settling reads its entry again after its update, and follows the entry's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_settled_by_a_write_and_a_renewal_at_once_follow_the_entry() {
    let store = store("settle").await;
    let read = || deletion_times(&store);
    cache_core::testing::chunks_follow_a_renewal_landing_as_a_write_settles(
        &store,
        &store.chunks_gate,
        9 << 20,
        CHUNKS,
        read,
    )
    .await;
}
