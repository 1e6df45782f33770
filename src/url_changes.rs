//! Which URLs unsafe requests changed while a request for them was out. An answer the origin
//! may have made before a `POST` (say) changed its URL must not be stored after that `POST`
//! invalidated the URL's entries: the invalidation would be undone. The window is a request's
//! whole exchange, from sending it to storing its answer: the origin's time, and the whole
//! body for one stored as the caller reads it (slow to end, or over `max_body_size` into a
//! store that keeps files), seconds or minutes.
//!
//! Counters by stripe of the URL's group, bumped by each invalidation: a write compares the
//! stripe with what it was when the cache sent the request (an answer it did not ask for
//! itself, a `POST`'s stored for `GET`, when the answer arrived; the final URL of a
//! redirect, when the redirected answer arrived). A change to another URL of the stripe
//! costs a write it did not need to skip, never a stale entry.
//!
//! A leaf: calls nothing else in the crate.

use std::sync::atomic::{AtomicU64, Ordering};

use cache_core::CacheKey;

/// Independent counters: an invalidation spoils only the writes of URLs on its stripe (one
/// in 4,096 of the others, for 32 KiB a cache). The window is a request's whole exchange
/// (sent to stored), a download's minutes included: a client sending unsafe requests while
/// others are out rarely loses a write to another URL's change.
pub(crate) const STRIPES: usize = 4096;

/// The invalidation counters of a cache.
#[derive(Debug)]
pub(crate) struct UrlChanges {
    /// Boxed: 32 KiB, kept off the stack of whatever builds the cache.
    stripes: Box<[AtomicU64]>,
}

/// A stripe's counter as a request for one of its URLs went out (or its answer arrived).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seen {
    stripe: usize,
    count: u64,
}

impl Seen {
    /// The counter as it is after these changes too, made by the request it was taken for
    /// (its own invalidation, which must not keep its answer from being stored): any other
    /// change still shows.
    pub(crate) fn with_own_changes(mut self, url_groups: &[CacheKey]) -> Self {
        let own = url_groups
            .iter()
            .filter(|group| stripe_of(group) == self.stripe)
            .count();
        self.count += own as u64;
        self
    }
}

impl Default for UrlChanges {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl UrlChanges {
    /// The counter of `url_group`'s stripe now: taken as a request goes out (or its answer
    /// arrives, or a move of its entry begins), compared before and after the write.
    pub(crate) fn seen(&self, url_group: &CacheKey) -> Seen {
        let stripe = stripe_of(url_group);
        Seen {
            stripe,
            count: self.stripes[stripe].load(Ordering::SeqCst),
        }
    }

    /// Marks `url_group` as changed, before its entries are deleted: a write whose counter
    /// was taken before this sees the change when it compares, before writing (it skips) or
    /// after (it takes its write back), so no such write outlives the delete.
    pub(crate) fn changed(&self, url_group: &CacheKey) {
        // Sequentially consistent, as the checks: a write then a check, against a bump then
        // a delete, must not both miss the other.
        self.stripes[stripe_of(url_group)].fetch_add(1, Ordering::SeqCst);
    }

    /// Marks every URL as changed (the cache cleared).
    pub(crate) fn all_changed(&self) {
        for stripe in &self.stripes {
            stripe.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// True when a URL of `seen`'s stripe changed since it was taken.
    pub(crate) fn changed_since(&self, seen: Seen) -> bool {
        self.stripes[seen.stripe].load(Ordering::SeqCst) != seen.count
    }

    /// True when the request's URL, or the final URL it was redirected to, changed since
    /// their counters were taken (a response stored for either is the final URL's answer).
    pub(crate) fn changed_since_either(
        &self,
        (request, redirected_to): (Seen, Option<Seen>),
    ) -> bool {
        self.changed_since(request) || redirected_to.is_some_and(|seen| self.changed_since(seen))
    }
}

/// The stripe of a URL group: its first twelve bits, from its first three hex digits (groups
/// are digests, spread evenly).
pub(crate) fn stripe_of(url_group: &CacheKey) -> usize {
    let hex = url_group.as_str().as_bytes();
    let digit = |i: usize| {
        hex.get(i)
            .and_then(|&b| char::from(b).to_digit(16))
            .map_or(0, |d| d as usize)
    };
    (digit(0) << 8 | digit(1) << 4 | digit(2)) % STRIPES
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group whose digest begins with the twelve bits of `n`.
    fn group(n: u16) -> CacheKey {
        let mut digest = [0x5a; 16];
        digest[0] = (n >> 4) as u8;
        digest[1] = ((n & 0xf) << 4) as u8 | 0xa;
        CacheKey::from_digest(digest)
    }

    /// Every stripe is used: the digits' values pick it, not their characters' codes (which
    /// left 40 of 64 stripes in use).
    #[test]
    fn url_groups_spread_over_every_stripe() {
        let mut used = vec![false; STRIPES];
        for n in 0..4096 {
            used[stripe_of(&group(n))] = true;
        }
        assert!(used.iter().all(|&u| u));
    }

    #[test]
    fn a_clear_changes_every_url() {
        let changes = UrlChanges::default();
        let before: Vec<Seen> = (0..4096).map(|n| changes.seen(&group(n))).collect();
        changes.all_changed();
        assert!(before.into_iter().all(|seen| changes.changed_since(seen)));
    }

    /// A request's own invalidation (a stored `POST`'s) does not keep its answer from being
    /// stored; another change to its URL made while it was out still does.
    #[test]
    fn a_requests_own_changes_do_not_count_against_it() {
        let changes = UrlChanges::default();
        let sent = changes.seen(&group(1));
        changes.changed(&group(1));
        changes.changed(&group(2));
        let own = sent.with_own_changes(&[group(1), group(2)]);
        assert!(!changes.changed_since(own));
        changes.changed(&group(1));
        assert!(changes.changed_since(own), "another's");
        let before_another = changes.seen(&group(3));
        changes.changed(&group(3));
        changes.changed(&group(3));
        assert!(changes.changed_since(before_another.with_own_changes(&[group(3)])));
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
