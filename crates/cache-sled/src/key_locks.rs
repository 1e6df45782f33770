//! One writer per cache key at a time, without transactions.
//!
//! A write reads the key's old record, writes index records, then the record, then drops the
//! old index records: two writers of one key interleaving those steps could leave an index
//! record for a record that no longer exists and miss removing another. Holding the key's
//! stripe for the few microseconds of the steps makes them one unit; writers of other keys
//! mostly hold other stripes.
//!
//! The stripes are shared by the whole process, not one store: sled lets one process open a
//! database, so every writer of a database is in this process, even through several
//! [`SledStore`](crate::SledStore)s made with `with_db` on one `Db`.

use std::sync::{Mutex, MutexGuard};

use cache_core::CacheKey;

/// Enough stripes that two keys rarely share one among a few dozen concurrent writers.
const STRIPES: usize = 256;

static KEY_STRIPES: [Mutex<()>; STRIPES] = [const { Mutex::new(()) }; STRIPES];

/// Holds `key`'s stripe until dropped. Never held across an `.await`; a holder that panicked
/// left nothing half-done that a later writer could not finish, so poisoning is ignored.
pub(crate) fn lock(key: &CacheKey) -> MutexGuard<'static, ()> {
    KEY_STRIPES[stripe(key)]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The stripe of `key`: its first two hex digits (keys are digests, so uniformly spread).
fn stripe(key: &CacheKey) -> usize {
    let hex = key.as_str().as_bytes();
    let digit = |i: usize| {
        let byte = hex.get(i).copied().unwrap_or_default();
        (byte as char).to_digit(16).unwrap_or_default() as usize
    };
    (digit(0) << 4 | digit(1)) % STRIPES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stripe_is_reachable_and_keys_spread() {
        let mut used = [0u32; STRIPES];
        for i in 0..=u8::MAX {
            let mut digest = [0u8; 16];
            digest[0] = i;
            used[stripe(&CacheKey::from_digest(digest))] += 1;
        }
        assert!(used.iter().all(|&n| n == 1), "{used:?}");
    }
}
