//! What the in-memory bounds count against what entries really hold: a `MemoryStore`'s
//! entries and a store's decoded copies are weighed at their bytes plus an estimate of their
//! decoded form (header maps, URLs, allocations), and the estimate must be near what the heap
//! really gives them, or a bound of 100 MiB holds 200.
//!
//! Its own test binary: it installs a counting global allocator (live bytes, as the
//! allocator rounds them), and runs its cases one after the other in a single test so no
//! other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use cache_core::codec::EntryCodec;
use cache_core::decoded_copies::DecodedCopies;
use cache_core::{CacheKey, CacheStore, CachedRequest, CachedResponse, EntryMeta, MemoryStore};
use cache_core::{StoredEntry, encode};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

/// Counts live heap bytes as glibc's allocator takes them: the size and an 8-byte header,
/// rounded up to 16.
struct Live;

static LIVE: AtomicI64 = AtomicI64::new(0);

fn taken(size: usize) -> i64 {
    ((size + 8).div_ceil(16) * 16) as i64
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is an
// atomic and allocates nothing.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(taken(layout.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(taken(layout.size()), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(taken(new_size) - taken(layout.size()), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Live = Live;

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// A response as a client receives it: `fields` header fields (standard names first, then
/// `x-` ones), a body of `body` bytes, a URL with a query.
fn response(n: u64, fields: usize, body: usize) -> CachedResponse {
    let url = format!("https://api.example.com/v1/items?page={n}&sort=name&per_page=50");
    let standard = [
        "cache-control",
        "content-type",
        "date",
        "etag",
        "last-modified",
        "vary",
        "server",
        "content-length",
    ];
    let mut headers = HeaderMap::new();
    for i in 0..fields {
        let name = match standard.get(i) {
            Some(name) => HeaderName::from_static(name),
            None => HeaderName::from_bytes(format!("x-field-{i}").as_bytes()).unwrap(),
        };
        let value = HeaderValue::from_str(&format!("value {i} of response {n}")).unwrap();
        headers.insert(name, value);
    }
    let mut request_headers = HeaderMap::new();
    request_headers.insert("accept", HeaderValue::from_static("application/json"));
    let request = CachedRequest::new(Method::GET, url.clone(), request_headers);
    CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        headers,
        Bytes::from(vec![b'x'; body]),
        url,
        request,
    )
}

fn key(n: u64) -> CacheKey {
    format!("{n:032x}").parse().unwrap()
}

fn meta(n: u64, response: &CachedResponse) -> EntryMeta {
    EntryMeta::new(key(n), response.url.clone(), SystemTime::now(), None)
}

const ENTRIES: u64 = 2_000;

/// Bytes held a entry, and weighed a entry, after `ENTRIES` writes by `write`.
fn held_and_weighed(weight: impl Fn() -> u64, write: impl Fn(u64)) -> (f64, f64) {
    let (live_before, weight_before) = (live(), weight());
    for n in 0..ENTRIES {
        write(n);
    }
    let held = (live() - live_before) as f64 / ENTRIES as f64;
    let weighed = (weight() - weight_before) as f64 / ENTRIES as f64;
    (held, weighed)
}

#[test]
fn bounds_weigh_what_entries_hold() {
    for (fields, body) in [(3, 1024), (12, 1024), (30, 100), (3, 64 * 1024)] {
        let store = MemoryStore::bounded(1 << 20, 1 << 28);
        let plain = held_and_weighed(
            || store.weight(),
            |n| {
                let response = response(n, fields, body);
                let meta = meta(n, &response);
                store
                    .put_plain(meta, response)
                    .now_or_never()
                    .unwrap()
                    .unwrap();
            },
        );
        let store = MemoryStore::bounded(1 << 20, 1 << 28);
        let decoded = held_and_weighed(
            || store.weight(),
            |n| {
                let response = response(n, fields, body);
                let value = encode(&response).unwrap();
                let entry = StoredEntry::new(meta(n, &response), value);
                store.put(entry).now_or_never().unwrap().unwrap();
                // Decoded at its first read, and kept.
                store
                    .get_decoded(&key(n), &EntryCodec::new())
                    .now_or_never()
                    .unwrap()
                    .unwrap();
            },
        );
        let copies = DecodedCopies::new(1 << 40);
        let written_copies = held_and_weighed(
            || copies.weight(),
            |n| {
                let response = response(n, fields, body);
                let value = encode(&response).unwrap();
                let entry = StoredEntry::new(meta(n, &response), value);
                copies.keep_written(&entry, response);
            },
        );
        let copies = DecodedCopies::new(1 << 40);
        // Its table of keys decoded lately is made at its first decoding: made before.
        let value = encode(&response(u64::MAX, 1, 1)).unwrap();
        let first = StoredEntry::new(meta(u64::MAX, &response(u64::MAX, 1, 1)), value.clone());
        drop(copies.decode(&key(u64::MAX), first, value, &EntryCodec::new()));
        let read_copies = held_and_weighed(
            || copies.weight(),
            |n| {
                let response = response(n, fields, body);
                let value = encode(&response).unwrap();
                let codec = EntryCodec::new();
                // Kept at its second decoding, as a store's reads do.
                for _ in 0..2 {
                    let entry =
                        StoredEntry::new(meta(n, &response), Bytes::copy_from_slice(&value));
                    let compared = entry.value.clone();
                    drop(copies.decode(&key(n), entry, compared, &codec));
                }
            },
        );
        for (what, (held, weighed)) in [
            ("put unencoded", plain),
            ("put as bytes, then decoded", decoded),
            ("a written copy", written_copies),
            ("a read's copy", read_copies),
        ] {
            let ratio = weighed / held;
            assert!(
                (0.85..=1.2).contains(&ratio),
                "{what}, {fields} fields, {body}-byte body: holds {held:.0} bytes, weighed at \
                 {weighed:.0}"
            );
        }
    }
}
