//! [`MemoryStore`]: a bounded, concurrent, in-process store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_core::stream::BoxStream;

use crate::codec::EntryCodec;
use crate::error::StoreError;
use crate::key::CacheKey;
use crate::response::CachedResponse;
use crate::store::{CacheStore, Decoded, DecodedEntry, EntryMeta, StoredEntry};
use crate::time::truncate_to_millis;
use crate::written::Kept;

mod url_index;

use url_index::{EvictionHook, UrlIndex};

/// The cache behind [`MemoryStore`]: entries by key, weighed, evictions reported to the
/// URL index.
type Entries = quick_cache::sync::Cache<
    CacheKey,
    Slot,
    EntryWeight,
    quick_cache::DefaultHashBuilder,
    EvictionHook,
>;

/// How many entries [`MemoryStore::new`] keeps before evicting.
pub const DEFAULT_MEMORY_CAPACITY: usize = 10_000;

/// How many bytes [`MemoryStore::new`] keeps before evicting (256 MiB).
pub const DEFAULT_MEMORY_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Heap bytes an entry put as bytes is weighed at, per byte of its head, for the decoded form
/// its first read will keep (header maps, URLs; it is decoded with the reader's codec, so not
/// at the write): 3-field heads hold about 4.3 bytes a byte of head, 30-field ones 5.5
/// (`tests/held_bytes.rs`).
const DECODED_PER_HEAD_BYTE: u64 = 5;

/// The head bytes [`DECODED_PER_HEAD_BYTE`] counts at most: past a few kilobytes a head's
/// length is long values (a policy, a cookie), which the decoded form slices rather than
/// copies, not more fields.
const HEAD_COUNTED_UP_TO: u64 = 4096;

/// A stored entry as the cache holds it (inline, in its table), with the heap bytes it holds
/// (see [`crate::held`]): its value's, or the one buffer of one put unencoded, and its
/// decoded form's (made by its first read, for one put as bytes alone: estimated).
#[derive(Clone)]
enum Slot {
    /// Put unencoded ([`CacheStore::put_plain`]): the decoded form alone ([`Kept::plain`]),
    /// its bytes encoded from it when asked for. A hit goes from the table straight to it.
    Decoded { decoded: Arc<Decoded>, bytes: u64 },
    /// Put as bytes.
    Bytes(Arc<BytesSlot>),
}

/// An entry put as bytes, and once read, their decoded form: a hit then skips decoding. A
/// form decoded here shares the value's buffer (header values and body are slices of it);
/// one its writer handed over ([`Kept::of`]) holds its header values in a buffer of its own,
/// weighed with it.
///
/// Laid out in this order (`repr(C)`): a hit reads the decoded form right after counting its
/// reference to the slot, and finds both in one line of memory.
#[repr(C)]
struct BytesSlot {
    decoded: OnceLock<Arc<Decoded>>,
    entry: StoredEntry,
    bytes: u64,
}

impl Slot {
    fn new(entry: StoredEntry, kept: Option<Kept>) -> Self {
        let decoded = OnceLock::new();
        let mut bytes = Self::held_as_bytes(&entry);
        match kept {
            Some(kept) => {
                bytes += kept.held();
                let _ = decoded.set(kept.decoded);
            }
            // Bytes that are no entry, or hold a compressed body, get no decoded form kept.
            None => {
                let body = crate::codec::body_range(&entry.value)
                    .filter(|_| !crate::codec::body_is_compressed(&entry.value));
                if let Some(body) = body {
                    let head = (entry.value.len() - body.len()) as u64;
                    bytes += DECODED_PER_HEAD_BYTE * head.min(HEAD_COUNTED_UP_TO);
                }
            }
        }
        Self::Bytes(Arc::new(BytesSlot {
            decoded,
            entry,
            bytes,
        }))
    }

    /// Heap bytes an entry put as bytes holds before any decoded form: its slot's `Arc`, its
    /// value and its URL.
    fn held_as_bytes(entry: &StoredEntry) -> u64 {
        crate::held::arc_of::<BytesSlot>()
            + crate::held::allocation(entry.value.len())
            + crate::held::allocation(entry.meta.url.len())
    }

    fn meta(&self) -> &EntryMeta {
        match self {
            Self::Decoded { decoded, .. } => &decoded.meta,
            Self::Bytes(slot) => &slot.entry.meta,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Self::Decoded { bytes, .. } => *bytes,
            Self::Bytes(slot) => slot.bytes,
        }
    }

    /// The decoded form, when there is one yet.
    #[cfg(test)]
    fn decoded(&self) -> Option<&Arc<Decoded>> {
        match self {
            Self::Decoded { decoded, .. } => Some(decoded),
            Self::Bytes(slot) => slot.decoded.get(),
        }
    }

    /// This entry with another expiry. Its decoded form is dropped where the bytes remain
    /// (the next read decodes them); one put unencoded is all there is, and is copied with
    /// the new expiry in its metadata, as a read must see it.
    fn with_expiry(&self, expires_at: Option<SystemTime>) -> Self {
        let mut meta = self.meta().clone();
        meta.expires_at = expires_at;
        match self {
            Self::Decoded { decoded, bytes } => Self::Decoded {
                decoded: Arc::new(Decoded::new(meta, decoded.entry.clone())),
                bytes: *bytes,
            },
            Self::Bytes(slot) => Self::new(StoredEntry::new(meta, slot.entry.value.clone()), None),
        }
    }

    /// The entry as stored: for one put unencoded, the bytes its writer would have stored
    /// (see [`CacheStore::put_plain`]), encoded now.
    fn stored(&self) -> Result<StoredEntry, crate::codec::EncodeError> {
        let decoded = match self {
            Self::Decoded { decoded, .. } => decoded,
            Self::Bytes(slot) => return Ok(slot.entry.clone()),
        };
        let value = match &decoded.entry {
            crate::Entry::Response(response) => crate::codec::encode(response)?,
            crate::Entry::VaryIndex(index) => crate::codec::encode_vary_index(index)?,
        };
        Ok(StoredEntry::new(decoded.meta.clone(), value))
    }
}

/// An in-process store bounded by entry count and by bytes, evicting the least valuable
/// entries first (quick_cache's CLOCK-PRO: recently and frequently read entries survive a
/// scan). Concurrent: the cache is sharded, no global lock.
///
/// Entries live as long as the store: nothing survives a restart. Hits hand out the kept
/// decoded form, copying nothing; an entry's bytes ([`CacheStore::get`]) are handed out
/// without a copy too, but for an entry put unencoded ([`CacheStore::put_plain`]), which is
/// encoded for each such read.
///
/// ```
/// use cache_core::MemoryStore;
/// let store = MemoryStore::bounded(1_000, 64 * 1024 * 1024);
/// assert_eq!(store.capacity(), 1_000);
/// assert_eq!(store.max_bytes(), 64 * 1024 * 1024);
/// ```
pub struct MemoryStore {
    entries: Entries,
    /// URL group → keys, for `entries_for_url`.
    url_index: Arc<UrlIndex>,
    /// A copy of the cache's weigher, to weigh an entry before inserting it.
    weigher: EntryWeight,
    /// The heaviest entry the cache admits ([`admitted_weight`]): shards never change size,
    /// so computed once (reading it took a shard's lock at every write).
    admitted_weight: u64,
    capacity: usize,
    max_bytes: u64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.entries.len())
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// Weighs an entry by its bytes, but never below `max_bytes / capacity`: with the cache's
/// weight capacity set to `max_bytes`, both bounds then hold at once. A store bounded by
/// count alone weighs every entry 1.
#[derive(Clone, Debug)]
struct EntryWeight {
    floor: u64,
    by_count: bool,
}

impl EntryWeight {
    fn of(&self, slot: &Slot) -> u64 {
        if self.by_count {
            return 1;
        }
        let bytes = slot.bytes() + crate::held::TABLE_SLOT;
        bytes.max(self.floor)
    }
}

impl quick_cache::Weighter<CacheKey, Slot> for EntryWeight {
    fn weight(&self, _key: &CacheKey, slot: &Slot) -> u64 {
        self.of(slot)
    }
}

impl MemoryStore {
    /// A store holding up to [`DEFAULT_MEMORY_CAPACITY`] entries and
    /// [`DEFAULT_MEMORY_MAX_BYTES`] bytes.
    pub fn new() -> Self {
        Self::bounded(DEFAULT_MEMORY_CAPACITY, DEFAULT_MEMORY_MAX_BYTES)
    }

    /// A store holding up to `capacity` entries (at least 1), with no bound on bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let weigher = EntryWeight {
            floor: 1,
            by_count: true,
        };
        Self::with_bounds(capacity, capacity as u64, weigher, u64::MAX)
    }

    /// A store holding up to `capacity` entries and `max_bytes` bytes of memory (an entry's
    /// value or buffer, its decoded form's header maps, URLs and allocations, its slot, as
    /// the heap lays them out: 0.92 to 1.14 times what the heap gives them, measured),
    /// whichever bound is reached first.
    ///
    /// # Note
    ///
    /// The cache is sharded and evicts per shard: keep `capacity` in the hundreds or more,
    /// and `max_bytes` well above your largest response (one heavier than 97 % of a shard's
    /// share is refused with [`StoreError::TooLarge`]).
    pub fn bounded(capacity: usize, max_bytes: u64) -> Self {
        let capacity = capacity.max(1);
        let max_bytes = max_bytes.max(capacity as u64);
        let weigher = EntryWeight {
            floor: (max_bytes / capacity as u64).max(1),
            by_count: false,
        };
        Self::with_bounds(capacity, max_bytes, weigher, max_bytes)
    }

    fn with_bounds(capacity: usize, weight: u64, weigher: EntryWeight, max_bytes: u64) -> Self {
        let hook = EvictionHook::default();
        let url_index = Arc::clone(&hook.index);
        let entries = Entries::with(
            capacity,
            weight,
            weigher.clone(),
            quick_cache::DefaultHashBuilder::default(),
            hook,
        );
        Self {
            admitted_weight: admitted_weight(entries.shard_capacity()),
            entries,
            url_index,
            weigher,
            capacity,
            max_bytes,
        }
    }

    /// The most entries this store keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most bytes this store keeps (`u64::MAX` when bounded by count alone).
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The bytes held now, as weighed for the bound.
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }
}

impl MemoryStore {
    /// Stores `entry` with its writer's decoded form, if any.
    fn insert(&self, entry: StoredEntry, kept: Option<Kept>) -> Result<(), StoreError> {
        self.insert_slot(Slot::new(entry, kept))
    }

    fn insert_slot(&self, slot: Slot) -> Result<(), StoreError> {
        self.check_weight(&slot)?;
        let (key, group) = (slot.meta().key, slot.meta().url_group);
        // Inserted first, indexed after: the insert may evict, and the eviction hook takes
        // the index's locks, so no index lock may be held across it.
        self.entries.insert(key, slot);
        if let Some(group) = group {
            self.url_index.add(&group, key);
        }
        Ok(())
    }

    /// The cache silently drops an entry heavier than it admits: said instead. It admits up
    /// to its hot share of a shard, [`ADMITTED_SHARE`], not the whole shard: an entry between
    /// the two was dropped as if evicted while the write answered `Ok` and indexed it under
    /// its URL, a key listed with nothing stored.
    fn check_weight(&self, slot: &Slot) -> Result<(), StoreError> {
        let weight = self.weigher.of(slot);
        StoreError::check_size(weight, Some(self.admitted_weight))
    }

    /// Puts `slot` in place of the entry under its key if that one was created at
    /// `created_at` (milliseconds): the check under the shard's lock leaves a placeholder,
    /// filled by an insert that evicts as any insert does (a renewal may weigh more). A write
    /// of the key landing in between wins, and this one is dropped. True when it was put.
    fn replace_if_created(&self, slot: Slot, created_at: SystemTime) -> Result<bool, StoreError> {
        use quick_cache::sync::{EntryAction, EntryResult};
        self.check_weight(&slot)?;
        let (key, group) = (slot.meta().key, slot.meta().url_group);
        let created_at = truncate_to_millis(created_at);
        // No wait for a key being loaded (another renewal's placeholder): that one leads.
        let result = self
            .entries
            .entry(&key, Some(Duration::ZERO), |_, current| {
                if truncate_to_millis(current.meta().created_at) == created_at {
                    EntryAction::ReplaceWithGuard
                } else {
                    EntryAction::Retain(())
                }
            });
        // A missing key gives a guard for inserting it: dropped unused, it inserts nothing.
        let replaced = match result {
            EntryResult::Replaced(guard, _old) => guard.insert(slot).is_ok(),
            _ => false,
        };
        if let (true, Some(group)) = (replaced, group) {
            self.url_index.add(&group, key);
        }
        Ok(replaced)
    }

    /// Takes an entry the cache just removed (if any) out of the URL index too; true when
    /// there was one.
    fn unindexed(&self, removed: Option<(CacheKey, Slot)>) -> bool {
        let Some((key, slot)) = removed else {
            return false;
        };
        if let Some(group) = &slot.meta().url_group {
            self.prune_unless_listed(group, &key);
        }
        true
    }

    /// Takes `key` out of `group`'s index, unless an entry of that group is stored under it
    /// by then: a write between the removal of the old entry and this found the key indexed
    /// and added nothing, and must not be left out. Checked after the removal (the index's
    /// lock is never held while the cache's is taken: eviction takes them the other way), so
    /// a write landing before the check is indexed again here, and one after adds itself.
    fn prune_unless_listed(&self, group: &CacheKey, key: &CacheKey) {
        self.url_index.remove(group, key);
        let stored_in_group = self
            .entries
            .get(key)
            .is_some_and(|slot| slot.meta().url_group.as_ref() == Some(group));
        if stored_in_group {
            self.url_index.add(group, *key);
        }
    }

    /// The entry and its decoded form, decoding (and keeping the result) on the first read.
    fn read_decoded(&self, key: &CacheKey, codec: &EntryCodec) -> DecodedEntry {
        let slot = self.entries.get(key)?;
        // Signatures are checked on every read (another codec may hold other keys), and a
        // compressed body decodes to a new buffer the byte bound does not count: the decoded
        // form is kept only for unsigned, uncompressed entries, where it shares the value.
        if codec.signs() {
            return Some(decoded_anew(&slot, key, codec));
        }
        // Before the value is looked at: a kept form is never of a compressed value (see
        // `Kept::of` and below), and a hit then reads none of the value's bytes.
        let slot = match &slot {
            Slot::Decoded { decoded, .. } => return Some(Ok(Arc::clone(decoded))),
            Slot::Bytes(slot) => slot,
        };
        if let Some(decoded) = slot.decoded.get() {
            return Some(Ok(Arc::clone(decoded)));
        }
        if crate::codec::body_is_compressed(&slot.entry.value) {
            return Some(slot.entry.clone().decode(key, codec));
        }
        let read = slot.entry.clone().decode(key, codec);
        if let Ok(read) = &read {
            let _ = slot.decoded.set(Arc::clone(read));
        }
        Some(read)
    }
}

/// The slot's entry decoded from its bytes by `codec`, which checks them as it would any
/// store's: an entry put unencoded is read as the unsigned entry it encodes to.
fn decoded_anew(
    slot: &Slot,
    key: &CacheKey,
    codec: &EntryCodec,
) -> Result<Arc<Decoded>, Box<crate::store::Undecodable>> {
    match slot.stored() {
        Ok(entry) => entry.decode(key, codec),
        // Never (a head over 4 GiB): reported as bytes that do not read back.
        Err(_) => Err(Box::new(crate::store::Undecodable {
            meta: slot.meta().clone(),
            error: crate::DecodeError::Malformed(postcard::Error::SerializeBufferFull),
        })),
    }
}

/// The share of a shard's weight the cache admits one entry up to: quick_cache's default
/// hot allocation (0.97), the budget its insert checks an entry against.
const ADMITTED_SHARE: f64 = 0.97;

/// The heaviest entry a cache of shards weighing `shard` admits, computed as it computes it.
fn admitted_weight(shard: u64) -> u64 {
    ((shard as f64 * ADMITTED_SHARE) as u64).clamp(shard.min(1), shard)
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    /// Bounded by bytes, the most one entry may weigh (a share of the capacity): its value
    /// is less. Bounded by entries (`with_capacity`), none: every entry weighs one.
    fn max_value_bytes(&self) -> Option<u64> {
        (!self.weigher.by_count).then_some(self.admitted_weight)
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let Some(slot) = self.entries.get(key) else {
            return Ok(None);
        };
        slot.stored().map(Some).map_err(StoreError::backend)
    }

    async fn get_decoded(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        Ok(self.read_decoded(key, codec))
    }

    fn get_decoded_now(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        Some(Ok(self.read_decoded(key, codec)))
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.insert(entry, None)
    }

    /// Keeps the writer's `response` as the entry's decoded form, with its body the stored
    /// value's own bytes, where decoding would give it (not for a compressed body, nor for a
    /// body of another length than the value's): the first read of an entry written here
    /// decodes nothing, as later ones.
    async fn put_decoded(
        &self,
        entry: StoredEntry,
        response: CachedResponse,
    ) -> Result<(), StoreError> {
        let kept = Kept::of(&entry, response);
        self.insert(entry, kept)
    }

    /// Keeps `response` alone, unencoded, its header values and body copied into one buffer
    /// of its own (the writer's may be slices of larger buffers): a write
    /// encodes nothing, a hit finds the decoded form at once, and the entry's bytes are
    /// encoded only when read ([`CacheStore::get`]). It is weighed at the heap bytes it
    /// holds: the buffer, and its decoded form's header maps, URLs and allocations.
    async fn put_plain(&self, meta: EntryMeta, response: CachedResponse) -> Result<(), StoreError> {
        let kept = Kept::plain(meta, response);
        let bytes = kept.held();
        self.insert_slot(Slot::Decoded {
            decoded: kept.decoded,
            bytes,
        })
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        Ok(self.unindexed(self.entries.remove(key)))
    }

    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.replace_if_created(Slot::new(entry, None), created_at)
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let created_at = truncate_to_millis(created_at);
        let removed = self.entries.remove_if(key, |slot| {
            truncate_to_millis(slot.meta().created_at) == created_at
        });
        Ok(self.unindexed(removed))
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let mut found = Vec::new();
        for key in self.url_index.keys(url_group) {
            match self.entries.get(&key) {
                Some(slot) if slot.meta().url_group.as_ref() == Some(url_group) => {
                    found.push(slot.meta().clone());
                }
                // Overwritten into another group, or gone: no longer listed here.
                _ => self.prune_unless_listed(url_group, &key),
            }
        }
        Ok(found)
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        // A snapshot: the cache's shards are locked one at a time while copying metadata.
        let metas: Vec<_> = self
            .entries
            .iter()
            .map(|(_, slot)| Ok(slot.meta().clone()))
            .collect();
        Box::pin(futures_util::stream::iter(metas))
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        let removed = self.entries.drain().count();
        self.url_index.clear();
        Ok(removed as u64)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.entries.len() as u64)
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let removed = AtomicU64::new(0);
        self.entries.retain(|key, slot| {
            let keep = !slot.meta().is_expired(now);
            if !keep {
                removed.fetch_add(1, Ordering::Relaxed);
                if let Some(group) = &slot.meta().url_group {
                    self.url_index.remove(group, key);
                }
            }
            keep
        });
        Ok(removed.into_inner())
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        // Under the shard's lock: a `put` racing with this is never overwritten by the old
        // value. A vacant key gets a placeholder guard, dropped at once (nothing inserted).
        let expires_at = expires_at.map(truncate_to_millis);
        let result = self.entries.entry(key, None, |_, slot| {
            *slot = slot.with_expiry(expires_at);
            quick_cache::sync::EntryAction::Retain(())
        });
        Ok(matches!(
            result,
            quick_cache::sync::EntryResult::Retained(())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{entry, group, key, sample_response};
    use bytes::Bytes;
    use futures_util::FutureExt;

    /// A store bounded by bytes says the most one value may be; one bounded by entries
    /// alone has no such bound (its entries weigh one each: its bound was an entry count,
    /// and copies skipped every large body as too large for it).
    #[test]
    fn the_value_bound_is_in_bytes_or_none() {
        assert_eq!(MemoryStore::with_capacity(1000).max_value_bytes(), None);
        let bounded = MemoryStore::bounded(1000, 64 << 20);
        let max = bounded.max_value_bytes().expect("bounded by bytes");
        assert!(max > 1 << 20 && max <= 64 << 20, "{max}");
    }

    /// An entry written while another thread deletes the one it replaces stays listed for its
    /// URL: the delete took the key out of the index after the write had found it there (and
    /// added nothing), and the new entry was missed by every invalidation of its URL. The
    /// delete's two steps, with the write between them.
    #[test]
    fn an_entry_written_during_a_delete_stays_listed_for_its_url() {
        let store = MemoryStore::new();
        let (old, new) = (grouped(1, 5), grouped(1, 5));
        store.put(old).now_or_never().unwrap().unwrap();
        let removed = store.entries.remove(&key(1));
        store.put(new).now_or_never().unwrap().unwrap();
        assert!(store.unindexed(removed));
        let listed = store
            .entries_for_url(&group(5))
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(listed.len(), 1, "the entry written meanwhile is listed");

        // So when a listing finds a key gone and a write lands before it prunes the key.
        let store = MemoryStore::new();
        store.url_index.add(&group(5), key(1));
        let prune = || store.prune_unless_listed(&group(5), &key(1));
        store.put(grouped(1, 5)).now_or_never().unwrap().unwrap();
        prune();
        let listed = store
            .entries_for_url(&group(5))
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(
            listed.len(),
            1,
            "the entry written before the prune is listed"
        );
    }

    /// A renewal heavier than the entry it replaces keeps the store within its byte bound:
    /// it goes in as an insert, which evicts (replaced in place, the shard outgrew its
    /// share until the next insert).
    #[test]
    fn a_heavier_renewal_keeps_the_byte_bound() {
        let max = 1024 * 1024;
        let store = MemoryStore::bounded(1_000, max);
        for n in 0..300 {
            let value = Bytes::from(vec![b'x'; 8 * 1024]);
            store
                .put(entry(n, value, None))
                .now_or_never()
                .unwrap()
                .unwrap();
        }
        let kept = (0..300)
            .find(|n| store.entries.get(&key(*n)).is_some())
            .expect("some entries are kept");
        let read = store.entries.get(&key(kept)).unwrap().meta().created_at;
        let mut renewed = entry(kept, Bytes::from(vec![b'y'; 64 * 1024]), None);
        renewed.meta.created_at = read + std::time::Duration::from_secs(1);
        let written = store.put_if_created(renewed, read).now_or_never().unwrap();
        assert!(written.unwrap(), "the entry read is renewed");
        assert!(
            store.weight() <= max,
            "{} bytes held against a bound of {max}",
            store.weight()
        );
    }

    /// Renewals from one read, on threads at once: exactly one writes, round after round.
    #[test]
    fn one_of_renewals_racing_on_threads_writes() {
        let store = MemoryStore::new();
        for round in 0..200u64 {
            let read = crate::fixtures::base_time() + std::time::Duration::from_secs(round * 100);
            let mut first = entry(1, Bytes::from_static(b"read"), None);
            first.meta.created_at = read;
            store.put(first).now_or_never().unwrap().unwrap();
            let won = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for racer in 1..=4 {
                    let (store, won) = (&store, &won);
                    scope.spawn(move || {
                        let mut renewed = entry(1, Bytes::from_static(b"renewed"), None);
                        renewed.meta.created_at = read + std::time::Duration::from_secs(racer);
                        let written = store.put_if_created(renewed, read).now_or_never();
                        if written.unwrap().unwrap() {
                            won.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    });
                }
            });
            assert_eq!(won.into_inner(), 1, "round {round}");
        }
    }

    fn grouped(n: u64, g: u64) -> StoredEntry {
        crate::fixtures::grouped_entry(n, g, None)
    }

    /// The entry under `key(n)` read at once, decoded; panics when absent or undecodable.
    fn read_now(store: &MemoryStore, n: u64, codec: &EntryCodec) -> Arc<Decoded> {
        let read = store.get_decoded_now(&key(n), codec).unwrap().unwrap();
        read.expect("stored").expect("decodes")
    }

    /// The decoded form kept for the entry under `key(n)`, if any, without reading it.
    fn kept(store: &MemoryStore, n: u64) -> Option<Arc<Decoded>> {
        store.entries.get(&key(n))?.decoded().cloned()
    }

    /// The writer's response is kept as the decoded form as soon as it is written: the first
    /// read returns it, with its body the stored value's own bytes, and it is what decoding
    /// the value gives.
    #[test]
    fn a_written_response_is_kept_decoded_before_any_read() {
        let store = MemoryStore::new();
        let codec = EntryCodec::new();
        let response = sample_response();
        let value = codec.encode(Some(&key(1)), &response).unwrap();
        store
            .put_decoded(entry(1, value.clone(), None), response.clone())
            .now_or_never()
            .unwrap()
            .unwrap();
        let first = kept(&store, 1).expect("kept at once");
        let read = read_now(&store, 1, &codec);
        assert!(Arc::ptr_eq(&first, &read), "the first read decoded anew");
        let decoded = entry(1, value.clone(), None)
            .decode(&key(1), &codec)
            .unwrap();
        assert_eq!(*read, *decoded);
        let crate::Entry::Response(kept_response) = &read.entry else {
            panic!("not a response");
        };
        let range = crate::codec::body_range(&value).unwrap();
        assert_eq!(kept_response.body.as_ptr(), value[range].as_ptr());
        // A plain write keeps nothing until the first read.
        store
            .put(entry(2, value, None))
            .now_or_never()
            .unwrap()
            .unwrap();
        assert!(kept(&store, 2).is_none());
    }

    /// A response whose added header values (a repeated one, a request one) and body are
    /// slices of `read_buffer`, as a writer's may be slices of a connection's read buffer.
    fn sliced_from(read_buffer: &Bytes) -> crate::CachedResponse {
        let value_of = |at: usize| {
            http::HeaderValue::from_maybe_shared(read_buffer.slice(at..at + 10)).unwrap()
        };
        let mut response = sample_response();
        response.headers.append("x-sliced", value_of(0));
        response.headers.append("x-sliced", value_of(100));
        response.request.headers.append("accept", value_of(200));
        response.body = read_buffer.slice(1000..3000);
        response
    }

    /// A writer's header values may be slices of a larger buffer (hyper's HTTP/1.1 client
    /// slices them out of the connection's read buffer, 8 KiB and more): the kept form holds
    /// copies, weighed with the entry, never the writer's buffer.
    #[test]
    fn kept_header_values_hold_no_buffer_of_the_writer() {
        let read_buffer = Bytes::from(vec![b'v'; 64 * 1024]);
        let response = sliced_from(&read_buffer);
        let codec = EntryCodec::new();
        let value = codec.encode(Some(&key(1)), &response).unwrap();
        // Room for ten million entries: a floor per entry of about 100 bytes, below this one.
        let roomy = || MemoryStore::bounded(10_000_000, 1 << 30);
        let store = roomy();
        store
            .put_decoded(entry(1, value.clone(), None), response.clone())
            .now_or_never()
            .unwrap()
            .unwrap();
        let kept = kept(&store, 1).expect("kept");
        let crate::Entry::Response(kept_response) = &kept.entry else {
            panic!("not a response");
        };
        let foreign = read_buffer.as_ptr_range();
        let values = kept_response
            .headers
            .values()
            .chain(kept_response.request.headers.values());
        for value in values {
            assert!(
                !foreign.contains(&value.as_bytes().as_ptr()),
                "a kept value points into the writer's buffer: {value:?}"
            );
        }
        assert_eq!(
            *kept,
            *entry(1, value.clone(), None)
                .decode(&key(1), &codec)
                .unwrap()
        );
        // The copies are weighed, beside the value and the decoded form.
        let copied: usize = kept_response
            .headers
            .values()
            .chain(kept_response.request.headers.values())
            .map(|v| v.len())
            .sum();
        let weighed = Slot::held_as_bytes(&entry(1, value.clone(), None))
            + crate::held::allocation(copied)
            + crate::held::decoded_form(&kept)
            + crate::held::TABLE_SLOT;
        assert_eq!(store.weight(), weighed);
    }

    /// An entry put as bytes is weighed for the decoded form its first read keeps, estimated
    /// from its head (a longer head, more fields), but not when no form is kept: a compressed
    /// body (whose reads decode anew), bytes that are no entry.
    #[test]
    fn bytes_are_weighed_for_the_decoded_form_their_reads_keep() {
        let weight = |value: Bytes| {
            let store = MemoryStore::bounded(10_000_000, 1 << 30);
            let entry = entry(1, value, None);
            let own = Slot::held_as_bytes(&entry) + crate::held::TABLE_SLOT;
            store.put(entry).now_or_never().unwrap().unwrap();
            store.weight() - own
        };
        let response = sample_response();
        let plain = EntryCodec::new().encode(Some(&key(1)), &response).unwrap();
        let head = plain.len() - crate::codec::body_range(&plain).unwrap().len();
        assert_eq!(weight(plain), DECODED_PER_HEAD_BYTE * head as u64);
        let mut long = response;
        long.body = Bytes::from(vec![b'a'; 4096]);
        let compressed = EntryCodec::new()
            .compress_above(0)
            .encode(Some(&key(1)), &long)
            .unwrap();
        assert!(crate::codec::body_is_compressed(&compressed));
        assert_eq!(weight(compressed), 0);
        assert_eq!(weight(Bytes::from_static(b"not an entry")), 0);
    }

    /// Nothing is kept where decoding would not give the writer's response from the stored
    /// bytes: a body of another length than the value's, a compressed body (decoding makes a
    /// new buffer, which the byte bound does not count), bytes that are no entry.
    #[test]
    fn a_response_the_value_does_not_hold_is_not_kept() {
        let store = MemoryStore::new();
        let codec = EntryCodec::new();
        let response = sample_response();
        let value = codec.encode(Some(&key(1)), &response).unwrap();
        let mut other = response.clone();
        other.body = Bytes::from_static(b"another body");
        let compressed_codec = EntryCodec::new().compress_above(0);
        let mut long = response.clone();
        long.body = Bytes::from(vec![b'a'; 4096]);
        let compressed = compressed_codec.encode(Some(&key(2)), &long).unwrap();
        assert!(crate::codec::body_is_compressed(&compressed));
        let writes = [
            (1, value, other),
            (2, compressed, long),
            (3, Bytes::from_static(b"not an entry"), response),
        ];
        for (n, value, response) in writes {
            store
                .put_decoded(entry(n, value, None), response)
                .now_or_never()
                .unwrap()
                .unwrap();
            assert!(kept(&store, n).is_none(), "entry {n} kept");
        }
        // Read as the bytes say, as without the writer's response.
        let read = store
            .get_decoded_now(&key(1), &codec)
            .unwrap()
            .unwrap()
            .unwrap();
        let crate::Entry::Response(read) = &read.expect("decodes").entry else {
            panic!("not a response");
        };
        assert_eq!(read.body, Bytes::from_static(b"hello body"));
    }

    /// The kept body is the stored value's own bytes: a writer's body of the same length but
    /// other bytes (bytes are no longer compared) is not what a read serves.
    #[test]
    fn the_kept_body_is_the_values_own() {
        let store = MemoryStore::new();
        let codec = EntryCodec::new();
        let response = sample_response();
        let value = codec.encode(Some(&key(1)), &response).unwrap();
        let mut other = response.clone();
        other.body = Bytes::from(vec![b'?'; response.body.len()]);
        store
            .put_decoded(entry(1, value.clone(), None), other)
            .now_or_never()
            .unwrap()
            .unwrap();
        let kept = kept(&store, 1).expect("kept");
        let crate::Entry::Response(kept) = &kept.entry else {
            panic!("not a response");
        };
        assert_eq!(kept.body, response.body);
        let body = crate::codec::body_range(&value).unwrap();
        assert_eq!(
            kept.body.as_ptr(),
            value[body].as_ptr(),
            "a slice of the value"
        );
    }

    /// An entry put unencoded is its writer's response, kept at once: every read shares it,
    /// its bytes are what encoding the response makes (what the writer would have stored),
    /// and it is weighed at least at their length (what it holds is weighed as
    /// `tests/held_bytes.rs` measures).
    #[test]
    fn a_response_put_unencoded_reads_as_its_encoding() {
        let store = MemoryStore::bounded(10_000_000, 1 << 30);
        let codec = EntryCodec::new();
        let response = sample_response();
        let value = crate::codec::encode(&response).unwrap();
        let meta = entry(1, value.clone(), None).meta;
        store
            .put_plain(meta.clone(), response.clone())
            .now_or_never()
            .unwrap()
            .unwrap();
        let first = kept(&store, 1).expect("kept at once");
        for _ in 0..2 {
            let read = read_now(&store, 1, &codec);
            assert!(Arc::ptr_eq(&first, &read), "a read decoded anew");
        }
        assert_eq!(first.meta, meta);
        assert_eq!(
            *first,
            *entry(1, value.clone(), None)
                .decode(&key(1), &codec)
                .unwrap()
        );
        let raw = store.get(&key(1)).now_or_never().unwrap().unwrap();
        assert_eq!(raw.expect("stored"), entry(1, value.clone(), None));
        assert!(
            store.weight() >= value.len() as u64,
            "weighed {} below its bytes' {}",
            store.weight(),
            value.len()
        );
    }

    /// The writer's header values and body may be slices of larger buffers (a connection's
    /// read buffer): an entry put unencoded holds copies, all in one buffer of its own (so a
    /// hit, which shares them, counts its references in one place).
    #[test]
    fn a_response_put_unencoded_holds_one_buffer_of_its_own() {
        let read_buffer = Bytes::from(vec![b'v'; 64 * 1024]);
        let response = sliced_from(&read_buffer);
        let store = MemoryStore::new();
        store
            .put_plain(entry(1, Bytes::new(), None).meta, response.clone())
            .now_or_never()
            .unwrap()
            .unwrap();
        let kept = kept(&store, 1).expect("kept");
        let crate::Entry::Response(kept) = &kept.entry else {
            panic!("not a response");
        };
        assert_eq!(*kept, response);
        let held: Vec<&[u8]> = kept
            .headers
            .values()
            .chain(kept.request.headers.values())
            .map(|value| value.as_bytes())
            .chain([&kept.body[..]])
            .collect();
        let foreign = read_buffer.as_ptr_range();
        for bytes in &held {
            assert!(
                !foreign.contains(&bytes.as_ptr()),
                "a slice of the writer's buffer"
            );
        }
        // One buffer: the copies lie end to end, the body last.
        let start = held
            .iter()
            .map(|bytes| bytes.as_ptr() as usize)
            .min()
            .unwrap();
        let end = held
            .iter()
            .map(|b| b.as_ptr() as usize + b.len())
            .max()
            .unwrap();
        let total: usize = held.iter().map(|bytes| bytes.len()).sum();
        assert_eq!(end - start, total, "the copies are not one buffer");
        assert_eq!(kept.body.as_ptr() as usize + kept.body.len(), end);
    }

    /// A reader that requires signatures refuses an entry put unencoded, as it refuses the
    /// unsigned bytes it stands for; the entry stays readable to others.
    #[test]
    fn a_signing_reader_refuses_an_entry_put_unencoded() {
        let store = MemoryStore::new();
        store
            .put_plain(entry(1, Bytes::new(), None).meta, sample_response())
            .now_or_never()
            .unwrap()
            .unwrap();
        let signing = EntryCodec::new().signing_keys(crate::codec::SigningKeys::new(
            b"the secret, thirty-two bytes long".to_vec(),
        ));
        let read = store.get_decoded_now(&key(1), &signing).unwrap().unwrap();
        let refused = read
            .expect("listed")
            .expect_err("an unsigned entry read as signed");
        assert!(
            matches!(refused.error, crate::DecodeError::Unsigned),
            "{:?}",
            refused.error
        );
        let plain = store
            .get_decoded_now(&key(1), &EntryCodec::new())
            .unwrap()
            .unwrap();
        assert!(plain.expect("listed").is_ok());
    }

    #[test]
    fn bounded_by_bytes_under_a_write_storm() {
        let store = MemoryStore::bounded(100_000, 4 * 1024 * 1024);
        for n in 0..2_000 {
            let value = Bytes::from(vec![b'x'; 16 * 1024]);
            store
                .put(entry(n, value, None))
                .now_or_never()
                .unwrap()
                .unwrap();
            assert!(
                store.weight() <= 4 * 1024 * 1024,
                "weight {} over the bound",
                store.weight()
            );
        }
        let count = store.count().now_or_never().unwrap().unwrap();
        assert!(count <= 256, "{count} entries of 16 KiB in 4 MiB");
        assert!(
            count >= 64,
            "eviction keeps the store near its bound, kept {count}"
        );
        let huge = Bytes::from(vec![0u8; 8 * 1024 * 1024]);
        let refused = store.put(entry(9_999, huge, None)).now_or_never().unwrap();
        assert!(
            matches!(refused, Err(StoreError::TooLarge { .. })),
            "{refused:?}"
        );
    }

    /// An entry the cache would not admit (over its hot share of a shard, under the whole
    /// shard) is refused, not answered `Ok` and indexed under its URL with nothing stored;
    /// the heaviest it admits is stored.
    #[test]
    fn an_entry_the_cache_would_drop_is_refused() {
        let store = MemoryStore::bounded(1_000, 64 * 1024 * 1024);
        let limit = store.admitted_weight;
        assert!(limit < store.entries.shard_capacity());
        let with_len = |n: u64, len: usize| {
            let mut entry = crate::fixtures::grouped_entry(n, 1, None);
            entry.value = Bytes::from(vec![0u8; len]);
            entry
        };
        let weight = |len: usize| store.weigher.of(&Slot::new(with_len(0, len), None));
        // The longest value weighed at most `limit` (weights grow with the length).
        let (mut fits, mut over) = (0, limit as usize);
        while over - fits > 1 {
            let mid = (fits + over) / 2;
            if weight(mid) <= limit {
                fits = mid;
            } else {
                over = mid;
            }
        }
        let sized = |n: u64, weight: u64| with_len(n, if weight > limit { over } else { fits });
        let refused = store.put(sized(1, limit + 1)).now_or_never().unwrap();
        assert!(
            matches!(refused, Err(StoreError::TooLarge { .. })),
            "{refused:?}"
        );
        let group = crate::fixtures::group(1);
        let listed = store
            .entries_for_url(&group)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert!(listed.is_empty(), "listed with nothing stored: {listed:?}");
        store.put(sized(2, limit)).now_or_never().unwrap().unwrap();
        let key = crate::fixtures::key(2);
        assert!(store.get(&key).now_or_never().unwrap().unwrap().is_some());
    }

    #[test]
    fn tiny_and_default_stores_accept_entries() {
        for store in [
            MemoryStore::with_capacity(1),
            MemoryStore::with_capacity(3),
            MemoryStore::new(),
        ] {
            store
                .put(entry(1, Bytes::from_static(b"v"), None))
                .now_or_never()
                .unwrap()
                .unwrap_or_else(|e| panic!("{store:?}: {e:?}"));
            assert!(
                store
                    .get(&crate::fixtures::key(1))
                    .now_or_never()
                    .unwrap()
                    .unwrap()
                    .is_some()
            );
        }
    }

    #[test]
    fn decoded_entries_are_kept_and_equal_a_fresh_decode() {
        let store = MemoryStore::new();
        let response = crate::fixtures::sample_response();
        let value = crate::codec::encode(&response).unwrap();
        store
            .put(entry(1, value.clone(), None))
            .now_or_never()
            .unwrap()
            .unwrap();
        let key = crate::fixtures::key(1);
        let codec = EntryCodec::new();
        let read = || {
            let decoded = store
                .get_decoded(&key, &codec)
                .now_or_never()
                .unwrap()
                .unwrap()
                .unwrap();
            match &decoded.unwrap().entry {
                crate::Entry::Response(r) => r.clone(),
                _ => panic!("a response was stored"),
            }
        };
        let (first, second) = (read(), read());
        assert_eq!(first, response);
        assert_eq!(second, response);
        // Both share the stored buffer: no copy of the body on a hit.
        assert_eq!(first.body.as_ptr(), second.body.as_ptr());
        // A rewrite replaces the kept form.
        let mut changed = response.clone();
        changed.body = Bytes::from_static(b"changed");
        let value = crate::codec::encode(&changed).unwrap();
        store
            .put(entry(1, value, None))
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(read().body, changed.body);
        // A compressed entry's decoded body is a new buffer the byte bound does not weigh:
        // it is decoded on every read, never kept.
        let compressing = EntryCodec::new().compress_above(0);
        let mut big = response.clone();
        big.body = Bytes::from(vec![b'z'; 64 * 1024]);
        let value = compressing.encode(None, &big).unwrap();
        assert!(crate::codec::body_is_compressed(&value));
        store
            .put(entry(1, value, None))
            .now_or_never()
            .unwrap()
            .unwrap();
        let (a, b) = (read(), read());
        assert_eq!(a.body, big.body);
        assert_ne!(a.body.as_ptr(), b.body.as_ptr(), "not kept");
        // An entry that does not decode is reported, not kept.
        store
            .put(entry(2, Bytes::from_static(b"junk"), None))
            .now_or_never()
            .unwrap()
            .unwrap();
        let decoded = store
            .get_decoded(&crate::fixtures::key(2), &codec)
            .now_or_never()
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(decoded.is_err());
    }

    #[test]
    fn evicted_entries_leave_the_url_index() {
        let store = MemoryStore::with_capacity(100);
        for n in 0..2_000 {
            let grouped = crate::fixtures::grouped_entry(n, n % 10, None);
            store.put(grouped).now_or_never().unwrap().unwrap();
        }
        let mut listed = 0;
        for g in 0..10 {
            let group = crate::fixtures::group(g);
            let indexed = store.url_index.keys(&group).len();
            let found = store
                .entries_for_url(&group)
                .now_or_never()
                .unwrap()
                .unwrap();
            assert_eq!(indexed, found.len(), "no key listed that is not stored");
            listed += found.len();
        }
        let count = store.count().now_or_never().unwrap().unwrap() as usize;
        assert_eq!(listed, count, "every stored entry listed once");
    }

    #[test]
    fn bounded_by_entry_count() {
        let store = MemoryStore::with_capacity(100);
        for n in 0..1_000 {
            store
                .put(entry(n, Bytes::from_static(b"v"), None))
                .now_or_never()
                .unwrap()
                .unwrap();
        }
        let count = store.count().now_or_never().unwrap().unwrap();
        assert!(count <= 100, "{count} entries kept with capacity 100");
        assert!(
            count >= 50,
            "eviction keeps the store near capacity, kept {count}"
        );
    }
}
