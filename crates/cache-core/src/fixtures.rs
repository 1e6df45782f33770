//! Fixtures shared by the unit tests and the conformance suite.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use url::Url;

use std::time::{Duration, SystemTime};

use crate::{CacheKey, CachedRequest, CachedResponse, EntryMeta, StoredEntry};

/// A response with repeated and non-UTF-8 header values, for codec round trips.
pub fn sample_response() -> CachedResponse {
    let mut headers = HeaderMap::new();
    headers.append("content-type", HeaderValue::from_static("text/plain"));
    headers.append("set-cookie", HeaderValue::from_static("a=1"));
    headers.append("set-cookie", HeaderValue::from_static("b=2"));
    headers.append(
        "x-raw",
        HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is valid"),
    );
    let url = Url::parse("https://example.com/final").expect("valid URL");
    CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        headers,
        Bytes::from_static(b"hello body"),
        url.clone(),
        CachedRequest::new(Method::GET, url, HeaderMap::new()),
    )
}

/// A key derived from `n`, so scenarios can make many distinct ones.
pub fn key(n: u64) -> CacheKey {
    tagged_key(b"conf-key", n)
}

/// A key made of a tag and a number: distinct for every (tag, n), with no HTTP rules involved
/// (a store sees keys as opaque).
fn tagged_key(tag: &[u8; 8], n: u64) -> CacheKey {
    let mut digest = [0u8; 16];
    digest[..8].copy_from_slice(tag);
    digest[8..].copy_from_slice(&n.to_be_bytes());
    CacheKey::from_digest(digest)
}

/// The time entries are stamped with: this process's start, to the second, so that stores
/// with server-side TTLs keep the entries the scenarios write.
pub(crate) fn base_time() -> SystemTime {
    static BASE: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs())
    })
}

/// An entry under `key(n)` with the given value and expiry.
pub fn entry(n: u64, value: Bytes, expires_at: Option<SystemTime>) -> StoredEntry {
    let meta = EntryMeta::new(
        key(n),
        format!("https://conformance.test/item/{n}"),
        base_time(),
        expires_at,
    );
    StoredEntry::new(meta, value)
}

/// A URL group derived from `n` (see [`EntryMeta::url_group`]).
pub fn group(n: u64) -> CacheKey {
    tagged_key(b"conf-grp", n)
}

/// [`entry`] in URL group `group(g)`, a variant of `key(parent)` when given.
pub fn grouped_entry(n: u64, g: u64, parent: Option<u64>) -> StoredEntry {
    let mut stored = entry(n, Bytes::from(format!("grouped {n}")), None);
    stored.meta = stored
        .meta
        .with_url_group(Some(group(g)))
        .with_variant_of(parent.map(key));
    stored
}
