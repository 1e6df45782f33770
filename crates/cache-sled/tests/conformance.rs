//! The conformance suite against a real sled database per test.

use std::sync::Arc;

use cache_core::CacheStore;
use cache_core::testing::StoreUnderTest;
use cache_sled::SledStore;

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
        .with_guard(dir)
}

cache_core::store_conformance_tests!(sled_store);
