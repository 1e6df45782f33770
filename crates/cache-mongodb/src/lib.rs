//! The MongoDB store for [reqwest-caching](https://crates.io/crates/reqwest-caching).
//!
//! ```no_run
//! use cache_mongodb::MongoStore;
//!
//! # async fn run() -> Result<(), cache_core::StoreError> {
//! let store = MongoStore::builder()
//!     .database("my_app")
//!     .collection("http_cache")
//!     .open("mongodb://127.0.0.1:27017/")
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! One collection per cache: a document per entry with `_id` (the key), `u` (URL), `c`
//! (created), `x` (expires), `d` (when MongoDB may delete it: expiry plus `ttl_offset`, default
//! one hour, kept so stale entries can be revalidated) and the value `v`. A TTL index on `d`
//! (`expireAfterSeconds: 0`) is created on open; the TTL monitor runs about once a minute, so
//! `d` is also checked on every read.
//!
//! Documents are limited to 16 MB. Values over 8 MiB (with the URL) go to a second collection
//! (`{collection}_chunks`) in 4 MiB chunks of one generation; the entry document, written
//! last, names the generation and the chunk count, so a reader never assembles half an
//! entry, and a reader racing an overwrite sees a miss, never a mix. The entry document
//! holds the URL: one over 15 MiB is refused (`StoreError::TooLarge`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod documents;
mod store;

pub use store::{MongoStore, MongoStoreBuilder};

/// Re-exported so users name the same version this crate uses.
pub use mongodb;
