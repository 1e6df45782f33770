//! The sled store for [reqwest-caching](https://crates.io/crates/reqwest-caching): an embedded
//! key-value database in a directory, no server, reads without a thread hop.
//!
//! ```no_run
//! use cache_sled::SledStore;
//!
//! let store = SledStore::open("http_cache.sled")?;
//! # Ok::<(), cache_core::StoreError>(())
//! ```
//!
//! # Layout
//!
//! Five trees in one database: `entries` (key → metadata and value, so a read is one lookup
//! and always consistent), `meta` (key → metadata, so listing never reads bodies), `expiry`
//! (expiry time ++ key, so `delete_expired` visits only expired entries), `created` (creation
//! time ++ key, the eviction order under [`SledStoreBuilder::max_bytes`]) and `totals` (the
//! bytes stored). Writes update all five in one sled transaction.
//!
//! # Durability
//!
//! sled writes to its log in memory and flushes it every 500 ms (sled's default): a crash or
//! power loss can lose the writes of the last half second, never corrupt older ones. For a cache
//! that is usually right. [`SledStoreBuilder::flush_every_write`] waits for the flush on every
//! write instead, at a large cost in write latency.
//!
//! sled 0.34 is the stable line; the 1.0 alphas change the on-disk format between releases.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod record;
mod store;

pub use store::{SledStore, SledStoreBuilder};

/// Re-exported so users name the same version this crate uses.
pub use sled;
