//! Entries the tiered-store tests write: a key per number, a small text value.

use std::time::SystemTime;

use bytes::Bytes;
use cache_core::{CacheKey, EntryMeta, StoredEntry};

pub fn key(n: u64) -> CacheKey {
    CacheKey::from_digest(u128::from(n).to_le_bytes())
}

/// The entry `value` under `key(n)`, stored now, expiring at `expires_at`.
pub fn entry(n: u64, value: &str, expires_at: Option<SystemTime>) -> StoredEntry {
    let meta = EntryMeta::new(
        key(n),
        format!("https://example.com/{n}"),
        SystemTime::now(),
        expires_at,
    );
    StoredEntry::new(meta, Bytes::from(value.to_owned()))
}
