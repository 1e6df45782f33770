//! The conformance suite against [`MemoryStore`].

use std::sync::Arc;

use cache_core::MemoryStore;
use cache_core::testing::StoreUnderTest;

cache_core::store_conformance_tests!(|| async {
    StoreUnderTest::new(Arc::new(MemoryStore::new()))
});
