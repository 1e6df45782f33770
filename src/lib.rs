#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod age;
mod body;
mod breaker;
mod builder;
mod cache;
mod conditional;
mod decide;
mod entity_tag;
mod error;
mod exchange;
mod file_body;
mod file_pieces;
mod flight;
mod full_retry;
mod handle;
mod info;
mod inspect;
mod invalidate;
mod key_memo;
mod live;
mod lookup;
mod middleware;
mod mode;
mod network;
mod not_modified;
mod observe;
mod pass_on;
mod policy;
mod post_for_get;
mod range;
mod read_index;
#[cfg(feature = "fs")]
mod record_replay;
mod refresh;
mod rekey;
mod request_ext;
mod response_parts;
mod revalidate;
mod runtime_settings;
mod scope;
mod secret_key;
mod serve;
mod settings;
mod sharded_table;
mod sized_body;
mod spool;
mod stale;
mod stats;
mod storable;
mod store_calls;
mod store_response;
mod stored_fields;
mod tee;
pub mod transfer;
mod unfinished_invalidations;
mod unsettled_writes;
mod url_changes;
mod url_patterns;
mod variant_keys;
mod variants;
mod vary_guesses;
mod warnings;

pub use breaker::CircuitOpen;
#[cfg(feature = "sqlite")]
pub use builder::cached_client;
pub use builder::{
    CacheMiddlewareBuilder, DEFAULT_MAX_BODY_SIZE, DEFAULT_REFRESH_TIMEOUT,
    DEFAULT_SINGLE_FLIGHT_WAIT, DEFAULT_SQLITE_PATH, DEFAULT_STALE_IF_ERROR_STATUSES,
    DEFAULT_STORE_TIMEOUT, DEFAULT_STREAM_AFTER,
};
pub use error::{Error, ReplayMiss, StoreError};
pub use handle::{CacheHandle, CachedEntry, WHOLE_STORE_TIMEOUT_FACTOR};
pub use info::{CacheInfo, CacheResponseExt};
pub use inspect::EntryFilter;
pub use middleware::CacheMiddleware;
pub use mode::CacheMode;
pub use rekey::Rekeyed;
pub use request_ext::CacheRequestExt;
pub use runtime_settings::RuntimeSettings;
pub use scope::{CacheScope, disabled};
pub use stale::StaleAllowance;
pub use stats::CacheStats;
pub use url_patterns::UrlPattern;

/// The storage contract: the store trait, keys as stored, the entry codec; for backend authors.
pub use cache_core;
pub use cache_core::codec::SigningKeys;
pub use cache_core::{
    CacheKey, CacheStore, CachedRequest, CachedResponse, EntryMeta, MemoryStore, StoredEntry,
};
/// The HTTP engine: keys from requests, freshness, directives, Vary.
pub use cache_http;

/// The DynamoDB store (feature `dynamodb`).
#[cfg(feature = "dynamodb")]
pub use cache_dynamodb::{self, DynamoStore};
/// The file-system store (feature `fs`).
#[cfg(feature = "fs")]
pub use cache_fs::{self, FsStore};
pub use cache_http::{Clock, Expiration, ManualClock, MatchHeaders, SystemClock};
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
