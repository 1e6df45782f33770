//! [`InvalidationSource`]: how a backing store tells the memory tier that another process
//! changed an entry, and the [`InvalidationSink`] it tells.

use std::fmt::Debug;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use cache_core::{CacheKey, StoreError};

use crate::tier::Tier;

/// Notices from a backing store that entries changed, so a [`TieredStore`](crate::TieredStore)
/// drops its memory copies of them.
///
/// An implementation subscribes to its server's change notifications, keeps the
/// subscription up (reconnecting on its own) and reports to the sink:
/// [`InvalidationSink::invalidate`] for each changed key, [`InvalidationSink::invalidate_all`]
/// when the server says "everything" (a flush), [`InvalidationSink::lost`] the moment the
/// subscription breaks (notices may be missed from then on) and
/// [`InvalidationSink::subscribed`] once it is live again. It stops when
/// [`InvalidationSink::is_closed`] turns true (the store was dropped).
///
/// The Redis implementation is `RedisInvalidations` (feature `redis`).
#[async_trait]
pub trait InvalidationSource: Send + Sync + Debug + 'static {
    /// Subscribes, reports [`InvalidationSink::subscribed`], and keeps delivering in the
    /// background; returns once the first subscription is live.
    ///
    /// # Errors
    ///
    /// The first subscription failed (server unreachable, notifications not supported).
    async fn start(&self, sink: InvalidationSink) -> Result<(), StoreError>;

    /// Returns once every notice for a change the server made before this call has been
    /// delivered to the sink: a read-your-writes barrier across processes, for tests and
    /// for callers that need one (it costs a round trip).
    ///
    /// # Errors
    ///
    /// The subscription is down.
    async fn sync(&self) -> Result<(), StoreError>;
}

/// Where an [`InvalidationSource`] reports. Cheap to clone; it does not keep the store alive.
#[derive(Clone, Debug)]
pub struct InvalidationSink {
    tier: Weak<Tier>,
}

impl InvalidationSink {
    pub(crate) fn new(tier: &Arc<Tier>) -> Self {
        Self {
            tier: Arc::downgrade(tier),
        }
    }

    /// Another writer changed, deleted or expired the entry under `key`: its memory copy is
    /// dropped, and a read of it in flight does not put the old value back.
    pub fn invalidate(&self, key: &CacheKey) {
        if let Some(tier) = self.tier.upgrade() {
            tier.invalidated(key);
        }
    }

    /// Every entry may have changed (the server was flushed): memory is emptied.
    pub fn invalidate_all(&self) {
        if let Some(tier) = self.tier.upgrade() {
            tier.flush();
        }
    }

    /// The subscription is broken: notices may be missed from now on. Memory is emptied and
    /// no longer answers before the backing store (it still answers when the backing store
    /// fails: fail-open).
    ///
    /// Only the first report of a loss empties memory: a source may report one loss twice
    /// (the driver's disconnection notice, then its own watcher), and what memory took in
    /// between (a failed write's fail-open copy, copies of backing-store reads) was taken
    /// while memory no longer answered first, so it is not stale in the sense this guards
    /// against; [`subscribed`](Self::subscribed) empties it again before memory answers first.
    pub fn lost(&self) {
        if let Some(tier) = self.tier.upgrade() {
            if tier.stop_answering_first() {
                tracing::warn!("invalidation subscription lost: memory tier flushed");
                tier.flush();
            }
        }
    }

    /// The subscription is live (again): memory is emptied (it may hold copies changed while
    /// notices could not arrive) and answers first again.
    pub fn subscribed(&self) {
        if let Some(tier) = self.tier.upgrade() {
            tier.flush();
            tier.start_answering_first();
        }
    }

    /// True once the store is gone: the source should stop.
    pub fn is_closed(&self) -> bool {
        self.tier.strong_count() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::{EntryMeta, MemoryStore, StoredEntry};
    use std::time::{Duration, SystemTime};

    fn entry(value: &'static str) -> StoredEntry {
        let key = CacheKey::from_digest([3; 16]);
        let meta = EntryMeta::new(key, "https://example.com/", SystemTime::now(), None);
        StoredEntry::new(meta, bytes::Bytes::from_static(value.as_bytes()))
    }

    /// A source reporting one loss twice (the driver's notice, then its watcher) does not
    /// drop the fail-open copy a failed write made in between; resubscribing does.
    #[test]
    fn a_loss_reported_twice_empties_memory_once() {
        let tier = Arc::new(Tier::new(MemoryStore::new(), None, true));
        let sink = InvalidationSink::new(&tier);
        let before = entry("before");
        let key = before.meta.key;
        tier.fill(before, tier.guard(&key));

        sink.lost();
        assert!(!tier.is_live());
        assert_eq!(tier.copy(&key), None, "the first report empties memory");

        tier.fill_briefly(entry("during"), tier.guard(&key), Duration::from_secs(1));
        sink.lost();
        let kept = tier.copy(&key).expect("the second report keeps the copy");
        assert_eq!(&kept.value[..], b"during");

        sink.subscribed();
        assert!(tier.is_live());
        assert_eq!(tier.copy(&key), None, "resubscribing empties memory");
    }
}
