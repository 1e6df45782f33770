//! [`MongoStore`]: the [`CacheStore`] over a MongoDB collection.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use cache_core::codec::EntryCodec;
use cache_core::decoded_copies::{DEFAULT_DECODED_COPIES_BYTES, DecodedCopies};
use cache_core::store::DecodedEntry;
use cache_core::{CacheKey, CacheStore, CachedResponse, EntryMeta, StoreError, StoredEntry};
use futures_core::stream::BoxStream;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, IndexOptions, ReadPreference, SelectionCriteria};
use mongodb::{Client, Collection, IndexModel};

use crate::documents::{Value, binary, date, meta_document, meta_of, optional_date, value_of};

/// Values larger than this (with the URL) are split into chunks (documents are limited to
/// 16 MB).
const INLINE_MAX: usize = 8 * 1024 * 1024;

/// The longest URL an entry may have: the entry's document holds the URL whatever the
/// value's size (a large value goes to chunks), with its other fields, within 16 MB.
const URL_MAX: usize = 15 * 1024 * 1024;
/// The size of one chunk.
const CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// How long chunks are kept before the entry that uses them is written and confirms them:
/// a put cut short (a timeout, a failed entry write) leaves chunks that the server's TTL
/// monitor then removes, whatever the entry's own expiry would have been.
const PROVISIONAL_CHUNK_RETENTION: Duration = Duration::from_secs(3600);

/// Times chunks are given their entry's retention before their settling gives up following
/// it (see `MongoStore::retain_chunks_with_entry`): renewals that keep landing meanwhile.
const SETTLE_ROUNDS: usize = 4;

/// Builds a [`MongoStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MongoStoreBuilder {
    database: String,
    collection: String,
    ttl_offset: Option<Duration>,
    timeout: Duration,
    decoded_copies: u64,
}

impl Default for MongoStoreBuilder {
    fn default() -> Self {
        Self {
            database: "reqwest_cache".to_owned(),
            collection: "http_cache".to_owned(),
            ttl_offset: Some(Duration::from_secs(3600)),
            timeout: Duration::from_secs(5),
            decoded_copies: DEFAULT_DECODED_COPIES_BYTES,
        }
    }
}

impl MongoStoreBuilder {
    /// The database (default `reqwest_cache`).
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.database = name.into();
        self
    }

    /// The collection (default `http_cache`); chunks of large values go to
    /// `{collection}_chunks`.
    pub fn collection(mut self, name: impl Into<String>) -> Self {
        self.collection = name.into();
        self
    }

    /// How long MongoDB keeps an entry past its expiry, for revalidation (default one hour);
    /// `None` keeps entries until deleted.
    pub fn ttl_offset(mut self, offset: Option<Duration>) -> Self {
        self.ttl_offset = offset;
        self
    }

    /// Server selection and connection timeout when opening by URI (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bytes of [`DecodedCopies`] to keep (default [`DEFAULT_DECODED_COPIES_BYTES`], 32 MiB of memory;
    /// 0 keeps none): a hit whose value and metadata, just read from the server, are those a
    /// copy came from skips decoding; a write by any client shows at once.
    ///
    /// ```
    /// let builder = cache_mongodb::MongoStore::builder().decoded_copies(0);
    /// # let _ = builder;
    /// ```
    pub fn decoded_copies(mut self, max_bytes: u64) -> Self {
        self.decoded_copies = max_bytes;
        self
    }

    /// Connects by URI and creates the TTL indexes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the URI is invalid or no server answers.
    pub async fn open(self, uri: &str) -> Result<MongoStore, StoreError> {
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(StoreError::unavailable)?;
        options.server_selection_timeout = Some(self.timeout);
        options.connect_timeout = Some(self.timeout);
        let client = Client::with_options(options).map_err(StoreError::unavailable)?;
        self.with_client(client).await
    }

    /// Uses a client you already have, and creates the TTL indexes.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), when the server cannot be reached.
    pub async fn with_client(self, client: Client) -> Result<MongoStore, StoreError> {
        let database = client.database(&self.database);
        let entries: Collection<Document> = database.collection(&self.collection);
        let store = MongoStore {
            read_entries: entries.clone_with_type(),
            entries,
            chunks: database.collection(&format!("{}_chunks", self.collection)),
            ttl_offset: self.ttl_offset,
            copies: Arc::new(DecodedCopies::new(self.decoded_copies)),
            #[cfg(test)]
            settle_gate: Arc::default(),
            #[cfg(test)]
            chunks_gate: Arc::default(),
        };
        store.create_indexes().await?;
        Ok(store)
    }
}

/// A [`CacheStore`] in a MongoDB collection. Cheap to clone (the client and the decoded
/// copies are shared).
#[derive(Debug, Clone)]
pub struct MongoStore {
    entries: Collection<Document>,
    /// The same collection, read as raw documents: each field of a result is decoded on its
    /// own (see [`meta_of`]), where a `Document` refused a whole result, and a listing with
    /// it, for one field it could not decode.
    read_entries: Collection<RawDocumentBuf>,
    chunks: Collection<Document>,
    ttl_offset: Option<Duration>,
    /// Decoded forms of entries read again, each answering only for the value and metadata
    /// it came from (see [`MongoStoreBuilder::decoded_copies`]).
    copies: Arc<DecodedCopies>,
    /// Tests: holds a write or renewal before its entry document's request (then run to its
    /// end).
    #[cfg(test)]
    settle_gate: Arc<cache_core::testing::Gate>,
    /// Tests: holds a write or renewal before it sets its chunks' retention.
    #[cfg(test)]
    chunks_gate: Arc<cache_core::testing::Gate>,
}

impl MongoStore {
    /// A builder with the default database, collection, TTL offset and timeout.
    pub fn builder() -> MongoStoreBuilder {
        MongoStoreBuilder::default()
    }

    /// The bytes this store's decoded copies weigh now (values and the header copies they
    /// hold; see [`MongoStoreBuilder::decoded_copies`]): memory beside the store's data, bounded by the builder's
    /// setting, and given back as entries are deleted.
    pub fn decoded_copies_bytes(&self) -> u64 {
        self.copies.weight()
    }

    async fn create_indexes(&self) -> Result<(), StoreError> {
        let ttl = || {
            IndexModel::builder()
                .keys(doc! { "d": 1 })
                .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                .build()
        };
        self.entries
            .create_index(ttl())
            .await
            .map_err(store_error)?;
        self.chunks.create_index(ttl()).await.map_err(store_error)?;
        let by_url = IndexModel::builder().keys(doc! { "ug": 1 }).build();
        self.entries
            .create_index(by_url)
            .await
            .map_err(store_error)?;
        let by_key = IndexModel::builder()
            .keys(doc! { "k": 1, "g": 1, "i": 1 })
            .build();
        self.chunks
            .create_index(by_key)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// When the server may drop an entry: expiry plus `ttl_offset`; `None` for never.
    fn delete_at(&self, expires_at: Option<SystemTime>) -> Option<SystemTime> {
        cache_core::time::retention_deadline(expires_at, self.ttl_offset)
    }

    /// Documents not yet past their deletion time (the TTL monitor is lazy).
    fn live(now: SystemTime) -> Document {
        doc! { "$or": [ { "d": Bson::Null }, { "d": { "$gt": date(now) } } ] }
    }

    async fn read_chunks(
        &self,
        key: &CacheKey,
        generation: &str,
        count: u32,
    ) -> Result<Option<Bytes>, StoreError> {
        let mut cursor = self
            .chunks
            .find(doc! { "k": key.as_str(), "g": generation })
            .sort(doc! { "i": 1 })
            .await
            .map_err(store_error)?;
        let mut value = BytesMut::new();
        let mut seen = 0;
        while let Some(chunk) = cursor.try_next().await.map_err(store_error)? {
            let Ok(bytes) = chunk.get_binary_generic("v") else {
                return Ok(None);
            };
            value.extend_from_slice(bytes);
            seen += 1;
        }
        // Fewer chunks than the entry names: an overwrite removed them meanwhile, or they
        // were never confirmed and expired. In the second case the entry itself is dead:
        // removed, but only while it still names these chunks (never a newer write).
        if seen != count {
            self.entries
                .delete_one(doc! { "_id": key.as_str(), "g": generation })
                .await
                .map_err(store_error)?;
            return Ok(None);
        }
        Ok(Some(value.freeze()))
    }

    /// Deletes the chunks of each listed generation (key, generation) that no entry names
    /// now. Only those generations: a write of one of the keys still uploading has chunks of
    /// a generation nothing names yet (the sweep deleted them, and the write then named
    /// chunks that were gone); and an entry whose expiry was extended since the listing still
    /// names its own.
    async fn delete_unnamed_generations(
        &self,
        listed: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        if listed.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = listed.iter().map(|(key, _)| key.as_str()).collect();
        // Raw: a field the driver cannot decode (a string that is not UTF-8) names nothing.
        let named: std::collections::HashSet<(String, String)> = self
            .read_entries
            .find(doc! { "_id": { "$in": keys }, "g": { "$exists": true } })
            .projection(doc! { "_id": 1, "g": 1 })
            .await
            .map_err(store_error)?
            .map_err(store_error)
            .try_filter_map(|document| async move {
                let (Ok(key), Ok(generation)) = (document.get_str("_id"), document.get_str("g"))
                else {
                    return Ok(None);
                };
                Ok(Some((key.to_owned(), generation.to_owned())))
            })
            .try_collect()
            .await?;
        let unnamed: Vec<Document> = listed
            .into_iter()
            .filter(|pair| !named.contains(pair))
            .map(|(key, generation)| doc! { "k": key, "g": generation })
            .collect();
        if !unnamed.is_empty() {
            self.chunks
                .delete_many(doc! { "$or": unnamed })
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    /// Deletes confirmed chunks (kept for good: no deletion time) whose generation no entry
    /// names: a write cut off after its entry replaced the one naming them, or a delete cut
    /// off between the entry and its chunks, left them, and neither the TTL index nor any
    /// later write or delete of the key would remove them. A generation still uploading is
    /// not confirmed (its chunks have a provisional time), so it is never listed here.
    async fn delete_orphaned_chunks(&self) -> Result<(), StoreError> {
        // One chunk of each generation has the index 0.
        let mut firsts = self
            .chunks
            .find(doc! { "d": Bson::Null, "i": 0_i64 })
            .projection(doc! { "k": 1, "g": 1 })
            .batch_size(SWEEP_BATCH as u32)
            .await
            .map_err(store_error)?;
        let mut listed = Vec::new();
        while let Some(first) = firsts.try_next().await.map_err(store_error)? {
            if let (Ok(key), Ok(generation)) = (first.get_str("k"), first.get_str("g")) {
                listed.push((key.to_owned(), generation.to_owned()));
            }
            if listed.len() == SWEEP_BATCH as usize {
                self.delete_unnamed_generations(std::mem::take(&mut listed))
                    .await?;
            }
        }
        self.delete_unnamed_generations(listed).await
    }

    /// Deletes `document`, read under `key` and found not to be an entry, with the chunks of
    /// its generation if it names one; not a write of the key landing meanwhile (a `delete`
    /// took that, with every chunk of the key, an upload in progress included). Told apart
    /// by its creation time: a write always sets one, as a date, and a new one.
    async fn delete_not_an_entry(
        &self,
        key: &CacheKey,
        document: &RawDocument,
    ) -> Result<(), StoreError> {
        let same_creation = match document.get("c") {
            Ok(Some(RawBsonRef::DateTime(created))) => Bson::DateTime(created),
            _ => Bson::Document(doc! { "$not": { "$type": "date" } }),
        };
        let deleted = self
            .entries
            .delete_one(doc! { "_id": key.as_str(), "c": same_creation })
            .await
            .map_err(store_error)?;
        self.copies.forget(key);
        if let (1.., Ok(generation)) = (deleted.deleted_count, document.get_str("g")) {
            self.delete_generation(key, generation).await?;
        }
        Ok(())
    }

    /// Writes `entry`: over whatever is under its key, or (`only_over`) over the entry
    /// created then only. True when it wrote.
    async fn write(
        &self,
        entry: StoredEntry,
        only_over: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let key = entry.meta.key;
        // Refused here as too large, not by the server's error, which the middleware warns of
        // and counts as a store error, and on which a copy stops rather than skipping it.
        StoreError::check_size(entry.meta.url.len() as u64, Some(URL_MAX as u64))?;
        let delete_at = self.delete_at(entry.meta.expires_at);
        let mut document = meta_document(&entry.meta, delete_at);
        let generation = if entry.value.len() + entry.meta.url.len() <= INLINE_MAX {
            document.insert("v", binary(&entry.value));
            None
        } else {
            let generation = cache_core::unique::unique_id();
            let count = self.write_chunks(&key, &generation, &entry.value).await?;
            document.insert("g", generation.as_str());
            document.insert("n", i64::from(count));
            Some(generation)
        };
        let mut filter = doc! { "_id": key.as_str() };
        if let Some(created_at) = only_over {
            filter.insert("c", date(created_at));
        }
        // The entry document is written last: it makes the chunks visible all at once.
        // Only the replaced document's generation is read back: the whole of it came back
        // before (a value of up to 8 MiB on every overwrite), and a field of it the driver
        // cannot decode (a string that is not UTF-8, as other drivers write) failed a write
        // that had landed.
        // From the entry document on, to the end whoever stops waiting (see
        // `settle_chunks`): a caller cut while it was on its way (it may land) left its
        // chunks to expire. A value inline has none: its write is the caller's (a cut only
        // leaves the chunks of the entry it replaced to the sweep), and spawns nothing.
        let inline = generation.is_none();
        let store = self.clone();
        let finish = async move {
            #[cfg(test)]
            store.settle_gate.pass().await;
            let replaced = store
                .entries
                .find_one_and_replace(filter, document)
                .projection(doc! { "g": 1 })
                .upsert(only_over.is_none())
                .await
                .map_err(store_error)?;
            if only_over.is_some() {
                store.copies.forget(&key);
                if replaced.is_none() {
                    // Nothing written: the chunks made for it are no one's.
                    if let Some(generation) = &generation {
                        store.delete_generation(&key, generation).await?;
                    }
                    return Ok(false);
                }
            }
            // Only the chunks of the document this write replaced are unreferenced now; a
            // concurrent writer's newer chunks are left alone.
            let stale = replaced
                .as_ref()
                .and_then(|old| old.get_str("g").ok())
                .filter(|old| Some(*old) != generation.as_deref())
                .map(str::to_owned);
            store
                .settle_chunks(key, generation, delete_at, stale)
                .await?;
            Ok(true)
        };
        match inline {
            true => finish.await,
            false => cache_core::to_end::run_to_end(finish).await,
        }
    }

    /// Gives the chunks of `generation`, those of an entry just written under `key`, its
    /// retention (`delete_at`: they live as long as it does), then deletes the chunks of the
    /// `stale` generation it replaced. Run to its end with the entry's write or renewal
    /// ([`cache_core::to_end::run_to_end`]): a caller that stopped waiting between them left
    /// the new chunks at their provisional hour (or their old time), so the entry read as a
    /// miss once the TTL monitor removed them.
    async fn settle_chunks(
        &self,
        key: CacheKey,
        generation: Option<String>,
        delete_at: Option<SystemTime>,
        stale: Option<String>,
    ) -> Result<(), StoreError> {
        let mut retained = Ok(());
        if let Some(generation) = &generation {
            retained = self
                .retain_chunks_with_entry(&key, generation, delete_at)
                .await;
        }
        // Whatever became of the new chunks: the replaced entry's are no one's.
        if let Some(old) = stale {
            self.delete_generation(&key, &old).await?;
        }
        retained
    }

    /// Gives the chunks of `generation` the retention `delete_at`, then reads their entry
    /// again and gives them the one it holds then, until the two agree ([`SETTLE_ROUNDS`] at
    /// most): a renewal that settled the same chunks while this update was on its way (a
    /// write's, still settling) could be overwritten by it, and the chunks went with the
    /// older time, before their entry (a miss from then on). The last update of the chunks
    /// is now that of whoever read the entry last. Stops when the entry is gone or of
    /// another generation (its writer deletes these chunks).
    async fn retain_chunks_with_entry(
        &self,
        key: &CacheKey,
        generation: &str,
        delete_at: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let mut delete_at = optional_date(delete_at);
        for _ in 0..SETTLE_ROUNDS {
            #[cfg(test)]
            self.chunks_gate.pass().await;
            self.chunks
                .update_many(
                    doc! { "k": key.as_str(), "g": generation },
                    doc! { "$set": { "d": delete_at.clone() } },
                )
                .await
                .map_err(store_error)?;
            // From the primary: a secondary behind it could show the entry before a renewal.
            let entry = self
                .entries
                .find_one(doc! { "_id": key.as_str(), "g": generation })
                .projection(doc! { "d": 1 })
                .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
                .await
                .map_err(store_error)?;
            let asked = match entry.map(|entry| entry.get("d").cloned()) {
                Some(Some(asked @ (Bson::DateTime(_) | Bson::Null))) => asked,
                Some(None) => Bson::Null,
                // Gone, of another generation, or a time that is none.
                _ => return Ok(()),
            };
            if asked == delete_at {
                return Ok(());
            }
            delete_at = asked;
        }
        Ok(())
    }

    /// Deletes the chunks of one generation of `key`'s value.
    async fn delete_generation(&self, key: &CacheKey, generation: &str) -> Result<(), StoreError> {
        self.chunks
            .delete_many(doc! { "k": key.as_str(), "g": generation })
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn write_chunks(
        &self,
        key: &CacheKey,
        generation: &str,
        value: &[u8],
    ) -> Result<u32, StoreError> {
        let provisional = SystemTime::now() + PROVISIONAL_CHUNK_RETENTION;
        let documents: Vec<Document> = value
            .chunks(CHUNK_SIZE)
            .enumerate()
            .map(|(i, part)| {
                doc! {
                    "_id": format!("{}:{generation}:{i}", key.as_str()),
                    "k": key.as_str(),
                    "g": generation,
                    "i": i as i64,
                    "d": date(provisional),
                    "v": binary(part),
                }
            })
            .collect();
        let count = documents.len() as u32;
        for document in documents {
            // One at a time: a batch of 4 MiB chunks would exceed the 48 MB message limit.
            self.chunks
                .insert_one(document)
                .await
                .map_err(store_error)?;
        }
        Ok(count)
    }
}

impl MongoStore {
    /// Deletes the documents a sweep `found` that `expired` still takes (an entry rewritten
    /// since it was listed stays), and the chunks of those that named a generation; returns
    /// how many it deleted. Read raw: a field the driver cannot decode (a string that is not
    /// UTF-8) failed every sweep; such an id cannot be named in a filter, and stays.
    async fn delete_swept(
        &self,
        found: &[RawDocumentBuf],
        mut expired: Document,
    ) -> Result<u64, StoreError> {
        if found.is_empty() {
            return Ok(0);
        }
        // Deleted by their ids as found, whatever their type: a document whose id is no
        // key (another program's, in this collection) matched too.
        let ids: Vec<Bson> = found
            .iter()
            .filter_map(|document| document.get("_id").ok().flatten())
            .filter_map(|id| Bson::try_from(id).ok())
            .collect();
        let listed: Vec<(String, Option<String>)> = found
            .iter()
            .filter_map(|document| {
                let key = document.get_str("_id").ok()?;
                let generation = document.get_str("g").ok().map(str::to_owned);
                Some((key.to_owned(), generation))
            })
            .collect();
        expired.insert("_id", doc! { "$in": ids });
        let deleted = self
            .entries
            .delete_many(expired)
            .await
            .map_err(store_error)?;
        // Their copies could no longer answer: their memory goes now, as on `delete`.
        for (key, _) in &listed {
            if let Ok(key) = key.parse::<CacheKey>() {
                self.copies.forget(&key);
            }
        }
        let chunked = listed
            .into_iter()
            .filter_map(|(key, generation)| Some((key, generation?)))
            .collect();
        self.delete_unnamed_generations(chunked).await?;
        Ok(deleted.deleted_count)
    }
}

/// How many expired entries a sweep lists and deletes with one command: all of them in one
/// `$in` passed MongoDB's 16 MB command limit at about 370,000 keys, and every sweep failed
/// from then on (the next one listed the same keys).
const SWEEP_BATCH: i64 = 100;

#[async_trait]
impl CacheStore for MongoStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let mut filter = Self::live(SystemTime::now());
        filter.insert("_id", key.as_str());
        let found = self.read_entries.find_one(filter).await;
        let Some(document) = found.map_err(store_error)? else {
            return Ok(None);
        };
        let (Some(meta), Some(value)) = (meta_of(&document), value_of(&document)) else {
            tracing::warn!(%key, "a document under the cache's key is not an entry: deleting it");
            self.delete_not_an_entry(key, &document).await?;
            return Ok(None);
        };
        let value = match value {
            Value::Inline(bytes) => bytes,
            Value::Chunked { generation, chunks } => {
                match self.read_chunks(key, &generation, chunks).await? {
                    Some(bytes) => bytes,
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(StoredEntry::new(meta, value)))
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.write(entry, None).await.map(drop)
    }

    /// The document is replaced only while it holds the creation read (a filter on it): an
    /// entry written since, or deleted, is not written over, and the chunks this write made
    /// for a large value go again.
    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.write(entry, Some(created_at)).await
    }

    /// Decoding is skipped when a decoded copy was made from the very value and metadata
    /// just read.
    async fn get_decoded(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        Ok(self.copies.read_found(key, self.get(key).await?, codec))
    }

    /// The writer's `response` is the entry's first decoded copy.
    async fn put_decoded(
        &self,
        entry: StoredEntry,
        response: CachedResponse,
    ) -> Result<(), StoreError> {
        let put = |entry| self.put(entry);
        self.copies
            .put_keeping(entry, response, self.ttl_offset, put)
            .await
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        // Never served once the entry is gone (a read finds nothing to compare); its memory
        // goes now.
        self.copies.forget(key);
        let deleted = self
            .entries
            .delete_one(doc! { "_id": key.as_str() })
            .await
            .map_err(store_error)?;
        self.chunks
            .delete_many(doc! { "k": key.as_str() })
            .await
            .map_err(store_error)?;
        Ok(deleted.deleted_count > 0)
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        let listing = async move {
            let cursor = self
                .read_entries
                .find(Self::live(SystemTime::now()))
                .projection(doc! { "v": 0 })
                .await
                .map_err(store_error)?;
            Ok::<_, StoreError>(
                cursor
                    .map_err(store_error)
                    .try_filter_map(|document| async move { Ok(meta_of(&document)) }),
            )
        };
        Box::pin(futures_util::stream::once(listing).try_flatten())
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let mut filter = Self::live(SystemTime::now());
        filter.insert("ug", url_group.as_str());
        self.read_entries
            .find(filter)
            .projection(doc! { "v": 0 })
            .await
            .map_err(store_error)?
            .map_err(store_error)
            .try_filter_map(|document| async move { Ok(meta_of(&document)) })
            .try_collect()
            .await
    }

    /// 3 s: a healthy server answers in milliseconds, but a large body goes up in several
    /// chunk writes (an 8 MiB body is ~1 s of upload at 100 Mbit/s).
    fn suggested_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(3)
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.copies.clear();
        let deleted = self
            .entries
            .delete_many(doc! {})
            .await
            .map_err(store_error)?;
        self.chunks
            .delete_many(doc! {})
            .await
            .map_err(store_error)?;
        // Again after: copies a write kept meanwhile may be of entries cleared since.
        self.copies.clear();
        Ok(deleted.deleted_count)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.entries
            .count_documents(Self::live(SystemTime::now()))
            .await
            .map_err(store_error)
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .entries
            .find_one_and_delete(doc! { "_id": key.as_str(), "c": date(created_at) })
            .projection(doc! { "g": 1 })
            .await
            .map_err(store_error)?;
        let Some(deleted) = deleted else {
            return Ok(false);
        };
        self.copies.forget(key);
        // Only the deleted document's chunks: a newer write's are its own.
        if let Ok(generation) = deleted.get_str("g") {
            self.delete_generation(key, generation).await?;
        }
        Ok(true)
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        // Expired, or created before 1970 (no write makes that: not an entry, and listed by
        // nothing, so only this would ever remove it), or past its deletion time, or with a
        // deletion time that is no date (a number or a string written by hand: no read
        // matches it, and the TTL monitor passes over it, so it stayed for good).
        let expired = || {
            doc! { "$or": [
                { "x": { "$ne": Bson::Null, "$lte": date(now) } },
                { "c": { "$lt": mongodb::bson::DateTime::from_millis(0) } },
                { "d": { "$ne": Bson::Null, "$lte": date(now) } },
                { "d": { "$exists": true, "$ne": Bson::Null, "$not": { "$type": "date" } } },
            ] }
        };
        // One listing for the whole sweep, its documents deleted a batch at a time as they
        // come. Listed again for each batch, the collection was read again for each (no
        // index answers the `$or`): a scan of every document per hundred swept.
        let mut found = self
            .read_entries
            .find(expired())
            .projection(doc! { "_id": 1, "g": 1 })
            .batch_size(SWEEP_BATCH as u32)
            .await
            .map_err(store_error)?;
        let mut removed = 0;
        let mut batch = Vec::with_capacity(SWEEP_BATCH as usize);
        while let Some(document) = found.try_next().await.map_err(store_error)? {
            batch.push(document);
            if batch.len() == SWEEP_BATCH as usize {
                removed += self
                    .delete_swept(&std::mem::take(&mut batch), expired())
                    .await?;
            }
        }
        removed += self.delete_swept(&batch, expired()).await?;
        self.delete_orphaned_chunks().await?;
        Ok(removed)
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let deleted_at = self.delete_at(expires_at);
        let delete_at = optional_date(deleted_at);
        // The generation of the entry updated comes back with it: only its chunks follow. A
        // rewrite landing meanwhile has chunks of its own generation, which keep the
        // deletion time it gave them (all the key's chunks took this one, and a time earlier
        // than the rewrite's own had its chunks removed under it).
        // Only an entry: a document under the key that is none (another program's, or one
        // created before 1970, which no write makes) is left as it is, and nothing renewed.
        let an_entry = doc! {
            "_id": key.as_str(),
            "c": { "$type": "date", "$gte": mongodb::bson::DateTime::from_millis(0) },
        };
        // From the update on, to the end whoever stops waiting (see `settle_chunks`): a
        // caller cut between them left the chunks of an entry whose life it extended to go
        // before it.
        let (store, key) = (self.clone(), *key);
        cache_core::to_end::run_to_end(async move {
            #[cfg(test)]
            store.settle_gate.pass().await;
            let updated = store
                .entries
                .find_one_and_update(
                    an_entry,
                    doc! { "$set": { "x": optional_date(expires_at), "d": delete_at } },
                )
                .projection(doc! { "g": 1 })
                .await
                .map_err(store_error)?;
            let Some(updated) = updated else {
                return Ok(false);
            };
            let generation = updated.get_str("g").ok().map(str::to_owned);
            store
                .settle_chunks(key, generation, deleted_at, None)
                .await?;
            Ok(true)
        })
        .await
    }
}

/// Network and server-selection failures are transient; the rest are backend errors.
fn store_error(error: mongodb::error::Error) -> StoreError {
    match *error.kind {
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. } => StoreError::unavailable(error),
        _ => StoreError::backend(error),
    }
}

#[cfg(test)]
mod cut_tests;
