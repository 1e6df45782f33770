//! The file-system store for [reqwest-caching](https://crates.io/crates/reqwest-caching):
//! a cache directory you can read, diff and commit, one small JSON file and one body file
//! per entry, shared safely by any number of processes.
//!
//! ```
//! use cache_core::{CacheStore, EntryMeta, StoredEntry};
//! use cache_fs::FsStore;
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("http_cache");
//! let store = FsStore::builder().max_bytes(256 * 1024 * 1024).open(&path)?;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let key = "00112233445566778899aabbccddeeff".parse()?;
//! let meta = EntryMeta::new(key, "https://example.com/", std::time::SystemTime::now(), None);
//! store.put(StoredEntry::new(meta, bytes::Bytes::from_static(b"encoded entry"))).await?;
//! assert_eq!(store.get(&key).await?.unwrap().value, "encoded entry");
//! assert!(store.record_path(&key).exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! ```text
//! <dir>/entries/ab/ab12…ef.json               the entry's record (its presence is the entry's)
//! <dir>/entries/ab/ab12…ef.<generation>.body  the response body, as the codec stored it
//! <dir>/entries/ab/.lock                      writers of keys ab… take it; readers never do
//! <dir>/entries/ab/.tmp-…                     files being written (or left by a dead writer)
//! <dir>/groups/<url group>/<key>              empty: the keys stored for one URL
//! ```
//!
//! Entries are spread over 256 directories by the first two hex digits of their key. The
//! record holds the metadata the store reads back (`url`, `created_at_ms`, `expires_at_ms`,
//! `url_group`, `variant_of`, `size`) and, for people, the response decoded: status,
//! version, URL, headers and the request it answered (method, URL, headers), plus the
//! times as HTTP dates. Stored requests are already redacted by the middleware (no
//! credentials, no ignored parameters), so none of this holds a secret.
//!
//! # Why the value is split, not decoded
//!
//! The store is handed the codec's bytes ([`cache_core::codec`]), which may be compressed
//! and signed with a key only the middleware has. Decoding them and encoding again on a
//! read would lose the signature and depend on the codec reproducing the same bytes.
//! Instead the bytes are split where the codec puts the body
//! ([`codec::body_range`](cache_core::codec::body_range)): the body goes to its own file
//! exactly as stored (plain text for an uncompressed body, so a JSON or HTML response is
//! readable and diffable), and the bytes before it (envelope and head, a few hundred
//! bytes) and after it (a signature) go into the record as hex (`value_head`,
//! `value_tail`). A read joins the three back byte for byte. The decoded `response` in the
//! record is a view: it is never read back, and editing it changes nothing. A value that is
//! not a codec entry is stored whole as the body.
//!
//! # Writes, readers and crashes
//!
//! Every file is written under a temporary name and renamed into place, so a reader sees a
//! file whole or not at all. A write writes the body and the record to temporary files,
//! then, holding its shard's lock, renames the body to a new generation's name and the
//! record over the old one (the commit point), then removes the old body. A reader reads
//! the record, then the body it names; if that body was just replaced, it reads the record
//! again. A writer that dies leaves only temporary files (or, between its two renames, a
//! body no record names); readers ignore both and [`FsStore::sweep`] (run at every open)
//! removes them once ten minutes old.
//!
//! # Bodies larger than memory
//!
//! The store implements [`BodyFiles`](cache_core::BodyFiles): a body can be written to a
//! temporary file in its shard as it streams (in batches of 256 KiB on the blocking pool)
//! and committed as an ordinary entry once complete, the same renames as a write; a body
//! dropped before that is removed at once (a killed process leaves a temporary file the
//! sweep removes). Reading, the middleware asks for the body's file instead of its bytes
//! when it is larger than its `max_body_size`, and streams it.
//!
//! # Files edited, committed or shared by hand
//!
//! Anything may sit under the store's names in a directory people edit or share, and the
//! store never writes outside its own directories, never waits on it and never loses an
//! entry for it:
//! - a link is never followed: one under a record's or a body's name is not read, one under
//!   a group marker's name is replaced by the marker, and one under a lock file's name (or
//!   a FIFO) fails the writes of its shard with an error naming it, until it is removed (a
//!   writer removing it could remove a lock another writer had just made and taken);
//! - a directory under a file's name is no entry, and fails no delete or `clear`;
//! - an entry whose body file is gone, or names a body that is not its own or that no file
//!   can have, reads as an unreadable entry: listed, and deleted by key or by `clear`; a
//!   record file over 64 MiB (far more than any record) is unreadable, not read;
//! - the byte bound counts what an entry's files hold, not the `size` its record claims,
//!   and evicts an entry larger than itself first.
//!
//! Writes are not synced to disk: a power loss can lose recent writes, and a file cut
//! short by one reads as a miss (the codec checks lengths), never as a wrong response.
//! Renaming over a file that another process has open is what makes readers safe; that is
//! POSIX behaviour, and this store is tested on Linux.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod layout;
mod ops;
mod record;
mod spool;
mod store;

pub use store::{FsStore, FsStoreBuilder};
