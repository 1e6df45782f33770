//! The core of [reqwest-caching](https://crates.io/crates/reqwest-caching): everything the
//! middleware and the storage backends share, and nothing HTTP-client specific.
//!
//! | module | what it holds |
//! |---|---|
//! | [`key`] | [`CacheKey`] and [`KeyRules`]: how a request becomes a stable key |
//! | [`response`] | [`CachedResponse`]: a stored response, rebuilt faithfully |
//! | [`codec`] | the versioned binary envelope entries are stored in |
//! | [`store`] | the [`CacheStore`] trait every backend implements |
//! | [`expiration`] | [`Expiration`] and the [`Clock`] freshness is judged by |
//! | [`cache_control`], [`freshness`], [`vary`] | RFC 9111 directives, lifetimes, ages, variants |
//! | [`http_date`] | HTTP dates in all three forms, read leniently |
//! | [`memory`] | [`MemoryStore`], a bounded in-process store |
//! | `testing` | (feature `testing`) the backend conformance suite |
//!
//! A backend crate implements [`CacheStore`] and nothing else: it stores opaque bytes with a
//! little metadata ([`EntryMeta`]); keys, encoding and HTTP semantics live above it.
//!
//! ```
//! use cache_core::{CacheStore, EntryMeta, MemoryStore, StoredEntry, KeyRules};
//! use std::time::SystemTime;
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! let url = url::Url::parse("https://example.com/a?b=1").unwrap();
//! let key = KeyRules::default().key(&http::Method::GET, &url, &http::HeaderMap::new(), None);
//! let meta = EntryMeta::new(key, url.as_str(), SystemTime::now(), None);
//! store.put(StoredEntry::new(meta, bytes::Bytes::from_static(b"encoded"))).await.unwrap();
//! assert!(store.get(&key).await.unwrap().is_some());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     futures_util::FutureExt::now_or_never(f).expect("memory store never waits")
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cache_control;
pub mod codec;
pub mod error;
pub mod expiration;
pub mod freshness;
pub mod http_date;
pub mod key;
pub mod memory;
pub mod response;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod vary;

#[cfg(any(test, feature = "testing"))]
mod fixtures;

pub use codec::{DecodeError, Entry, VaryIndex, decode, decode_entry, encode, encode_vary_index};
pub use error::{BoxError, StoreError};
pub use expiration::{Clock, Expiration, ManualClock, SystemClock};
pub use key::{CREDENTIAL_NAMES, CacheKey, DEFAULT_IGNORED_PARAMETERS, KeyRules, MatchHeaders};
pub use memory::MemoryStore;
pub use response::{CachedRequest, CachedResponse};
pub use store::{CacheStore, EntryMeta, StoredEntry};
