//! URLs an unsafe request invalidated while the store could not be reached (its listing or a
//! delete failed, or the circuit breaker skipped them): their entries stored before are not
//! served by this cache again, though the store still holds them. Without this, a `POST`
//! during a Redis outage left the URL's old responses in place, and once the store was back
//! they were served as fresh: the client read what it had just changed, as it was before.
//!
//! Held in memory, per cache: another process sharing the store does not know (nor does this
//! one know of an entry another process wrote before the failure with its clock ahead).
//! Entries written before URL groups existed carry none: they are held back by the group
//! of the URL they were found for (they were found under its key).
//!
//! Kept by the stripes of [`url_changes`](crate::url_changes): each stripe's latest failure
//! time answers most lookups without a lock (an entry newer than it is not held back), and
//! only an entry older than its stripe's failure looks its URL up. Bounded: past
//! [`HELD_GROUPS`] URLs, the URLs are dropped and each stripe holds back every entry older
//! than its latest failure (a miss each, once, for one URL in 4,096 per failure: the answer
//! stored then is newer).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::SystemTime;

use cache_core::time::to_millis;
use cache_core::{CacheKey, EntryMeta};

use crate::url_changes::{STRIPES, stripe_of};

/// URL groups remembered one by one.
const HELD_GROUPS: usize = 4096;

/// The invalidations that did not reach the store.
#[derive(Debug)]
pub(crate) struct UnfinishedInvalidations {
    /// Set once anything is held: until then a lookup checks nothing else.
    any: AtomicBool,
    /// Per stripe, the latest failure's time (Unix milliseconds; -1 for none).
    latest: Box<[AtomicI64]>,
    /// Per stripe, the time up to which every entry is held back, since the URLs overflowed
    /// (-1 for none).
    blanket: Box<[AtomicI64]>,
    /// Each URL group held, and when its last unfinished invalidation ended.
    groups: Mutex<HashMap<CacheKey, SystemTime>>,
}

impl Default for UnfinishedInvalidations {
    fn default() -> Self {
        let none = || (0..STRIPES).map(|_| AtomicI64::new(-1)).collect();
        Self {
            any: AtomicBool::new(false),
            latest: none(),
            blanket: none(),
            groups: Mutex::default(),
        }
    }
}

impl UnfinishedInvalidations {
    /// Notes that an invalidation of `url_group`, ended `at`, did not reach the store: every
    /// entry of the group created up to then is held back.
    pub(crate) fn note(&self, url_group: CacheKey, at: SystemTime) {
        let mut groups = self.lock();
        let time = groups.entry(url_group).or_insert(at);
        *time = (*time).max(at);
        self.latest[stripe_of(&url_group)].fetch_max(to_millis(at), Ordering::SeqCst);
        if groups.len() > HELD_GROUPS {
            for (latest, blanket) in self.latest.iter().zip(self.blanket.iter()) {
                blanket.fetch_max(latest.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            groups.clear();
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Notes that every URL's invalidation, ended `at`, may not have reached the store: every
    /// entry created up to then is held back (a `clear` while writes of more URLs than are
    /// remembered one by one may still land).
    pub(crate) fn note_all(&self, at: SystemTime) {
        let at = to_millis(at);
        for (latest, blanket) in self.latest.iter().zip(self.blanket.iter()) {
            latest.fetch_max(at, Ordering::SeqCst);
            blanket.fetch_max(at, Ordering::SeqCst);
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Notes that an invalidation of `url_group`, begun `at`, reached the store: it deleted
    /// every entry created before, so none of them is held back by an earlier failure of
    /// that URL (a stripe's blanket after an overflow stays).
    pub(crate) fn finished(&self, url_group: &CacheKey, at: SystemTime) {
        if !self.any.load(Ordering::SeqCst) {
            return;
        }
        let mut groups = self.lock();
        if groups.get(url_group).is_some_and(|time| *time <= at) {
            groups.remove(url_group);
        }
    }

    /// True when the entry `meta` describes is held back: created no later than an
    /// unfinished invalidation of its URL. `url_group` gives the group of the URL it was
    /// found for, asked only when something is held and the entry carries no group.
    pub(crate) fn holds_back(
        &self,
        meta: &EntryMeta,
        url_group: impl FnOnce() -> CacheKey,
    ) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let group = match meta.url_group {
            Some(group) => group,
            None => url_group(),
        };
        let group = &group;
        let stripe = stripe_of(group);
        let created = to_millis(meta.created_at);
        // Newer than every failure of the stripe: no lock.
        if created > self.latest[stripe].load(Ordering::SeqCst) {
            return false;
        }
        if created <= self.blanket[stripe].load(Ordering::SeqCst) {
            return true;
        }
        self.lock()
            .get(group)
            .is_some_and(|time| meta.created_at <= *time)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, SystemTime>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    impl UnfinishedInvalidations {
        /// [`UnfinishedInvalidations::holds_back`] of an entry that carries its group.
        fn holds_back_grouped(&self, meta: &EntryMeta) -> bool {
            self.holds_back(meta, || panic!("asked the URL's group of {meta:?}"))
        }
    }

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
    /// another URL's (on the same stripe too), is not; an invalidation that reached the
    /// store later releases it.
    #[test]
    fn holds_back_entries_created_before_an_unfinished_invalidation() {
        let held = UnfinishedInvalidations::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let group = CacheKey::from_digest([1; 16]);
        assert!(!held.holds_back_grouped(&meta(1, t)));
        held.note(group, t);
        assert!(held.holds_back_grouped(&meta(1, t)));
        assert!(held.holds_back_grouped(&meta(1, t - Duration::from_secs(5))));
        assert!(!held.holds_back_grouped(&meta(1, t + Duration::from_millis(1))));
        assert!(!held.holds_back_grouped(&meta(2, t)));
        let same_stripe = EntryMeta::new(CacheKey::from_digest([3; 16]), "https://e/", t, None)
            .with_url_group(Some(CacheKey::from_digest([
                1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
            ])));
        assert_eq!(
            stripe_of(same_stripe.url_group.as_ref().unwrap()),
            stripe_of(&group)
        );
        assert!(!held.holds_back_grouped(&same_stripe));
        held.finished(&group, t - Duration::from_secs(1));
        assert!(
            held.holds_back_grouped(&meta(1, t)),
            "an earlier invalidation releases nothing"
        );
        held.finished(&group, t + Duration::from_secs(1));
        assert!(!held.holds_back_grouped(&meta(1, t)));
    }

    /// `note_all` holds back every URL's entries created up to then, on every stripe.
    #[test]
    fn note_all_holds_back_every_url() {
        let held = UnfinishedInvalidations::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        held.note_all(t);
        for n in [1, 2, 0x80, 0xff] {
            assert!(held.holds_back_grouped(&meta(n, t)), "{n}");
            assert!(!held.holds_back_grouped(&meta(n, t + Duration::from_millis(1))));
        }
    }

    /// Past [`HELD_GROUPS`] URLs, each stripe holds back every entry created up to its
    /// latest failure, and the others' entries stay served.
    #[test]
    fn overflow_holds_back_by_stripe() {
        let held = UnfinishedInvalidations::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let group = |n: u32| {
            let mut digest = [0u8; 16];
            digest[..4].copy_from_slice(&n.to_be_bytes());
            digest[15] = 1;
            CacheKey::from_digest(digest)
        };
        for n in 0..=HELD_GROUPS as u32 {
            held.note(group(n), t);
        }
        assert!(held.lock().is_empty());
        let in_held_stripe =
            EntryMeta::new(group(5), "https://e/", t, None).with_url_group(Some(group(5)));
        assert!(held.holds_back_grouped(&in_held_stripe));
        let newer = EntryMeta::new(group(5), "https://e/", t + Duration::from_secs(1), None)
            .with_url_group(Some(group(5)));
        assert!(!held.holds_back_grouped(&newer));
        let free = CacheKey::from_digest([0xff; 16]);
        assert!(held.latest[stripe_of(&free)].load(Ordering::SeqCst) < 0);
        let elsewhere = EntryMeta::new(free, "https://e/", t, None).with_url_group(Some(free));
        assert!(!held.holds_back_grouped(&elsewhere));
    }
}
