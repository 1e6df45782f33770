//! What a damaged length prefix costs: decoding a few bytes that announce billions of header
//! pairs or Vary names must not allocate for what they announce, only for what is there.
//!
//! Its own test binary: it installs a counting global allocator, and runs its cases one after
//! the other in a single test so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use cache_core::decode_entry;

/// Records the largest single allocation made while `COUNTING` is on.
struct Largest;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are atomics
// and allocate nothing.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The largest allocation `decode_entry` makes for `bytes`.
fn largest_allocation(bytes: &Bytes) -> usize {
    LARGEST.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let result = decode_entry(bytes);
    COUNTING.store(false, Ordering::Relaxed);
    assert!(result.is_err(), "announces more than it holds: {result:?}");
    drop(result);
    LARGEST.load(Ordering::Relaxed)
}

/// An unsigned, uncompressed entry of `kind` with this head and no body.
fn entry(kind: u8, head: &[u8]) -> Bytes {
    let mut bytes = b"RQCE\x02".to_vec();
    bytes.extend_from_slice(&[kind, 0]);
    bytes.extend_from_slice(&(head.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(head);
    Bytes::from(bytes)
}

/// u32::MAX as a postcard varint.
const HUGE_COUNT: &[u8] = b"\xff\xff\xff\xff\x0f";

#[test]
fn announced_counts_do_not_allocate() {
    let mut response_head = vec![0xc8, 0x01, 0x0b]; // status 200, HTTP/1.1
    response_head.extend_from_slice(HUGE_COUNT); // response header pairs
    response_head.extend_from_slice(b"\x01a\x00"); // one pair: `a: ""`
    let mut request_headers = b"\xc8\x01\x0b\x00\x09http://h/\x03GET\x09http://h/".to_vec();
    request_headers.extend_from_slice(HUGE_COUNT); // request header pairs
    request_headers.extend_from_slice(b"\x01a\x00");
    let mut vary_head = HUGE_COUNT.to_vec(); // Vary names
    vary_head.extend_from_slice(b"\x06accept\x07");
    for (what, bytes) in [
        ("response headers", entry(0, &response_head)),
        ("request headers", entry(0, &request_headers)),
        ("Vary names", entry(1, &vary_head)),
    ] {
        let largest = largest_allocation(&bytes);
        // A few kilobytes at most (error values, a small first capacity), whatever is
        // announced: the entry itself is under 40 bytes.
        assert!(
            largest <= 4096,
            "{what}: a {}-byte entry made a {largest}-byte allocation",
            bytes.len()
        );
    }
}
