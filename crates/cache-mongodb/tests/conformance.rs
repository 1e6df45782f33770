//! The conformance suite against a real MongoDB wire-protocol server (secantusdb) started by
//! test-support. Each scenario gets its own collection.

use std::sync::Arc;
use std::time::Duration;

use cache_core::CacheStore;
use cache_core::testing::StoreUnderTest;
use cache_mongodb::MongoStore;
use test_support::{shared_mongo, unique_namespace};

const TTL_OFFSET: Duration = Duration::from_secs(600);

async fn open(collection: String) -> Arc<dyn CacheStore> {
    let store = MongoStore::builder()
        .database("conformance")
        .collection(collection)
        .ttl_offset(Some(TTL_OFFSET))
        .open(&shared_mongo().uri())
        .await
        .expect("connect to the MongoDB-wire server");
    Arc::new(store)
}

async fn mongo_store() -> StoreUnderTest {
    let collection = unique_namespace("c").replace('-', "_");
    StoreUnderTest::new(open(collection.clone()).await)
        .with_retention(TTL_OFFSET)
        .with_reopen(move || open(collection.clone()))
}

cache_core::store_conformance_tests!(mongo_store);

/// A store over `collection`, keeping decoded copies up to `copies` bytes.
async fn store_with_copies(collection: &str, copies: u64) -> MongoStore {
    MongoStore::builder()
        .database("conformance")
        .collection(collection)
        .decoded_copies(copies)
        .open(&shared_mongo().uri())
        .await
        .expect("connect to the MongoDB-wire server")
}

/// A response written with `put_decoded` is read without decoding; not with copies off.
#[tokio::test]
async fn a_written_response_is_read_without_decoding() {
    let with = store_with_copies(&unique_namespace("copies").replace('-', "_"), 1 << 20).await;
    let without = store_with_copies(&unique_namespace("nocopies").replace('-', "_"), 0).await;
    cache_core::testing::written_response_is_read_without_decoding(&with, &without).await;
}

/// An entry's decoded copy goes with the entry: deleted, expired and deleted, or cleared.
#[tokio::test]
async fn copies_go_with_their_entries() {
    let store = store_with_copies(&unique_namespace("copiesgo").replace('-', "_"), 1 << 20).await;
    cache_core::testing::copies_go_with_their_entries(&store, || store.decoded_copies_bytes())
        .await;
}

/// Another client's overwrite, expiry change and delete are read at once by a store holding
/// a copy of the entry before.
#[tokio::test]
async fn another_client_s_writes_are_read_at_once() {
    let collection = unique_namespace("shared").replace('-', "_");
    let reader = store_with_copies(&collection, 1 << 20).await;
    let writer = store_with_copies(&collection, 1 << 20).await;
    cache_core::testing::copies_follow_another_instance(&reader, &writer).await;
}

/// A server that is not there is a transient error, reported within the timeout.
#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let port = test_support::unused_port();
    let err = MongoStore::builder()
        .timeout(Duration::from_millis(500))
        .open(&format!(
            "mongodb://127.0.0.1:{port}/?directConnection=true"
        ))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// The database the stores here write to, read directly.
async fn conformance_database() -> cache_mongodb::mongodb::Database {
    cache_mongodb::mongodb::Client::with_uri_str(shared_mongo().uri())
        .await
        .unwrap()
        .database("conformance")
}

/// Large values are chunked, and replacing them leaves no chunk behind; the TTL index exists.
#[tokio::test]
async fn large_values_are_chunked_and_indexes_created() {
    use cache_mongodb::mongodb::bson::{Document, doc};
    let collection = unique_namespace("chunks").replace('-', "_");
    let store = open(collection.clone()).await;
    let database = conformance_database().await;
    let chunks = database.collection::<Document>(&format!("{collection}_chunks"));
    let big = bytes::Bytes::from(vec![7u8; 20 * 1024 * 1024]);
    store
        .put(cache_core::testing::entry(1, big.clone(), None))
        .await
        .unwrap();
    assert_eq!(
        chunks.count_documents(doc! {}).await.unwrap(),
        5,
        "4 MiB chunks"
    );
    assert_eq!(
        store
            .get(&cache_core::testing::key(1))
            .await
            .unwrap()
            .unwrap()
            .value,
        big
    );
    store
        .put(cache_core::testing::entry(
            1,
            bytes::Bytes::from_static(b"small"),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(
        chunks.count_documents(doc! {}).await.unwrap(),
        0,
        "old chunks removed"
    );
    let entries = database.collection::<Document>(&collection);
    let names = entries.list_index_names().await.unwrap();
    assert!(
        names.iter().any(|n| n.starts_with("d_")),
        "TTL index on d: {names:?}"
    );
}

/// A chunked write over the entry read only: refused over a newer entry, its chunks go and
/// the newer entry's stay; accepted, the replaced entry's chunks go.
#[tokio::test]
async fn a_refused_conditional_write_leaves_no_chunks() {
    use cache_mongodb::mongodb::bson::{Document, doc};
    let collection = unique_namespace("ifchunks").replace('-', "_");
    let store = open(collection.clone()).await;
    let chunks = conformance_database()
        .await
        .collection::<Document>(&format!("{collection}_chunks"));
    cache_core::testing::conditional_writes_of_large_values(&*store, 9 << 20, |after| {
        let chunks = chunks.clone();
        async move {
            let count = chunks.count_documents(doc! {}).await.unwrap();
            assert_eq!(count, 3, "{after}: one entry's three 4 MiB chunks only");
        }
    })
    .await;
}

/// `delete_expired` takes an expired entry's chunks along, and leaves a live one's.
#[tokio::test]
async fn delete_expired_takes_the_chunks_along() {
    use cache_core::testing::{entry, key};
    use cache_mongodb::mongodb::bson::{Document, doc};
    let collection = unique_namespace("expchunks").replace('-', "_");
    let store = open(collection.clone()).await;
    let database = conformance_database().await;
    let chunks = database.collection::<Document>(&format!("{collection}_chunks"));
    let big = bytes::Bytes::from(vec![7u8; 9 * 1024 * 1024]);
    let now = std::time::SystemTime::now();
    let stale = now - Duration::from_secs(1);
    store.put(entry(1, big.clone(), Some(stale))).await.unwrap();
    store.put(entry(2, big.clone(), None)).await.unwrap();
    assert_eq!(chunks.count_documents(doc! {}).await.unwrap(), 6);
    assert_eq!(store.delete_expired(now).await.unwrap(), 1);
    assert_eq!(
        chunks.count_documents(doc! {}).await.unwrap(),
        3,
        "the expired entry's chunks went, the live one's stayed"
    );
    assert!(store.get(&key(1)).await.unwrap().is_none());
    assert_eq!(store.get(&key(2)).await.unwrap().unwrap().value, big);
}

/// A put cut off while its chunks go up (a timeout drops the future) leaves chunks the TTL
/// monitor will remove, even for an entry that would never expire; a completed put confirms
/// its chunks for as long as the entry lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_a_cut_put_are_only_provisional() {
    use cache_mongodb::mongodb::bson::{Bson, Document, doc};
    let collection = unique_namespace("cut").replace('-', "_");
    let store = open(collection.clone()).await;
    let database = conformance_database().await;
    let chunks = database.collection::<Document>(&format!("{collection}_chunks"));
    let big = bytes::Bytes::from(vec![7u8; 20 * 1024 * 1024]);
    let mut cut = false;
    for attempt in 0..5 {
        let put = tokio::spawn({
            let store = Arc::clone(&store);
            let entry = cache_core::testing::entry(attempt, big.clone(), None);
            async move { store.put(entry).await }
        });
        // Cut the put as soon as its first chunk is in.
        while !put.is_finished() && chunks.count_documents(doc! {}).await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if !put.is_finished() {
            put.abort();
            // A put may finish between the look and the abort (its remaining chunks, the
            // entry, the chunks' confirmation): only one stopped before its entry was written
            // was cut.
            let cancelled = put.await.is_err_and(|e| e.is_cancelled());
            let key = cache_core::testing::key(attempt);
            if cancelled && store.get(&key).await.unwrap().is_none() {
                cut = true;
                break;
            }
        }
        store.clear().await.unwrap();
    }
    assert!(cut, "every put finished before it could be cut");
    let left: Vec<Document> = futures_util::TryStreamExt::try_collect(
        chunks
            .find(doc! {})
            .projection(doc! { "v": 0 })
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(!left.is_empty());
    for chunk in &left {
        assert!(
            matches!(chunk.get("d"), Some(Bson::DateTime(_))),
            "a chunk of a cut put is kept for good: {chunk:?}"
        );
    }
    // A complete put of a never-expiring entry confirms its chunks: no deletion time.
    store.clear().await.unwrap();
    store
        .put(cache_core::testing::entry(9, big.clone(), None))
        .await
        .unwrap();
    let confirmed = chunks
        .count_documents(doc! { "d": Bson::Null })
        .await
        .unwrap();
    assert_eq!(confirmed, 5, "all 4 MiB chunks confirmed");
}

/// The largest `$in` list in `document` and the documents within it.
fn largest_in(document: &mongodb::bson::Document) -> usize {
    use mongodb::bson::Bson;
    fn within(value: &Bson) -> usize {
        match value {
            Bson::Document(document) => largest_in(document),
            Bson::Array(items) => items.iter().map(within).max().unwrap_or(0),
            _ => 0,
        }
    }
    document
        .iter()
        .map(|(name, value)| match (name.as_str(), value) {
            ("$in", Bson::Array(items)) => items.len().max(within(value)),
            _ => within(value),
        })
        .max()
        .unwrap_or(0)
}

/// A sweep lists and deletes expired entries a batch at a time: all of them in one `$in`
/// passed MongoDB's 16 MB command limit at about 370,000 entries, and every sweep failed from
/// then on. Here 250 are swept in commands of 100 keys at most, from one listing: a listing
/// per batch read the whole collection again for each (no index answers the sweep's query).
#[tokio::test]
async fn sweeps_delete_in_batches() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;
    let largest = Arc::new(AtomicUsize::new(0));
    let mut options = mongodb::options::ClientOptions::parse(shared_mongo().uri())
        .await
        .expect("options");
    let entry_listings = Arc::new(AtomicUsize::new(0));
    let collection = unique_namespace("sweep").replace('-', "_");
    let seen = Arc::clone(&largest);
    let listed = Arc::clone(&entry_listings);
    let entries = collection.clone();
    options.command_event_handler = Some(mongodb::event::EventHandler::callback(
        move |event: mongodb::event::command::CommandEvent| {
            if let mongodb::event::command::CommandEvent::Started(started) = event {
                seen.fetch_max(largest_in(&started.command), Ordering::SeqCst);
                let lists_entries = started.command_name == "find"
                    && started.command.get_str("find") == Ok(entries.as_str())
                    && started
                        .command
                        .get("filter")
                        .is_some_and(|f| f.as_document().is_some_and(|f| f.contains_key("$or")));
                if lists_entries {
                    listed.fetch_add(1, Ordering::SeqCst);
                }
            }
        },
    ));
    let client = mongodb::Client::with_options(options).expect("client");
    let store = MongoStore::builder()
        .database("conformance")
        .collection(collection)
        .with_client(client)
        .await
        .expect("store");
    let expired = Some(SystemTime::now() - Duration::from_secs(60));
    let value = bytes::Bytes::from_static(b"v");
    let puts = (0..250).map(|n| store.put(cache_core::testing::entry(n, value.clone(), expired)));
    for put in futures_util::future::join_all(puts).await {
        put.expect("put");
    }
    largest.store(0, Ordering::SeqCst);
    assert_eq!(
        store
            .delete_expired(SystemTime::now())
            .await
            .expect("sweep"),
        250
    );
    assert_eq!(
        entry_listings.load(Ordering::SeqCst),
        1,
        "listings of expired entries"
    );
    let largest = largest.load(Ordering::SeqCst);
    assert!(
        (1..=100).contains(&largest),
        "a command listed {largest} keys"
    );
    assert_eq!(store.count().await.expect("count"), 0);
}

/// Documents in the collection whose ids are no keys (another program's) and that look
/// expired are swept with the entries: left out of the listing, a full batch of them came
/// first every time and ended the sweep before any entry.
#[tokio::test]
async fn a_sweep_gets_past_documents_that_are_no_entries() {
    use mongodb::bson::{DateTime, doc, oid::ObjectId};
    use std::time::SystemTime;
    let (store, entries, _) = store_and_collections("sweep_foreign").await;
    let past = DateTime::from_system_time(SystemTime::now() - Duration::from_secs(60));
    let foreign: Vec<_> = (0..100)
        .map(|_| doc! { "_id": ObjectId::new(), "x": past })
        .collect();
    entries.insert_many(foreign).await.expect("insert");
    let expired = Some(SystemTime::now() - Duration::from_secs(60));
    let entry = cache_core::testing::entry(1, bytes::Bytes::from_static(b"v"), expired);
    store.put(entry).await.expect("put");
    let removed = store
        .delete_expired(SystemTime::now())
        .await
        .expect("sweep");
    assert_eq!(removed, 101);
    assert!(
        store
            .get(&cache_core::testing::key(1))
            .await
            .expect("get")
            .is_none(),
        "the expired entry after them was swept"
    );
    assert_eq!(entries.count_documents(doc! {}).await.expect("count"), 0);
}

/// A store over a new collection, and the raw collections under it (entries, chunks).
async fn store_and_collections(
    name: &str,
) -> (
    MongoStore,
    mongodb::Collection<mongodb::bson::Document>,
    mongodb::Collection<mongodb::bson::Document>,
) {
    let collection = unique_namespace(name).replace('-', "_");
    let store = MongoStore::builder()
        .database("conformance")
        .collection(&collection)
        .open(&shared_mongo().uri())
        .await
        .expect("store");
    let client = mongodb::Client::with_uri_str(shared_mongo().uri())
        .await
        .expect("client");
    let database = client.database("conformance");
    let entries = database.collection(&collection);
    let chunks = database.collection(&format!("{collection}_chunks"));
    (store, entries, chunks)
}

/// A value large enough to be kept in chunks (over 8 MiB).
fn chunked_value() -> bytes::Bytes {
    bytes::Bytes::from(vec![b'c'; 9 * 1024 * 1024])
}

/// Inserts chunk 0 of `generation` of `key`'s value with a provisional deletion time, as a
/// write still uploading leaves it (the store confirms chunks once their entry names them).
async fn insert_uploading_chunk(
    chunks: &mongodb::Collection<mongodb::bson::Document>,
    key: &cache_core::CacheKey,
    generation: &str,
) {
    use mongodb::bson::{Binary, DateTime, doc, spec::BinarySubtype};
    let provisional =
        DateTime::from_system_time(std::time::SystemTime::now() + Duration::from_secs(3600));
    chunks
        .insert_one(doc! {
            "_id": format!("{key}:{generation}:0"),
            "k": key.as_str(),
            "g": generation,
            "i": 0_i64,
            "d": provisional,
            "v": Binary { subtype: BinarySubtype::Generic, bytes: vec![b'n'; 16] },
        })
        .await
        .expect("insert");
}

/// The generations of `key`'s chunks.
async fn generations(
    chunks: &mongodb::Collection<mongodb::bson::Document>,
    key: &cache_core::CacheKey,
) -> Vec<String> {
    chunks
        .distinct("g", mongodb::bson::doc! { "k": key.as_str() })
        .await
        .expect("distinct")
        .into_iter()
        .filter_map(|g| g.as_str().map(str::to_owned))
        .collect()
}

/// Chunks kept for good whose entry went without them (a delete, or a rewrite, cut off
/// between its steps) are removed by a sweep: the TTL index never sees them (no deletion
/// time), and no later write or delete of another key would.
#[tokio::test]
async fn a_sweep_removes_chunks_no_entry_names() {
    use mongodb::bson::doc;
    let (store, entries, chunks) = store_and_collections("orphans").await;
    store
        .put(cache_core::testing::entry(1, chunked_value(), None))
        .await
        .expect("put");
    store
        .put(cache_core::testing::entry(2, chunked_value(), None))
        .await
        .expect("put");
    assert_eq!(chunks.count_documents(doc! {}).await.expect("count"), 6);
    // Entry 1 deleted as a delete cut off before its chunks would leave it.
    entries
        .delete_one(doc! { "_id": cache_core::testing::key(1).as_str() })
        .await
        .expect("delete");
    store
        .delete_expired(std::time::SystemTime::now())
        .await
        .expect("sweep");
    assert_eq!(chunks.count_documents(doc! {}).await.expect("count"), 3);
    let two = store.get(&cache_core::testing::key(2)).await.expect("get");
    assert_eq!(two.expect("entry 2 stays").value.len(), 9 * 1024 * 1024);
}

/// A sweep deleting an expired chunked entry leaves the chunks of a write of the same key
/// still uploading (a generation no entry names yet): it deleted every unnamed chunk of the
/// key, and the write then named chunks that were gone, so its entry was lost.
#[tokio::test]
async fn a_sweep_leaves_the_chunks_of_a_write_in_progress() {
    let (store, _entries, chunks) = store_and_collections("uploading").await;
    let key = cache_core::testing::key(1);
    let expired = Some(std::time::SystemTime::now() - Duration::from_secs(60));
    store
        .put(cache_core::testing::entry(1, chunked_value(), expired))
        .await
        .expect("put");
    insert_uploading_chunk(&chunks, &key, "uploading").await;
    assert_eq!(
        store
            .delete_expired(std::time::SystemTime::now())
            .await
            .expect("sweep"),
        1
    );
    assert_eq!(
        generations(&chunks, &key).await,
        ["uploading"],
        "the expired entry's own chunks go, the new write's stay"
    );
}

/// A document under a cache key that is not an entry (another program's) is deleted by the
/// read that finds it, with the chunks of the generation it names, and nothing else of the
/// key: the chunks of a write of the key still uploading stay (the read deleted every chunk of
/// the key, and the write then named chunks that were gone).
#[tokio::test]
async fn a_foreign_document_goes_without_an_upload_in_progress() {
    use mongodb::bson::doc;
    let (store, entries, chunks) = store_and_collections("foreign").await;
    let key = cache_core::testing::key(1);
    entries
        .insert_one(doc! { "_id": key.as_str(), "g": "theirs", "n": "three" })
        .await
        .expect("insert");
    for generation in ["theirs", "uploading"] {
        insert_uploading_chunk(&chunks, &key, generation).await;
    }
    assert!(store.get(&key).await.expect("get").is_none());
    assert_eq!(entries.count_documents(doc! {}).await.expect("count"), 0);
    assert_eq!(generations(&chunks, &key).await, ["uploading"]);
}

/// `set_expiry` renews entries only: a document under the key that is none (another
/// program's, one created before 1970) is left as it was, and the call says nothing was
/// renewed (it said true and added expiry fields to it).
#[tokio::test]
async fn set_expiry_leaves_a_document_that_is_no_entry() {
    use mongodb::bson::{DateTime, doc};
    let (store, entries, _chunks) = store_and_collections("expiry-foreign").await;
    let foreign = [
        doc! { "_id": cache_core::testing::key(1).as_str(), "theirs": "yes" },
        doc! { "_id": cache_core::testing::key(2).as_str(), "c": DateTime::from_millis(-1_000) },
    ];
    for document in &foreign {
        entries.insert_one(document.clone()).await.expect("insert");
    }
    for (n, document) in (1..).zip(&foreign) {
        let key = cache_core::testing::key(n);
        let later = Some(std::time::SystemTime::now() + Duration::from_secs(60));
        assert!(!store.set_expiry(&key, later).await.expect("set_expiry"));
        let kept = entries
            .find_one(doc! { "_id": key.as_str() })
            .await
            .expect("find");
        assert_eq!(kept.as_ref(), Some(document), "unchanged");
    }
}

/// A document created before 1970 (no write makes one) is not an entry: it read as created in
/// 1970, and `delete_if_created` with that time never matched it, so a purge listed it
/// forever. A read deletes it, as any document that is not an entry, and so does a sweep.
#[tokio::test]
async fn a_document_created_before_1970_is_not_an_entry() {
    use mongodb::bson::{Binary, DateTime, doc, spec::BinarySubtype};
    let (store, entries, _chunks) = store_and_collections("before1970").await;
    for n in 1..=2 {
        entries
            .insert_one(doc! {
                "_id": cache_core::testing::key(n).as_str(),
                "u": "https://example.com/",
                "c": DateTime::from_millis(-1_000),
                "x": mongodb::bson::Bson::Null,
                "d": mongodb::bson::Bson::Null,
                "v": Binary { subtype: BinarySubtype::Generic, bytes: b"old".to_vec() },
            })
            .await
            .expect("insert");
    }
    assert!(
        store
            .get(&cache_core::testing::key(1))
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(entries.count_documents(doc! {}).await.expect("count"), 1);
    store
        .delete_expired(std::time::SystemTime::now())
        .await
        .expect("sweep");
    assert_eq!(entries.count_documents(doc! {}).await.expect("count"), 0);
}

/// A document whose deletion time is past, or is no date (a number or a string written by
/// hand), is removed by a sweep, expired or not: no read matches it (reads keep documents
/// whose time is later than now, and a number is never later than a date), the TTL monitor
/// passes over a time that is no date, and the sweep took expired documents only, so it
/// stayed for good.
#[tokio::test]
async fn a_document_past_or_without_a_date_of_deletion_is_swept() {
    use mongodb::bson::{Binary, Bson, DateTime, doc, spec::BinarySubtype};
    let (store, entries, _chunks) = store_and_collections("odd-deletion").await;
    let deletion_times = [
        Bson::DateTime(DateTime::from_millis(1_000)),
        Bson::Double(4_102_444_800_000.0),
        Bson::String("tomorrow".to_owned()),
    ];
    for (n, deletion) in (1..).zip(deletion_times) {
        entries
            .insert_one(doc! {
                "_id": cache_core::testing::key(n).as_str(),
                "u": "https://example.com/",
                "c": DateTime::now(),
                "x": Bson::Null,
                "d": deletion,
                "v": Binary { subtype: BinarySubtype::Generic, bytes: b"body".to_vec() },
            })
            .await
            .expect("insert");
    }
    store
        .put(cache_core::testing::entry(
            9,
            bytes::Bytes::from_static(b"kept"),
            None,
        ))
        .await
        .unwrap();
    store
        .delete_expired(std::time::SystemTime::now())
        .await
        .expect("sweep");
    let left: Vec<String> = entries
        .distinct("_id", doc! {})
        .await
        .expect("ids")
        .into_iter()
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        left,
        vec![cache_core::testing::key(9).to_string()],
        "left by the sweep"
    );
}

/// `set_expiry` moves the deletion time of the chunks of the entry it updated, not of every
/// chunk of the key: a rewrite uploading meanwhile (another generation) keeps the time it gave
/// its chunks, where an earlier one would have had them removed under its entry.
#[tokio::test]
async fn set_expiry_moves_only_the_updated_generations_chunks() {
    use mongodb::bson::doc;
    let (store, _entries, chunks) = store_and_collections("renewed-generation").await;
    let key = cache_core::testing::key(1);
    store
        .put(cache_core::testing::entry(1, chunked_value(), None))
        .await
        .expect("put");
    insert_uploading_chunk(&chunks, &key, "uploading").await;
    let uploading = doc! { "_id": format!("{key}:uploading:0") };
    let before = chunks
        .find_one(uploading.clone())
        .await
        .expect("find")
        .expect("chunk");
    let soon = std::time::SystemTime::now() + Duration::from_secs(60);
    assert!(
        store
            .set_expiry(&key, Some(soon))
            .await
            .expect("set_expiry")
    );
    let after = chunks
        .find_one(uploading)
        .await
        .expect("find")
        .expect("chunk");
    assert_eq!(
        after.get("d"),
        before.get("d"),
        "the other generation's time moved"
    );
    assert_eq!(generations(&chunks, &key).await.len(), 2);
}

/// The entry's document holds the URL whatever the value's size: a URL too long for a
/// document is refused as too large (as DynamoDB's is), not with the server's error, which
/// the middleware logs and counts as a store error and which ends a copy rather than skipping the
/// entry. A long URL beside a value that would fit alone goes with the value in chunks, so
/// the document stays within 16 MB.
#[tokio::test]
async fn a_url_too_long_for_a_document_is_too_large() {
    use cache_mongodb::mongodb::bson::{Document, doc};
    let collection = unique_namespace("long_url").replace('-', "_");
    let store = open(collection.clone()).await;
    let chunks = conformance_database()
        .await
        .collection::<Document>(&format!("{collection}_chunks"));
    let entry = |url_len: usize, value_len: usize| {
        let value = bytes::Bytes::from(vec![7u8; value_len]);
        let mut entry = cache_core::testing::entry(1, value, None);
        entry.meta.url = format!("https://example.com/?q={}", "a".repeat(url_len));
        entry
    };
    let refused = store.put(entry(17 << 20, 10)).await;
    assert!(
        matches!(refused, Err(cache_core::StoreError::TooLarge { .. })),
        "{refused:?}"
    );
    assert_eq!(store.count().await.unwrap(), 0, "nothing written");
    let long = entry(9 << 20, 7 << 20);
    store.put(long.clone()).await.unwrap();
    assert_eq!(
        chunks.count_documents(doc! {}).await.unwrap(),
        2,
        "the value in chunks"
    );
    let read = store
        .get(&cache_core::testing::key(1))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(read.meta.url, long.meta.url);
    assert_eq!(read.value, long.value);
}
