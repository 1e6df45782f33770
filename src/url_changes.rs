//! Which URLs unsafe requests changed while a response for them was on its way to the store.
//! A response the origin sent before a `POST` (say) changed its URL must not be stored after
//! that `POST` invalidated the URL's entries: the invalidation would be undone. The window is
//! a store write for most responses, but the whole body for one stored as the caller reads
//! it (slow to end, or over `max_body_size` into a store that keeps files): seconds, or
//! minutes.
//!
//! Counters by stripe of the URL's group, bumped by each invalidation: a write compares the
//! stripe with what it was when the response arrived. A change to another URL of the stripe
//! costs a write it did not need to skip, never a stale entry.
//!
//! A leaf: calls nothing else in the crate.

use std::sync::atomic::{AtomicU64, Ordering};

use cache_core::CacheKey;

/// Independent counters: an invalidation spoils only the writes of URLs on its stripe.
const STRIPES: usize = 64;

/// The invalidation counters of a cache.
#[derive(Debug)]
pub(crate) struct UrlChanges {
    stripes: [AtomicU64; STRIPES],
}

/// A stripe's counter as a response for one of its URLs arrived.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seen {
    stripe: usize,
    count: u64,
}

impl Default for UrlChanges {
    fn default() -> Self {
        Self {
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl UrlChanges {
    /// The counter of `url_group`'s stripe now, taken as its response arrives.
    pub(crate) fn seen(&self, url_group: &CacheKey) -> Seen {
        let stripe = stripe_of(url_group);
        Seen {
            stripe,
            count: self.stripes[stripe].load(Ordering::Acquire),
        }
    }

    /// Marks `url_group` as changed, before its entries are deleted: a write that reads the
    /// counter after this skips itself, and one that read it before wrote before the delete
    /// (which removes it) or checks again after writing.
    pub(crate) fn changed(&self, url_group: &CacheKey) {
        self.stripes[stripe_of(url_group)].fetch_add(1, Ordering::AcqRel);
    }

    /// True when a URL of `seen`'s stripe changed since it was taken.
    pub(crate) fn changed_since(&self, seen: Seen) -> bool {
        self.stripes[seen.stripe].load(Ordering::Acquire) != seen.count
    }
}

/// The stripe of a URL group: its first byte (groups are digests, spread evenly).
fn stripe_of(url_group: &CacheKey) -> usize {
    let hex = url_group.as_str().as_bytes();
    let digit = |i: usize| usize::from(hex.get(i).copied().unwrap_or(0));
    (digit(0) * 16 + digit(1)) % STRIPES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: u8) -> CacheKey {
        CacheKey::from_digest([n; 16])
    }

    #[test]
    fn a_change_is_seen_by_writes_of_its_url_taken_before_it() {
        let changes = UrlChanges::default();
        let before = changes.seen(&group(1));
        assert!(!changes.changed_since(before));
        changes.changed(&group(1));
        assert!(changes.changed_since(before));
        assert!(
            !changes.changed_since(changes.seen(&group(1))),
            "taken after"
        );
    }
}
