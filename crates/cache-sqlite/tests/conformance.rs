//! The conformance suite against a real SQLite file per test.

use std::sync::Arc;

use cache_core::CacheStore;
use cache_core::testing::StoreUnderTest;
use cache_sqlite::SqliteStore;

async fn sqlite_store() -> StoreUnderTest {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("conformance.sqlite");
    let store = SqliteStore::open(&path).expect("open SQLite store");
    StoreUnderTest::new(Arc::new(store))
        .with_reopen(move || {
            let path = path.clone();
            async move {
                let other: Arc<dyn CacheStore> =
                    Arc::new(SqliteStore::open(&path).expect("reopen SQLite store"));
                other
            }
        })
        .with_shared_within(cache_sqlite::DEFAULT_COMMIT_DELAY)
        .with_guard(dir)
}

cache_core::store_conformance_tests!(sqlite_store);
