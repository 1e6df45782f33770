//! The HTTP engine of [reqwest-caching](https://crates.io/crates/reqwest-caching): how a
//! request becomes a cache key, how long a response stays fresh, and which stored variant a
//! request selects. Pure functions over `http` types: no I/O, no client, no store.
//!
//! | module | what it holds |
//! |---|---|
//! | [`key`] | [`KeyRules`] and [`MatchHeaders`]: how a request becomes a stable [`CacheKey`](cache_core::CacheKey) |
//! | [`expiration`] | [`Expiration`] and the [`Clock`] freshness is judged by |
//! | [`cache_control`], [`freshness`] | RFC 9111 directives, lifetimes and ages |
//! | [`vary`] | RFC 9111 §4.1: the variant a request selects |
//! | [`http_date`] | HTTP dates in all three forms, read leniently |
//!
//! The storage contract (the `CacheStore` trait, keys as stored, the entry codec) is crate
//! `cache-core`, which a backend needs alone; the middleware (`reqwest-caching`) uses both.
//!
//! ```
//! use cache_http::KeyRules;
//!
//! let rules = KeyRules::default().ignored_parameters(["nonce"]);
//! let url = |s| url::Url::parse(s).unwrap();
//! let get = |u| rules.key(&http::Method::GET, &url(u), &http::HeaderMap::new(), None);
//! // Parameter order and ignored parameters do not change the key.
//! assert_eq!(get("https://example.com/a?b=1&c=2"), get("https://example.com/a?c=2&b=1&nonce=9"));
//! assert_ne!(get("https://example.com/a?b=1"), get("https://example.com/a?b=2"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cache_control;
pub mod expiration;
pub mod freshness;
pub mod http_date;
pub mod key;
pub mod vary;

pub use expiration::{Clock, Expiration, ManualClock, SystemClock};
pub use key::{
    CREDENTIAL_NAMES, DEFAULT_IGNORED_PARAMETERS, KeyRequest, KeyRules, MatchHeaders,
    key_from_parts,
};
