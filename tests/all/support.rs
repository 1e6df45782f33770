//! Building a cached client over each backend, against a fresh origin.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest_caching::reqwest_middleware::{ClientWithMiddleware, RequestBuilder};
use reqwest_caching::{
    CacheHandle, CacheInfo, CacheMiddleware, CacheMiddlewareBuilder, CacheResponseExt, CacheStore,
    ManualClock, MemoryStore,
};

use crate::origin::Origin;
use crate::raw::Namespace;

/// The stores the end-to-end tests run over: every one this build has, against real servers.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "sled")]
    Sled,
    #[cfg(feature = "fs")]
    Fs,
    #[cfg(feature = "redis")]
    Redis,
    #[cfg(feature = "redis")]
    RedisCluster,
    #[cfg(feature = "mongodb")]
    Mongo,
    #[cfg(feature = "dynamodb")]
    Dynamo,
}

impl Backend {
    /// The store keeps bodies in files: it caches bodies over `max_body_size` as they stream.
    pub fn keeps_files(self) -> bool {
        #[cfg(feature = "fs")]
        if matches!(self, Backend::Fs) {
            return true;
        }
        false
    }
}

pub const BACKENDS: &[Backend] = &[
    Backend::Memory,
    #[cfg(feature = "sqlite")]
    Backend::Sqlite,
    #[cfg(feature = "sled")]
    Backend::Sled,
    #[cfg(feature = "fs")]
    Backend::Fs,
    #[cfg(feature = "redis")]
    Backend::Redis,
    #[cfg(feature = "redis")]
    Backend::RedisCluster,
    #[cfg(feature = "mongodb")]
    Backend::Mongo,
    #[cfg(feature = "dynamodb")]
    Backend::Dynamo,
];

/// A fresh store of this kind: its own file, directory or key prefix, and where a server
/// keeps its data.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "sled", feature = "fs")),
    allow(unused_variables)
)]
async fn open_store(
    backend: Backend,
    dir: &std::path::Path,
) -> (Arc<dyn CacheStore>, Option<PathBuf>, Namespace) {
    match backend {
        Backend::Memory => (Arc::new(MemoryStore::new()), None, Namespace::Local),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            let path = dir.join("cache.sqlite");
            (
                Arc::new(reqwest_caching::SqliteStore::open(&path).expect("open SQLite")),
                Some(path),
                Namespace::Local,
            )
        }
        #[cfg(feature = "sled")]
        Backend::Sled => {
            let store =
                reqwest_caching::SledStore::open(dir.join("cache.sled")).expect("open sled");
            (Arc::new(store), None, Namespace::Local)
        }
        #[cfg(feature = "fs")]
        Backend::Fs => {
            let store = reqwest_caching::FsStore::open(dir.join("cache")).expect("open cache-fs");
            (Arc::new(store), None, Namespace::Local)
        }
        #[cfg(feature = "redis")]
        Backend::Redis => {
            let prefix = test_support::unique_namespace("e2e");
            let url = test_support::shared_redis().url();
            let store = reqwest_caching::RedisStore::builder()
                .prefix(&prefix)
                .open(&url)
                .await
                .expect("connect to redis-server");
            let urls = vec![url];
            (Arc::new(store), None, Namespace::Redis { urls, prefix })
        }
        #[cfg(feature = "redis")]
        Backend::RedisCluster => {
            let prefix = test_support::unique_namespace("e2e");
            let urls = test_support::shared_redis_cluster().urls();
            let store = reqwest_caching::RedisStore::builder()
                .prefix(&prefix)
                .open_cluster(&urls)
                .await
                .expect("connect to the redis cluster");
            (Arc::new(store), None, Namespace::Redis { urls, prefix })
        }
        #[cfg(feature = "mongodb")]
        Backend::Mongo => {
            let uri = test_support::shared_mongo().uri();
            let collection = test_support::unique_namespace("c").replace('-', "_");
            let store = reqwest_caching::MongoStore::builder()
                .database("e2e")
                .collection(&collection)
                .open(&uri)
                .await
                .expect("connect to the MongoDB-wire server");
            let database = "e2e".to_owned();
            let namespace = Namespace::Mongo {
                uri,
                database,
                collection,
            };
            (Arc::new(store), None, namespace)
        }
        #[cfg(feature = "dynamodb")]
        Backend::Dynamo => {
            let endpoint = test_support::shared_dynamo().endpoint();
            let table = test_support::unique_namespace("e2e");
            let store = reqwest_caching::DynamoStore::builder()
                .table(&table)
                .open_local(&endpoint, "us-east-1")
                .await
                .expect("connect to DynamoDB Local");
            (Arc::new(store), None, Namespace::Dynamo { endpoint, table })
        }
    }
}

/// A builder whose waits outlast a loaded machine: a store call slowed down must not read
/// as a store failure (a miss, a breaker opened on the manual clock for the rest of the
/// test), nor a body slowed down stream to the caller before it is stored. Tests about
/// those waits set their own after.
pub fn patient_builder() -> reqwest_caching::CacheMiddlewareBuilder {
    CacheMiddleware::builder()
        .store_timeout(std::time::Duration::from_secs(30))
        .stream_after(std::time::Duration::from_secs(30))
}

/// A cached client, its handle, a manual clock and a fresh origin.
pub struct Harness {
    pub origin: Origin,
    pub client: ClientWithMiddleware,
    pub handle: CacheHandle,
    pub clock: Arc<ManualClock>,
    /// The SQLite file, for the SQLite backend.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub sqlite_path: Option<PathBuf>,
    /// Where a server store keeps this harness's data, to read it raw.
    pub namespace: Namespace,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new(backend: Backend) -> Self {
        Self::with(backend, |b| b).await
    }

    pub async fn with(
        backend: Backend,
        configure: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
    ) -> Self {
        Self::wrapping(backend, |store| store, configure).await
    }

    /// [`Harness::with`], the cache using `wrap(store)`: a wrapper that observes the store.
    pub async fn wrapping(
        backend: Backend,
        wrap: impl FnOnce(Arc<dyn CacheStore>) -> Arc<dyn CacheStore>,
        configure: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, sqlite_path, namespace) = open_store(backend, dir.path()).await;
        let store = wrap(store);
        let clock = Arc::new(ManualClock::starting_now());
        // A long store bound: a call slowed by a loaded machine must not read as a store
        // failure (a miss, a breaker opened on the manual clock for the rest of the test).
        // Tests about timeouts set their own in `configure`, which comes after.
        let builder = patient_builder()
            .shared_store(store)
            .clock(Arc::clone(&clock) as _);
        let cache = configure(builder).build().expect("build cache");
        let handle = cache.handle();
        let client = cache.into_client(reqwest::Client::new());
        Self {
            origin: Origin::start_with_clock(Some(Arc::clone(&clock))).await,
            client,
            handle,
            clock,
            sqlite_path,
            namespace,
            _dir: dir,
        }
    }

    /// The directory the embedded stores (SQLite, sled, fs) keep their files in.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.origin.url(path))
    }

    /// GETs `path` and returns the body text and the cache info.
    pub async fn fetch(&self, path: &str) -> (String, CacheInfo) {
        send(self.get(path)).await
    }
}

/// Every byte of every file under `dir`. A file that cannot be read fails the test: a check
/// for secrets must never skip what it cannot see.
pub fn read_tree(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            bytes.extend(read_tree(&path));
        } else {
            bytes.extend(
                std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
            );
        }
    }
    bytes
}

/// Sends, asserts a response came back, returns its body text and cache info.
pub async fn send(request: RequestBuilder) -> (String, CacheInfo) {
    let response = request.send().await.expect("request succeeds");
    let info = response
        .cache_info()
        .cloned()
        .expect("every response carries CacheInfo");
    (response.text().await.expect("body"), info)
}

/// The path of an origin `/custom` endpoint answering with these `Name: Value` headers.
pub fn custom(name: &str, headers: &[&str]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(headers.iter().map(|h| ("h", *h)))
        .finish();
    format!("/custom/{name}?{query}")
}

/// An HTTP date `offset_secs` from the harness clock's now (negative: in the past).
pub fn http_date(clock: &reqwest_caching::ManualClock, offset_secs: i64) -> String {
    use reqwest_caching::Clock;
    let now = clock.now();
    let time = if offset_secs >= 0 {
        now + std::time::Duration::from_secs(offset_secs.unsigned_abs())
    } else {
        now - std::time::Duration::from_secs(offset_secs.unsigned_abs())
    };
    httpdate::fmt_http_date(time)
}

/// Polls a condition every 5 ms for up to 10 s (a deadline, not a timing assertion).
pub async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..2000 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("condition not reached within 10 s");
}

/// A memory store whose calls fail, as an unreachable server's would, while `down`; each
/// call counted.
#[cfg_attr(not(any(feature = "tiered", feature = "metrics")), allow(dead_code))]
#[derive(Debug, Default)]
pub struct SwitchableStore {
    inner: MemoryStore,
    pub down: std::sync::atomic::AtomicBool,
    pub calls: std::sync::atomic::AtomicU64,
}

#[cfg_attr(not(any(feature = "tiered", feature = "metrics")), allow(dead_code))]
impl SwitchableStore {
    fn check(&self) -> Result<(), reqwest_caching::StoreError> {
        use std::sync::atomic::Ordering;
        self.calls.fetch_add(1, Ordering::Relaxed);
        match self.down.load(Ordering::Relaxed) {
            true => Err(reqwest_caching::StoreError::unavailable(
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "store down"),
            )),
            false => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl CacheStore for SwitchableStore {
    async fn get(
        &self,
        key: &reqwest_caching::CacheKey,
    ) -> Result<Option<reqwest_caching::StoredEntry>, reqwest_caching::StoreError> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn put(
        &self,
        entry: reqwest_caching::StoredEntry,
    ) -> Result<(), reqwest_caching::StoreError> {
        self.check()?;
        self.inner.put(entry).await
    }
    async fn delete(
        &self,
        key: &reqwest_caching::CacheKey,
    ) -> Result<bool, reqwest_caching::StoreError> {
        self.check()?;
        self.inner.delete(key).await
    }
    fn entries(
        &self,
    ) -> futures_util::stream::BoxStream<
        '_,
        Result<reqwest_caching::EntryMeta, reqwest_caching::StoreError>,
    > {
        self.inner.entries()
    }
    async fn clear(&self) -> Result<u64, reqwest_caching::StoreError> {
        self.check()?;
        self.inner.clear().await
    }
    async fn delete_expired(
        &self,
        now: std::time::SystemTime,
    ) -> Result<u64, reqwest_caching::StoreError> {
        self.check()?;
        self.inner.delete_expired(now).await
    }
}
