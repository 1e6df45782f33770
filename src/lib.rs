#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod age;
mod body;
mod breaker;
mod builder;
mod conditional;
mod content_location;
mod error;
mod fetch;
mod flight;
mod handle;
mod info;
mod invalidate;
mod key_memo;
mod middleware;
mod mode;
mod observe;
mod policy;
mod range;
mod refresh;
mod request_ext;
mod response_parts;
mod revalidate;
mod scope;
mod stale;
mod state;
mod stats;
mod storable;
mod stored_fields;
pub mod transfer;
mod url_patterns;
mod variants;

pub use breaker::CircuitOpen;
pub use builder::{
    CacheMiddlewareBuilder, DEFAULT_MAX_BODY_SIZE, DEFAULT_REFRESH_TIMEOUT,
    DEFAULT_SINGLE_FLIGHT_WAIT, DEFAULT_SQLITE_PATH, DEFAULT_STALE_IF_ERROR_STATUSES,
    DEFAULT_STORE_TIMEOUT,
};
pub use error::{Error, StoreError};
pub use handle::{CacheHandle, CachedEntry, WHOLE_STORE_TIMEOUT_FACTOR};
pub use info::{CacheInfo, CacheResponseExt};
pub use middleware::CacheMiddleware;
#[cfg(feature = "sqlite")]
pub use middleware::cached_client;
pub use mode::CacheMode;
pub use request_ext::CacheRequestExt;
pub use scope::{CacheScope, disabled};
pub use stale::StaleAllowance;
pub use stats::CacheStats;

/// The core crate: keys, codec, the store trait; for backend authors.
pub use cache_core;
pub use cache_core::codec::SigningKeys;
pub use cache_core::{
    CacheKey, CacheStore, CachedRequest, CachedResponse, Clock, EntryMeta, Expiration, ManualClock,
    MatchHeaders, MemoryStore, StoredEntry, SystemClock,
};
/// The DynamoDB store (feature `dynamodb`).
#[cfg(feature = "dynamodb")]
pub use cache_dynamodb::{self, DynamoStore};
/// The file-system store (feature `fs`).
#[cfg(feature = "fs")]
pub use cache_fs::{self, FsStore};
/// The MongoDB store (feature `mongodb`).
#[cfg(feature = "mongodb")]
pub use cache_mongodb::{self, MongoStore};
/// The Redis and Redis Cluster store (feature `redis`).
#[cfg(feature = "redis")]
pub use cache_redis::{self, RedisStore};
/// The sled store (feature `sled`).
#[cfg(feature = "sled")]
pub use cache_sled::{self, SledStore};
/// The SQLite store (feature `sqlite`, on by default).
#[cfg(feature = "sqlite")]
pub use cache_sqlite::{self, SqliteStore};
/// Redis invalidations for the memory tier (features `tiered` and `redis`).
#[cfg(all(feature = "tiered", feature = "redis"))]
pub use cache_tiered::RedisInvalidations;
/// The memory tier in front of any store (feature `tiered`).
#[cfg(feature = "tiered")]
pub use cache_tiered::{self, TieredStore};
/// Re-exported so the middleware and your client agree on one version.
pub use reqwest_middleware;
