//! [`DecodedCopies`]: decoded forms of entries read again, for stores that keep bytes
//! (SQLite, sled, Redis, MongoDB, DynamoDB), so a hit on unchanged bytes skips decoding.
//!
//! A copy is never trusted on its own: every read still reads the store, and a copy answers
//! only when the bytes just read are the very bytes it was decoded from, and the metadata the
//! store compares is the same: all of it for MongoDB, DynamoDB and sled; the creation and
//! expiry times for SQLite and Redis, whose URL, group and Vary parent are written with the
//! bytes by one statement (another program editing only those is not seen until the bytes or
//! a time change). A write by this process, another process or another program shows
//! at once; a copy only saves the work of decoding what did not change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::codec::EntryCodec;
use crate::error::StoreError;
use crate::key::CacheKey;
use crate::response::CachedResponse;
use crate::store::{Decoded, DecodedEntry, EntryMeta, StoredEntry, Undecodable};
use crate::time::retention_deadline;
use crate::written::Kept;

/// The largest value [`DecodedCopies::read`] compares with a copy (64 KiB): about where
/// comparing the value costs what decoding its head does.
pub const COMPARED_MAX_BYTES: usize = 64 * 1024;

/// How many bytes of copies a store keeps unless told otherwise: 32 MiB, as the heap holds
/// them (stored bytes, decoded header maps and URLs, allocations): about 10,000 entries of
/// 1 KiB bodies and a few fields. (Weighed at their stored bytes and 512 more, as copies once
/// were, the 16 MiB default held about 28 MiB; weighed as held, 16 MiB keeps about 5,000
/// such entries.)
pub const DEFAULT_DECODED_COPIES_BYTES: u64 = 32 * 1024 * 1024;

/// Decoded entries kept beside the store's bytes, bounded in bytes (least valuable first out:
/// quick_cache's CLOCK-PRO, as [`MemoryStore`](crate::MemoryStore)).
///
/// Only entries an unsigned codec decodes into a body that is a slice of the stored bytes are
/// kept (not signed ones: another codec may hold other keys and must verify for itself; not
/// compressed ones: their body is a new buffer the bound would not see). A copy holds the
/// stored bytes it came from, which its decoded body shares: the bound weighs them.
///
/// A store's read: ask for the copy with the bytes just read, else decode through it.
///
/// ```
/// use cache_core::codec::EntryCodec;
/// use cache_core::decoded_copies::DecodedCopies;
/// use cache_core::{CacheKey, EntryMeta, StoredEntry};
/// # use cache_core::{CachedRequest, CachedResponse};
/// # use http::{HeaderMap, Method, StatusCode, Version};
/// # let response = CachedResponse::new(StatusCode::OK, Version::HTTP_11, HeaderMap::new(),
/// #     bytes::Bytes::from_static(b"body"), "https://example.com/",
/// #     CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()));
/// let copies = DecodedCopies::new(16 * 1024 * 1024);
/// let codec = EntryCodec::new();
/// let key: CacheKey = "00112233445566778899aabbccddeeff".parse().unwrap();
/// let stored = cache_core::encode(&response).unwrap();
/// let read = |value: bytes::Bytes| {
///     if let Some(kept) = copies.get(&key, &value, &codec, |_| true) {
///         return kept;
///     }
///     let meta = EntryMeta::new(key, "https://example.com/", std::time::SystemTime::now(), None);
///     copies.decode(&key, StoredEntry::new(meta, value.clone()), value, &codec).unwrap()
/// };
/// let first = read(stored.clone());
/// let second = read(stored.clone()); // decoded again, and kept
/// let third = read(stored.clone()); // the kept copy
/// assert!(std::sync::Arc::ptr_eq(&second, &third));
/// assert!(!std::sync::Arc::ptr_eq(&first, &third));
/// ```
pub struct DecodedCopies {
    copies: Option<quick_cache::sync::Cache<CacheKey, Copy, CopyWeight>>,
    /// Keys decoded once lately, a fingerprint per slot: a copy is kept on a key's second
    /// decoding only. Reads that sweep over more keys than the copies hold then leave them
    /// alone (keeping each would decode, insert and evict on every read: slower than
    /// keeping none), while a key read again soon is kept. Made on the first decoding:
    /// a store only written, or only read through its copies, never needs it.
    seen: OnceLock<Box<[AtomicU64]>>,
    seen_slots: usize,
}

#[derive(Clone)]
struct Copy {
    /// The stored bytes the copy was decoded from.
    value: Bytes,
    decoded: Arc<Decoded>,
    /// Heap bytes the decoded form holds beyond `value` (its allocations, and a writer's
    /// copied header values: see `crate::held`).
    held: u64,
    /// Where the store last found `value` ([`DecodedCopies::locate`]): a hint, which the store
    /// checks before trusting (SQLite's row id).
    location: Option<i64>,
}

#[derive(Clone)]
struct CopyWeight;

impl quick_cache::Weighter<CacheKey, Copy> for CopyWeight {
    fn weight(&self, _key: &CacheKey, copy: &Copy) -> u64 {
        crate::held::allocation(copy.value.len()) + copy.held + crate::held::TABLE_SLOT
    }
}

impl DecodedCopies {
    /// Copies holding up to about `max_bytes` bytes of memory (their stored values, decoded
    /// forms and allocations, estimated as the heap lays them out); 0 keeps none.
    pub fn new(max_bytes: u64) -> Self {
        let copies = (max_bytes > 0).then(|| {
            // The estimate only sizes the table up front; the byte bound is what holds.
            let estimated = (max_bytes / (4 * 1024)).clamp(16, 1 << 16) as usize;
            quick_cache::sync::Cache::with_weighter(estimated, max_bytes, CopyWeight)
        });
        // About a slot per KiB of the bound: as many keys as small entries would fill it.
        let seen_slots = match copies {
            Some(_) => (max_bytes / 1024).clamp(1024, 1 << 20) as usize,
            None => 0,
        };
        Self {
            copies,
            seen: OnceLock::new(),
            seen_slots,
        }
    }

    /// True when `key` was decoded lately (and marks it so for next time).
    fn seen_before(&self, key: &CacheKey) -> bool {
        if self.seen_slots == 0 {
            return false;
        }
        let seen = self
            .seen
            .get_or_init(|| (0..self.seen_slots).map(|_| AtomicU64::new(0)).collect());
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(key, &mut hasher);
        let hash = std::hash::Hasher::finish(&hasher);
        // Never 0, the mark of an empty slot.
        let fingerprint = hash | 1;
        let slot = &seen[(hash >> 32) as usize % seen.len()];
        slot.swap(fingerprint, Ordering::Relaxed) == fingerprint
    }

    /// The kept decoding of the entry under `key`, if it was decoded from exactly `value` by a
    /// codec like `codec`, and `same_meta` accepts the metadata it was kept with (a store
    /// whose metadata lives outside `value` compares it there). A copy that does not answer
    /// is dropped: it was made from bytes the store no longer holds.
    pub fn get(
        &self,
        key: &CacheKey,
        value: &[u8],
        codec: &EntryCodec,
        same_meta: impl FnOnce(&EntryMeta) -> bool,
    ) -> Option<Arc<Decoded>> {
        self.answer(key, self.kept(key, codec), value, same_meta)
    }

    /// [`get`](Self::get) with the copy looked up before the store's read
    /// ([`kept`](Self::kept), then [`KeptCopy::prefetch`]): the copy's lines come into the
    /// processor's caches while the store reads, rather than one by one after it.
    pub fn answer(
        &self,
        key: &CacheKey,
        kept: Option<KeptCopy>,
        value: &[u8],
        same_meta: impl FnOnce(&EntryMeta) -> bool,
    ) -> Option<Arc<Decoded>> {
        let kept = kept?;
        let looked_up = Arc::clone(&kept.0.decoded);
        let answer = kept.answers(value, same_meta);
        if answer.is_none() {
            // Decoding the new bytes replaces it only when it keeps a copy of them, which
            // it never does for a compressed value: kept, the stale copy would hold its bytes
            // and be compared on every read (and each read's touch keeps it from eviction).
            self.forget_looked_up(key, &looked_up);
        }
        answer
    }

    /// [`kept`](Self::kept), its decoded entry read ahead ([`KeptCopy::prefetch`]): for a
    /// store that looks its copy up before its own read, so that the copy's lines come into
    /// the processor's caches while the store reads; what the read finds then goes to
    /// [`answer`](Self::answer).
    #[must_use]
    pub fn kept_prefetched(&self, key: &CacheKey, codec: &EntryCodec) -> Option<KeptCopy> {
        let kept = self.kept(key, codec);
        if let Some(kept) = &kept {
            kept.prefetch();
        }
        kept
    }

    /// Drops `kept`, the copy a store looked up before a read that cannot use it (it found
    /// no entry, or a value of a size no copy is kept for): a copy of an earlier value, which
    /// each such read's lookup would otherwise keep from eviction. Only while it is still
    /// the copy under `key` (a write since then keeps its own).
    pub fn forget_unused(&self, key: &CacheKey, kept: Option<KeptCopy>) {
        if let Some(kept) = kept {
            self.forget_looked_up(key, &kept.0.decoded);
        }
    }

    /// Drops the copy under `key` if it is still the one whose decoded form is `looked_up`:
    /// a write landing since the lookup kept its own, which answers for the bytes it wrote.
    fn forget_looked_up(&self, key: &CacheKey, looked_up: &Arc<Decoded>) {
        if let Some(copies) = &self.copies {
            copies.remove_if(key, |copy| Arc::ptr_eq(&copy.decoded, looked_up));
        }
    }

    /// The copy kept for `key`, whatever value it was decoded from, for a store that reads
    /// less of an entry when a copy may answer: what the read then finds goes to
    /// [`KeptCopy::answers`]. `None` without a copy, or for a signing codec (a copy never
    /// answers one).
    ///
    /// ```
    /// use cache_core::codec::EntryCodec;
    /// use cache_core::decoded_copies::DecodedCopies;
    /// use cache_core::{CacheKey, EntryMeta, StoredEntry};
    /// # use cache_core::{CachedRequest, CachedResponse};
    /// # use http::{HeaderMap, Method, StatusCode, Version};
    /// # let response = CachedResponse::new(StatusCode::OK, Version::HTTP_11, HeaderMap::new(),
    /// #     bytes::Bytes::from_static(b"body"), "https://example.com/",
    /// #     CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()));
    /// let copies = DecodedCopies::new(16 * 1024 * 1024);
    /// let codec = EntryCodec::new();
    /// let key: CacheKey = "00112233445566778899aabbccddeeff".parse().unwrap();
    /// let value = cache_core::encode(&response).unwrap();
    /// let meta = EntryMeta::new(key, "https://example.com/", std::time::SystemTime::now(), None);
    /// copies.keep_written(&StoredEntry::new(meta.clone(), value.clone()), response);
    /// let copy = copies.kept(&key, &codec).expect("kept by the write");
    /// // The read found the value and times the copy was made from: it answers.
    /// assert!(copy.clone().answers(&value, |kept| kept.created_at == meta.created_at).is_some());
    /// // Another value: the store reads the whole entry and decodes it.
    /// assert!(copy.answers(b"other bytes", |_| true).is_none());
    /// ```
    #[must_use]
    pub fn kept(&self, key: &CacheKey, codec: &EntryCodec) -> Option<KeptCopy> {
        if codec.signs() {
            return None;
        }
        self.copies.as_ref()?.get(key).map(KeptCopy)
    }

    /// Decodes `entry` (read under `key`) and keeps the result when it may, to answer later
    /// reads of exactly `compared`: the stored value, or the whole record when the store keeps
    /// the metadata inside it. `compared` should share its buffer with `entry.value`, which the
    /// decoded body slices (then the copy holds the bytes once).
    pub fn decode(
        &self,
        key: &CacheKey,
        entry: StoredEntry,
        compared: Bytes,
        codec: &EntryCodec,
    ) -> Result<Arc<Decoded>, Box<Undecodable>> {
        self.decode_found_at(key, entry, compared, codec, None)
    }

    /// [`decode`](Self::decode) of an entry the store found at `location` (see
    /// [`locate`](Self::locate)), which the copy it keeps remembers.
    pub fn decode_found_at(
        &self,
        key: &CacheKey,
        entry: StoredEntry,
        compared: Bytes,
        codec: &EntryCodec,
        location: Option<i64>,
    ) -> Result<Arc<Decoded>, Box<Undecodable>> {
        let keep = self.copies.is_some()
            && !codec.signs()
            && !crate::codec::body_is_compressed(&entry.value)
            && self.seen_before(key);
        let decoded = entry.decode(key, codec)?;
        if let (Some(copies), true) = (&self.copies, keep) {
            copies.insert(
                *key,
                Copy {
                    value: compared,
                    held: crate::held::decoded_form(&decoded),
                    decoded: Arc::clone(&decoded),
                    location,
                },
            );
        }
        Ok(decoded)
    }

    /// The decoded form of `entry`, just read under `key` from a store that keeps the
    /// metadata beside the value (a remote store's fields or columns): the copy made from this
    /// very value and metadata if there is one, else `entry` decoded through
    /// [`decode`](Self::decode).
    ///
    /// Values over [`COMPARED_MAX_BYTES`] are decoded without copies: comparing reads every
    /// byte, while decoding reads the head and slices the body.
    pub fn read(
        &self,
        key: &CacheKey,
        entry: StoredEntry,
        codec: &EntryCodec,
    ) -> Result<Arc<Decoded>, Box<Undecodable>> {
        if !self.reads_copies_of(&entry.value) {
            // A copy of an earlier, smaller value could not answer for this one.
            self.forget(key);
            return entry.decode(key, codec);
        }
        if let Some(kept) = self.get(key, &entry.value, codec, |meta| *meta == entry.meta) {
            return Ok(kept);
        }
        let value = entry.value.clone();
        self.decode(key, entry, value, codec)
    }

    /// [`read`](Self::read) of what a store's `get` found under `key`: the body of the
    /// `get_decoded` of a store that reads each entry whole from elsewhere (Redis, MongoDB,
    /// DynamoDB).
    pub fn read_found(
        &self,
        key: &CacheKey,
        found: Option<StoredEntry>,
        codec: &EntryCodec,
    ) -> DecodedEntry {
        let Some(entry) = found else {
            // Gone (expired by the server, deleted elsewhere): so is its copy's use.
            self.forget(key);
            return None;
        };
        Some(self.read(key, entry, codec))
    }

    /// Writes `entry` with `put`, then keeps the writer's `response` as its copy when
    /// [`read`](Self::read) would use one (see [`reads_copies_of`](Self::reads_copies_of))
    /// and the store will hold the entry: the body of such a store's `put_decoded`.
    /// `ttl_offset` is how long past its expiry the store keeps an entry (`None`: until
    /// deleted); one already past that is dropped by the store, and gets no copy. Nothing is
    /// kept when the write fails; the key's copy from before goes whenever no new one is kept
    /// (it could not answer for the new value).
    pub async fn put_keeping<F>(
        &self,
        entry: StoredEntry,
        response: CachedResponse,
        ttl_offset: Option<Duration>,
        put: impl FnOnce(StoredEntry) -> F,
    ) -> Result<(), StoreError>
    where
        F: Future<Output = Result<(), StoreError>>,
    {
        let retained = retention_deadline(entry.meta.expires_at, ttl_offset)
            .is_none_or(|until| until > SystemTime::now());
        if !retained || !self.reads_copies_of(&entry.value) {
            self.forget(&entry.meta.key);
            return put(entry).await;
        }
        let written = entry.clone();
        put(entry).await?;
        self.keep_written(&written, response);
        Ok(())
    }

    /// Keeps, as the copy of `entry` (just written with a codec that does not sign), the
    /// response its writer encoded into it, to answer reads of exactly `entry`'s
    /// value and metadata: the entry's first read then decodes nothing. Nothing is kept where
    /// decoding would not give that response sharing the value (see the stores' contract in
    /// [`CacheStore::put_decoded`](crate::CacheStore::put_decoded)). A write racing this one
    /// is harmless: a copy answers only for the very bytes it holds.
    pub fn keep_written(&self, entry: &StoredEntry, response: CachedResponse) {
        self.keep_written_found_at(entry, response, None);
    }

    /// [`keep_written`](Self::keep_written) of an entry the store wrote at `location` (see
    /// [`locate`](Self::locate)), which the copy remembers.
    pub fn keep_written_found_at(
        &self,
        entry: &StoredEntry,
        response: CachedResponse,
        location: Option<i64>,
    ) {
        self.keep_written_as(entry, entry.value.clone(), response, location);
    }

    /// [`keep_written`](Self::keep_written) for a store whose reads are compared by more than
    /// the value (sled compares its whole record, which holds the metadata): `record` is
    /// those bytes as its reads will find them, and `entry` (the record read back, decoded)
    /// should have its value sliced from it, so the copy holds the bytes once. The caller
    /// checks that `record` is what it wrote.
    pub fn keep_written_record(
        &self,
        entry: &StoredEntry,
        record: Bytes,
        response: CachedResponse,
    ) {
        self.keep_written_as(entry, record, response, None);
    }

    fn keep_written_as(
        &self,
        entry: &StoredEntry,
        compared: Bytes,
        response: CachedResponse,
        location: Option<i64>,
    ) {
        let Some(copies) = &self.copies else {
            return;
        };
        if let Some(kept) = Kept::of(entry, response) {
            let copy = Copy {
                value: compared,
                held: kept.held(),
                decoded: kept.decoded,
                location,
            };
            copies.insert(entry.meta.key, copy);
        }
    }

    /// Notes that the copy under `key` whose decoded form is `answered` (it just answered, or
    /// was just kept) was found at `location`, the store's own address of the row (SQLite's
    /// row id): its next read may look there first, rather than search its index for the key
    /// (an index search at 10,000 keys is a dozen lines from memory). The store must check
    /// what it finds there (the row holds the key), as a row may move. Nothing when the copy
    /// under `key` is another (a write since kept its own) or gone.
    pub fn locate(&self, key: &CacheKey, answered: &Arc<Decoded>, location: i64) {
        let Some(copies) = &self.copies else {
            return;
        };
        // Not waiting: a placeholder is another thread's insert, which keeps its own copy.
        let _ = copies.entry(key, Some(Duration::ZERO), |_, copy| {
            if Arc::ptr_eq(&copy.decoded, answered) {
                copy.location = Some(location);
            }
            quick_cache::sync::EntryAction::Retain(())
        });
    }

    /// True when [`read`](Self::read) would use a copy of an entry holding `value`: copies
    /// are kept, and the value is small enough to compare. A remote store's `put_decoded`
    /// keeps the writer's response only then.
    pub fn reads_copies_of(&self, value: &[u8]) -> bool {
        self.copies.is_some() && value.len() <= COMPARED_MAX_BYTES
    }

    /// True when copies are kept at all (a bound above zero).
    pub fn keeps_copies(&self) -> bool {
        self.copies.is_some()
    }

    /// Drops the copy of `key`'s entry (after a delete: its memory goes at once).
    pub fn forget(&self, key: &CacheKey) {
        if let Some(copies) = &self.copies {
            copies.remove(key);
        }
    }

    /// Drops every copy.
    pub fn clear(&self) {
        if let Some(copies) = &self.copies {
            copies.clear();
        }
    }

    /// The bytes the copies weigh now.
    pub fn weight(&self) -> u64 {
        self.copies.as_ref().map_or(0, |copies| copies.weight())
    }
}

impl std::fmt::Debug for DecodedCopies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedCopies")
            .field("weight", &self.weight())
            .finish()
    }
}

/// A copy [`DecodedCopies::kept`] found, to check against what a read then finds.
#[derive(Clone)]
pub struct KeptCopy(Copy);

impl KeptCopy {
    /// Reads the copy's decoded entry ahead of its use ([`Decoded::prefetch`]).
    pub fn prefetch(&self) {
        self.0.decoded.prefetch();
    }

    /// Where the store last found the copy's bytes ([`DecodedCopies::locate`]), if it said.
    pub fn location(&self) -> Option<i64> {
        self.0.location
    }

    /// The copy's decoded form, if it was decoded from exactly `value` and `same_meta`
    /// accepts the metadata it was kept with (a store compares there what it read beside the
    /// value); `None` otherwise, and the store reads and decodes the entry as without a copy.
    #[must_use]
    pub fn answers(
        self,
        value: &[u8],
        same_meta: impl FnOnce(&EntryMeta) -> bool,
    ) -> Option<Arc<Decoded>> {
        let Copy {
            value: kept,
            decoded,
            ..
        } = self.0;
        // The same buffer (sled hands out its own again) is equal without reading it.
        let same_value =
            kept.len() == value.len() && (kept.as_ptr() == value.as_ptr() || kept[..] == *value);
        (same_value && same_meta(&decoded.meta)).then_some(decoded)
    }
}

impl std::fmt::Debug for KeptCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptCopy")
            .field("key", &self.0.decoded.meta.key)
            .field("bytes", &self.0.value.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{key, sample_response};
    use std::time::SystemTime;

    fn stored(n: u64, value: Bytes) -> StoredEntry {
        StoredEntry::new(
            EntryMeta::new(key(n), "https://e.com/", SystemTime::UNIX_EPOCH, None),
            value,
        )
    }

    /// Copies holding the one the write of the returned response kept under key 1.
    fn holding_a_copy() -> (DecodedCopies, CachedResponse) {
        let copies = DecodedCopies::new(1 << 20);
        let response = sample_response();
        let value = crate::codec::encode(&response).unwrap();
        copies.keep_written(&stored(1, value), response.clone());
        assert!(copies.weight() > 0, "the write kept a copy");
        (copies, response)
    }

    /// A read that finds the entry gone (expired by the server, deleted by another client)
    /// drops its copy: it could never answer again.
    #[test]
    fn a_read_finding_nothing_drops_the_copy() {
        let (copies, _) = holding_a_copy();
        let codec = EntryCodec::new();
        assert!(copies.read_found(&key(1), None, &codec).is_none());
        assert_eq!(copies.weight(), 0);
    }

    /// A copy that does not answer the bytes a read found is dropped, though decoding them
    /// keeps none (a compressed value here): kept, it would stay, weighed and compared on
    /// every read of the key.
    #[test]
    fn a_copy_of_other_bytes_is_dropped() {
        let (copies, response) = holding_a_copy();
        let codec = EntryCodec::new();
        let mut grown = response;
        grown.body = Bytes::from(vec![b'a'; 4096]);
        let compressed = EntryCodec::new()
            .compress_above(1024)
            .encode(Some(&key(1)), &grown)
            .unwrap();
        assert!(crate::codec::body_is_compressed(&compressed));
        for _ in 0..2 {
            let read = copies.read(&key(1), stored(1, compressed.clone()), &codec);
            assert!(read.is_ok());
            assert_eq!(copies.weight(), 0, "a copy of other bytes was kept");
        }
    }

    /// A store looks its copy up before it reads (`answer`): a write landing in between
    /// leaves the read holding the copy from before, which must not answer for the bytes the
    /// read found; those decode, and the read gets the written response.
    #[test]
    fn a_copy_looked_up_before_a_write_does_not_answer_for_its_bytes() {
        let (copies, response) = holding_a_copy();
        let codec = EntryCodec::new();
        let before = copies.kept(&key(1), &codec).expect("kept by the write");
        before.prefetch();
        let mut written = response;
        written.body = Bytes::from_static(b"written meanwhile");
        let value = crate::codec::encode(&written).unwrap();
        copies.keep_written(&stored(1, value.clone()), written.clone());
        assert!(
            copies
                .answer(&key(1), Some(before), &value, |_| true)
                .is_none()
        );
        // The write's own copy stays: it answers for its bytes (dropped, the key went
        // without a copy until its second decoding).
        let kept = copies.get(&key(1), &value, &codec, |_| true);
        assert!(kept.is_some(), "the written copy was dropped");
        let read = copies.read(&key(1), stored(1, value), &codec).unwrap();
        let crate::Entry::Response(read) = &read.entry else {
            panic!("not a response");
        };
        assert_eq!(read.body, written.body);
    }

    /// A copy remembers where the store found its bytes: given at the write or the
    /// decoding, or later by `locate`, which changes only the copy that answered (a write
    /// since keeps its own, found elsewhere).
    #[test]
    fn a_copy_remembers_where_its_bytes_were_found() {
        let copies = DecodedCopies::new(1 << 20);
        let codec = EntryCodec::new();
        let response = sample_response();
        let value = crate::codec::encode(&response).unwrap();
        let location = |copies: &DecodedCopies| copies.kept(&key(1), &codec).unwrap().location();
        copies.keep_written_found_at(&stored(1, value.clone()), response.clone(), Some(7));
        assert_eq!(location(&copies), Some(7));
        let answered = copies.get(&key(1), &value, &codec, |_| true).unwrap();
        copies.locate(&key(1), &answered, 9);
        assert_eq!(location(&copies), Some(9));
        copies.keep_written(&stored(1, value.clone()), response);
        assert_eq!(location(&copies), None, "the new write's copy");
        copies.locate(&key(1), &answered, 11);
        assert_eq!(location(&copies), None, "located by a copy replaced since");
        copies.forget(&key(1));
        copies.locate(&key(1), &answered, 13);
        assert!(copies.kept(&key(1), &codec).is_none(), "made by locate");
        // Decoded twice (kept at the second), from where the store read it.
        for _ in 0..2 {
            let found = stored(1, value.clone());
            copies
                .decode_found_at(&key(1), found, value.clone(), &codec, Some(15))
                .unwrap();
        }
        assert_eq!(location(&copies), Some(15));
    }

    /// The table of keys decoded lately is made by the first decoding, not before: writes
    /// and reads answered by copies never make it.
    #[test]
    fn the_seen_table_waits_for_the_first_decoding() {
        let copies = DecodedCopies::new(DEFAULT_DECODED_COPIES_BYTES);
        let codec = EntryCodec::new();
        let response = sample_response();
        let value = crate::codec::encode(&response).unwrap();
        copies.keep_written(&stored(1, value.clone()), response);
        assert!(copies.get(&key(1), &value, &codec, |_| true).is_some());
        assert!(copies.seen.get().is_none(), "made before any decoding");
        copies
            .decode(&key(2), stored(2, value.clone()), value, &codec)
            .unwrap();
        let seen = copies.seen.get().expect("made by the decoding");
        assert_eq!(seen.len(), copies.seen_slots);
        assert!(DecodedCopies::new(0).seen_slots == 0);
    }

    /// A written response is kept at once (no decoding, no second read), weighed with the
    /// header values it copies, and answers only for its own bytes.
    #[test]
    fn a_written_response_is_kept_and_weighed_with_its_header_copies() {
        let copies = DecodedCopies::new(1 << 20);
        let codec = EntryCodec::new();
        let response = sample_response();
        let value = crate::codec::encode(&response).unwrap();
        let headers: usize = response
            .headers
            .values()
            .chain(response.request.headers.values())
            .map(|v| v.len())
            .sum();
        copies.keep_written(&stored(1, value.clone()), response.clone());
        let kept = copies.get(&key(1), &value, &codec, |_| true).expect("kept");
        assert_eq!(
            *kept,
            *stored(1, value.clone()).decode(&key(1), &codec).unwrap()
        );
        let decoded_form = crate::held::decoded_form(&kept);
        assert_eq!(
            copies.weight(),
            crate::held::allocation(value.len())
                + crate::held::allocation(headers)
                + decoded_form
                + crate::held::TABLE_SLOT
        );
        let mut changed = response;
        changed.body = Bytes::from_static(b"changed");
        let other = crate::codec::encode(&changed).unwrap();
        assert!(copies.get(&key(1), &other, &codec, |_| true).is_none());
        // None kept where copies are off.
        let none = DecodedCopies::new(0);
        none.keep_written(&stored(1, value.clone()), changed);
        assert!(none.get(&key(1), &value, &codec, |_| true).is_none());
    }

    #[test]
    fn a_copy_answers_only_for_the_very_bytes_and_metadata_it_came_from() {
        let copies = DecodedCopies::new(1 << 20);
        let codec = EntryCodec::new();
        let value = crate::codec::encode(&sample_response()).unwrap();
        let decode = || {
            copies
                .decode(&key(1), stored(1, value.clone()), value.clone(), &codec)
                .unwrap()
        };
        // Kept on the second decoding only.
        decode();
        assert!(copies.get(&key(1), &value, &codec, |_| true).is_none());
        let first = decode();
        // The same buffer, and equal bytes in another buffer: the kept decoding.
        let kept = copies.get(&key(1), &value, &codec, |_| true).unwrap();
        assert!(Arc::ptr_eq(&kept, &first));
        let elsewhere = value.to_vec();
        assert!(copies.get(&key(1), &elsewhere, &codec, |_| true).is_some());
        // Other bytes, other metadata, another key: nothing.
        let mut changed = sample_response();
        changed.body = Bytes::from_static(b"changed");
        let other = crate::codec::encode(&changed).unwrap();
        assert!(copies.get(&key(1), &other, &codec, |_| true).is_none());
        let mut flipped = value.to_vec();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(copies.get(&key(1), &flipped, &codec, |_| true).is_none());
        assert!(copies.get(&key(1), &value, &codec, |_| false).is_none());
        assert!(copies.get(&key(2), &value, &codec, |_| true).is_none());
        copies.forget(&key(1));
        assert!(copies.get(&key(1), &value, &codec, |_| true).is_none());
    }

    #[test]
    fn signed_compressed_and_undecodable_entries_are_not_kept() {
        let copies = DecodedCopies::new(1 << 20);
        let signing =
            EntryCodec::new().signing_keys(crate::codec::SigningKeys::new(b"secret".to_vec()));
        let signed = signing.encode(Some(&key(1)), &sample_response()).unwrap();
        copies
            .decode(&key(1), stored(1, signed.clone()), signed.clone(), &signing)
            .unwrap();
        assert!(copies.get(&key(1), &signed, &signing, |_| true).is_none());
        let plain = EntryCodec::new();
        assert!(copies.get(&key(1), &signed, &plain, |_| true).is_none());

        let compressing = EntryCodec::new().compress_above(0);
        let mut big = sample_response();
        big.body = Bytes::from(vec![b'z'; 4096]);
        let compressed = compressing.encode(None, &big).unwrap();
        copies
            .decode(
                &key(2),
                stored(2, compressed.clone()),
                compressed.clone(),
                &compressing,
            )
            .unwrap();
        assert!(
            copies
                .get(&key(2), &compressed, &compressing, |_| true)
                .is_none()
        );

        let junk = Bytes::from_static(b"junk");
        assert!(
            copies
                .decode(&key(3), stored(3, junk.clone()), junk.clone(), &plain)
                .is_err()
        );
        assert!(copies.get(&key(3), &junk, &plain, |_| true).is_none());
        assert_eq!(copies.weight(), 0);
    }

    /// A sweep over more keys than there are slots keeps nothing: no key comes back before
    /// its slot is taken by another.
    #[test]
    fn a_sweep_over_many_keys_keeps_no_copies() {
        let codec = EntryCodec::new();
        let value = crate::codec::encode(&sample_response()).unwrap();
        let copies = DecodedCopies::new(1 << 20);
        for _ in 0..2 {
            for n in 0..20_000 {
                copies
                    .decode(&key(n), stored(n, value.clone()), value.clone(), &codec)
                    .unwrap();
            }
        }
        assert!(
            copies.weight() < 100_000,
            "copies kept: {}",
            copies.weight()
        );
    }

    #[test]
    fn copies_stay_within_their_bytes_and_none_are_kept_at_zero() {
        let codec = EntryCodec::new();
        let mut response = sample_response();
        response.body = Bytes::from(vec![b'x'; 10_000]);
        let value = crate::codec::encode(&response).unwrap();
        let copies = DecodedCopies::new(100_000);
        for n in 0..100 {
            copies
                .decode(&key(n), stored(n, value.clone()), value.clone(), &codec)
                .unwrap();
        }
        assert!(copies.weight() <= 100_000, "weight {}", copies.weight());
        let none = DecodedCopies::new(0);
        none.decode(&key(1), stored(1, value.clone()), value.clone(), &codec)
            .unwrap();
        assert!(none.get(&key(1), &value, &codec, |_| true).is_none());
        assert_eq!(none.weight(), 0);
    }

    /// `read` answers from a copy made from the same value and metadata (kept from a key's
    /// second read), decodes anew when the metadata read differs, and never keeps values
    /// over [`COMPARED_MAX_BYTES`] (comparing them would cost more than decoding their head).
    #[test]
    fn read_compares_value_and_metadata_and_skips_large_values() {
        let codec = EntryCodec::new();
        let copies = DecodedCopies::new(1 << 30);
        let read = |n: u64, value: &Bytes, expires: Option<SystemTime>| {
            let meta = EntryMeta::new(key(n), "https://e.com/", SystemTime::UNIX_EPOCH, expires);
            copies
                .read(&key(n), StoredEntry::new(meta, value.clone()), &codec)
                .unwrap()
        };
        let small = crate::codec::encode(&sample_response()).unwrap();
        let _ = read(1, &small, None);
        let kept = read(1, &small, None);
        assert!(Arc::ptr_eq(&kept, &read(1, &small, None)), "not kept");
        let renewed = Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(60));
        let other_meta = read(1, &small, renewed);
        assert!(!Arc::ptr_eq(&kept, &other_meta));
        assert_eq!(other_meta.meta.expires_at, renewed);
        let mut large = sample_response();
        large.body = Bytes::from(vec![b'x'; COMPARED_MAX_BYTES]);
        let large = crate::codec::encode(&large).unwrap();
        assert!(large.len() > COMPARED_MAX_BYTES);
        let reads: Vec<_> = (0..3).map(|_| read(2, &large, None)).collect();
        assert!(!Arc::ptr_eq(&reads[1], &reads[2]), "a large value was kept");
        assert!(
            copies.weight() < COMPARED_MAX_BYTES as u64,
            "a large value is held"
        );
        assert!(copies.reads_copies_of(&small) && !copies.reads_copies_of(&large));
        assert!(!DecodedCopies::new(0).reads_copies_of(&small));
    }

    /// `put_keeping` keeps the writer's response only once the write succeeded, only for
    /// values `read` compares and entries the store still holds; a key's older copy goes
    /// when no new one is kept, as when `read` meets a value too large to compare.
    #[test]
    fn a_copy_is_kept_only_after_a_successful_write_of_what_reads_will_compare() {
        use futures_util::FutureExt;
        let codec = EntryCodec::new();
        let copies = DecodedCopies::new(1 << 20);
        let response = sample_response();
        let value = crate::codec::encode(&response).unwrap();
        let put =
            |outcome: Result<(), StoreError>| move |_: StoredEntry| std::future::ready(outcome);
        let kept = |n: u64, value: &Bytes| copies.get(&key(n), value, &codec, |_| true).is_some();
        let failed = copies
            .put_keeping(
                stored(1, value.clone()),
                response.clone(),
                None,
                put(Err(StoreError::full("disk full"))),
            )
            .now_or_never()
            .unwrap();
        assert!(matches!(failed, Err(StoreError::Full { .. })));
        assert!(!kept(1, &value));
        let write = |n: u64, value: &Bytes, response: &CachedResponse, offset: Option<Duration>| {
            copies
                .put_keeping(
                    stored(n, value.clone()),
                    response.clone(),
                    offset,
                    put(Ok(())),
                )
                .now_or_never()
                .unwrap()
                .unwrap();
        };
        write(1, &value, &response, None);
        assert!(kept(1, &value));
        // Expired at the epoch: past an hour's retention the store drops it; with no offset,
        // it keeps it.
        let mut old = stored(2, value.clone());
        old.meta.expires_at = Some(SystemTime::UNIX_EPOCH);
        copies
            .put_keeping(
                old.clone(),
                response.clone(),
                Some(Duration::from_secs(3600)),
                put(Ok(())),
            )
            .now_or_never()
            .unwrap()
            .unwrap();
        assert!(!kept(2, &value));
        copies
            .put_keeping(old, response.clone(), None, put(Ok(())))
            .now_or_never()
            .unwrap()
            .unwrap();
        assert!(kept(2, &value));
        // A value too large to compare: no copy, and key 1's older one goes.
        let mut large = response;
        large.body = Bytes::from(vec![b'x'; COMPARED_MAX_BYTES]);
        let large_value = crate::codec::encode(&large).unwrap();
        write(1, &large_value, &large, None);
        assert!(!kept(1, &large_value) && !kept(1, &value));
        // `read` of a large value drops the key's older copy too.
        assert!(kept(2, &value));
        copies
            .read(&key(2), stored(2, large_value), &codec)
            .unwrap();
        assert!(!kept(2, &value));
    }
}
