//! [`StoreCalls`]: the store as the cache calls it. Every call is bounded in time and guarded
//! by the breaker; entries are encoded and decoded here (the codec lives nowhere else); a
//! failure is logged (throttled) and counted, and on the request path it is never raised:
//! a read that fails is a miss, a write that fails stores nothing. Calls only leaf modules.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cache_core::codec::{BodyEncoder, BodyVerifier, EntryCodec};
use cache_core::store::{DecodedEntry, get_entry};
use cache_core::{
    BodySpool, CacheKey, CacheStore, CachedResponse, Decoded, Entry, EntryMeta, Opened, StoreError,
    StoredEntry, VaryIndex,
};

use crate::breaker::{Breaker, CircuitOpen};
use crate::file_body::FileBody;
use crate::observe::{self, StoreOp};
use crate::stats::StatsCounters;
use crate::unsettled_writes::UnsettledWrites;
use crate::warnings::{WarningLimiter, error_chain};

/// A call of the store as [`CacheStore`]'s methods make it (boxed by `async_trait`): held by
/// a future as one pointer.
type StoreCall<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An entry as a servable read gives it: decoded, with the body's file when it stays there.
pub(crate) type Servable = (Arc<Decoded>, Option<Arc<FileBody>>);

/// What [`StoreCalls::read_servable_at_once`] found.
pub(crate) enum AtOnce {
    /// The store answered without awaiting.
    Answered(Option<Servable>),
    /// The read must be sent and awaited.
    Waits,
}

/// The store, its codec, and what keeps its failures from reaching a request.
#[derive(Debug)]
pub(crate) struct StoreCalls {
    pub(crate) store: Arc<dyn CacheStore>,
    /// Compression and signatures of stored entries.
    codec: EntryCodec,
    /// How long one call may take.
    pub(crate) store_timeout: Duration,
    breaker: Breaker,
    /// Store failures warn at most once a second.
    warnings: WarningLimiter,
    stats: Arc<StatsCounters>,
    /// Read-only: requests never write, delete or renew entries (see
    /// [`read_only`](crate::CacheMiddlewareBuilder::read_only)). Read only on the write
    /// paths, so a hit pays nothing for it; changed at runtime through the handle.
    read_only: AtomicBool,
    /// Stored bodies larger than this are served from their file, when the store keeps
    /// bodies in files (the middleware's `max_body_size`).
    inline_up_to: u64,
    /// URL groups with a write whose outcome is unknown.
    pub(crate) unsettled: UnsettledWrites,
}

impl StoreCalls {
    pub(crate) fn new(
        store: Arc<dyn CacheStore>,
        codec: EntryCodec,
        timeout: Duration,
        breaker: Breaker,
        stats: Arc<StatsCounters>,
    ) -> Self {
        Self {
            store,
            codec,
            store_timeout: timeout,
            breaker,
            warnings: WarningLimiter::default(),
            stats,
            read_only: AtomicBool::new(false),
            inline_up_to: u64::MAX,
            unsettled: UnsettledWrites::default(),
        }
    }

    /// True when requests may not change the store.
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    pub(crate) fn set_read_only(&self, on: bool) {
        self.read_only.store(on, Ordering::Relaxed);
    }

    /// Bodies over `bytes` are served from their file by stores that keep bodies in files.
    pub(crate) fn inline_up_to(mut self, bytes: u64) -> Self {
        self.inline_up_to = bytes;
        self
    }

    /// [`StoreCalls::read`] for a request to be served: from a store that keeps bodies in
    /// files, an entry whose body is over `max_body_size` comes with an empty body and the
    /// body's file beside it, never read whole.
    pub(crate) async fn read_servable(&self, key: &CacheKey) -> Option<Servable> {
        // Not a `match` on the answer: its scrutinee (an entry) would live across the await
        // below, and every hit's future would carry room for it.
        if let AtOnce::Answered(read) = self.read_servable_at_once(key).await {
            return read;
        }
        // Boxed: a store that makes us wait costs far more than the allocation, and the hit
        // path's future stays small.
        Box::pin(self.read_servable_awaited(key)).await
    }

    /// [`StoreCalls::read_servable`] when the store answers without awaiting (in-process
    /// stores; an open breaker too, with a miss); [`AtOnce::Waits`] when it would make the
    /// read wait (a server, a body kept in a file), and also when the entry does not decode:
    /// nothing is sent then, and the caller reads with [`StoreCalls::read_servable_awaited`]
    /// or [`StoreCalls::read_servable_pair`].
    pub(crate) async fn read_servable_at_once(&self, key: &CacheKey) -> AtOnce {
        // As in `read`, before the read.
        if spends_budget_unit() {
            tokio::task::coop::consume_budget().await;
        }
        if self.store.body_files().is_some() {
            return AtOnce::Waits;
        }
        match self.read_now(key) {
            Some(read) => AtOnce::Answered(read.map(|decoded| (decoded, None))),
            None => AtOnce::Waits,
        }
    }

    /// [`StoreCalls::read_servable`] in its awaited form, for a read
    /// [`StoreCalls::read_servable_at_once`] said waits.
    pub(crate) async fn read_servable_awaited(&self, key: &CacheKey) -> Option<Servable> {
        if self.store.body_files().is_some() {
            return self.read_opened(key).await;
        }
        self.read_awaited(key).await.map(|decoded| (decoded, None))
    }

    /// Two reads in one store call ([`CacheStore::get_decoded_pair`]: one round trip to a
    /// server), each as [`StoreCalls::read_servable`] reads: a Vary index and the variant it
    /// is expected to select. Each read that fails is logged and counted, and is a miss; the
    /// breaker counts the call as failed when either read failed for a reason that may pass
    /// (a server down or slow), as it would have counted two calls. An entry that does not
    /// decode is deleted. A store keeping bodies in files (on the local disk) reads the two
    /// apart.
    pub(crate) async fn read_servable_pair(
        &self,
        first: &CacheKey,
        second: &CacheKey,
    ) -> [Option<Servable>; 2] {
        if self.store.body_files().is_some() {
            let (first, second) =
                futures_util::future::join(self.read_opened(first), self.read_opened(second)).await;
            return [first, second];
        }
        let pair = async {
            let reads = self
                .store
                .get_decoded_pair(first, second, &self.codec)
                .await;
            Ok::<_, StoreError>(reads)
        };
        let transient = |reads: &[Result<DecodedEntry, StoreError>; 2]| {
            reads
                .iter()
                .any(|read| read.as_ref().is_err_and(StoreError::is_transient))
        };
        let timeout = self.store_timeout;
        let [first_read, second_read] = match self
            .bounded_judged(StoreOp::Get, timeout, pair, transient)
            .await
        {
            Ok(reads) => reads,
            // Timed out, or the breaker is open: neither read answered.
            Err(error) => {
                self.failed(first, &error, "cache read failed; going to the network");
                return [None, None];
            }
        };
        let first = self.decoded_or_forgotten(first, first_read).await;
        let second = self.decoded_or_forgotten(second, second_read).await;
        [first, second].map(|read| read.map(|decoded| (decoded, None)))
    }

    /// The entry a read found, when it decoded; one that does not is deleted (kept when
    /// read-only), as [`get_entry`] does. A failed read is logged and counted: a miss.
    async fn decoded_or_forgotten(
        &self,
        key: &CacheKey,
        read: Result<DecodedEntry, StoreError>,
    ) -> Option<Arc<Decoded>> {
        let read = match read {
            Ok(read) => read?,
            Err(error) => {
                self.failed(key, &error, "cache read failed; going to the network");
                return None;
            }
        };
        match read {
            Ok(decoded) => Some(decoded),
            Err(undecodable) => {
                let created_at = undecodable.meta.created_at;
                self.forget_unreadable(key, &undecodable.error, created_at)
                    .await;
                None
            }
        }
    }

    async fn read_opened(&self, key: &CacheKey) -> Option<Servable> {
        let files = self.store.body_files()?;
        let opened = match self
            .bounded(StoreOp::Get, files.open(key, self.inline_up_to))
            .await
        {
            Ok(opened) => opened?,
            Err(error) => {
                self.failed(key, &error, "cache read failed; going to the network");
                return None;
            }
        };
        let created_at = match &opened {
            Opened::Whole(entry) => entry.meta.created_at,
            Opened::Body(file) => file.meta.created_at,
            Opened::Unread { meta, len } => {
                // It would not decode: deleted as an entry that does not.
                let error = format!("compressed, {len} bytes stored, over max_body_size");
                self.forget_unreadable(key, &error, meta.created_at).await;
                return None;
            }
            _ => return None,
        };
        let decoded = match opened {
            Opened::Whole(entry) => entry
                .decode(key, &self.codec)
                .map(|decoded| (decoded, None))
                .map_err(|undecodable| undecodable.error),
            Opened::Body(file) => self
                .codec
                .decode_head(key, &file.before, &file.after, file.len)
                .map(|(response, verifier)| {
                    let entry = (Arc::clone(&self.store), *key, created_at);
                    // A read-only cache deletes nothing, not even a body that fails its check.
                    let delete_within = (!self.is_read_only()).then_some(self.store_timeout);
                    let body = FileBody::new(file.file, file.len, verifier, entry, delete_within);
                    let decoded = Decoded::new(file.meta, Entry::Response(response));
                    (Arc::new(decoded), Some(Arc::new(body)))
                }),
            _ => return None,
        };
        match decoded {
            Ok(found) => Some(found),
            Err(error) => {
                self.forget_unreadable(key, &error, created_at).await;
                None
            }
        }
    }

    /// Deletes the entry under `key` this build cannot read (`error` says why) while it is
    /// still the one created at `created_at`, with a warning; a read-only cache keeps it and
    /// says nothing (it would say so on every read).
    async fn forget_unreadable(
        &self,
        key: &CacheKey,
        error: &(dyn std::fmt::Display + Sync),
        created_at: SystemTime,
    ) {
        if self.is_read_only() {
            return;
        }
        tracing::warn!(key = %key, %error, "unreadable cache entry: deleting it");
        self.forget_if_created(key, created_at).await;
    }

    /// Starts writing a body over `max_body_size` as it streams, when the store keeps bodies
    /// in files; `None` otherwise, or when the store fails (logged and counted).
    pub(crate) async fn begin_spool(&self, key: &CacheKey) -> Option<Box<dyn BodySpool>> {
        let files = self.store.body_files()?;
        match self.bounded(StoreOp::Put, files.begin(key)).await {
            Ok(spool) => Some(spool),
            Err(error) => {
                self.failed(key, &error, "cache write failed; response not cached");
                None
            }
        }
    }

    /// Decodes the head of an entry whose body is in a file (see
    /// [`EntryCodec::decode_head`]): the response with an empty body, and the verifier its
    /// body must pass as it is read.
    pub(crate) fn decode_head(
        &self,
        key: &CacheKey,
        before: &Bytes,
        after: &Bytes,
        body_len: u64,
    ) -> Result<(CachedResponse, BodyVerifier), cache_core::DecodeError> {
        self.codec.decode_head(key, before, after, body_len)
    }

    /// A body encoder for a response whose body is written as it streams (see
    /// [`EntryCodec::body_encoder`]).
    pub(crate) fn body_encoder(
        &self,
        key: &CacheKey,
        response: &CachedResponse,
        body_len: Option<u64>,
    ) -> Option<BodyEncoder> {
        self.codec.body_encoder(key, response, body_len)
    }

    /// Reads and decodes an entry; a store failure or timeout is logged, counted, and a miss.
    ///
    /// The request path's read of one key (the lookup's first read goes through
    /// [`StoreCalls::read_servable_at_once`], and with a guess [`StoreCalls::read_servable_pair`]).
    /// In-process stores (memory, sled, small SQLite values) answer it at once through
    /// [`CacheStore::get_decoded_now`], with no future built for the store call and no timer
    /// armed, as does a breaker that is open (a miss); the others and an entry that does not
    /// decode (which must be deleted) take the awaited form, which wraps the same store call
    /// in the time bound.
    pub(crate) async fn read(&self, key: &CacheKey) -> Option<Arc<Decoded>> {
        // Reads answered at once spend tokio's cooperative budget (see `READS_PER_BUDGET_UNIT`):
        // a task looping on hits still yields now and then, instead of starving the timers
        // and tasks of its worker. Spent before the read, so no entry is held across this
        // await.
        if spends_budget_unit() {
            tokio::task::coop::consume_budget().await;
        }
        // Not a `match`: its scrutinee (an entry) would live across the await below, and
        // every hit's future would carry room for it.
        if let Some(answer) = self.read_now(key) {
            return answer;
        }
        // Boxed: a store that makes us wait costs far more than the allocation, and the hit
        // path's future stays small.
        Box::pin(self.read_awaited(key)).await
    }

    /// The read answered without awaiting; `None` when the store cannot answer so or the
    /// entry does not decode (the awaited form deletes it and says so in the log). An open
    /// breaker answers at once too: a miss, the skip counted (as the awaited form would).
    ///
    /// A store answering at once with copies of a store elsewhere
    /// ([`CacheStore::answers_now_from_copies`]: a tiered store's memory) is asked whatever
    /// the breaker says, and not counted by it, as a copy tells nothing of the store behind:
    /// a memory hit took the breaker's probe and closed it while that store was still down
    /// (every request then waited for its time limit again), and an open breaker kept the
    /// copies from answering. Without a copy to answer with, the store behind is asked the
    /// awaited way, through the breaker.
    fn read_now(&self, key: &CacheKey) -> Option<Option<Arc<Decoded>>> {
        let copies = self.store.answers_now_from_copies();
        let permit = match copies {
            true => None,
            false => match self.breaker.allow() {
                Ok(permit) => Some(permit),
                Err(open) => {
                    let skipped = StoreError::unavailable(open);
                    self.failed(key, &skipped, "cache read failed; going to the network");
                    return Some(None);
                }
            },
        };
        let started = observe::store_call_started();
        let answer = self.store.get_decoded_now(key, &self.codec)?;
        observe::store_call_finished(StoreOp::Get, started);
        if let Some(permit) = permit {
            permit.settle(&answer);
        }
        match answer {
            // No copy: not a miss of the store behind.
            Ok(None) if copies => None,
            Ok(None) => Some(None),
            Ok(Some(Ok(decoded))) => Some(Some(decoded)),
            Ok(Some(Err(_))) => None,
            Err(error) => {
                self.failed(key, &error, "cache read failed; going to the network");
                Some(None)
            }
        }
    }

    async fn read_awaited(&self, key: &CacheKey) -> Option<Arc<Decoded>> {
        match self.get(key).await {
            Ok(found) => found,
            Err(error) => {
                self.failed(key, &error, "cache read failed; going to the network");
                None
            }
        }
    }

    /// Reads and decodes an entry, raising the store's error (for the handle); an entry that
    /// does not decode is deleted (kept, when read-only) and reported as none.
    pub(crate) async fn get(&self, key: &CacheKey) -> Result<Option<Arc<Decoded>>, StoreError> {
        if self.is_read_only() {
            let read = self.store.get_decoded(key, &self.codec);
            let found = self.bounded(StoreOp::Get, read).await?;
            return Ok(found.and_then(Result::ok));
        }
        let read = get_entry(&*self.store, key, &self.codec);
        self.bounded(StoreOp::Get, read).await
    }

    /// The metadata of the entry under `key`, its value left unread where the store keeps
    /// bodies in files (a download larger than memory); `None` when there is none.
    pub(crate) async fn stored_meta(
        &self,
        key: &CacheKey,
    ) -> Result<Option<EntryMeta>, StoreError> {
        let Some(files) = self.store.body_files() else {
            let read = self.bounded(StoreOp::Get, self.store.get(key)).await?;
            return Ok(read.map(|entry| entry.meta));
        };
        let opened = self.bounded(StoreOp::Get, files.open(key, 0)).await?;
        Ok(opened.and_then(|opened| match opened {
            Opened::Whole(entry) => Some(entry.meta),
            Opened::Body(file) => Some(file.meta),
            Opened::Unread { meta, .. } => Some(meta),
            _ => None,
        }))
    }

    /// Reads and decodes an entry and says whether it decoded, changing nothing (an entry that
    /// does not decode is kept): for inspection.
    pub(crate) async fn inspect(
        &self,
        key: &CacheKey,
    ) -> Result<Option<(EntryMeta, Option<Entry>)>, StoreError> {
        let read = self.store.get_decoded(key, &self.codec);
        let found = self.bounded(StoreOp::Get, read).await?;
        Ok(found.map(|decoded| match decoded {
            Ok(decoded) => {
                let (meta, entry) = Decoded::into_parts(decoded);
                (meta, Some(entry))
            }
            Err(undecodable) => (undecodable.meta, None),
        }))
    }

    /// Every entry stored for the URL group (all methods, credentials, variants); empty when
    /// the store fails (logged and counted).
    pub(crate) async fn entries_for_url(&self, url_group: &CacheKey) -> Vec<EntryMeta> {
        self.entries_for_url_if_reached(url_group)
            .await
            .unwrap_or_default()
    }

    /// [`StoreCalls::entries_for_url`], `None` when the store failed (logged and counted).
    pub(crate) async fn entries_for_url_if_reached(
        &self,
        url_group: &CacheKey,
    ) -> Option<Vec<EntryMeta>> {
        let listed = self.store.entries_for_url(url_group);
        match self.bounded(StoreOp::List, listed).await {
            Ok(metas) => Some(metas),
            Err(error) => {
                self.failed(url_group, &error, "cache lookup by URL failed");
                None
            }
        }
    }

    /// Writes an entry; true when it was stored. A failure is logged and counted, never raised.
    pub(crate) fn save(&self, entry: StoredEntry) -> impl Future<Output = bool> + Send + '_ {
        let (key, group) = (entry.meta.key, entry.meta.url_group);
        self.write(key, group, self.store.put(entry))
    }

    /// [`StoreCalls::save`] over the entry stored at `created_at` only
    /// ([`CacheStore::put_if_created`]): false when the key holds another entry, or none.
    pub(crate) async fn save_if_created(&self, entry: StoredEntry, created_at: SystemTime) -> bool {
        let (key, group) = (entry.meta.key, entry.meta.url_group);
        self.write_if(&key, group, self.store.put_if_created(entry, created_at))
            .await
    }

    /// Writes `response` under `meta` (see [`StoreCalls::response_put`]); true when it was
    /// stored.
    ///
    /// Not an `async fn`: the response is handed to the store before the future is made, so
    /// the future holds the store's call (a pointer) rather than the response and the entry's
    /// metadata a second time. Every miss allocates and moves the futures around it.
    pub(crate) fn save_response<'a>(
        &'a self,
        meta: EntryMeta,
        response: Cow<'_, CachedResponse>,
    ) -> impl Future<Output = bool> + Send + 'a {
        let (key, group) = (meta.key, meta.url_group);
        let put = self.response_put(meta, response);
        async move {
            match put {
                Some(put) => self.write(key, group, put).await,
                None => false,
            }
        }
    }

    /// The store call writing `response` under `meta`; `None` when it does not encode
    /// (logged). An owned response the codec would write plainly goes to the store unencoded
    /// ([`CacheStore::put_plain`]: the memory store then encodes nothing); another is
    /// encoded, and when owned handed to the store beside its bytes
    /// ([`CacheStore::put_decoded`]: the stores that keep decoded forms, memory, SQLite and
    /// sled, keep it where it is what decoding gives, and the entry's first hit decodes
    /// nothing), unless the codec signs: entries under signatures are verified on every read,
    /// so nothing is kept.
    fn response_put(
        &self,
        meta: EntryMeta,
        response: Cow<'_, CachedResponse>,
    ) -> Option<StoreCall<'_, ()>> {
        let response = match response {
            Cow::Owned(response) if self.codec.writes_plain(&response) => {
                return Some(self.store.put_plain(meta, response));
            }
            Cow::Owned(response) if !self.codec.signs() => response,
            response => {
                let value = self.encode(&response, &meta.key)?;
                return Some(self.store.put(StoredEntry::new(meta, value)));
            }
        };
        let value = self.encode(&response, &meta.key)?;
        Some(
            self.store
                .put_decoded(StoredEntry::new(meta, value), response),
        )
    }

    /// Runs a write (not started before this is called: a read-only cache never starts it).
    async fn write(
        &self,
        key: CacheKey,
        url_group: Option<CacheKey>,
        put: StoreCall<'_, ()>,
    ) -> bool {
        self.write_if(&key, url_group, async { put.await.map(|()| true) })
            .await
    }

    /// [`StoreCalls::write`] of a write that may decline (`Ok(false)`): then nothing was
    /// stored, and nothing is logged or counted. A failure that may have written all the
    /// same (see [`may_have_written`]) notes the entry's URL group unsettled.
    async fn write_if(
        &self,
        key: &CacheKey,
        url_group: Option<CacheKey>,
        put: impl Future<Output = Result<bool, StoreError>>,
    ) -> bool {
        if self.is_read_only() {
            tracing::debug!(%key, "read-only cache; response not cached");
            return false;
        }
        match self.bounded(StoreOp::Put, put).await {
            Ok(false) => false,
            Ok(true) => {
                self.stats.store();
                true
            }
            Err(StoreError::TooLarge { size, limit }) => {
                tracing::debug!(%key, size, limit, "response too large for the store; not cached");
                false
            }
            Err(error) => {
                if let Some(group) = url_group.filter(|_| may_have_written(&error)) {
                    self.unsettled.note(group, std::time::Instant::now());
                }
                self.failed(key, &error, "cache write failed; response not cached");
                false
            }
        }
    }

    /// Deletes an entry; a failure is logged and counted, never raised. False when the delete
    /// did not reach the store (a read-only cache deletes nothing, and says true).
    pub(crate) async fn forget(&self, key: &CacheKey) -> bool {
        if self.is_read_only() {
            return true;
        }
        match self.bounded(StoreOp::Delete, self.store.delete(key)).await {
            Ok(_) => true,
            Err(error) => {
                self.failed(key, &error, "cache delete failed");
                false
            }
        }
    }

    /// [`CacheStore::delete_if_created`] within the time bound: removes the entry under `key`
    /// if it is still the one stored at `created_at` (one written since stays); true when it
    /// removed it.
    pub(crate) async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let delete = self.store.delete_if_created(key, created_at);
        self.bounded(StoreOp::Delete, delete).await
    }

    /// [`StoreCalls::delete_if_created`] of what a read found unreadable (another client may
    /// have written a good one since), logged rather than returned; nothing when read-only.
    pub(crate) async fn forget_if_created(&self, key: &CacheKey, created_at: SystemTime) {
        if self.is_read_only() {
            return;
        }
        if let Err(error) = self.delete_if_created(key, created_at).await {
            self.failed(key, &error, "cache delete failed");
        }
    }

    /// Sets an entry's expiry, within the time bound; the store's error is the caller's to
    /// judge (a Vary index not renewed only costs a refetch).
    pub(crate) async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<std::time::SystemTime>,
    ) -> Result<bool, StoreError> {
        if self.is_read_only() {
            return Ok(false);
        }
        let renewed = self.store.set_expiry(key, expires_at);
        self.bounded(StoreOp::Put, renewed).await
    }

    /// Renews an entry whose body is in its file, as a `304` does, while it is the write
    /// created at `was_created` ([`BodyFiles::renew`](cache_core::BodyFiles::renew)), within
    /// the time bound; false for a store without body files.
    pub(crate) async fn renew_body_file(
        &self,
        key: &CacheKey,
        was_created: SystemTime,
        (created_at, expires_at): (SystemTime, Option<SystemTime>),
    ) -> Result<bool, StoreError> {
        let Some(files) = self.store.body_files() else {
            return Ok(false);
        };
        if self.is_read_only() {
            return Ok(false);
        }
        let renewed = files.renew(key, was_created, created_at, expires_at);
        self.bounded(StoreOp::Put, renewed).await
    }

    /// `response` encoded for the store under `key`; `None` (warned) when it cannot be.
    pub(crate) fn encode(&self, response: &CachedResponse, key: &CacheKey) -> Option<Bytes> {
        match self.codec.encode(Some(key), response) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::warn!(%key, error = %error_chain(&error), "cannot encode response; not cached");
                None
            }
        }
    }

    /// A Vary index encoded for the store under `key`.
    pub(crate) fn encode_vary_index(&self, index: &VaryIndex, key: &CacheKey) -> Option<Bytes> {
        self.codec.encode_vary_index(Some(key), index).ok()
    }

    /// Counts a failed store call and logs it: a warning at most once a second (a down
    /// store fails every request), otherwise a debug line; a call the open breaker skipped
    /// is counted apart and only debug-logged (the failures that opened it were warned).
    fn failed(&self, key: &CacheKey, error: &StoreError, what: &str) {
        let skipped = std::error::Error::source(error)
            .is_some_and(|source| source.downcast_ref::<CircuitOpen>().is_some());
        if skipped {
            self.stats.skip();
            tracing::debug!(%key, error = %error_chain(error), "{what}");
            return;
        }
        self.stats.error();
        match self.warnings.allow() {
            Some(suppressed) => {
                tracing::warn!(%key, error = %error_chain(error), suppressed, "{what}");
            }
            None => tracing::debug!(%key, error = %error_chain(error), "{what}"),
        }
    }

    /// Runs a store call within the store timeout.
    ///
    /// The call is polled once first: in-process stores (memory, sled) answer at once, and
    /// then no timer is armed, which is most of a hit's cost otherwise. Its time is added to
    /// the observed request's total and the `metrics` histogram, when either is on.
    pub(crate) async fn bounded<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.bounded_for(op, self.store_timeout, call).await
    }

    /// [`StoreCalls::bounded`] with another time limit, for calls that touch every entry.
    pub(crate) async fn bounded_for<T>(
        &self,
        op: StoreOp,
        timeout: Duration,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.bounded_judged(op, timeout, call, |_| false).await
    }

    /// [`StoreCalls::bounded_for`] of a call whose answer may tell of a failure itself (one
    /// of several reads failed): `failed` says so, and the breaker counts it as a failure.
    async fn bounded_judged<T>(
        &self,
        op: StoreOp,
        timeout: Duration,
        call: impl Future<Output = Result<T, StoreError>>,
        failed: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        let permit = match self.breaker.allow() {
            Ok(permit) => permit,
            Err(open) => return Err(StoreError::unavailable(open)),
        };
        let started = observe::store_call_started();
        let result = within(timeout, call).await;
        observe::store_call_finished(op, started);
        match &result {
            Ok(answer) if failed(answer) => permit.failure(),
            result => permit.settle(result),
        }
        result
    }
}

/// Whether a write that failed with `error` may have written all the same, or may still
/// write: it timed out, or the connection or the backend failed midway. Not when the store
/// refused it whole (too large, full) or the breaker never sent it.
pub(crate) fn may_have_written(error: &StoreError) -> bool {
    match error {
        StoreError::TooLarge { .. } | StoreError::Full { .. } => false,
        error => std::error::Error::source(error)
            .is_none_or(|source| source.downcast_ref::<CircuitOpen>().is_none()),
    }
}

/// `call`'s answer, or [`StoreError::Timeout`] past `timeout` (the call dropped then).
///
/// The call is polled once first: in-process stores (memory, sled) answer at once, and then
/// no timer is armed, which is most of a hit's cost otherwise.
pub(crate) async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(result) => result,
        // Boxed: the timer is large, and only a store that did not answer at once needs
        // it; in-process hits keep a small future (every hit moves it several times).
        std::task::Poll::Pending => Box::pin(tokio::time::timeout(timeout, call))
            .await
            .unwrap_or(Err(StoreError::Timeout(timeout))),
    }
}

/// Reads per unit of tokio's cooperative budget (128 units a task poll), so a task answered
/// from the cache again and again yields after about 128 × this many hits.
///
/// Each forced yield costs the request it lands in a turn of the whole run queue (with 64
/// tasks looping on SQLite hits on 2 workers: 30–90 ms). A unit per read made that one
/// request in 128, so the slowest 1% were those (p99 7–9× the median); one per four reads
/// keeps them under 0.2% of requests, while a task still yields within some 512 hits (about
/// 2 ms of hits here, the order of an OS time slice).
const READS_PER_BUDGET_UNIT: u32 = 4;

thread_local! {
    /// Reads on this thread since the last unit spent.
    static READS_SINCE_UNIT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// True for every [`READS_PER_BUDGET_UNIT`]th read of this thread.
fn spends_budget_unit() -> bool {
    READS_SINCE_UNIT.with(|reads| {
        let next = reads.get() + 1;
        let spends = next >= READS_PER_BUDGET_UNIT;
        reads.set(if spends { 0 } else { next });
        spends
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One read in [`READS_PER_BUDGET_UNIT`] spends a unit, on each thread apart.
    #[test]
    fn one_read_in_so_many_spends_a_budget_unit() {
        let spent_on_a_new_thread = || {
            std::thread::spawn(|| {
                (0..READS_PER_BUDGET_UNIT * 50)
                    .filter(|_| spends_budget_unit())
                    .count()
            })
            .join()
            .unwrap()
        };
        assert_eq!(spent_on_a_new_thread(), 50);
        assert_eq!(spent_on_a_new_thread(), 50);
        let first_spent =
            std::thread::spawn(|| (1..=READS_PER_BUDGET_UNIT).find(|_| spends_budget_unit()))
                .join()
                .unwrap();
        assert_eq!(first_spent, Some(READS_PER_BUDGET_UNIT));
    }
}
