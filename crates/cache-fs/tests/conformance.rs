//! The conformance suite against a fresh cache directory per test.

use std::sync::Arc;

use cache_core::CacheStore;
use cache_core::testing::StoreUnderTest;
use cache_fs::FsStore;

async fn fs_store() -> StoreUnderTest {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cache");
    let store = FsStore::open(&path).expect("open the cache directory");
    StoreUnderTest::new(Arc::new(store))
        .with_reopen(move || {
            let path = path.clone();
            async move { Arc::new(FsStore::open(&path).expect("reopen")) as Arc<dyn CacheStore> }
        })
        .with_guard(dir)
}

cache_core::store_conformance_tests!(fs_store);
