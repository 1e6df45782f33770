//! What an entry kept in memory holds on the heap, for the bounds that weigh it
//! ([`MemoryStore`](crate::MemoryStore)'s bytes, [`DecodedCopies`](crate::decoded_copies::DecodedCopies)):
//! the buffers it stores (the value, or the one buffer of an entry put unencoded) are counted
//! by their owners; this is the rest, the decoded form's own allocations (its `Arc`, header
//! maps, URLs) and the allocator's overhead on each.
//!
//! Counted as a fixed 512 bytes an entry, a 3-field response with a 1 KiB body held 3.4 KB
//! where it was weighed at 1.9, one with 30 fields 8.5 KB against 2.0 (`tests/held_bytes.rs`):
//! a bound of 100 MiB held 180 to 420. Estimated from the entry's own shape, as `http` and
//! the allocator lay it out, it lands at 0.92 to 1.14 times what they hold on those shapes
//! (an entry put as bytes is estimated from its head's length until its first read decodes
//! it; the test allows 0.85 to 1.2).

use std::mem::size_of;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::store::Decoded;

/// What a table keeping an entry spends on it beyond the entry (its slot in `quick_cache`'s
/// table and index, a URL index's mention): an estimate, checked with the rest of the weight
/// against the heap by `tests/held_bytes.rs`.
pub(crate) const TABLE_SLOT: u64 = 96;

/// Heap bytes an allocation of `size` bytes takes: glibc's 8-byte header, rounded up to 16.
pub(crate) fn allocation(size: usize) -> u64 {
    if size == 0 {
        return 0;
    }
    (size as u64 + 8).div_ceil(16) * 16
}

/// Heap bytes of an `Arc<T>`'s allocation: the value and its two counts.
pub(crate) fn arc_of<T>() -> u64 {
    allocation(2 * size_of::<usize>() + size_of::<T>())
}

/// Heap bytes `decoded` holds beyond the buffers it shares (its body and header values are
/// slices of its stored bytes, or of the one buffer an entry put unencoded is copied into):
/// its `Arc`, its URLs, its header maps, and the count the shared buffer takes once a slice
/// of it is cloned.
pub(crate) fn decoded_form(decoded: &Decoded) -> u64 {
    let own =
        arc_of::<Decoded>() + allocation(decoded.meta.url.capacity()) + allocation(SHARED_COUNT);
    own + match &decoded.entry {
        crate::Entry::Response(response) => {
            allocation(response.url.capacity())
                + allocation(response.request.url.capacity())
                + header_map(&response.headers)
                + header_map(&response.request.headers)
        }
        crate::Entry::VaryIndex(index) => {
            allocation(index.headers.capacity() * size_of::<HeaderName>())
                + index.headers.iter().map(name).sum::<u64>()
        }
    }
}

/// The count `bytes` keeps beside a buffer shared by slices (`bytes`' `Shared`).
const SHARED_COUNT: usize = 3 * size_of::<usize>();

/// Heap bytes of `map`, as `http` lays it out: a table of 4-byte positions a third larger
/// than its capacity, rounded up to a power of two; a bucket (name, value, hash, links) per
/// field it has room for; repeated fields' values apart; and each name's own bytes.
fn header_map(map: &HeaderMap) -> u64 {
    let capacity = map.capacity();
    if capacity == 0 {
        return 0;
    }
    let positions = (capacity + capacity / 3).next_power_of_two();
    let bucket = size_of::<HeaderName>() + size_of::<HeaderValue>() + 4 * size_of::<usize>();
    let repeated = map.len() - map.keys_len();
    let extra_values = match repeated {
        0 => 0,
        n => {
            allocation(n.next_power_of_two() * (size_of::<HeaderValue>() + 4 * size_of::<usize>()))
        }
    };
    allocation(positions * 4)
        + allocation(capacity * bucket)
        + extra_values
        + map.keys().map(name).sum::<u64>()
}

/// A field name's own bytes. A name `http` knows (`content-type`) has none, one it does not
/// (`x-request-id`) a buffer and, once shared, its count; telling them apart costs more than
/// the few dozen bytes counting both the same adds, so each is counted as the second.
fn name(name: &HeaderName) -> u64 {
    allocation(name.as_str().len()) + allocation(SHARED_COUNT)
}
