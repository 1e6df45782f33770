//! URL groups with a write whose outcome is unknown: it timed out, or failed in a way that
//! does not say nothing was written. Such a write may still land (SQLite commits a queued
//! write once its writer is free; the remote stores run a write's steps to their end on a
//! task of their own, within `cache_core::to_end::RUN_TO_END_LIMIT`), and landing after an
//! unsafe request invalidated its URL it would serve the response the request changed. An
//! invalidation of such a group holds back what the store has of it from before (see
//! `unfinished_invalidations`) instead of releasing it.
//!
//! Bounded: past [`HELD_GROUPS`] groups, every group counts as unsettled until the latest
//! of them settles (an invalidation meanwhile holds its URL back: a miss more, once).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cache_core::CacheKey;

/// URL groups remembered one by one.
const HELD_GROUPS: usize = 4096;

/// How long after its failure a write may still land: the longest a store runs a write's
/// steps on after its caller went, with room for a queued SQLite write's wait.
pub(crate) const SETTLES_WITHIN: Duration =
    cache_core::to_end::RUN_TO_END_LIMIT.saturating_add(Duration::from_secs(10));

#[derive(Debug, Default)]
pub(crate) struct UnsettledWrites {
    /// Set once anything is noted: until then a check takes no lock.
    any: AtomicBool,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    /// Each group, and when its latest unknown write has surely settled.
    groups: HashMap<CacheKey, Instant>,
    /// Since the groups overflowed: every group is unsettled until then.
    every_group_until: Option<Instant>,
}

impl UnsettledWrites {
    /// Notes a write to `url_group` whose outcome is unknown, failed at `now`.
    pub(crate) fn note(&self, url_group: CacheKey, now: Instant) {
        let settles = now + SETTLES_WITHIN;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.groups.retain(|_, until| *until > now);
        if held.groups.len() >= HELD_GROUPS {
            let latest = held.groups.values().copied().max().unwrap_or(settles);
            held.every_group_until = Some(latest.max(settles));
            held.groups.clear();
        } else {
            held.groups.insert(url_group, settles);
        }
        self.any.store(true, Ordering::Release);
    }

    /// The groups whose writes may still land at `now`: `None` for every group (past the
    /// groups remembered one by one: see [`UnsettledWrites::may_land`]).
    pub(crate) fn groups(&self, now: Instant) -> Option<Vec<CacheKey>> {
        if !self.any.load(Ordering::Acquire) {
            return Some(Vec::new());
        }
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.every_group_until.is_some_and(|until| until > now) {
            return None;
        }
        let groups = held.groups.iter().filter(|(_, until)| **until > now);
        Some(groups.map(|(group, _)| *group).collect())
    }

    /// True when a write to `url_group` whose outcome is unknown may still land at `now`.
    pub(crate) fn may_land(&self, url_group: &CacheKey, now: Instant) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.every_group_until.is_some_and(|until| until > now)
            || held.groups.get(url_group).is_some_and(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: u8) -> CacheKey {
        CacheKey::from_digest([n; 16])
    }

    #[test]
    fn a_group_is_unsettled_until_its_write_settles() {
        let unsettled = UnsettledWrites::default();
        let now = Instant::now();
        assert!(!unsettled.may_land(&group(1), now));
        unsettled.note(group(1), now);
        assert!(unsettled.may_land(&group(1), now + Duration::from_secs(1)));
        assert!(!unsettled.may_land(&group(2), now));
        assert!(!unsettled.may_land(&group(1), now + SETTLES_WITHIN));
    }

    /// Past the bound every group counts as unsettled, until the latest noted settles.
    #[test]
    fn overflowing_groups_make_every_group_unsettled_for_a_while() {
        let unsettled = UnsettledWrites::default();
        let now = Instant::now();
        for n in 0..=HELD_GROUPS {
            let digest = (n as u64).to_le_bytes().repeat(2);
            unsettled.note(CacheKey::from_digest(digest.try_into().unwrap()), now);
        }
        assert!(unsettled.may_land(&group(200), now));
        assert_eq!(unsettled.groups(now), None, "every group");
        assert!(!unsettled.may_land(&group(200), now + SETTLES_WITHIN));
        assert_eq!(unsettled.groups(now + SETTLES_WITHIN), Some(Vec::new()));
    }
}
