//! The SQLite store for [reqwest-caching](https://crates.io/crates/reqwest-caching): one file,
//! no server, safe for many tasks and several processes at once. It is the default store.
//!
//! ```
//! use cache_core::{CacheStore, EntryMeta, StoredEntry};
//! use cache_sqlite::SqliteStore;
//!
//! # let dir = tempfile::tempdir()?;
//! # let demo_cache = dir.path().join("demo_cache");
//! // Creates (or opens) `demo_cache.sqlite`, as requests-cache's `CachedSession("demo_cache")`.
//! let store = SqliteStore::open(&demo_cache)?;
//! assert!(store.path().ends_with("demo_cache.sqlite"));
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let key = "00112233445566778899aabbccddeeff".parse()?;
//! let meta = EntryMeta::new(key, "https://example.com/", std::time::SystemTime::now(), None);
//! store.put(StoredEntry::new(meta, bytes::Bytes::from_static(b"encoded entry"))).await?;
//! assert_eq!(store.get(&key).await?.unwrap().value, "encoded entry");
//! assert_eq!(store.count().await?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it uses SQLite
//!
//! - WAL journal with `synchronous = NORMAL`: readers never block the writer or each other, a
//!   crash never corrupts the file, and a power loss can lose at most the last few writes
//!   (a cache can afford that).
//! - A busy timeout (default 10 s) so processes sharing the file wait for each other instead of
//!   failing with "database is locked".
//! - Every call runs on Tokio's blocking pool, never on the async worker threads. One writer
//!   connection and a few reader connections per store.
//! - Expiry is indexed, so `delete_expired` does not scan the table.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod connection;
mod store;

pub use store::{MAX_VALUE_BYTES, SqliteStore, SqliteStoreBuilder};

/// Re-exported so users name the same version this crate uses.
pub use rusqlite;
