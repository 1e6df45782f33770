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
//! - One writer connection and a few reader connections per store. A small read, and a small
//!   write when SQLite's write lock is free at once, run on the calling task (a thread hop
//!   would cost several times the read); everything else runs on Tokio's blocking pool.
//! - Reads on the calling task keep their read transaction for the next reads, for at most
//!   5 ms and never past a commit made through a store on the same file in this process: such
//!   a commit is seen by every read that starts after it (a store's own writes are seen at
//!   once, before their commit: see the shared commits below); a write by another process
//!   (or by the application's own connection) by every read that starts 5 ms after it
//!   commits. (Beginning a read transaction takes a lock SQLite shares between all
//!   connections to the file; under many threads they queue on it; and beginning and ending
//!   one per read cost a single task's hit about half its time.) Within 5 ms of a commit
//!   through this process, and for a lone read (none other in the 5 ms before it), a read
//!   prefers the free writer, whose page cache holds what was just written, and begins no
//!   read transaction to keep.
//! - A write on the calling task joins a transaction the writer keeps open for up to 1 ms
//!   (or 64 writes, or 4 MiB; [`SqliteStoreBuilder::commit_delay`]), and the writes within it
//!   share one commit: a row changes four B-trees, and a commit per row wrote their pages to
//!   the log again for each. The store sees its own writes at once (its reads, deletes and
//!   listings meet every write made before them); other stores and processes once committed.
//!   A crash loses the last millisecond of writes, as a power loss with `synchronous =
//!   NORMAL` loses the last commits; dropping the store commits them. Should SQLite roll
//!   such a transaction back (a full disk, an I/O error), its writes are written again one
//!   by one, so one write's failure stays its own.
//! - Writes that find the writer busy are committed together: one task on the blocking pool
//!   at a time takes every write queued by then into one transaction (such a `put` returns
//!   once its row is committed; a write SQLite refuses in such a group is written again
//!   alone, so its failure stays its own). With 64 tasks missing at once, about 1.4× the
//!   misses per second of a transaction per write.
//! - Expiry is indexed, so `delete_expired` does not scan the table.
//! - The first store opened in a process that has not used SQLite yet turns off SQLite's
//!   memory statistics (`SQLITE_CONFIG_MEMSTATUS`, as SQLite's own performance advice says):
//!   with them on, every allocation SQLite makes takes one process-wide mutex, and readers on
//!   several threads queue on it. They only feed `sqlite3_memory_used` and the heap limits
//!   (`soft_heap_limit` is not enforced without them); an application that wants those opens
//!   any `rusqlite::Connection` before the first store.
#![deny(missing_docs)]
// One call needs it: `connection::turn_off_memory_statistics`.
#![deny(unsafe_code)]

mod connection;
mod group_commit;
mod open_batch;
mod snapshots;
mod store;

pub use open_batch::DEFAULT_COMMIT_DELAY;
pub use store::{DEFAULT_MAX_QUEUED_BYTES, MAX_VALUE_BYTES, SqliteStore, SqliteStoreBuilder};

/// Re-exported so users name the same version this crate uses.
pub use rusqlite;
