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
    pub fn lost(&self) {
        if let Some(tier) = self.tier.upgrade() {
            if tier.is_live() {
                tracing::warn!("invalidation subscription lost: memory tier flushed");
            }
            tier.set_live(false);
            tier.flush();
        }
    }

    /// The subscription is live (again): memory is emptied (it may hold copies changed while
    /// notices could not arrive) and answers first again.
    pub fn subscribed(&self) {
        if let Some(tier) = self.tier.upgrade() {
            tier.flush();
            tier.set_live(true);
        }
    }

    /// True once the store is gone: the source should stop.
    pub fn is_closed(&self) -> bool {
        self.tier.strong_count() == 0
    }
}
