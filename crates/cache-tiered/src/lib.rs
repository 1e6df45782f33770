//! A memory tier for [reqwest-caching](https://crates.io/crates/reqwest-caching) stores:
//! [`TieredStore`] puts a bounded [`MemoryStore`](cache_core::MemoryStore) in front of any
//! [`CacheStore`](cache_core::CacheStore), so a hit on a shared remote store (Redis,
//! MongoDB, DynamoDB) is served from the process's memory, and keeps it coherent with what
//! other processes write.
//!
//! | backing store | how other processes' changes reach memory | bound on staleness |
//! |---|---|---|
//! | Redis, one server (feature `redis`) | [`RedisInvalidations`]: server-assisted invalidation (`CLIENT TRACKING`, broadcast mode, RESP3 pushes) | the notice's latency (about a millisecond on loopback); [`TieredStore::sync`] for none |
//! | any other (MongoDB, DynamoDB, SQLite, files, a Redis Cluster) | not at all: copies live at most the memory TTL | [`DEFAULT_MEMORY_TTL`] (1 s) or what you set |
//!
//! ```no_run
//! # async fn run() -> Result<(), cache_core::StoreError> {
//! use cache_tiered::TieredStore;
//! use std::time::Duration;
//!
//! // A store without notifications: another process's change is seen within 250 ms.
//! let backing = cache_core::MemoryStore::new(); // stands for MongoStore, DynamoStore, ...
//! let store = TieredStore::builder(backing)
//!     .memory_ttl(Duration::from_millis(250))
//!     .build()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Give the result to the middleware as any other store. With Redis, see
//! [`RedisInvalidations`].
//!
//! # Writing an invalidation source
//!
//! Implement [`InvalidationSource`] for a store whose server can notify changes (MongoDB
//! change streams, DynamoDB streams): report changed keys to the [`InvalidationSink`], and
//! tell it when the subscription is lost and regained.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod decoded;
mod invalidation;
#[cfg(feature = "redis")]
mod redis;
mod store;
mod tier;

pub use invalidation::{InvalidationSink, InvalidationSource};
#[cfg(feature = "redis")]
pub use redis::RedisInvalidations;
pub use store::{DEFAULT_MEMORY_TTL, TierStats, TieredStore, TieredStoreBuilder};
