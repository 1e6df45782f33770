//! End-to-end tests: a cached client against a real origin on 127.0.0.1, over each store.
//! Every test asserts what reached the origin, not only what came back.

mod origin;
mod raw;
mod support;

#[cfg(feature = "fs")]
mod big_bodies;
mod builder_settings;
mod cache_control;
mod composition;
mod decoded_writes;
mod expiration;
mod failures;
#[cfg(any(feature = "sqlite", feature = "redis"))]
mod full_store;
mod gated;
mod handle;
mod hits;
mod integrity;
mod keys;
mod malformed;
mod modes;
mod observability;
mod offline;
mod outage;
mod reachability;
#[cfg(feature = "fs")]
mod record_replay;
mod rfc9111;
mod rules;
mod scope;
mod semantics;
mod single_flight;
mod slow_bodies;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_processes;
mod stale;
mod store_faults;
#[cfg(all(feature = "tiered", feature = "redis"))]
mod tiered;
mod too_large;
mod transfer;
mod vary_reads;
