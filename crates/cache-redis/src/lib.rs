//! The Redis store for [reqwest-caching](https://crates.io/crates/reqwest-caching): one Redis
//! server or a Redis Cluster, entries expiring by Redis's own TTLs.
//!
//! ```no_run
//! use cache_redis::RedisStore;
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), cache_core::StoreError> {
//! let store = RedisStore::builder()
//!     .prefix("my-app-http")                       // a namespace: caches can share a server
//!     .ttl_offset(Some(Duration::from_secs(3600))) // keep stale entries an hour to revalidate
//!     .open("redis://127.0.0.1:6379/")
//!     .await?;
//! let cluster = RedisStore::builder()
//!     .open_cluster(["redis://10.0.0.1:7000/", "redis://10.0.0.2:7000/"])
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Each entry is a hash at `{prefix}:{key}` with fields `u` (URL), `c` (created, Unix ms),
//! `x` (expires, Unix ms, empty for never), `v` (the encoded response) and, where it has them,
//! `g` (its URL group) and `p` (the key whose Vary index it is a variant of), written in one
//! `MULTI` with its TTL. An entry is kept `ttl_offset` past its expiry (default one hour) so it
//! can still be revalidated, then Redis deletes it (checked on every read, so no entry outlives
//! its TTL even before Redis's background sweep). `ttl_offset(None)` keeps entries until
//! deleted.
//!
//! A URL group's entries (a URL's methods and variants) are listed in a set at
//! `{prefix}:g:{group}`, kept at least as long as the longest-lived of them: `SADD` and
//! `PEXPIREAT ... NX` / `GT` in the entry's `MULTI` (a plain `PEXPIREAT` to 9999-12-31 for an
//! entry kept for good; on a cluster, a transaction of their own), or a Lua script from the
//! first time a server refuses those options (servers older than Redis 7.0). One new key in
//! eight (chosen by its digest) has its adds read the set's size (`SCARD`; the script reads it
//! on every add, inside the server); over 64 members,
//! its writes check 32 random members and remove those whose entries are gone (expired, deleted,
//! evicted), so a URL that keeps getting new keys (a token per user) has a set some 40 %
//! larger than its live entries at most, where it grew by every key it ever had. A lookup of
//! the URL removes the gone members it reads. Removals check each entry again as they remove
//! its member (a script on a single server; a cluster reads what it removed again and adds
//! back any written since). A cluster adds an entry's member before writing the entry and
//! again after, whatever the write's reply.
//!
//! Listing, counting and clearing use `SCAN` (never `KEYS`) within the prefix, on every primary
//! of a cluster. Connections reconnect by themselves (`ConnectionManager`, the cluster client).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod command;
mod connection;
mod group_sets;
mod store;

pub use store::{MAX_VALUE_BYTES, RedisStore, RedisStoreBuilder};

/// Re-exported so users name the same version this crate uses.
pub use redis;
