//! A tiered store over a real Redis, with invalidations from it: what the coherence tests
//! (in one process and across two) each open.

use std::time::Duration;

use cache_redis::RedisStore;
use cache_tiered::{RedisInvalidations, TieredStore};

/// A tiered store over the Redis at `url`, keys under `prefix`; store calls bounded by
/// `timeout` when given (the Redis store's own default otherwise).
pub async fn tiered(url: &str, prefix: &str, timeout: Option<Duration>) -> TieredStore {
    let mut redis = RedisStore::builder().prefix(prefix);
    if let Some(timeout) = timeout {
        redis = redis.timeout(timeout);
    }
    let redis = redis.open(url).await.expect("connect");
    let invalidations = RedisInvalidations::for_store(&redis, url)
        .expect("url")
        // A loaded machine's slow PING answer must not read as a lost subscription.
        .timeout(Duration::from_secs(10));
    TieredStore::builder(redis)
        .invalidations(invalidations)
        .build()
        .await
        .expect("subscribe")
}
