//! URLs an unsafe request invalidated while the store could not be reached (its listing or a
//! delete failed, or the circuit breaker skipped them): their entries stored before are not
//! served by this cache again, though the store still holds them. Without this, a `POST`
//! during a Redis outage left the URL's old responses in place, and once the store was back
//! they were served as fresh: the client read what it had just changed, as it was before.
//!
//! Held in memory, per cache: another process sharing the store does not know. Bounded: past
//! [`HELD_GROUPS`] URLs, every entry stored before the latest of them is held back instead
//! (a miss each, once: the answer stored then is newer). A leaf: calls nothing else in the
//! crate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use cache_core::{CacheKey, EntryMeta};

/// URL groups remembered one by one.
const HELD_GROUPS: usize = 4096;

/// The invalidations that did not reach the store.
#[derive(Debug, Default)]
pub(crate) struct UnfinishedInvalidations {
    /// Set once anything is held: until then a lookup checks nothing else.
    any: AtomicBool,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    /// Each URL group, and when its last unfinished invalidation ended.
    groups: HashMap<CacheKey, SystemTime>,
    /// Every entry created up to this time is held back (the groups overflowed).
    all_before: Option<SystemTime>,
}

impl UnfinishedInvalidations {
    /// Notes that an invalidation of `url_group`, ended `at`, did not reach the store: every
    /// entry of the group created up to then is held back.
    pub(crate) fn note(&self, url_group: CacheKey, at: SystemTime) {
        let mut held = self.lock();
        let time = held.groups.entry(url_group).or_insert(at);
        *time = (*time).max(at);
        if held.groups.len() > HELD_GROUPS {
            let latest = held.groups.values().copied().max();
            held.all_before = held.all_before.max(latest);
            held.groups.clear();
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Notes that an invalidation of `url_group`, begun `at`, reached the store: it deleted
    /// every entry created before, so none of them is held back by an earlier failure.
    pub(crate) fn finished(&self, url_group: &CacheKey, at: SystemTime) {
        if !self.any.load(Ordering::SeqCst) {
            return;
        }
        let mut held = self.lock();
        if held.groups.get(url_group).is_some_and(|time| *time <= at) {
            held.groups.remove(url_group);
        }
    }

    /// True when the entry `meta` describes is held back: created no later than an
    /// unfinished invalidation of its URL.
    pub(crate) fn holds_back(&self, meta: &EntryMeta) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let held = self.lock();
        let created = meta.created_at;
        held.all_before.is_some_and(|before| created <= before)
            || meta
                .url_group
                .and_then(|group| held.groups.get(&group).copied())
                .is_some_and(|time| created <= time)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn meta(group: u8, created: SystemTime) -> EntryMeta {
        EntryMeta::new(
            CacheKey::from_digest([group; 16]),
            "https://e/",
            created,
            None,
        )
        .with_url_group(Some(CacheKey::from_digest([group; 16])))
    }

    /// An entry of a held URL created up to the failure is held back; a newer one, or
    /// another URL's, is not; an invalidation that reached the store later releases it.
    #[test]
    fn holds_back_entries_created_before_an_unfinished_invalidation() {
        let held = UnfinishedInvalidations::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let group = CacheKey::from_digest([1; 16]);
        assert!(!held.holds_back(&meta(1, t)));
        held.note(group, t);
        assert!(held.holds_back(&meta(1, t)));
        assert!(held.holds_back(&meta(1, t - Duration::from_secs(5))));
        assert!(!held.holds_back(&meta(1, t + Duration::from_millis(1))));
        assert!(!held.holds_back(&meta(2, t)));
        held.finished(&group, t - Duration::from_secs(1));
        assert!(
            held.holds_back(&meta(1, t)),
            "an earlier invalidation releases nothing"
        );
        held.finished(&group, t + Duration::from_secs(1));
        assert!(!held.holds_back(&meta(1, t)));
    }

    /// Past [`HELD_GROUPS`] URLs, every entry created up to the latest is held back.
    #[test]
    fn overflow_holds_back_everything_before() {
        let held = UnfinishedInvalidations::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for n in 0..=HELD_GROUPS as u32 {
            let mut digest = [0u8; 16];
            digest[..4].copy_from_slice(&n.to_be_bytes());
            held.note(
                CacheKey::from_digest(digest),
                t + Duration::from_secs(u64::from(n)),
            );
        }
        let latest = t + Duration::from_secs(HELD_GROUPS as u64);
        assert!(held.holds_back(&meta(200, latest)));
        assert!(!held.holds_back(&meta(200, latest + Duration::from_secs(1))));
        assert!(held.lock().groups.is_empty());
    }
}
