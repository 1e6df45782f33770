//! [`RedisInvalidations`]: Redis server-assisted client-side caching as an
//! [`InvalidationSource`].
//!
//! One dedicated RESP3 connection sends `CLIENT TRACKING ON BCAST PREFIX {prefix}:`: the
//! server then pushes an `invalidate` message naming every key under the store's prefix
//! that any client changes, deletes, expires or evicts (and a null one on `FLUSHALL` /
//! `FLUSHDB`). Broadcast mode is used rather than default tracking because reads go through
//! the store's own connections, not this one: default mode would track only keys read on
//! the tracking connection (or need `REDIRECT` set on every data connection, which the
//! connection manager reconnects without telling us).
//!
//! The pushes are handled inside the connection's reader (no channel hop). A lost
//! connection (the driver's `Disconnection` push, or a failed `PING` every second) flushes
//! the memory tier at once and stops it answering first (only the latest connection's: one
//! given up after a failed `PING` may report its disconnection later, when the new
//! subscription is live, and is ignored); the source reconnects with
//! back-off (50 ms doubling to 1 s), re-enables tracking, and flushes again before memory
//! answers first (not if that connection was lost meanwhile: the source subscribes again).
//! Beginning a subscription, a connection's loss and turning memory back on are ordered by
//! one lock, as they race across the driver's thread and the watcher task.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use cache_core::{CacheKey, StoreError};
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use tokio::sync::Notify;

use crate::invalidation::{InvalidationSink, InvalidationSource};

/// How often the subscription is checked with a `PING` (a dead peer that sent no FIN is
/// noticed within this plus the timeout).
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Reconnection back-off: first and longest wait.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Invalidations from one Redis server for the keys of one [`RedisStore`](cache_redis::RedisStore)
/// prefix. Give it to [`TieredStoreBuilder::invalidations`](crate::TieredStoreBuilder::invalidations).
///
/// ```no_run
/// # async fn run() -> Result<(), cache_core::StoreError> {
/// use cache_redis::RedisStore;
/// use cache_tiered::{RedisInvalidations, TieredStore};
///
/// let url = "redis://127.0.0.1:6379/";
/// let redis = RedisStore::builder().prefix("my-app").open(url).await?;
/// let invalidations = RedisInvalidations::for_store(&redis, url)?;
/// let store = TieredStore::builder(redis)
///     .invalidations(invalidations)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
///
/// # Note
///
/// A single server (or a primary and its replicas behind one address). A Redis Cluster
/// would need one tracking connection per primary; use a memory TTL over a cluster.
#[derive(Clone)]
pub struct RedisInvalidations {
    client: redis::Client,
    key_prefix: String,
    timeout: Duration,
    /// The live tracking connection, for [`InvalidationSource::sync`].
    current: Arc<Mutex<Option<MultiplexedConnection>>>,
    /// The latest subscription, and whether its connection was lost.
    latest: Arc<Subscriptions>,
}

/// The latest subscription and its state, behind one lock that orders the three transitions
/// that race: a new subscription begins, a connection reports its loss (on the driver's
/// thread), memory is turned back on. Shared with each connection's push handler (which must
/// not hold the source itself: the source holds the connection).
#[derive(Debug, Default)]
struct Subscriptions(Mutex<Latest>);

#[derive(Debug, Default)]
struct Latest {
    /// The number of the latest subscription: only its connection's loss is the
    /// subscription's loss (an older connection, given up after a failed `PING`, may report
    /// its disconnection long after the new one is live).
    generation: u64,
    /// The latest subscription's connection was lost (memory must not be turned on for it).
    lost: bool,
}

impl std::fmt::Debug for RedisInvalidations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisInvalidations")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Subscriptions {
    fn lock(&self) -> MutexGuard<'_, Latest> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a subscription: it is the latest from now on, and not lost. Returns its number.
    fn begin(&self) -> u64 {
        let mut latest = self.lock();
        latest.generation += 1;
        latest.lost = false;
        latest.generation
    }

    /// The connection of subscription `generation` was lost: the subscription's loss if it is
    /// still the latest, else nothing (an older connection, already replaced). Checked and
    /// reported under one lock, so a newer subscription cannot begin and turn memory on in
    /// between, and then be switched off by an old connection's news.
    fn connection_lost(&self, generation: u64, sink: &InvalidationSink) {
        let mut latest = self.lock();
        if latest.generation == generation {
            latest.lost = true;
            sink.lost();
        }
    }

    /// Subscription `generation` is live: memory is flushed and answers first again, unless
    /// its connection was lost meanwhile (the watcher then sees the loss and subscribes
    /// again) or a newer subscription began.
    fn mark_subscribed(&self, generation: u64, sink: &InvalidationSink) {
        let latest = self.lock();
        if latest.generation == generation && !latest.lost {
            sink.subscribed();
        }
    }
}

impl RedisInvalidations {
    /// Invalidations for the keys starting with `key_prefix` (a [`RedisStore`]'s
    /// [`key_prefix`](cache_redis::RedisStore::key_prefix), e.g. `reqwest-cache:`) on the
    /// server at `url`.
    ///
    /// [`RedisStore`]: cache_redis::RedisStore
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the URL is invalid.
    pub fn new(url: &str, key_prefix: impl Into<String>) -> Result<Self, StoreError> {
        let info = url
            .into_connection_info()
            .map_err(StoreError::unavailable)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(StoreError::unavailable)?;
        Ok(Self {
            client,
            key_prefix: key_prefix.into(),
            timeout: Duration::from_secs(2),
            current: Arc::new(Mutex::new(None)),
            latest: Arc::new(Subscriptions::default()),
        })
    }

    /// Invalidations for `store`'s keys, on the server at `url` (the one `store` uses).
    ///
    /// # Errors
    ///
    /// As [`RedisInvalidations::new`].
    pub fn for_store(store: &cache_redis::RedisStore, url: &str) -> Result<Self, StoreError> {
        Self::new(url, store.key_prefix())
    }

    /// Connection and response timeout of the tracking connection (default 2 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects and enables tracking, as the latest subscription (an older connection's
    /// loss is ignored from now on). Returns the connection, the subscription's number and a
    /// notify that fires when the connection drops.
    async fn subscribe(
        &self,
        sink: &InvalidationSink,
    ) -> Result<(MultiplexedConnection, u64, Arc<Notify>), StoreError> {
        let dropped = Arc::new(Notify::new());
        let generation = self.latest.begin();
        let on_push = {
            let (sink, prefix, dropped) = (sink.clone(), self.key_prefix.clone(), dropped.clone());
            let subscriptions = Arc::clone(&self.latest);
            move |push: PushInfo| -> Result<(), std::convert::Infallible> {
                match push.kind {
                    // An older connection's notices are still true: delivered too.
                    PushKind::Invalidate => deliver(&sink, &prefix, &push.data),
                    PushKind::Disconnection => {
                        subscriptions.connection_lost(generation, &sink);
                        dropped.notify_one();
                    }
                    _ => {}
                }
                Ok(())
            }
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_push_sender(on_push);
        let mut connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(StoreError::unavailable)?;
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(&self.key_prefix)
            .query_async::<()>(&mut connection)
            .await
            .map_err(StoreError::unavailable)?;
        Ok((connection, generation, dropped))
    }

    fn set_current(&self, connection: Option<MultiplexedConnection>) {
        if let Ok(mut current) = self.current.lock() {
            *current = connection;
        }
    }

    /// Watches the live subscription; on loss, resubscribes. Ends when the store is gone.
    async fn keep_subscribed(
        self,
        sink: InvalidationSink,
        (mut connection, mut generation, mut dropped): (MultiplexedConnection, u64, Arc<Notify>),
    ) {
        loop {
            // Healthy: a PING a second, until the connection drops or the store goes.
            loop {
                if sink.is_closed() {
                    self.set_current(None);
                    return;
                }
                let notified = tokio::time::timeout(PING_INTERVAL, dropped.notified()).await;
                if notified.is_ok() {
                    break;
                }
                let ping = redis::cmd("PING").query_async::<()>(&mut connection).await;
                if let Err(error) = ping {
                    tracing::warn!(%error, "invalidation connection failed its PING");
                    break;
                }
            }
            self.latest.connection_lost(generation, &sink);
            self.set_current(None);
            drop(connection);
            let mut wait = RETRY_FIRST;
            loop {
                if sink.is_closed() {
                    return;
                }
                match self.subscribe(&sink).await {
                    Ok((live, number, notify)) => {
                        (connection, generation, dropped) = (live, number, notify);
                        break;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "invalidation resubscription failed; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(RETRY_MAX);
                    }
                }
            }
            self.set_current(Some(connection.clone()));
            self.latest.mark_subscribed(generation, &sink);
            tracing::info!("invalidation subscription restored: memory tier flushed");
        }
    }
}

/// Drops the memory copies named by one `invalidate` push: an array of keys, or null for
/// "everything" (`FLUSHALL`, `FLUSHDB`). Keys outside the prefix, or under it but not
/// entries (URL group sets), are ignored.
fn deliver(sink: &InvalidationSink, prefix: &str, data: &[Value]) {
    match data.first() {
        Some(Value::Array(keys)) => {
            for key in keys {
                if let Some(key) = cache_key(prefix, key) {
                    sink.invalidate(&key);
                }
            }
        }
        Some(Value::Nil) | None => sink.invalidate_all(),
        Some(other) => {
            tracing::warn!(?other, "unexpected invalidation message: flushing memory");
            sink.invalidate_all();
        }
    }
}

fn cache_key(prefix: &str, key: &Value) -> Option<CacheKey> {
    let bytes = match key {
        Value::BulkString(bytes) => bytes.as_slice(),
        Value::SimpleString(text) => text.as_bytes(),
        _ => return None,
    };
    std::str::from_utf8(bytes)
        .ok()?
        .strip_prefix(prefix)?
        .parse()
        .ok()
}

#[async_trait]
impl InvalidationSource for RedisInvalidations {
    async fn start(&self, sink: InvalidationSink) -> Result<(), StoreError> {
        let (connection, generation, dropped) = self.subscribe(&sink).await?;
        self.set_current(Some(connection.clone()));
        self.latest.mark_subscribed(generation, &sink);
        let watched = (connection, generation, dropped);
        tokio::spawn(self.clone().keep_subscribed(sink, watched));
        Ok(())
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let connection = self.current.lock().ok().and_then(|c| c.clone());
        let Some(mut connection) = connection else {
            return Err(StoreError::unavailable(
                "the invalidation subscription is down",
            ));
        };
        // Pushes and replies share the connection, in order: by the time the PING's reply
        // is read, every notice the server sent before it has been delivered.
        redis::cmd("PING")
            .query_async::<()>(&mut connection)
            .await
            .map_err(StoreError::unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::Tier;
    use cache_core::MemoryStore;

    #[test]
    fn only_entry_keys_under_the_prefix_are_read() {
        let key = CacheKey::from_digest([7; 16]);
        let named = |text: String| Value::BulkString(text.into_bytes());
        assert_eq!(cache_key("p:", &named(format!("p:{key}"))), Some(key));
        assert_eq!(cache_key("p:", &named(format!("q:{key}"))), None);
        assert_eq!(cache_key("p:", &named(format!("p:g:{key}"))), None);
        assert_eq!(cache_key("p:", &Value::Int(1)), None);
    }

    /// A memory tier that does not answer first yet, as before a first subscription, and
    /// the sink a source reports to.
    fn memory_not_answering_first() -> (Arc<Tier>, InvalidationSink) {
        let tier = Arc::new(Tier::new(MemoryStore::new(), None, false));
        let sink = InvalidationSink::new(&tier);
        (tier, sink)
    }

    /// A subscription whose connection is lost before it is marked live leaves memory off
    /// (the watcher subscribes again); the next one turns it on.
    #[test]
    fn a_loss_before_the_subscription_is_marked_keeps_memory_off() {
        let (tier, sink) = memory_not_answering_first();
        let subscriptions = Subscriptions::default();
        let first = subscriptions.begin();
        subscriptions.connection_lost(first, &sink);
        subscriptions.mark_subscribed(first, &sink);
        assert!(!tier.is_live(), "turned on for a lost connection");
        let second = subscriptions.begin();
        subscriptions.mark_subscribed(second, &sink);
        assert!(tier.is_live());
    }

    /// Only the latest subscription's loss turns memory off; marking an older one live does
    /// nothing.
    #[test]
    fn only_the_latest_subscription_counts() {
        let (tier, sink) = memory_not_answering_first();
        let subscriptions = Subscriptions::default();
        let first = subscriptions.begin();
        let second = subscriptions.begin();
        subscriptions.mark_subscribed(first, &sink);
        assert!(!tier.is_live(), "an older subscription marked live");
        subscriptions.mark_subscribed(second, &sink);
        subscriptions.connection_lost(first, &sink);
        assert!(
            tier.is_live(),
            "an older connection's loss switched memory off"
        );
        subscriptions.connection_lost(second, &sink);
        assert!(!tier.is_live());
    }

    /// A connection given up for a new one (after a failed `PING`) reports its
    /// disconnection once the new subscription is live: memory stays on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_old_connection_dropping_leaves_the_new_subscription_live() {
        let url = test_support::shared_redis().url();
        let (tier, sink) = memory_not_answering_first();
        let prefix = test_support::unique_namespace("generations");
        let source = RedisInvalidations::new(&url, prefix).expect("url");
        let (mut old, _, old_dropped) = source.subscribe(&sink).await.expect("subscribe");
        let old_id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut old)
            .await
            .expect("CLIENT ID");
        let (_new, generation, _) = source.subscribe(&sink).await.expect("resubscribe");
        source.latest.mark_subscribed(generation, &sink);
        assert!(tier.is_live());

        // The old connection's socket fails now.
        let client = redis::Client::open(url.as_str()).expect("url");
        let mut admin = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(old_id)
            .query_async(&mut admin)
            .await
            .expect("CLIENT KILL");
        assert_eq!(killed, 1);
        tokio::time::timeout(Duration::from_secs(30), old_dropped.notified())
            .await
            .expect("the old connection reports its disconnection");
        assert!(tier.is_live(), "the old connection switched memory off");
    }
}
