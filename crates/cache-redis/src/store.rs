//! [`RedisStore`]: the [`CacheStore`] over Redis or a Redis Cluster.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::codec::EntryCodec;
use cache_core::decoded_copies::{DEFAULT_DECODED_COPIES_BYTES, DecodedCopies, KeptCopy};
use cache_core::store::{Decoded, DecodedEntry, collect_keys, get_decoded_apart};
use cache_core::time::{from_millis, to_millis};
use cache_core::{CacheKey, CacheStore, CachedResponse, EntryMeta, StoreError, StoredEntry};
use futures_core::stream::BoxStream;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, ParsingError, RedisError, Value};

use crate::command::{sized_cmd, with_args};
use crate::connection::{Connection, converted, store_error, text_names};
use crate::group_sets::{self, GroupAdds};

/// The largest value stored: Redis's default `proto-max-bulk-len` (512 MiB) less room for the
/// rest of the command.
pub const MAX_VALUE_BYTES: u64 = 512 * 1024 * 1024 - 64 * 1024;

/// How many per-key commands one listing or clearing step keeps in flight.
const BATCH: usize = 256;

/// Sets the entry's expiry fields only if it exists (so a concurrent delete is not undone) and
/// is an entry: a hash with the URL and creation fields every write sets (another program's
/// hash, or a value of another type, is left as it is). Returns 1 when it did, `false` (nil)
/// when there is no entry.
const SET_EXPIRY_SCRIPT: &str = r"
local f = redis.pcall('HMGET', KEYS[1], 'u', 'c')
if f.err or not f[1] or not f[2] then return false end
redis.call('HSET', KEYS[1], 'x', ARGV[1])
if ARGV[2] == '' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
";

/// Deletes the entry (KEYS[1]) if its expiry field is at or before ARGV[1] (milliseconds):
/// one step, so an entry rewritten since it was listed as expired stays. Anything else under
/// the key (no expiry, another type) is left alone. Returns how many keys it deleted and the
/// entry's URL group (`''` without one), as [`DELETE_SCRIPT`].
const DELETE_IF_EXPIRED_SCRIPT: &str = r"
local x = redis.pcall('HGET', KEYS[1], 'x')
if type(x) ~= 'string' or x == '' then return {0, ''} end
local at = tonumber(x)
if at and at <= tonumber(ARGV[1]) then
  local g = redis.call('HGET', KEYS[1], 'g') or ''
  return {redis.call('UNLINK', KEYS[1]), g}
end
return {0, ''}
";

/// Deletes the entry (KEYS[1]) if its creation field is ARGV[1] (milliseconds): one step, so
/// an entry written since stays. Returns what [`DELETE_SCRIPT`] returns.
const DELETE_IF_CREATED_SCRIPT: &str = r"
local c = redis.pcall('HGET', KEYS[1], 'c')
if type(c) == 'string' and c == ARGV[1] then
  local g = redis.call('HGET', KEYS[1], 'g') or ''
  return {redis.call('UNLINK', KEYS[1]), g}
end
return {0, ''}
";

/// Deletes what is under KEYS[1]. Returns how many keys it deleted and the URL group of the
/// entry deleted (`''` without one, or for a value that is no hash), so that its member
/// leaves the group's set: a set kept for good outlived its last entry with every deleted
/// member in it, one such set per URL ever deleted.
const DELETE_SCRIPT: &str = r"
local g = redis.pcall('HGET', KEYS[1], 'g')
if type(g) ~= 'string' then g = '' end
return {redis.call('UNLINK', KEYS[1]), g}
";

/// Writes the entry (KEYS[1]) as `put` does if its creation field is ARGV[1] (milliseconds):
/// one step, so an entry written since, or deleted, is not written over. ARGV[2] is the
/// retention deadline (milliseconds; empty for none), the rest the hash's fields and values.
/// Returns 1 when it wrote.
const PUT_IF_CREATED_SCRIPT: &str = r"
local c = redis.pcall('HGET', KEYS[1], 'c')
if type(c) ~= 'string' or c ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[2] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
";

/// Deletes what is under KEYS[1] only while it is still the foreign value a read found
/// (ARGV[1]): another type (`type`), a hash whose creation field read as ARGV[2] (`hash`; an
/// empty ARGV[2] for none), or a hash whose creation field is no number (`unparsed`). An entry
/// another client wrote meanwhile stays.
const DELETE_IF_STILL_FOREIGN_SCRIPT: &str = r"
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then return 0 end
if (t == 'hash') == (ARGV[1] == 'type') then return 0 end
if t ~= 'hash' then return redis.call('UNLINK', KEYS[1]) end
local c = redis.call('HGET', KEYS[1], 'c')
local same
if ARGV[1] == 'unparsed' then
  -- No creation, or not as the store writes it (see `Created`): no entry.
  same = type(c) ~= 'string'
    or not (c == '0' or (#c <= 18 and string.match(c, '^[1-9]%d*$') ~= nil))
elseif ARGV[2] == '' then same = c == false
else same = c == ARGV[2] end
if same then return redis.call('UNLINK', KEYS[1]) end
return 0
";

/// What a read found under an entry's key that is no entry (see
/// `DELETE_IF_STILL_FOREIGN_SCRIPT`).
#[derive(Clone, Copy, Debug)]
enum Foreign {
    /// A value of another type.
    OtherType,
    /// A hash that is not a whole entry, with the creation it holds.
    Hash(Option<i64>),
    /// A hash with a field that does not parse.
    Unparsed,
}

/// Builds a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    prefix: String,
    ttl_offset: Option<Duration>,
    timeout: Duration,
    decoded_copies: u64,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            prefix: "reqwest-cache".to_owned(),
            ttl_offset: Some(Duration::from_secs(3600)),
            timeout: Duration::from_secs(2),
            decoded_copies: DEFAULT_DECODED_COPIES_BYTES,
        }
    }
}

impl RedisStoreBuilder {
    /// The key prefix (default `reqwest-cache`): every key is `{prefix}:{cache key}`, and
    /// listing, counting and clearing see only this prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long Redis keeps an entry after it expires, for revalidation (default one hour, as
    /// requests-cache's `ttl_offset`); `None` keeps entries until deleted.
    pub fn ttl_offset(mut self, offset: Option<Duration>) -> Self {
        self.ttl_offset = offset;
        self
    }

    /// Connection and response timeout of each command (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bytes of [`DecodedCopies`] to keep (default [`DEFAULT_DECODED_COPIES_BYTES`], 32 MiB of memory;
    /// 0 keeps none): a hit whose value, creation and expiry, just read from Redis, are
    /// those a copy came from skips decoding; a write by any client shows at once. (The
    /// URL, URL group and Vary parent are not read again: every write sets them with the
    /// value and creation in one `HSET`. Behind a `TieredStore`, which reads and writes
    /// bytes, none are made.)
    ///
    /// ```
    /// let builder = cache_redis::RedisStore::builder().decoded_copies(0);
    /// # let _ = builder;
    /// ```
    pub fn decoded_copies(mut self, max_bytes: u64) -> Self {
        self.decoded_copies = max_bytes;
        self
    }

    /// Connects to one server, e.g. `redis://127.0.0.1:6379/0`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached or the URL is invalid.
    pub async fn open(self, url: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(2);
        let manager = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(self.with_connection_manager(manager))
    }

    /// Connects to a Redis Cluster through any of its nodes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when no node can be reached or a URL is invalid.
    pub async fn open_cluster<I, S>(self, urls: I) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        let client = ClusterClient::builder(urls)
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout)
            .build()
            .map_err(StoreError::unavailable)?;
        let connection = client
            .get_async_connection()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(self.with_cluster_connection(connection))
    }

    /// Uses a connection manager you already have.
    pub fn with_connection_manager(self, manager: ConnectionManager) -> RedisStore {
        self.finish(Connection::Single(manager))
    }

    /// Uses a cluster connection you already have.
    pub fn with_cluster_connection(self, connection: ClusterConnection) -> RedisStore {
        self.finish(Connection::Cluster(connection))
    }

    fn finish(self, connection: Connection) -> RedisStore {
        RedisStore {
            scan_pattern: format!("{}:*", escape_glob(&self.prefix)),
            key_prefix: format!("{}:", self.prefix),
            connection,
            ttl_offset: self.ttl_offset,
            copies: Arc::new(DecodedCopies::new(self.decoded_copies)),
            group_adds: Arc::default(),
        }
    }
}

/// A [`CacheStore`] in Redis or a Redis Cluster. Cheap to clone (the connection and the
/// decoded copies are shared).
#[derive(Debug, Clone)]
pub struct RedisStore {
    connection: Connection,
    key_prefix: String,
    scan_pattern: String,
    ttl_offset: Option<Duration>,
    /// Decoded forms of entries read again, each answering only for the value, creation and
    /// expiry it came from (see [`RedisStoreBuilder::decoded_copies`]).
    copies: Arc<DecodedCopies>,
    /// How this server's group sets are kept alive (learnt at the first write).
    group_adds: Arc<GroupAdds>,
}

impl RedisStore {
    /// A builder with the default prefix, TTL offset and timeout.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// The bytes this store's decoded copies weigh now (values and the header copies they
    /// hold; see [`RedisStoreBuilder::decoded_copies`]): memory beside the store's data, bounded by the builder's
    /// setting, and given back as entries are deleted.
    pub fn decoded_copies_bytes(&self) -> u64 {
        self.copies.weight()
    }

    /// Connects to one server with the default settings.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::open`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::builder().open(url).await
    }

    /// What every Redis key of this store starts with: the prefix and a colon
    /// (`reqwest-cache:` by default). Entries are `{key_prefix}{cache key}`; other keys under
    /// it (URL group sets) never parse as a cache key. Server-assisted invalidation
    /// (`CLIENT TRACKING ... BCAST PREFIX`) subscribes to it.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    fn redis_key(&self, key: &CacheKey) -> String {
        self.prefixed(&[key.as_str()])
    }

    /// The set listing the keys of a URL group. Under the prefix (so `clear` removes it),
    /// never parsed as an entry key (`cache_key` refuses it).
    fn group_set_key(&self, url_group: &CacheKey) -> String {
        self.prefixed(&["g:", url_group.as_str()])
    }

    /// The prefix and `parts`, joined in one allocation (`format!` costs a hit a kilo-
    /// instruction more: every read and write names a key).
    fn prefixed(&self, parts: &[&str]) -> String {
        let len = self.key_prefix.len() + parts.iter().map(|part| part.len()).sum::<usize>();
        let mut joined = String::with_capacity(len);
        joined.push_str(&self.key_prefix);
        parts.iter().for_each(|part| joined.push_str(part));
        joined
    }

    /// Puts `key` in its group's set, kept at least until `retain_until`, in a transaction
    /// of its own; returns the set's size after, for a key that [`group_sets::may_prune`]
    /// (`None` for the others).
    async fn group_add_alone(
        &self,
        url_group: &CacheKey,
        key: &CacheKey,
        retain_until: Option<SystemTime>,
    ) -> Result<Option<i64>, StoreError> {
        let set = self.group_set_key(url_group);
        let transaction = || {
            let mut pipe = redis::Pipeline::with_capacity(5);
            pipe.atomic();
            pipe
        };
        self.transact_with_group_add(transaction, (&set, key.as_str()), retain_until)
            .await
    }

    /// A cluster's write of `entry_write` and its second add of `key` to the set of
    /// `url_group` (the first went before the write: see `put`), added again even when the
    /// write failed, as its reply may be what was lost. The write's result.
    async fn write_and_add_again(
        &self,
        entry_write: redis::Pipeline,
        url_group: &CacheKey,
        key: &CacheKey,
        retain_until: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let written = self.connection.query_pipeline::<()>(&entry_write).await;
        #[cfg(test)]
        self.group_adds.second_add_gate.pass().await;
        match self.group_add_alone(url_group, key, retain_until).await {
            Ok(size) if written.is_ok() => self.prune_if_large(url_group, key, size).await,
            Ok(_) => {}
            // Listed by the first add, unless a prune took it in between.
            Err(error) => {
                tracing::warn!(%error, "adding a written entry to its URL group set again failed");
            }
        }
        written
    }

    /// Runs the transaction `build` makes, with the group add of `member` (set, key) at its
    /// end; returns the set's size after (for [`Self::prune_if_large`], once the entry is
    /// written), asked only for a key that [`group_sets::may_prune`] (`None` for the others).
    /// When the server refuses the add's plain commands (see [`GroupAdds`]), runs it again
    /// by script, and adds by script from then on. Any other failure is the write's.
    async fn transact_with_group_add(
        &self,
        build: impl Fn() -> redis::Pipeline,
        member: (&str, &str),
        retain_until: Option<SystemTime>,
    ) -> Result<Option<i64>, StoreError> {
        let by_script = self.group_adds.by_script();
        let mut pipe = build();
        let first = pipe.len();
        self.group_adds
            .add(&mut pipe, member, retain_until, by_script);
        let asked_size = |size: Option<i64>| size.filter(|_| group_sets::may_prune(member.1));
        let error = match self.connection.query_pipeline::<SetSize>(&pipe).await {
            Ok(SetSize(size)) => return Ok(asked_size(size)),
            Err(StoreError::Backend { source }) if !by_script => source,
            Err(error) => return Err(error),
        };
        let refused = error
            .downcast_ref::<redis::RedisError>()
            .and_then(|error| group_sets::refusal(error, first));
        let Some(refusal) = refused else {
            return Err(StoreError::Backend { source: error });
        };
        let mut pipe = build();
        group_sets::add_by_script(&mut pipe, member, retain_until, refusal);
        let size = match self.connection.query_pipeline(&pipe).await {
            Ok(SetSize(size)) => asked_size(size),
            Err(again) => {
                tracing::warn!(refused = %error, error = %again, "a URL group add failed by script too");
                return Err(again);
            }
        };
        tracing::info!(
            refused = %error,
            "the Redis server refused PEXPIREAT ... NX/GT: URL group sets are kept by script from now on"
        );
        self.group_adds.use_script();
        Ok(size)
    }

    /// Prunes the set of `url_group` when the add of `key` found it `size` members large and
    /// [`group_sets::prunes_after`] says so. Called once the entry added is written (a prune
    /// would take the member of an entry not yet written for one gone); a failed prune is
    /// only logged, as the write has landed.
    async fn prune_if_large(&self, url_group: &CacheKey, key: &CacheKey, size: Option<i64>) {
        if group_sets::prunes_after(key, size) {
            if let Err(error) = self.prune_group(url_group).await {
                tracing::warn!(%error, "pruning a URL group set failed");
            }
        }
    }

    /// Removes from the set of `url_group` the members of a random sample of
    /// [`group_sets::PRUNE_SAMPLE`] whose entries are gone or in another group now (see
    /// [`Self::remove_gone`]; a cluster reads the sample's entries first).
    async fn prune_group(&self, url_group: &CacheKey) -> Result<(), StoreError> {
        let set = self.group_set_key(url_group);
        let sample: Vec<Vec<u8>> = self
            .connection
            .query(
                redis::cmd("SRANDMEMBER")
                    .arg(&set)
                    .arg(group_sets::PRUNE_SAMPLE),
            )
            .await?;
        let sample = text_names(sample);
        // A single server checks each member as it removes it.
        let gone = if self.connection.is_cluster() {
            self.read_members(url_group, sample).await?.1
        } else {
            sample
        };
        self.remove_gone(url_group, gone).await
    }

    /// The entries of `members` in `url_group`, and the members whose entries are gone
    /// (deleted, expired) or in another group now (rewritten since they were added).
    async fn read_members(
        &self,
        url_group: &CacheKey,
        members: Vec<String>,
    ) -> Result<(Vec<EntryMeta>, Vec<String>), StoreError> {
        let metas: Vec<(String, Result<Option<EntryMeta>, StoreError>)> =
            futures_util::stream::iter(members.into_iter().map(|member| async move {
                let redis_key = self.prefixed(&[&member]);
                (member, self.meta(redis_key).await)
            }))
            .buffered(BATCH)
            .collect()
            .await;
        let mut found = Vec::new();
        let mut gone = Vec::new();
        for (member, meta) in metas {
            match meta? {
                Some(meta) if meta.url_group.as_ref() == Some(url_group) => found.push(meta),
                _ => gone.push(member),
            }
        }
        Ok((found, gone))
    }

    /// Removes from the set of `url_group` those of `members` (read as gone) whose entries
    /// are still not in the group as they are removed: one may have been rewritten since it
    /// was read, and would then be listed nowhere. A single server checks each as it removes
    /// it ([`group_sets::PRUNE_SCRIPT`]). A cluster, whose entries may be on other nodes,
    /// removes them, reads them again, and adds back any in the group, whatever failed on
    /// the way (a lost reply may hide a removal that landed): a cluster write adds its member
    /// again once its entry is written, so one removed before that is added back by the
    /// writer, one removed after by this read.
    async fn remove_gone(
        &self,
        url_group: &CacheKey,
        members: Vec<String>,
    ) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
        }
        let set = self.group_set_key(url_group);
        if !self.connection.is_cluster() {
            for chunk in members.chunks(group_sets::PRUNE_SCRIPT_MEMBERS) {
                let mut script = redis::cmd("EVAL");
                script
                    .arg(group_sets::PRUNE_SCRIPT)
                    .arg(1 + chunk.len())
                    .arg(&set);
                for member in chunk {
                    script.arg(self.prefixed(&[member]));
                }
                script.arg(url_group.as_str()).arg(chunk);
                self.connection.query::<i64>(&script).await?;
            }
            return Ok(());
        }
        let mut first_error = Ok(());
        for chunk in members.chunks(group_sets::PRUNE_SCRIPT_MEMBERS) {
            let removed = self
                .connection
                .query::<i64>(redis::cmd("SREM").arg(&set).arg(chunk))
                .await;
            if first_error.is_ok() {
                first_error = removed.map(drop);
            }
        }
        let again = futures_util::stream::iter(
            members
                .into_iter()
                .map(|member| async move { self.meta(self.prefixed(&[&member])).await }),
        )
        .buffered(BATCH)
        .collect::<Vec<_>>()
        .await;
        // Every one read back is added back, whatever failed before it.
        for meta in again {
            let added = match meta {
                Ok(Some(meta)) if meta.url_group.as_ref() == Some(url_group) => {
                    let retain_until = self.retain_until(meta.expires_at);
                    self.group_add_alone(url_group, &meta.key, retain_until)
                        .await
                        .map(drop)
                }
                Ok(_) => Ok(()),
                Err(error) => Err(error),
            };
            if first_error.is_ok() {
                first_error = added;
            }
        }
        first_error
    }

    /// The transaction writing `entry` under `redis_key`: the old entry's fields go, the new
    /// ones are set, and the key expires at `retain_until` (never without one).
    fn entry_transaction(
        &self,
        entry: &StoredEntry,
        redis_key: &str,
        retain_until: Option<SystemTime>,
    ) -> redis::Pipeline {
        // Built at its final size: the value is copied once, not again at every growth of
        // the command's buffer.
        let mut hset = sized_cmd("HSET", 13, redis_key.len() + entry_fields_len(entry));
        hset.arg(redis_key);
        push_entry_fields(&mut hset, entry);
        let mut del = sized_cmd("DEL", 1, redis_key.len());
        del.arg(redis_key);
        // Nothing is marked ignored: the replies are read as `()` or `SetSize`, which take
        // any reply (a server error still fails the write), and each mark costs a hash-set
        // insert.
        // Room for the group add that may join it (five commands at most).
        let mut pipe = redis::Pipeline::with_capacity(8);
        pipe.atomic().add_command(del).add_command(hset);
        if let Some(until) = retain_until {
            let mut expire = sized_cmd("PEXPIREAT", 2, redis_key.len() + 20);
            expire.arg(redis_key).arg(to_millis(until));
            pipe.add_command(expire);
        }
        pipe
    }

    fn cache_key(&self, redis_key: &str) -> Option<CacheKey> {
        redis_key.strip_prefix(&self.key_prefix)?.parse().ok()
    }

    /// When the server may drop an entry: expiry plus `ttl_offset`; `None` for never.
    fn retain_until(&self, expires_at: Option<SystemTime>) -> Option<SystemTime> {
        cache_core::time::retention_deadline(expires_at, self.ttl_offset)
    }

    /// Reads an entry's metadata fields; `None` when the key is gone or not an entry.
    async fn meta(&self, redis_key: String) -> Result<Option<EntryMeta>, StoreError> {
        let Some(key) = self.cache_key(&redis_key) else {
            return Ok(None);
        };
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&redis_key).arg(&META_FIELDS[..]);
        match self.connection.query::<MetaFields>(&cmd).await {
            Ok(fields) => Ok(meta_of(key, fields)),
            Err(error) if is_foreign(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The read by a kept copy: the entry's value, creation and expiry only, enough to tell
    /// whether the entry is still the one the copy was made from. The URL, group and Vary
    /// parent are set by the same `HSET` as the value and creation (a write changes all of
    /// them or none), and the value carries the URL. Reading three fields of six saves the
    /// server and this client a tenth of a hit's work. (Another program editing only those
    /// three fields of our hashes is not seen until the value or a time changes.) When the
    /// copy cannot answer (the entry changed, went, or is not an entry), the whole entry is
    /// read, as without a copy, and that read drops the copy (`DecodedCopies::get` on another
    /// value, `read_found` on none, `forget_foreign`), so the key's next read is one round
    /// trip again even where decoding keeps no new copy.
    fn copy_read(&self, key: &CacheKey) -> Cmd {
        with_args("HMGET", &[&self.redis_key(key), "c", "x", "v"])
    }

    /// The read [`CacheStore::get`] sends: every field of an entry.
    fn whole_read(redis_key: &str) -> Cmd {
        let mut cmd = sized_cmd("HMGET", 7, redis_key.len() + 6);
        cmd.arg(redis_key).arg(&META_FIELDS[..]).arg("v");
        cmd
    }

    /// The entry [`RedisStore::whole_read`] of `key` answered with `read`; something else
    /// under the key (a partial hash, another type) is deleted and reported as absent.
    async fn whole_entry(
        &self,
        key: &CacheKey,
        redis_key: &str,
        read: Result<WholeFields, StoreError>,
    ) -> Result<Option<StoredEntry>, StoreError> {
        match read {
            Ok((None, None, None, None, None, None)) => Ok(None),
            Ok((url, created, expires, group, parent, Some(value))) => {
                match meta_of(*key, (url, created, expires, group, parent)) {
                    Some(meta) => Ok(Some(StoredEntry::new(meta, Bytes::from(value)))),
                    None => {
                        let found = Foreign::Hash(created.map(|c| c.0));
                        self.forget_foreign(key, redis_key, found).await
                    }
                }
            }
            Ok((_, created, ..)) => {
                let found = Foreign::Hash(created.map(|c| c.0));
                self.forget_foreign(key, redis_key, found).await
            }
            Err(error) if is_foreign(&error) => {
                let found = match error_code(&error) == Some("WRONGTYPE") {
                    true => Foreign::OtherType,
                    false => Foreign::Unparsed,
                };
                self.forget_foreign(key, redis_key, found).await
            }
            Err(error) => Err(error),
        }
    }

    /// What a read of `key` gave, decoded: `reply` answers the read
    /// [`RedisStore::planned_read`] planned with `copy`. A copy that cannot answer costs a
    /// second round trip, for the whole entry.
    async fn decoded_from_reply(
        &self,
        key: &CacheKey,
        copy: Option<KeptCopy>,
        reply: Result<Value, StoreError>,
        codec: &EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        let found = match copy {
            Some(copy) => {
                if let Some(decoded) = copy_answers(copy, reply.and_then(typed))? {
                    return Ok(Some(Ok(decoded)));
                }
                self.get(key).await?
            }
            None => {
                let redis_key = self.redis_key(key);
                self.whole_entry(key, &redis_key, reply.and_then(typed))
                    .await?
            }
        };
        Ok(self.copies.read_found(key, found, codec))
    }

    /// The read `get_decoded` sends for `key`: by its copy when one is kept
    /// ([`RedisStore::copy_read`]), else the whole entry.
    fn planned_read(&self, key: &CacheKey, codec: &EntryCodec) -> (Cmd, Option<KeptCopy>) {
        match self.copies.kept(key, codec) {
            Some(copy) => (self.copy_read(key), Some(copy)),
            None => (Self::whole_read(&self.redis_key(key)), None),
        }
    }

    /// Deletes the listed keys, a batch at a time; returns how many existed.
    async fn delete_keys(&self, keys: Vec<String>) -> Result<u64, StoreError> {
        let deletes = keys.into_iter().map(|key| async move {
            self.connection
                .query::<u64>(redis::cmd("UNLINK").arg(key))
                .await
        });
        let mut results = futures_util::stream::iter(deletes).buffer_unordered(BATCH);
        let mut removed = 0;
        while let Some(result) = results.next().await {
            removed += result?;
        }
        Ok(removed)
    }
}

#[async_trait]
impl CacheStore for RedisStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let redis_key = self.redis_key(key);
        let read = self.connection.query(&Self::whole_read(&redis_key)).await;
        self.whole_entry(key, &redis_key, read).await
    }

    /// Decoding is skipped when a decoded copy was made from the very value and metadata
    /// just read. With a copy kept, only the value, creation and expiry are read first (the
    /// URL, group and Vary parent are written by the same `HSET`, so a copy made from the same
    /// value and times answers for them); the whole entry only when the copy cannot answer.
    async fn get_decoded(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        let (read, copy) = self.planned_read(key, codec);
        let reply = self.connection.query(&read).await;
        self.decoded_from_reply(key, copy, reply, codec).await
    }

    /// Both reads go in one pipeline, one round trip, each as `get_decoded` starts it; a read
    /// by a copy that cannot answer is followed by a read of the whole entry, as there. On a
    /// cluster, where the two keys live in different slots, the reads are sent apart.
    async fn get_decoded_pair(
        &self,
        first: &CacheKey,
        second: &CacheKey,
        codec: &EntryCodec,
    ) -> [Result<DecodedEntry, StoreError>; 2] {
        if self.connection.is_cluster() {
            return get_decoded_apart(self, first, second, codec).await;
        }
        let (first_read, first_copy) = self.planned_read(first, codec);
        let (second_read, second_copy) = self.planned_read(second, codec);
        let mut pipe = redis::pipe();
        // Each reply is judged as its own read's: one key holding something else is that
        // key's affair (deleted as foreign), not a failure of both.
        pipe.ignore_errors();
        pipe.add_command(first_read).add_command(second_read);
        let replies = match self
            .connection
            .query_pipeline_raw::<Vec<Value>>(&pipe)
            .await
        {
            Ok(replies) => <[Value; 2]>::try_from(replies).map_err(|replies| {
                let count = replies.len();
                RedisError::from(ParsingError::from(format!(
                    "two reads answered with {count} replies"
                )))
            }),
            Err(error) => Err(error),
        };
        let [first_reply, second_reply] = match replies {
            Ok(replies) => replies,
            Err(error) => return [Err(store_error(error.clone())), Err(store_error(error))],
        };
        let (first, second) = futures_util::future::join(
            self.decoded_from_reply(first, first_copy, Ok(first_reply), codec),
            self.decoded_from_reply(second, second_copy, Ok(second_reply), codec),
        )
        .await;
        [first, second]
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

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        StoreError::check_size(entry.value.len() as u64, Some(MAX_VALUE_BYTES))?;
        let redis_key = self.redis_key(&entry.meta.key);
        let retain_until = self.retain_until(entry.meta.expires_at);
        if retain_until.is_some_and(|t| t <= SystemTime::now()) {
            // Already past what Redis would keep: storing it would only be deleted at once.
            self.copies.forget(&entry.meta.key);
            self.delete_by(DELETE_SCRIPT, entry.meta.key, None).await?;
            return Ok(());
        }
        let meta = &entry.meta;
        let transaction = || self.entry_transaction(&entry, &redis_key, retain_until);
        // One round trip on a single server. A cluster cannot put two slots in one
        // transaction: there the member is added in a transaction of its own before the
        // entry is written (a write failing after leaves a member a lookup prunes), and again
        // after, whatever the write's reply (a prune reading the entry between the two found
        // it gone: see `remove_gone`; a lost reply may hide a write that landed). Only a
        // failure of that second add, after such a prune, leaves the entry unlisted.
        match &meta.url_group {
            Some(group) if !self.connection.is_cluster() => {
                let set = self.group_set_key(group);
                let size = self
                    .transact_with_group_add(transaction, (&set, meta.key.as_str()), retain_until)
                    .await?;
                self.prune_if_large(group, &meta.key, size).await;
                Ok(())
            }
            Some(group) => {
                self.group_add_alone(group, &meta.key, retain_until).await?;
                // Once the first add is in, the write and the second add run to their end
                // even when the caller stops waiting (its time limit), which cut the second
                // add and left an entry a prune had unlisted listed nowhere.
                let store = self.clone();
                let (group, key, pipe) = (*group, meta.key, transaction());
                cache_core::to_end::run_to_end(async move {
                    store
                        .write_and_add_again(pipe, &group, &key, retain_until)
                        .await
                })
                .await
            }
            None => self.connection.query_pipeline::<()>(&transaction()).await,
        }
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let set = self.group_set_key(url_group);
        let members: Vec<Vec<u8>> = self
            .connection
            .query(redis::cmd("SMEMBERS").arg(&set))
            .await?;
        let members = text_names(members);
        let (found, gone) = self.read_members(url_group, members).await?;
        // What was found is whole: a failed removal only leaves members a later lookup prunes.
        if let Err(error) = self.remove_gone(url_group, gone).await {
            tracing::warn!(%error, "pruning a URL group set failed");
        }
        Ok(found)
    }

    /// Lists the expired entries, then deletes each only if it is still expired then (see
    /// `DELETE_IF_EXPIRED_SCRIPT`): a rewrite landing in between is kept.
    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let expired = collect_keys(self.entries(), |meta| meta.is_expired(now)).await?;
        let now_ms = to_millis(now);
        let deletes = expired
            .into_iter()
            .map(|key| self.delete_by(DELETE_IF_EXPIRED_SCRIPT, key, Some(now_ms)));
        let mut results = futures_util::stream::iter(deletes).buffer_unordered(BATCH);
        let mut removed = 0;
        while let Some(deleted) = results.next().await {
            removed += u64::from(deleted?);
        }
        Ok(removed)
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.delete_by(DELETE_IF_CREATED_SCRIPT, *key, Some(to_millis(created_at)))
            .await
    }

    /// Checked and written in one script on the entry's key. The entry joins its URL group
    /// first, by a transaction of its own as on a cluster, with the new retention: the set
    /// then lives as long as the entry may (a renewed entry is a member already; an add
    /// before a write that declines only keeps the set longer).
    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        StoreError::check_size(entry.value.len() as u64, Some(MAX_VALUE_BYTES))?;
        let key = entry.meta.key;
        let retain_until = self.retain_until(entry.meta.expires_at);
        if retain_until.is_some_and(|t| t <= SystemTime::now()) {
            // Past what Redis would keep, as in `put`: the entry read goes instead.
            return self.delete_if_created(&key, created_at).await;
        }
        let redis_key = self.redis_key(&key);
        let script = PUT_IF_CREATED_SCRIPT;
        let mut eval = sized_cmd(
            "EVAL",
            17,
            script.len() + redis_key.len() + 48 + entry_fields_len(&entry),
        );
        eval.arg(script)
            .arg(1)
            .arg(&redis_key)
            .arg(to_millis(created_at))
            .arg(format_expiry(retain_until));
        push_entry_fields(&mut eval, &entry);
        if let Some(group) = &entry.meta.url_group {
            self.group_add_alone(group, &key, retain_until).await?;
        }
        // Whatever the outcome: a copy of the entry read no longer answers for the key.
        self.copies.forget(&key);
        Ok(self.connection.query::<u64>(&eval).await? > 0)
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        // Never served once the entry is gone (a read finds nothing to compare); its memory
        // goes now.
        self.copies.forget(key);
        self.delete_by(DELETE_SCRIPT, *key, None).await
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        let pages = futures_util::stream::try_unfold(None, move |scanner| async move {
            let mut scanner = match scanner {
                Some(scanner) => scanner,
                None => self.connection.scanner(self.scan_pattern.clone()).await?,
            };
            let Some(keys) = scanner.next_page().await? else {
                return Ok(None);
            };
            let metas: Vec<Result<Option<EntryMeta>, StoreError>> =
                futures_util::stream::iter(keys.into_iter().map(|k| self.meta(k)))
                    .buffered(BATCH)
                    .collect()
                    .await;
            let metas: Vec<Result<EntryMeta, StoreError>> =
                metas.into_iter().filter_map(Result::transpose).collect();
            Ok(Some((futures_util::stream::iter(metas), Some(scanner))))
        });
        Box::pin(futures_util::TryStreamExt::try_flatten(pages))
    }

    /// [`MAX_VALUE_BYTES`]: Redis's bound on a string, less room for the entry's fields.
    fn max_value_bytes(&self) -> Option<u64> {
        Some(MAX_VALUE_BYTES)
    }

    /// 1 s: a remote store answers in milliseconds when healthy.
    fn suggested_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.copies.clear();
        let mut scanner = self.connection.scanner(self.scan_pattern.clone()).await?;
        let mut removed = 0;
        while let Some(keys) = scanner.next_page().await? {
            // URL group sets go too, but only entries are counted.
            let (entries, others): (Vec<String>, Vec<String>) = keys
                .into_iter()
                .partition(|key| self.cache_key(key).is_some());
            removed += self.delete_keys(entries).await?;
            self.delete_keys(others).await?;
        }
        // Again after: copies a write kept meanwhile may be of entries cleared since.
        self.copies.clear();
        Ok(removed)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let mut scanner = self.connection.scanner(self.scan_pattern.clone()).await?;
        let mut count = 0;
        while let Some(keys) = scanner.next_page().await? {
            count += keys.iter().filter(|k| self.cache_key(k).is_some()).count() as u64;
        }
        Ok(count)
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let retain_until = self.retain_until(expires_at);
        let redis_key = self.redis_key(key);
        // The group set first, with the new retention, as `put_if_created` does: a call cut
        // after it (a timeout, a dropped request) only keeps the set longer, where one cut
        // after the entry's own renewal left an entry outliving its set, listed by no lookup
        // of its URL. Nothing to keep when Redis is about to drop the entry (a time already
        // past would drop a new set at once).
        // The entry's URL and creation with its group: a hash without them (another
        // program's), or a value of another type, is no entry, and its group gets no set.
        // The creation as the store writes it: a hash reads take for no entry is not renewed.
        let fields: Result<(Option<Vec<u8>>, Option<Created>, Option<String>), _> = self
            .connection
            .query(redis::cmd("HMGET").arg(&redis_key).arg(&["u", "c", "g"]))
            .await;
        let group = match fields {
            Ok((Some(_), Some(_), group)) => group,
            Ok(_) => return Ok(false),
            Err(error) if is_foreign(&error) => return Ok(false),
            Err(error) => return Err(error),
        };
        let past = retain_until.is_some_and(|t| t <= SystemTime::now());
        // No set for an entry without a group or whose group is no key.
        if let (false, Ok(Some(group))) = (past, CacheKey::parse_optional(group.as_deref())) {
            let size = self.group_add_alone(&group, key, retain_until).await?;
            self.prune_if_large(&group, key, size).await;
        }
        let until = retain_until
            .map(|t| to_millis(t).to_string())
            .unwrap_or_default();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SET_EXPIRY_SCRIPT)
            .arg(1)
            .arg(&redis_key)
            .arg(format_expiry(expires_at))
            .arg(until);
        let renewed: Option<i64> = self.connection.query(&cmd).await?;
        Ok(renewed.is_some())
    }
}

impl RedisStore {
    /// Runs a delete `script` (`DELETE_SCRIPT`, or `DELETE_IF_EXPIRED_SCRIPT` and
    /// `DELETE_IF_CREATED_SCRIPT` with their time in milliseconds, `ms`) on `key`'s entry;
    /// when it deleted, drops the key's copy and takes the key out of the entry's URL group
    /// set (checked as a lookup's prune is: an entry written again meanwhile stays listed).
    /// True when it deleted.
    async fn delete_by(
        &self,
        script: &str,
        key: CacheKey,
        ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let redis_key = self.redis_key(&key);
        let mut cmd = sized_cmd("EVAL", 4, script.len() + redis_key.len() + 24);
        cmd.arg(script).arg(1).arg(redis_key);
        if let Some(ms) = ms {
            cmd.arg(ms);
        }
        let (deleted, group): (u64, String) = self.connection.query(&cmd).await?;
        if deleted == 0 {
            return Ok(false);
        }
        self.copies.forget(&key);
        // The delete landed: a failed removal only leaves a member a lookup prunes.
        if let Ok(group) = group.parse::<CacheKey>() {
            if let Err(error) = self
                .remove_gone(&group, vec![key.as_str().to_owned()])
                .await
            {
                tracing::debug!(%error, %key, "removing a deleted entry from its URL group failed");
            }
        }
        Ok(true)
    }

    /// Deletes the foreign value `found` under `key`, if it is still there: an entry another
    /// client wrote since the read stays (an `UNLINK` deleted it).
    async fn forget_foreign(
        &self,
        key: &CacheKey,
        redis_key: &str,
        found: Foreign,
    ) -> Result<Option<StoredEntry>, StoreError> {
        tracing::warn!(%key, redis_key, "a value under the cache's key is not an entry: deleting it");
        self.copies.forget(key);
        let (kind, created) = match found {
            Foreign::OtherType => ("type", String::new()),
            Foreign::Hash(created) => ("hash", created.map(|c| c.to_string()).unwrap_or_default()),
            Foreign::Unparsed => ("unparsed", String::new()),
        };
        let script = DELETE_IF_STILL_FOREIGN_SCRIPT;
        let mut cmd = sized_cmd("EVAL", 5, script.len() + redis_key.len() + 32);
        cmd.arg(script).arg(1).arg(redis_key).arg(kind).arg(created);
        self.connection.query::<u64>(&cmd).await?;
        Ok(None)
    }
}

/// The Redis client's error under `error`, if it is one.
fn redis_error(error: &StoreError) -> Option<&redis::RedisError> {
    let StoreError::Backend { source } = error else {
        return None;
    };
    source.downcast_ref::<redis::RedisError>()
}

/// The server's error code of `error`, if it is one.
fn error_code(error: &StoreError) -> Option<&str> {
    redis_error(error)?.code()
}

/// `WRONGTYPE` or an unparseable field: something other than our entry is under the key.
fn is_foreign(error: &StoreError) -> bool {
    redis_error(error).is_some_and(|e| {
        e.code() == Some("WRONGTYPE")
            || e.kind() == redis::ErrorKind::UnexpectedReturnType
            || e.kind() == redis::ErrorKind::Parse
    })
}

/// Appends an entry's hash fields and their values to `cmd` (the `HSET` of a write).
fn push_entry_fields(cmd: &mut Cmd, entry: &StoredEntry) {
    let meta = &entry.meta;
    cmd.arg("u")
        .arg(&meta.url)
        .arg("c")
        .arg(to_millis(meta.created_at))
        .arg("x")
        .arg(format_expiry(meta.expires_at))
        .arg("v")
        .arg(&entry.value[..]);
    for (field, key) in [("g", &meta.url_group), ("p", &meta.variant_of)] {
        if let Some(key) = key {
            cmd.arg(field).arg(key.as_str());
        }
    }
}

/// About the bytes [`push_entry_fields`] appends, to size the command once.
fn entry_fields_len(entry: &StoredEntry) -> usize {
    entry.meta.url.len() + entry.value.len() + 20 + 20 + 4 + 2 * 32 + 70
}

fn format_expiry(expires_at: Option<SystemTime>) -> String {
    expires_at
        .map(|t| to_millis(t).to_string())
        .unwrap_or_default()
}

/// An entry's expiry field: absent or empty for none; `Err` for anything else that is not
/// milliseconds, which makes the hash no entry (read as never expiring, a damaged field served
/// the entry fresh for good).
fn parse_expiry(text: Option<&str>) -> Result<Option<SystemTime>, ()> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse::<i64>()
            .map(|ms| Some(from_millis(ms)))
            .map_err(drop),
    }
}

/// The hash fields of an entry's metadata, in the order [`meta_of`] reads them: URL,
/// creation, expiry, URL group, Vary parent.
const META_FIELDS: [&str; 5] = ["u", "c", "x", "g", "p"];

/// The fields of [`META_FIELDS`] as read: the creation as the store writes it, the others as
/// bytes, [`meta_of`] judging them. Read as text, a field that is no UTF-8 (another
/// program's) failed the whole read as no entry of a kind the foreign-delete script could not
/// tell (it judges the creation only): the hash stayed, and was read and reported again.
type MetaFields = (
    Option<Vec<u8>>,
    Option<Created>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// An entry's fields as [`RedisStore::whole_read`] reads them: [`META_FIELDS`], then the value.
type WholeFields = (
    Option<Vec<u8>>,
    Option<Created>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// An entry's creation, expiry and value, as [`RedisStore::copy_read`] reads them.
type CopyFields = (Option<Created>, Option<Vec<u8>>, Option<Vec<u8>>);

/// An entry's creation field as this store writes it: the milliseconds in decimal, no sign,
/// no leading zero, at most 18 digits. Another program's `+17…`, `017…` or `-5` parsed as a
/// number, but the scripts that delete or renew by creation compare the field's text, which
/// never matched (and a time before 1970 read as 1970): such a hash is no entry, and
/// `DELETE_IF_STILL_FOREIGN_SCRIPT` takes it for one that is not (`unparsed`).
#[derive(Clone, Copy, Debug)]
struct Created(i64);

impl FromRedisValue for Created {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        Self::from_redis_value_ref(&value)
    }

    fn from_redis_value_ref(value: &Value) -> Result<Self, ParsingError> {
        let text: &[u8] = match value {
            Value::BulkString(bytes) => bytes,
            Value::SimpleString(text) => text.as_bytes(),
            _ => return Err("a creation time is a bulk string".into()),
        };
        let canonical = text == b"0"
            || (text.len() <= 18
                && text.first().is_some_and(|d| (b'1'..=b'9').contains(d))
                && text.iter().all(u8::is_ascii_digit));
        let millis = canonical
            .then(|| std::str::from_utf8(text).ok()?.parse::<i64>().ok())
            .flatten();
        millis
            .map(Created)
            .ok_or_else(|| "not a creation time this store writes".into())
    }
}

/// `copy`'s decoded form when `read` (of [`RedisStore::copy_read`]) found the value and
/// times it was made from; `None` when it did not (the entry changed, went, or is not an
/// entry).
fn copy_answers(
    copy: KeptCopy,
    read: Result<CopyFields, StoreError>,
) -> Result<Option<Arc<Decoded>>, StoreError> {
    match read {
        Ok((Some(Created(created)), expires, Some(value))) => {
            // A damaged expiry: the whole read that follows finds the hash no entry.
            let Some(Ok(expires)) = text_of(&expires).map(parse_expiry) else {
                return Ok(None);
            };
            let created = from_millis(created);
            Ok(copy.answers(&value, |kept| {
                kept.created_at == created && kept.expires_at == expires
            }))
        }
        Ok(_) => Ok(None),
        Err(error) if is_foreign(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// One reply of a pipeline sent with `ignore_errors`, as its command's own query would have
/// given it: the server's error or the typed value.
fn typed<T: FromRedisValue>(reply: Value) -> Result<T, StoreError> {
    match reply {
        Value::ServerError(error) => Err(store_error(RedisError::from(error))),
        reply => converted(reply),
    }
}

/// The metadata of [`META_FIELDS`] as read; `None` without the required ones (not an entry).
fn meta_of(key: CacheKey, fields: MetaFields) -> Option<EntryMeta> {
    let (Some(url), Some(Created(created)), expires, group, parent) = fields else {
        return None;
    };
    // A URL that is no text, or a damaged expiry, group or parent, makes the hash no entry.
    let url = String::from_utf8(url).ok()?;
    let expires_at = parse_expiry(text_of(&expires)?).ok()?;
    let url_group = CacheKey::parse_optional(text_of(&group)?).ok()?;
    let variant_of = CacheKey::parse_optional(text_of(&parent)?).ok()?;
    let meta = EntryMeta::new(key, url, from_millis(created), expires_at)
        .with_url_group(url_group)
        .with_variant_of(variant_of);
    Some(meta)
}

/// A field read as bytes, as text: `Some(None)` when absent, `None` when it is no UTF-8.
fn text_of(field: &Option<Vec<u8>>) -> Option<Option<&str>> {
    match field {
        None => Some(None),
        Some(bytes) => std::str::from_utf8(bytes).ok().map(Some),
    }
}

/// Escapes glob characters so a prefix is matched literally by `SCAN MATCH`.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The size of a URL group set after an add: the last reply of the add's transaction
/// (`SCARD`, or the script's, where the add asked for it: see [`group_sets::may_prune`]),
/// read without collecting the others (as `()` reads them: a
/// server error among them fails the transaction before this is read).
/// `None` for any other reply: then the add prunes nothing.
struct SetSize(Option<i64>);

impl redis::FromRedisValue for SetSize {
    fn from_redis_value(replies: redis::Value) -> Result<Self, redis::ParsingError> {
        let size = match &replies {
            redis::Value::Array(replies) => match replies.last() {
                Some(redis::Value::Int(size)) => Some(*size),
                _ => None,
            },
            _ => None,
        };
        Ok(Self(size))
    }
}

#[cfg(test)]
mod group_set_tests;

#[cfg(test)]
mod foreign_tests;

#[cfg(test)]
mod tests {
    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(super::escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
