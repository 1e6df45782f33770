//! [`DynamoStore`]: the [`CacheStore`] over a DynamoDB table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CreateGlobalSecondaryIndexAction,
    DeleteRequest, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, PutRequest, ReturnValue,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, WriteRequest,
};
use bytes::BytesMut;
use cache_core::codec::EntryCodec;
use cache_core::decoded_copies::{DEFAULT_DECODED_COPIES_BYTES, DecodedCopies};
use cache_core::store::DecodedEntry;
use cache_core::time::to_millis;
use cache_core::{CacheKey, CacheStore, CachedResponse, EntryMeta, StoreError, StoredEntry};
use futures_core::stream::BoxStream;

use crate::items::{
    self, CHUNK_SIZE, CHUNKS, CREATED, DELETE_AT, EXPIRES, GENERATION, Item, KEY, KIND, KIND_ENTRY,
    MAX_VALUE_BYTES, URL_GROUP, VALUE, VARIANT_OF, Value, chunk_item, chunk_key, chunk_keys_of,
    entry_item, is_past_retention, meta_of, value_of,
};
use crate::schema;

/// The global secondary index listing entries by URL group (`entries_for_url`). It carries
/// the metadata attributes, not the values.
const URL_GROUP_INDEX: &str = "url_group";

/// The attributes the URL group index carries besides the keys: what `meta_of` reads.
const INDEX_ATTRIBUTES: [&str; 6] = [
    KIND,
    items::URL,
    items::CREATED,
    EXPIRES,
    DELETE_AT,
    VARIANT_OF,
];

/// How long chunks are kept before the entry that uses them is written and confirms them:
/// a put cut short (a timeout, a failed entry write) leaves chunks that DynamoDB's TTL then
/// removes, whatever the entry's own expiry would have been.
const PROVISIONAL_CHUNK_RETENTION: Duration = Duration::from_secs(3600);

/// Values up to this size (plus the URL) are stored in the entry item itself.
const INLINE_MAX: usize = 350_000;

/// The longest URL an entry may have: items are limited to 400 KB, and the entry item holds
/// the URL whatever the value's size (a large value goes to chunk items), with its other
/// attributes (well under 10 KB).
const URL_MAX: usize = 390_000;
/// BatchWriteItem takes at most 25 requests, BatchGetItem 100 keys (and 16 MB of reply).
const WRITE_BATCH: usize = 25;
const GET_BATCH: usize = 40;
/// How many times unprocessed batch items are retried, with growing pauses.
const BATCH_RETRIES: u32 = 8;

/// Chunk retention updates in flight at once (see `set_chunk_retention`).
const CHUNK_UPDATES_AT_ONCE: usize = 16;

/// Times chunks are given their entry's retention before their settling gives up following
/// it (see `DynamoStore::retain_chunks_with_entry`): renewals that keep landing meanwhile.
const SETTLE_ROUNDS: usize = 4;

/// Builds a [`DynamoStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DynamoStoreBuilder {
    table: String,
    ttl_offset: Option<Duration>,
    decoded_copies: u64,
    timeout: Duration,
}

impl Default for DynamoStoreBuilder {
    fn default() -> Self {
        Self {
            table: "reqwest_http_cache".to_owned(),
            ttl_offset: Some(Duration::from_secs(3600)),
            decoded_copies: DEFAULT_DECODED_COPIES_BYTES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// How long [`DynamoStoreBuilder::open_local`]'s client waits to connect, and for each
/// attempt of a request, unless told otherwise: 5 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeouts of one batch request carrying about `bytes` of values (chunks of large
/// bodies, up to 9.5 MB written or 15 MB read in one request): each attempt has the default
/// [`DEFAULT_TIMEOUT`] plus a second per 256 KiB (a link of 2 Mbit/s), where the timeout
/// meant for small requests cut every transfer of a large entry on a slower link. Applied to
/// the request alone, over the client's own.
fn bulk_timeouts(bytes: usize) -> aws_sdk_dynamodb::config::Builder {
    let per_piece = u64::try_from(bytes / (256 * 1024)).unwrap_or(u64::MAX);
    let attempt = DEFAULT_TIMEOUT.saturating_add(Duration::from_secs(per_piece));
    let timeouts = timeouts(DEFAULT_TIMEOUT)
        .to_builder()
        .operation_attempt_timeout(attempt)
        .build();
    aws_sdk_dynamodb::Config::builder().timeout_config(timeouts)
}

/// The bytes of value a write request carries (a chunk's), 0 for a delete.
fn carried_bytes(request: &WriteRequest) -> usize {
    request
        .put_request()
        .and_then(|put| put.item().get(VALUE))
        .and_then(|value| value.as_b().ok())
        .map_or(0, |value| value.as_ref().len())
}

/// The SDK's timeouts for a client of the cache: connecting and each attempt of a request
/// bounded by `timeout` (a batch of chunks gets more: see `bulk_timeouts`). The SDK sets
/// none by default, so a server that accepts connections and never answers (or an address
/// that drops packets) held a request, the store's open among them, for good. For a client
/// you configure yourself ([`DynamoStoreBuilder::with_client`]).
///
/// ```
/// use std::time::Duration;
/// let timeouts = cache_dynamodb::timeouts(Duration::from_secs(2));
/// assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(2)));
/// ```
pub fn timeouts(timeout: Duration) -> aws_sdk_dynamodb::config::timeout::TimeoutConfig {
    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .connect_timeout(timeout)
        .operation_attempt_timeout(timeout)
        .build()
}

impl DynamoStoreBuilder {
    /// The table (default `reqwest_http_cache`), created if missing.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = name.into();
        self
    }

    /// How long DynamoDB keeps an entry past its expiry, for revalidation (default one hour);
    /// `None` keeps entries until deleted.
    pub fn ttl_offset(mut self, offset: Option<Duration>) -> Self {
        self.ttl_offset = offset;
        self
    }

    /// Bytes of [`DecodedCopies`] to keep (default [`DEFAULT_DECODED_COPIES_BYTES`], 32 MiB of memory;
    /// 0 keeps none): a hit whose value and metadata, just read from DynamoDB, are those a
    /// copy came from skips decoding; a write by any client shows at once.
    ///
    /// ```
    /// let builder = cache_dynamodb::DynamoStore::builder().decoded_copies(0);
    /// # let _ = builder;
    /// ```
    pub fn decoded_copies(mut self, max_bytes: u64) -> Self {
        self.decoded_copies = max_bytes;
        self
    }

    /// How long [`open_local`](Self::open_local)'s client waits to connect, and for each
    /// attempt of a request (default [`DEFAULT_TIMEOUT`], 5 s): a server that does not
    /// answer fails the open within a few times this, rather than hold it for good.
    ///
    /// ```
    /// let builder = cache_dynamodb::DynamoStore::builder().timeout(std::time::Duration::from_secs(2));
    /// # let _ = builder;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses a client you configured (with aws-config or by hand); creates the table if needed.
    /// Give the client timeouts ([`timeouts`]): the SDK has none by default, and a server
    /// that never answers holds the open for good.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when DynamoDB cannot be reached or does not answer in
    /// the client's time (retried once only: each attempt took the whole timeout);
    /// [`StoreError::Backend`] when the table cannot be created.
    pub async fn with_client(self, client: Client) -> Result<DynamoStore, StoreError> {
        let store = DynamoStore {
            client,
            table: self.table,
            ttl_offset: self.ttl_offset,
            copies: Arc::new(DecodedCopies::new(self.decoded_copies)),
            #[cfg(test)]
            settle_gate: Arc::default(),
            #[cfg(test)]
            chunks_gate: Arc::default(),
        };
        // A server error while the table is set up (DynamoDB Local answers `InternalFailure`
        // now and then under load; the service can too) is retried: every step is
        // idempotent, and giving up would leave the caller without a cache for a blip.
        // A request nothing answered in time is retried once only (a slow answer now and
        // then), not as often as the others: each took the client's whole timeout, and a
        // server that does not answer would hold the open for minutes.
        let mut pause = Duration::from_millis(250);
        let mut timeouts_left = 1;
        for _ in 0..4 {
            match store.ensure_table().await {
                Err(error @ StoreError::Unavailable { .. }) => {
                    if timed_out(&error) {
                        if timeouts_left == 0 {
                            return Err(error);
                        }
                        timeouts_left -= 1;
                    }
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                done => return done.map(|()| store),
            }
        }
        store.ensure_table().await?;
        Ok(store)
    }

    /// Connects to an endpoint such as DynamoDB Local with static test credentials, without
    /// aws-config.
    ///
    /// # Errors
    ///
    /// As [`with_client`](Self::with_client).
    pub async fn open_local(self, endpoint: &str, region: &str) -> Result<DynamoStore, StoreError> {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("local", "local", None, None, "static"))
            .timeout_config(timeouts(self.timeout))
            .build();
        self.with_client(Client::from_conf(config)).await
    }
}

/// A [`CacheStore`] in a DynamoDB table. Cheap to clone (the client and the decoded copies
/// are shared).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    ttl_offset: Option<Duration>,
    /// Decoded forms of entries read again, each answering only for the value and metadata
    /// it came from (see [`DynamoStoreBuilder::decoded_copies`]).
    copies: Arc<DecodedCopies>,
    /// Tests: holds a write or renewal before its entry item's request (then run to its end).
    #[cfg(test)]
    settle_gate: Arc<cache_core::testing::Gate>,
    /// Tests: holds a write or renewal before it sets its chunks' retention.
    #[cfg(test)]
    chunks_gate: Arc<cache_core::testing::Gate>,
}

impl DynamoStore {
    /// A builder with the default table and TTL offset.
    pub fn builder() -> DynamoStoreBuilder {
        DynamoStoreBuilder::default()
    }

    /// The bytes this store's decoded copies weigh now (values and the header copies they
    /// hold; see [`DynamoStoreBuilder::decoded_copies`]): memory beside the store's data, bounded by the builder's
    /// setting, and given back as entries are deleted.
    pub fn decoded_copies_bytes(&self) -> u64 {
        self.copies.weight()
    }

    /// Creates the table when it is missing, waits until it is active, and enables TTL.
    async fn ensure_table(&self) -> Result<(), StoreError> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        match described {
            Ok(_) => {}
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {
                self.create_table().await?;
            }
            Err(e) => return Err(store_error(e)),
        }
        for _ in 0..120 {
            let table = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(store_error)?;
            let Some(table) = table.table() else {
                continue;
            };
            if let Some(why) = schema::mismatch(table, URL_GROUP_INDEX, &INDEX_ATTRIBUTES) {
                return Err(StoreError::backend(std::io::Error::other(format!(
                    "DynamoDB table `{}` cannot hold this store's entries: {why}; use \
                     another table name",
                    self.table
                ))));
            }
            let index = table
                .global_secondary_indexes()
                .iter()
                .find(|i| i.index_name() == Some(URL_GROUP_INDEX));
            if table.table_status() == Some(&TableStatus::Active) {
                match index.map(|i| i.index_status()) {
                    // A table of an earlier version: add the index (once; then wait for it).
                    None => self.add_url_group_index().await?,
                    Some(Some(IndexStatus::Active)) => return self.enable_ttl().await,
                    Some(_) => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(StoreError::backend(std::io::Error::other(format!(
            "table {} did not become ACTIVE",
            self.table
        ))))
    }

    /// The URL group index's key, and which attributes it carries.
    fn url_group_index_parts() -> Result<(KeySchemaElement, Projection), StoreError> {
        let key = KeySchemaElement::builder()
            .attribute_name(URL_GROUP)
            .key_type(KeyType::Hash)
            .build()
            .map_err(StoreError::backend)?;
        let mut projection = Projection::builder().projection_type(ProjectionType::Include);
        for attribute in INDEX_ATTRIBUTES {
            projection = projection.non_key_attributes(attribute);
        }
        Ok((key, projection.build()))
    }

    fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(StoreError::backend)
    }

    /// Adds the URL group index to a table created before it existed.
    async fn add_url_group_index(&self) -> Result<(), StoreError> {
        let (key, projection) = Self::url_group_index_parts()?;
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(URL_GROUP_INDEX)
            .key_schema(key)
            .projection(projection)
            .build()
            .map_err(StoreError::backend)?;
        let updated = self
            .client
            .update_table()
            .table_name(&self.table)
            .attribute_definitions(Self::string_attribute(URL_GROUP)?)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            // Another process is adding it meanwhile.
            Err(SdkError::ServiceError(e))
                if e.err().is_resource_in_use_exception()
                    || e.err()
                        .message()
                        .is_some_and(|m| m.contains("already exists")) =>
            {
                Ok(())
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn create_table(&self) -> Result<(), StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::backend(e);
        let (group_key, projection) = Self::url_group_index_parts()?;
        let by_url_group = GlobalSecondaryIndex::builder()
            .index_name(URL_GROUP_INDEX)
            .key_schema(group_key)
            .projection(projection)
            .build()
            .map_err(build)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(Self::string_attribute(KEY)?)
            .attribute_definitions(Self::string_attribute(URL_GROUP)?)
            .global_secondary_indexes(by_url_group)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Another process created it meanwhile.
            Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn enable_ttl(&self) -> Result<(), StoreError> {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(DELETE_AT)
            .build()
            .map_err(StoreError::backend)?;
        let result = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already enabled (by us, earlier): fine. Any other refusal is an error: without TTL
            // the table would grow for good.
            Err(SdkError::ServiceError(e))
                if e.err()
                    .message()
                    .is_some_and(|m| m.contains("already enabled")) =>
            {
                Ok(())
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// When the server may drop an entry: expiry plus `ttl_offset`; `None` for never.
    fn delete_at(&self, expires_at: Option<SystemTime>) -> Option<SystemTime> {
        cache_core::time::retention_deadline(expires_at, self.ttl_offset)
    }

    fn key_attr(key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(KEY.to_owned(), items::s(key))])
    }

    /// Writes items in batches of 25, retrying unprocessed ones.
    async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        while !requests.is_empty() {
            let rest = requests.split_off(requests.len().min(WRITE_BATCH));
            let mut pending = requests;
            for attempt in 0..=BATCH_RETRIES {
                let carried = pending.iter().map(carried_bytes).sum();
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .customize()
                    .config_override(bulk_timeouts(carried))
                    .send()
                    .await
                    .map_err(store_error)?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == BATCH_RETRIES {
                    return Err(StoreError::unavailable(std::io::Error::other(
                        "DynamoDB left batch items unprocessed",
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            }
            requests = rest;
        }
        Ok(())
    }

    async fn delete_keys(&self, keys: Vec<String>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|k| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(Self::key_attr(&k)))
                    .build()
                    .map_err(StoreError::backend)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }

    /// Reads chunk values in order; `None` when any is missing (an overwrite raced us).
    async fn read_chunks(&self, keys: &[String]) -> Result<Option<BytesMut>, StoreError> {
        let mut found: HashMap<String, Vec<u8>> = HashMap::new();
        for batch in keys.chunks(GET_BATCH) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                batch.iter().map(|k| Self::key_attr(k)).collect();
            for attempt in 0..=BATCH_RETRIES {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(StoreError::backend)?;
                // Each key a chunk at most, sent back as base64 (4 bytes for 3).
                let carried = batch.len() * CHUNK_SIZE / 3 * 4;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .customize()
                    .config_override(bulk_timeouts(carried))
                    .send()
                    .await
                    .map_err(store_error)?;
                for item in output
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let (Some(AttributeValue::S(k)), Some(AttributeValue::B(v))) =
                        (item.get(KEY), item.get(VALUE))
                    {
                        found.insert(k.clone(), v.clone().into_inner());
                    }
                }
                pending = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == BATCH_RETRIES {
                    return Err(StoreError::unavailable(std::io::Error::other(
                        "DynamoDB left batch keys unprocessed",
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            }
        }
        let mut value = BytesMut::new();
        for key in keys {
            let Some(part) = found.remove(key) else {
                return Ok(None);
            };
            value.extend_from_slice(&part);
        }
        Ok(Some(value))
    }

    /// One scan page of entry items (no values), after `start`.
    async fn scan_page(
        &self,
        start: Option<HashMap<String, AttributeValue>>,
        with_chunks: bool,
    ) -> Result<(Vec<Item>, Option<HashMap<String, AttributeValue>>), StoreError> {
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .projection_expression("#k, #t, #u, #c, #x, #l, #g, #n, #ug, #vp")
            .expression_attribute_names("#k", KEY)
            .expression_attribute_names("#t", KIND)
            .expression_attribute_names("#u", items::URL)
            .expression_attribute_names("#c", items::CREATED)
            .expression_attribute_names("#x", EXPIRES)
            .expression_attribute_names("#l", DELETE_AT)
            .expression_attribute_names("#g", GENERATION)
            .expression_attribute_names("#n", CHUNKS)
            .expression_attribute_names("#ug", URL_GROUP)
            .expression_attribute_names("#vp", VARIANT_OF);
        if !with_chunks {
            scan = scan
                .filter_expression("#t = :e")
                .expression_attribute_values(":e", items::s(KIND_ENTRY));
        }
        let output = scan.send().await.map_err(store_error)?;
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }

    /// Deletes those of `chunks` (keys of chunks kept for good) whose generation their entry
    /// does not name: a delete or an overwrite cut off between its entry and its chunks left
    /// them, with no deletion time, and nothing else ever removes them. A write still
    /// uploading has chunks with a provisional deletion time, never among these; confirmed
    /// ones belong to the entry naming them from then on.
    async fn delete_orphaned_chunks(&self, chunks: Vec<String>) -> Result<(), StoreError> {
        let mut by_entry: HashMap<(CacheKey, String), Vec<String>> = HashMap::new();
        for chunk in chunks {
            let mut parts = chunk.splitn(3, '#');
            let (Some(key), Some(generation)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(key) = key.parse::<CacheKey>() else {
                continue;
            };
            let generation = generation.to_owned();
            by_entry.entry((key, generation)).or_default().push(chunk);
        }
        for ((key, generation), chunks) in by_entry {
            let entry = self.read_item_fields(&key, &[("#g", GENERATION)]).await?;
            let named = entry
                .as_ref()
                .and_then(|item| item.get(GENERATION))
                .and_then(|g| g.as_s().ok())
                .is_some_and(|g| *g == generation);
            if !named {
                self.delete_keys(chunks).await?;
            }
        }
        Ok(())
    }

    /// Every entry item (metadata only) not past retention.
    async fn scan_entries(&self) -> Result<Vec<Item>, StoreError> {
        let now = SystemTime::now();
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.scan_page(start.clone(), false).await?;
            all.extend(items.into_iter().filter(|i| !is_past_retention(i, now)));
            start = next_page(&start, next)?;
            if start.is_none() {
                return Ok(all);
            }
        }
    }
}

#[async_trait]
impl CacheStore for DynamoStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attr(key.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        if is_past_retention(&item, SystemTime::now()) {
            return Ok(None);
        }
        let (Some(meta), Some(value)) = (meta_of(&item), value_of(&item)) else {
            self.forget_foreign(key, &item).await?;
            return Ok(None);
        };
        let value = match value {
            Value::Inline(bytes) => bytes,
            Value::Chunked { generation, chunks } => {
                let keys: Vec<String> = (0..chunks)
                    .map(|i| chunk_key(key, &generation, i))
                    .collect();
                match self.read_chunks(&keys).await? {
                    Some(value) => value.freeze(),
                    None => {
                        self.forget_dead_entry(key, &generation).await?;
                        return Ok(None);
                    }
                }
            }
        };
        Ok(Some(StoredEntry::new(meta, value)))
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.write(entry, None).await.map(drop)
    }

    /// The item is put on the condition that it holds the creation read: an entry written
    /// since, or deleted, is not written over, and the chunks this write made for a large
    /// value go again.
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
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attr(key.as_str())))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?;
        let Some(old) = output.attributes else {
            return Ok(false);
        };
        self.deleted(key, &old).await
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        let pages = futures_util::stream::try_unfold(Some(None), move |start| async move {
            let Some(start) = start else { return Ok(None) };
            let now = SystemTime::now();
            let (items, next) = self.scan_page(start.clone(), false).await?;
            let next = next_page(&start, next)?;
            let metas: Vec<Result<EntryMeta, StoreError>> = items
                .iter()
                .filter(|i| !is_past_retention(i, now))
                .filter_map(meta_of)
                .map(Ok)
                .collect();
            Ok(Some((futures_util::stream::iter(metas), next.map(Some))))
        });
        Box::pin(futures_util::TryStreamExt::try_flatten(pages))
    }

    /// 4 GiB: the most chunks an entry item names.
    fn max_value_bytes(&self) -> Option<u64> {
        Some(items::MAX_VALUE_BYTES)
    }

    /// 3 s: a healthy server answers in milliseconds, but a large body goes up in several
    /// chunk writes (an 8 MiB body is ~1 s of upload at 100 Mbit/s).
    fn suggested_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(3)
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.copies.clear();
        let mut removed = 0;
        let mut start = None;
        loop {
            let (items, next) = self.scan_page(start.clone(), true).await?;
            removed += items.iter().filter(|i| meta_of(i).is_some()).count() as u64;
            let keys = items
                .iter()
                .filter_map(|i| i.get(KEY)?.as_s().ok().cloned())
                .collect();
            self.delete_keys(keys).await?;
            start = next_page(&start, next)?;
            if start.is_none() {
                // Again after: copies a write kept meanwhile may be of entries cleared since.
                self.copies.clear();
                return Ok(removed);
            }
        }
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.scan_entries().await?.len() as u64)
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.delete_on(
            key,
            "#a = :v",
            CREATED,
            Some(items::n(to_millis(created_at))),
        )
        .await
    }

    /// A page of the table at a time, deleting as it goes: a table of gigabytes took longer
    /// to scan whole than a sweep may run, so no sweep ever deleted anything. Chunks kept for
    /// good whose generation no entry names go too (`delete_orphaned_chunks`).
    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut start = None;
        loop {
            let (items, next) = self.scan_page(start.clone(), true).await?;
            let mut confirmed_chunks = Vec::new();
            for item in &items {
                let Some(meta) = meta_of(item) else {
                    if let Some(key) = items::created_before_1970(item) {
                        // No entry (no read, listing or delete by creation reaches it), and
                        // with no expiry it would stay for good: gone while still so.
                        self.delete_on(&key, "#a < :v", CREATED, Some(items::n(0)))
                            .await?;
                    }
                    confirmed_chunks.extend(items::chunk_kept_for_good(item).map(str::to_owned));
                    continue;
                };
                // An entry past its retention is gone to every read already, so not counted;
                // it is deleted all the same, as DynamoDB's TTL skips deletion times over five
                // years old (an import of old entries), which would then stay for good. So is
                // one past its retention but not expired (its deletion time set by hand, say):
                // no sweep by expiry took it.
                if is_past_retention(item, now) {
                    if !meta.is_expired(now) {
                        self.delete_past_retention(&meta.key, now).await?;
                    } else {
                        self.delete_if_expired(&meta.key, now).await?;
                    }
                    continue;
                }
                if meta.is_expired(now) && self.delete_if_expired(&meta.key, now).await? {
                    removed += 1;
                }
            }
            self.delete_orphaned_chunks(confirmed_chunks).await?;
            start = next_page(&start, next)?;
            if start.is_none() {
                return Ok(removed);
            }
        }
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attr(key.as_str())))
            // Only an entry: an item under the key that is none (another program's, or one
            // created before 1970, which no write makes) is left as it is.
            .condition_expression("#t = :entry AND #c >= :zero")
            .expression_attribute_names("#t", KIND)
            .expression_attribute_names("#c", CREATED)
            .expression_attribute_values(":entry", items::s(KIND_ENTRY))
            .expression_attribute_values(":zero", items::n(0))
            .expression_attribute_names("#x", EXPIRES)
            .expression_attribute_names("#l", DELETE_AT);
        let mut set = Vec::new();
        let mut remove = Vec::new();
        match expires_at {
            Some(t) => {
                set.push("#x = :x");
                update = update.expression_attribute_values(":x", items::n(to_millis(t)));
            }
            None => remove.push("#x"),
        }
        match self.delete_at(expires_at) {
            Some(t) => {
                set.push("#l = :l");
                update = update.expression_attribute_values(":l", items::n(items::ttl_seconds(t)));
            }
            None => remove.push("#l"),
        }
        let mut expression = String::new();
        if !set.is_empty() {
            expression.push_str(&format!("SET {}", set.join(", ")));
        }
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = update
            .update_expression(expression.trim())
            .return_values(ReturnValue::AllNew);
        // From the update on, to the end whoever stops waiting (see `settle_chunks`): a
        // caller cut between them left the chunks of an entry whose life it extended to go
        // before it.
        let (store, key, delete_at) = (self.clone(), *key, self.delete_at(expires_at));
        cache_core::to_end::run_to_end(async move {
            #[cfg(test)]
            store.settle_gate.pass().await;
            let output = match update.send().await {
                Ok(output) => output,
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(store_error(e)),
            };
            // A chunked value's chunks carry the TTL too: move it with the entry's, or
            // DynamoDB would delete them under an entry whose life was extended.
            let item = output.attributes.unwrap_or_default();
            let chunks = chunk_keys_of(&key, &item);
            let generation = item.get(GENERATION);
            store
                .settle_chunks(&key, generation, chunks, delete_at, Vec::new())
                .await?;
            Ok(true)
        })
        .await
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let now = SystemTime::now();
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(URL_GROUP_INDEX)
                .key_condition_expression("#ug = :ug")
                .expression_attribute_names("#ug", URL_GROUP)
                .expression_attribute_values(":ug", items::s(url_group.as_str()))
                .set_exclusive_start_key(start.clone())
                .send()
                .await
                .map_err(store_error)?;
            let items = output.items.unwrap_or_default();
            let live = items.iter().filter(|i| !is_past_retention(i, now));
            found.extend(live.filter_map(meta_of));
            start = next_page(&start, output.last_evaluated_key)?;
            if start.is_none() {
                return Ok(found);
            }
        }
    }
}

impl DynamoStore {
    /// Deletes the entry under `key` if it is still expired at `now` (the check and the
    /// delete are one conditional request): an entry rewritten since it was listed as
    /// expired stays. True when it was deleted.
    async fn delete_if_expired(&self, key: &CacheKey, now: SystemTime) -> Result<bool, StoreError> {
        self.delete_on(key, "#a <= :v", EXPIRES, Some(items::n(to_millis(now))))
            .await
    }

    /// Deletes the entry under `key` if its retention is still past at `now` (one
    /// conditional request: an entry rewritten since stays).
    async fn delete_past_retention(
        &self,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let now_secs = items::n(items::ttl_seconds(now));
        self.delete_on(key, "#a <= :v", DELETE_AT, Some(now_secs))
            .await
    }

    /// Writes `entry`: over whatever is under its key, or (`only_over`) over the entry
    /// created then only. True when it wrote.
    async fn write(
        &self,
        entry: StoredEntry,
        only_over: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let key = entry.meta.key;
        let delete_at = self.delete_at(entry.meta.expires_at);
        StoreError::check_size(entry.value.len() as u64, Some(MAX_VALUE_BYTES))?;
        // Refused here as too large (as a value over the limit is), not by the server's
        // validation error, which the middleware warns of and counts as a store error, and
        // on which a copy stops rather than skipping the entry.
        StoreError::check_size(entry.meta.url.len() as u64, Some(URL_MAX as u64))?;
        let mut item = entry_item(&entry.meta, delete_at);
        if entry.value.len() + entry.meta.url.len() <= INLINE_MAX {
            item.insert(VALUE.into(), items::b(&entry.value));
        } else {
            let generation = cache_core::unique::unique_id();
            let mut requests = Vec::new();
            let mut count = 0u32;
            let provisional = Some(SystemTime::now() + PROVISIONAL_CHUNK_RETENTION);
            for (i, part) in entry.value.chunks(CHUNK_SIZE).enumerate() {
                let chunk = chunk_item(&chunk_key(&key, &generation, i as u32), part, provisional);
                let put = PutRequest::builder()
                    .set_item(Some(chunk))
                    .build()
                    .map_err(StoreError::backend)?;
                requests.push(WriteRequest::builder().put_request(put).build());
                count += 1;
            }
            // Chunks first: the entry item, written last, makes them visible all at once.
            self.batch_write(requests).await?;
            item.insert(GENERATION.into(), items::s(generation));
            item.insert(CHUNKS.into(), items::n(i64::from(count)));
        }
        let chunks = chunk_keys_of(&key, &item);
        let generation = item.get(GENERATION).cloned();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld);
        if let Some(created_at) = only_over {
            put = put
                .condition_expression("#a = :v")
                .expression_attribute_names("#a", CREATED)
                .expression_attribute_values(":v", items::n(to_millis(created_at)));
            self.copies.forget(&key);
        }
        // From the entry item on, to the end whoever stops waiting (see `settle_chunks`): a
        // caller cut while the item was on its way (it may land) left its chunks to expire.
        // A value inline has none: its write is the caller's (a cut only leaves the chunks
        // of the entry it replaced to the sweep), and spawns nothing.
        let inline = chunks.is_empty();
        let store = self.clone();
        let finish = async move {
            #[cfg(test)]
            store.settle_gate.pass().await;
            let output = match put.send().await {
                Ok(output) => output,
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    // A client that retries (aws-config's does) sends a write again when its
                    // answer was lost (a timeout): the condition then fails on the entry the
                    // first attempt wrote, which is this write, made (and uses these
                    // chunks). Only a refusal leaves the chunks no one's.
                    if store.holds_this_write(&entry, generation.as_ref()).await? {
                        let (key, generation) = (&entry.meta.key, generation.as_ref());
                        store
                            .settle_chunks(key, generation, chunks, delete_at, Vec::new())
                            .await?;
                        return Ok(true);
                    }
                    if !chunks.is_empty() {
                        store.delete_keys(chunks).await?;
                    }
                    return Ok(false);
                }
                Err(e) => return Err(store_error(e)),
            };
            // Chunks of the replaced entry, if it had any, are no longer referenced: unless
            // it is this very write, whose first attempt landed and was sent again (its
            // answer lost, by a client that retries), and whose chunks they are.
            let replaced = output
                .attributes
                .filter(|old| generation.is_none() || old.get(GENERATION) != generation.as_ref());
            let stale = replaced.map_or_else(Vec::new, |old| chunk_keys_of(&key, &old));
            store
                .settle_chunks(&key, generation.as_ref(), chunks, delete_at, stale)
                .await?;
            Ok(true)
        };
        match inline {
            true => finish.await,
            false => cache_core::to_end::run_to_end(finish).await,
        }
    }

    /// The item under `key`, read consistently, with only the attributes `fields` names
    /// (each a placeholder and its attribute's name); `None` when there is none.
    async fn read_item_fields(
        &self,
        key: &CacheKey,
        fields: &[(&str, &str)],
    ) -> Result<Option<Item>, StoreError> {
        let placeholders: Vec<&str> = fields.iter().map(|(placeholder, _)| *placeholder).collect();
        let mut read = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attr(key.as_str())))
            .consistent_read(true)
            .projection_expression(placeholders.join(", "));
        for (placeholder, name) in fields {
            read = read.expression_attribute_names(*placeholder, *name);
        }
        Ok(read.send().await.map_err(store_error)?.item)
    }

    /// Whether the entry item under `entry`'s key, read consistently, is the one this write
    /// of `entry` put there: the same generation of chunks, or (a value inline) the same
    /// creation and value.
    async fn holds_this_write(
        &self,
        entry: &StoredEntry,
        generation: Option<&AttributeValue>,
    ) -> Result<bool, StoreError> {
        let fields = [("#c", CREATED), ("#v", VALUE), ("#g", GENERATION)];
        let Some(stored) = self.read_item_fields(&entry.meta.key, &fields).await? else {
            return Ok(false);
        };
        Ok(match generation {
            Some(generation) => stored.get(GENERATION) == Some(generation),
            None => {
                let created = items::n(to_millis(entry.meta.created_at));
                let value = stored.get(VALUE).and_then(|v| v.as_b().ok());
                stored.get(CREATED) == Some(&created)
                    && value.is_some_and(|v| v.as_ref() == &entry.value[..])
            }
        })
    }

    /// Deletes the entry under `key` if `condition` holds of its attribute `attribute` (`#a`)
    /// and the number `value` (`:v`), in one conditional request, then its chunks. True when
    /// it was deleted.
    async fn delete_on(
        &self,
        key: &CacheKey,
        condition: &str,
        attribute: &str,
        value: Option<AttributeValue>,
    ) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attr(key.as_str())))
            .condition_expression(condition)
            .expression_attribute_names("#a", attribute)
            .set_expression_attribute_values(value.map(|v| HashMap::from([(":v".to_owned(), v)])))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let old = match output {
            Ok(output) => output.attributes,
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                return Ok(false);
            }
            Err(e) => return Err(store_error(e)),
        };
        let Some(old) = old else { return Ok(false) };
        self.copies.forget(key);
        self.deleted(key, &old).await
    }

    /// Deletes `item`, found under `key` and no entry, while it is still the item read: an
    /// entry another client wrote since stays (its creation differs). True when it went.
    async fn forget_foreign(&self, key: &CacheKey, item: &Item) -> Result<bool, StoreError> {
        tracing::warn!(%key, "an item under the cache's key is not an entry: deleting it");
        match item.get(CREATED) {
            Some(created) => {
                self.delete_on(key, "#a = :v", CREATED, Some(created.clone()))
                    .await
            }
            None => {
                self.delete_on(key, "attribute_not_exists(#a)", CREATED, None)
                    .await
            }
        }
    }

    /// After `key`'s item `old` was deleted: its chunks go too. True when it was an entry.
    async fn deleted(&self, key: &CacheKey, old: &Item) -> Result<bool, StoreError> {
        let chunks = chunk_keys_of(key, old);
        if !chunks.is_empty() {
            self.delete_keys(chunks).await?;
        }
        Ok(meta_of(old).is_some())
    }
    /// A chunk of the entry is missing: an overwrite removed it meanwhile, or it was never
    /// confirmed and expired. In the second case the entry is dead and is removed, with the
    /// chunks of it that are left (those confirmed before a cut-off confirmation, kept for
    /// good, would otherwise stay, named by nothing), but only while it still names this
    /// generation (never a newer write).
    async fn forget_dead_entry(&self, key: &CacheKey, generation: &str) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attr(key.as_str())))
            .condition_expression("#g = :g")
            .expression_attribute_names("#g", GENERATION)
            .expression_attribute_values(":g", items::s(generation))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match deleted {
            Ok(output) => match output.attributes {
                Some(old) => self.deleted(key, &old).await.map(drop),
                None => Ok(()),
            },
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// Gives the `chunks` of the entry just written or renewed under `key` (of
    /// `generation`) its retention (`delete_at`: they live as long as it does), then deletes
    /// the `stale` chunks of the entry it replaced. Run to its end with the entry's write or
    /// renewal ([`cache_core::to_end::run_to_end`]): a caller that stopped waiting between
    /// them left the new chunks at their provisional hour (or their old time), so the entry
    /// read as a miss once DynamoDB removed them.
    async fn settle_chunks(
        &self,
        key: &CacheKey,
        generation: Option<&AttributeValue>,
        chunks: Vec<String>,
        delete_at: Option<SystemTime>,
        stale: Vec<String>,
    ) -> Result<(), StoreError> {
        let mut retained = Ok(());
        if let (false, Some(generation)) = (chunks.is_empty(), generation) {
            retained = self
                .retain_chunks_with_entry(key, generation, chunks, delete_at)
                .await;
        }
        // Whatever became of the new chunks: the replaced entry's are no one's.
        if !stale.is_empty() {
            self.delete_keys(stale).await?;
        }
        retained
    }

    /// Gives `chunks` the retention `delete_at`, then reads their entry again (consistently)
    /// and gives them the one it holds then, until the two agree ([`SETTLE_ROUNDS`] at
    /// most): a renewal that settled the same chunks while these updates were on their way
    /// (a write's, still settling) could be overwritten by them, and the chunks went with
    /// the older time, before their entry (a miss from then on). The last updates of a chunk
    /// are now those of whoever read the entry last. Stops when the entry is gone or of
    /// another generation (its writer deletes these chunks).
    async fn retain_chunks_with_entry(
        &self,
        key: &CacheKey,
        generation: &AttributeValue,
        chunks: Vec<String>,
        mut delete_at: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        for _ in 0..SETTLE_ROUNDS {
            #[cfg(test)]
            self.chunks_gate.pass().await;
            self.set_chunk_retention(chunks.clone(), delete_at).await?;
            let asked = match self.entry_retention(key, generation).await? {
                Some(asked) if asked != delete_at.map(items::ttl_seconds) => asked,
                _ => return Ok(()),
            };
            delete_at = asked.map(items::from_ttl_seconds);
        }
        Ok(())
    }

    /// The deletion time (Unix seconds; `None`: never) the entry under `key` holds, read
    /// consistently, while it is of `generation`; `None` when it is gone, of another, or
    /// holds a time that is no number (followed, it would keep the chunks for good).
    async fn entry_retention(
        &self,
        key: &CacheKey,
        generation: &AttributeValue,
    ) -> Result<Option<Option<i64>>, StoreError> {
        let fields = [("#l", DELETE_AT), ("#g", GENERATION)];
        let item = self.read_item_fields(key, &fields).await?;
        let Some(item) = item.filter(|item| item.get(GENERATION) == Some(generation)) else {
            return Ok(None);
        };
        Ok(match item.get(DELETE_AT) {
            None => Some(None),
            Some(at) => at.as_n().ok().and_then(|n| n.parse().ok()).map(Some),
        })
    }

    /// Gives chunks a new deletion time (`None`: kept for good). A chunk already gone is
    /// skipped: its entry reads as a miss, as it would have anyway.
    async fn set_chunk_retention(
        &self,
        chunks: Vec<String>,
        delete_at: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        // A few at a time: one after another, a value of a GiB (2,800 chunks) took longer
        // than `run_to_end` waits.
        let updates = chunks.into_iter().map(|chunk| {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key_attr(&chunk)))
                .condition_expression("attribute_exists(#k)")
                .expression_attribute_names("#k", KEY)
                .expression_attribute_names("#l", DELETE_AT);
            let update = match delete_at {
                Some(t) => update
                    .update_expression("SET #l = :l")
                    .expression_attribute_values(":l", items::n(items::ttl_seconds(t))),
                None => update.update_expression("REMOVE #l"),
            };
            update.send()
        });
        let mut sent = futures_util::stream::iter(updates).buffer_unordered(CHUNK_UPDATES_AT_ONCE);
        while let Some(answer) = sent.next().await {
            match answer {
                Ok(_) => {}
                // Already gone: the entry will read as a miss, as it would have anyway.
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(())
    }
}

/// A page's start: DynamoDB's `ExclusiveStartKey`.
type PageStart = Option<HashMap<String, AttributeValue>>;

/// Where the page after one that began at `start` begins, by its `LastEvaluatedKey`
/// (`next`): `None` at the end, which an absent or an empty key marks (the API's reference
/// says so, and services send it; sent back as a start, it was refused, and every listing,
/// count, clear and URL lookup failed); an error when `next` is the page's own start, as
/// a server that kept repeating it would be paged forever (and a listing held in memory
/// grew without bound).
fn next_page(
    start: &PageStart,
    next: Option<HashMap<String, AttributeValue>>,
) -> Result<PageStart, StoreError> {
    let next = next.filter(|next| !next.is_empty());
    if next.is_some() && next == *start {
        return Err(StoreError::backend(
            "DynamoDB returned a page's own start as the next one: paging would never end",
        ));
    }
    Ok(next)
}

/// A request DynamoDB did not answer in the client's time (see [`timeouts`]).
#[derive(Debug)]
struct TimedOut(cache_core::BoxError);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynamoDB did not answer in time")
    }
}

impl std::error::Error for TimedOut {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// True for a store error of a request DynamoDB did not answer in time.
fn timed_out(error: &StoreError) -> bool {
    matches!(error, StoreError::Unavailable { source } if source.is::<TimedOut>())
}

/// Network failures, timeouts and throttling are transient; the rest are backend errors.
fn store_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // The server did not answer (or could not be reached) in the client's time: marked, as
    // the open does not retry it.
    let timed_out = match &error {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        _ => false,
    };
    if timed_out {
        return StoreError::unavailable(TimedOut(Box::new(error)));
    }
    let transient = match &error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => matches!(
            e.err().code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalFailure"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
        _ => false,
    };
    if transient {
        StoreError::unavailable(error)
    } else {
        StoreError::backend(error)
    }
}

impl DynamoStore {
    /// The table this store uses.
    pub fn table(&self) -> &str {
        &self.table
    }
}

#[cfg(test)]
mod foreign_tests;

#[cfg(test)]
mod cut_tests;

#[cfg(test)]
mod paging_tests {
    use super::*;

    fn page_key(n: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(KEY.to_owned(), items::s(n))])
    }

    /// An empty `LastEvaluatedKey` ends the paging as an absent one does (it was sent back as
    /// a start, which the server refuses); one equal to the page's own start is an error
    /// (a server repeating it was paged forever); any other is the next start.
    #[test]
    fn paging_ends_at_an_empty_key_and_never_repeats_a_start() {
        assert_eq!(next_page(&None, None).unwrap(), None);
        assert_eq!(next_page(&None, Some(HashMap::new())).unwrap(), None);
        let start = Some(page_key("a"));
        assert_eq!(next_page(&start, Some(HashMap::new())).unwrap(), None);
        assert!(next_page(&start, Some(page_key("a"))).is_err());
        assert_eq!(
            next_page(&start, Some(page_key("b"))).unwrap(),
            Some(page_key("b"))
        );
    }
}
