//! The sled store for [reqwest-caching](https://crates.io/crates/reqwest-caching): an embedded
//! key-value database in a directory, no server, reads without a thread hop.
//!
//! ```
//! use cache_core::{CacheStore, EntryMeta, StoredEntry};
//! use cache_sled::SledStore;
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("http_cache.sled");
//! let store = SledStore::builder().max_bytes(256 * 1024 * 1024).open(&path)?;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let key = "00112233445566778899aabbccddeeff".parse()?;
//! let meta = EntryMeta::new(key, "https://example.com/", std::time::SystemTime::now(), None);
//! store.put(StoredEntry::new(meta, bytes::Bytes::from_static(b"encoded entry"))).await?;
//! assert_eq!(store.get(&key).await?.unwrap().value, "encoded entry");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! Six trees in one database: `records` (the key's 16-byte digest → metadata and value, so
//! a read is one lookup and always consistent; earlier versions keyed a tree `entries` by
//! the key's text, and its records move to `records` on open), `bodies` (values of 16 KiB
//! and more, under ids in write order, each pointed to by its record: sled rewrites whole
//! nodes, and large values in nodes all over the tree were rewritten at every write near
//! them), `expiry` (expiry time ++ key, so `delete_expired` visits only expired entries),
//! `created` (creation time ++ key, the eviction order under
//! [`SledStoreBuilder::max_bytes`]), `groups` (URL group ++ key, for lookups by URL) and
//! `totals` (the bytes stored, the database's id and the open mark below). Only a bounded
//! store (and any store beside one on its database) keeps `created` and the byte total,
//! which only eviction reads: a database opened with a bound after writes without one counts
//! and indexes its records again at open.
//!
//! `records` is the truth; the three indexes point into it. A write is not one sled
//! transaction (those cost a log write each, which made a write several times slower): it
//! writes the body (if kept apart), the new index records, then the record, then removes the
//! body and index records the record no longer has, while no other write of that key runs.
//! So a record that can be read is always indexed and has its body, also after a crash. An
//! index record can outlive its entry (a crash between the steps): whoever reads it checks it
//! against the entry and drops it. A body can too: in a crash between its write and its
//! record's (or its record's removal and its own), or when its removal fails. So a process
//! marks the database open in `totals`, at its first open before anything else, and removes
//! the mark when its last store goes (unless a body's removal failed); the first open in a
//! process that finds a mark (a process ended with the database open: a crash, a kill, an
//! exit that dropped nothing) goes over every record and drops the bodies none points to,
//! counting a bounded store's bytes as it goes. A service stopped by a signal it does not
//! handle leaves its mark every time, and its next start goes over the records. A bounded
//! store also drops such bodies whenever it counts its records again (at an open that finds
//! no count, else at its first eviction in a process). Listing and counting read `records` itself, decoding only each record's
//! metadata (sled still reads whole records, so on a cache larger than sled's page cache
//! they read values up to 16 KiB from disk).
//!
//! # Durability
//!
//! sled writes to its log in memory and flushes it every 500 ms (sled's default): a crash or
//! power loss can lose the writes of the last half second, never corrupt older ones. For a cache
//! that is usually right. [`SledStoreBuilder::flush_every_write`] waits for the flush on every
//! write instead, at a large cost in write latency. After a crash, a bounded store's byte total
//! ([`SledStore::live_bytes`]) can be off by the writes that were under way; the next
//! process's first open counts it again (the mark is written before any write, and sled
//! recovers a prefix of its log, so a crash that kept a write kept the mark; after a crash of
//! an earlier version, which writes no mark, the first eviction counts). That pass over every record is what a crash costs the
//! next open: 0.2 s more for 200,000 entries of 1.3 KiB in the page cache, measured here
//! (about a second per million; more from a cold disk).
//!
//! sled 0.34 is the stable line; the 1.0 alphas change the on-disk format between releases.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod index;
mod locks;
mod record;
mod store;

pub use store::{SledStore, SledStoreBuilder};

/// Re-exported so users name the same version this crate uses.
pub use sled;
