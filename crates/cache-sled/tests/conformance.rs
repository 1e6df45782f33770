//! The conformance suite against a real sled database per test.

use std::sync::Arc;

use cache_core::CacheStore;
use cache_core::testing::StoreUnderTest;
use cache_sled::SledStore;

mod hang;

async fn sled_store() -> StoreUnderTest {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path().join("cache.sled")).expect("open sled");
    // sled allows one open per process: a second instance shares the database handle.
    let db = store.db().clone();
    StoreUnderTest::new(Arc::new(store))
        .with_reopen(move || {
            let db = db.clone();
            async move {
                let other = SledStore::builder().with_db(db).expect("trees");
                Arc::new(other) as Arc<dyn CacheStore>
            }
        })
        .with_guard((dir, hang::watch()))
}

cache_core::store_conformance_tests!(sled_store);

/// An entry's decoded copy goes with the entry: deleted, expired and deleted, or cleared.
#[tokio::test]
async fn copies_go_with_their_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path().join("cache.sled")).expect("open sled");
    cache_core::testing::copies_go_with_their_entries(&store, || store.decoded_copies_bytes())
        .await;
}

/// A store that kept a decoded copy sees a write made through another store on the same
/// database at its next read, and a store with copies off decodes every read the same way.
#[tokio::test]
async fn kept_decoded_copies_see_writes_through_another_store() {
    use bytes::Bytes;
    use cache_core::codec::EntryCodec;
    use cache_core::testing::{entry, key, sample_response};
    let dir = tempfile::tempdir().expect("temp dir");
    let reader = SledStore::open(dir.path().join("cache.sled")).expect("open sled");
    let writer = SledStore::builder()
        .decoded_copies(0)
        .with_db(reader.db().clone())
        .expect("trees");
    let codec = EntryCodec::new();
    let value = |text: &'static str| {
        let mut response = sample_response();
        response.body = Bytes::from_static(text.as_bytes());
        cache_core::encode(&response).expect("encodes")
    };
    let body = |store: &SledStore| {
        let decoded = store
            .get_decoded_now(&key(1), &codec)
            .expect("sled answers at once")
            .expect("read")
            .expect("stored")
            .expect("decodes");
        match &decoded.entry {
            cache_core::Entry::Response(response) => response.body.clone(),
            _ => panic!("a response was stored"),
        }
    };
    writer
        .put(entry(1, value("first"), None))
        .await
        .expect("put");
    assert_eq!(body(&reader), "first");
    assert_eq!(body(&reader), "first", "the second read keeps a copy");
    writer
        .put(entry(1, value("other"), None))
        .await
        .expect("put");
    assert_eq!(body(&reader), "other");
    assert_eq!(body(&writer), "other");
    assert!(writer.delete(&key(1)).await.expect("delete"));
    let gone = reader.get_decoded_now(&key(1), &codec).expect("answers");
    assert!(gone.expect("read").is_none());
}
