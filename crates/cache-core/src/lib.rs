//! The storage contract of [reqwest-caching](https://crates.io/crates/reqwest-caching): what
//! every backend implements and what it persists, and nothing of HTTP caching policy.
//!
//! | module | what it holds |
//! |---|---|
//! | [`body_files`] | [`BodyFiles`], the optional ability to take and give bodies larger than memory |
//! | [`store`] | the [`CacheStore`] trait, [`EntryMeta`] and [`StoredEntry`] |
//! | [`key`] | [`CacheKey`], the name an entry is stored under |
//! | [`codec`], [`response`] | the versioned envelope a stored value is, and the [`CachedResponse`] inside it |
//! | [`error`] | [`StoreError`] |
//! | [`time`] | timestamps as stores keep them, expiry and retention checks |
//! | [`to_end`] | steps a store finishes once begun, whoever stops waiting |
//! | [`unique`] | names no other write takes, in any process (chunks, files) |
//! | [`memory`] | [`MemoryStore`], a bounded in-process store |
//! | [`orphans`] | the Vary variants a deletion leaves unreachable, found by URL |
//! | [`decoded_copies`] | [`DecodedCopies`](decoded_copies::DecodedCopies): decoded forms of entries a store keeps as bytes, checked against the bytes on every read |
//! | `testing` | (feature `testing`) the backend conformance suite |
//!
//! A backend implements [`CacheStore`] and nothing else: it stores opaque bytes with a little
//! metadata ([`EntryMeta`]) under a [`CacheKey`]. How a request becomes a key, how long a
//! response stays fresh and which variant a request selects are the HTTP engine's business
//! (crate `cache-http`), which no store needs. The codec is here because it defines what a
//! stored value is: a store that keeps values in memory may keep them decoded
//! ([`CacheStore::get_decoded`]), and readable stores (`cache-fs`) lay entries out by it.
//!
//! ```
//! use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoredEntry};
//! use std::time::SystemTime;
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! let key: CacheKey = "00112233445566778899aabbccddeeff".parse().unwrap();
//! let meta = EntryMeta::new(key, "https://example.com/a?b=1", SystemTime::now(), None);
//! store.put(StoredEntry::new(meta, bytes::Bytes::from_static(b"encoded"))).await.unwrap();
//! assert!(store.get(&key).await.unwrap().is_some());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     futures_util::FutureExt::now_or_never(f).expect("memory store never waits")
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod body_files;
pub mod codec;
pub mod decoded_copies;
pub mod error;
mod held;
pub mod key;
pub mod memory;
pub mod orphans;
pub mod response;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod to_end;
pub mod unique;
mod written;

#[cfg(any(test, feature = "testing"))]
mod fixtures;

pub use body_files::{BodyFile, BodyFiles, BodySpool, Opened};
pub use codec::{DecodeError, Entry, VaryIndex, decode, decode_entry, encode, encode_vary_index};
pub use error::{BoxError, StoreError};
pub use key::{CacheKey, InvalidCacheKey};
pub use memory::MemoryStore;
pub use response::{CachedRequest, CachedResponse};
pub use store::{CacheStore, Decoded, EntryMeta, StoredEntry, Undecodable};
