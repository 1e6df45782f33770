//! The floors: the least work a cache can do in this middleware chain, per kind of storage.
//! Each answers a stored URL with its body (looked up by the URL's text, no key, no
//! metadata, one header) and on a miss fetches, reads the body, stores it and answers.
//!
//! A floor made with [`Answer::Head`] answers with the origin's head as well, as a cache must
//! (the rows whose subject is a realistic head: a floor answering one header there measures
//! the head's cost against nothing). The heads stay in the process, in a map beside the
//! storage: no floor decodes one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

/// What a floor answers a stored URL with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Answer {
    /// The body and one fixed header.
    Body,
    /// The body and the head the origin sent with it.
    Head,
}

/// The heads a floor made with [`Answer::Head`] answers with, by URL.
type Heads = RwLock<HashMap<String, http::HeaderMap>>;

fn response(body: Bytes, head: Option<http::HeaderMap>) -> Response {
    let response = match head {
        Some(head) => {
            let mut response = http::Response::new(body);
            *response.headers_mut() = head;
            response
        }
        None => http::Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .body(body)
            .unwrap_or_else(|_| http::Response::new(Bytes::new())),
    };
    Response::from(response)
}

/// Where a floor keeps bodies. In-process storage answers without a future (`get_now`),
/// as the stores' own synchronous reads do; a server is awaited (`get`).
#[async_trait::async_trait]
trait FloorStorage: Send + Sync + 'static {
    const REMOTE: bool = false;
    fn get_now(&self, _url: &str) -> Option<Bytes> {
        None
    }
    async fn get(&self, url: &str) -> Option<Bytes> {
        self.get_now(url)
    }
    async fn put(&self, url: &str, body: &Bytes);
}

struct Floor<S> {
    storage: S,
    /// With [`Answer::Head`].
    heads: Option<Arc<Heads>>,
}

impl<S> Floor<S> {
    fn head(&self, url: &str) -> Option<http::HeaderMap> {
        let heads = self.heads.as_ref()?;
        let heads = heads.read().unwrap_or_else(|p| p.into_inner());
        heads.get(url).cloned()
    }
}

#[async_trait::async_trait]
impl<S: FloorStorage> Middleware for Floor<S> {
    async fn handle(
        &self,
        req: Request,
        ext: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let found = if S::REMOTE {
            self.storage.get(req.url().as_str()).await
        } else {
            self.storage.get_now(req.url().as_str())
        };
        if let Some(body) = found {
            return Ok(response(body, self.head(req.url().as_str())));
        }
        let url = req.url().as_str().to_owned();
        let fetched = next.run(req, ext).await?;
        // Copied only by a floor that answers with it: the others' misses stay as they were.
        let head = self.heads.is_some().then(|| fetched.headers().clone());
        let body = fetched.bytes().await?;
        self.storage.put(&url, &body).await;
        let (Some(heads), Some(head)) = (&self.heads, head) else {
            return Ok(response(body, None));
        };
        let mut heads = heads.write().unwrap_or_else(|p| p.into_inner());
        heads.insert(url, head.clone());
        Ok(response(body, Some(head)))
    }
}

fn client(storage: impl FloorStorage, answer: Answer) -> ClientWithMiddleware {
    let heads = (answer == Answer::Head).then(Arc::default);
    client_on(ClientBuilder::new(reqwest::Client::new()), storage, heads)
}

/// The floor as the last middleware of `chain`.
fn client_on(
    chain: ClientBuilder,
    storage: impl FloorStorage,
    heads: Option<Arc<Heads>>,
) -> ClientWithMiddleware {
    chain.with(Floor { storage, heads }).build()
}

/// A `HashMap` behind a mutex (for misses), keeping the bodies it is given or copies of them.
#[derive(Default)]
struct Memory {
    bodies: Mutex<HashMap<String, Bytes>>,
    copies: bool,
}

impl Memory {
    fn copying() -> Self {
        Self {
            copies: true,
            ..Self::default()
        }
    }
}

#[async_trait::async_trait]
impl FloorStorage for Memory {
    fn get_now(&self, url: &str) -> Option<Bytes> {
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .cloned()
    }
    async fn put(&self, url: &str, body: &Bytes) {
        let body = match self.copies {
            true => Bytes::copy_from_slice(body),
            false => body.clone(),
        };
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_owned(), body);
    }
}

/// The memory floor for misses: a map filled as responses arrive. With [`Answer::Head`] it
/// keeps each response's head beside its body and answers with it, as a cache must.
pub(crate) fn memory(answer: Answer) -> ClientWithMiddleware {
    client(Memory::default(), answer)
}

/// [`memory`] keeping a copy of each body in memory of its own, as a cache bounding its
/// memory must: the body reqwest reads is a slice of hyper's read buffer (8 KiB here), which
/// [`memory`] keeps whole for every entry. Copying is also faster on this machine at 1 KiB
/// (2.4 against 5.5 µs over plain): the buffers kept alive make hyper allocate new ones on
/// fresh pages. Only a profile mode (`profile-misses floor-memory-copying`), not a row: in
/// the rows' shared process, its 64 KiB copies kept in the heap made every other contender's
/// 64 KiB misses several times slower.
pub(crate) fn memory_copying() -> ClientWithMiddleware {
    client(Memory::copying(), Answer::Body)
}

/// A `HashMap` filled beforehand and never locked: the cheapest possible hit.
struct Prefilled(Arc<HashMap<String, Bytes>>);

#[async_trait::async_trait]
impl FloorStorage for Prefilled {
    fn get_now(&self, url: &str) -> Option<Bytes> {
        self.0.get(url).cloned()
    }
    async fn put(&self, _: &str, _: &Bytes) {}
}

/// The memory floor for hits: every URL's body fetched beforehand into a read-only map.
pub(crate) async fn memory_prefilled(urls: &[String], answer: Answer) -> ClientWithMiddleware {
    let chain = ClientBuilder::new(reqwest::Client::new());
    memory_prefilled_on(chain, urls, answer).await
}

/// [`memory_prefilled`] as the last middleware of `chain`.
pub(crate) async fn memory_prefilled_on(
    chain: ClientBuilder,
    urls: &[String],
    answer: Answer,
) -> ClientWithMiddleware {
    let plain = reqwest::Client::new();
    let mut bodies = HashMap::new();
    let mut heads = HashMap::new();
    for url in urls {
        let fetched = plain.get(url).send().await.expect("fetch");
        heads.insert(url.clone(), fetched.headers().clone());
        bodies.insert(url.clone(), fetched.bytes().await.expect("body"));
    }
    let heads = (answer == Answer::Head).then(|| Arc::new(RwLock::new(heads)));
    client_on(chain, Prefilled(Arc::new(bodies)), heads)
}

/// One prepared `SELECT` / `INSERT OR REPLACE` on a WAL database with the store's pragmas,
/// on the calling thread.
struct Sqlite(Mutex<rusqlite::Connection>);

impl Sqlite {
    fn with<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> T) -> T {
        f(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait::async_trait]
impl FloorStorage for Sqlite {
    fn get_now(&self, url: &str) -> Option<Bytes> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT body FROM t WHERE url = ?1")
                .expect("prepare");
            stmt.query_row([url], |row| row.get::<_, Vec<u8>>(0))
                .ok()
                .map(Bytes::from)
        })
    }
    async fn put(&self, url: &str, body: &Bytes) {
        self.with(|conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO t VALUES (?1, ?2)")
                .expect("prepare")
                .execute(rusqlite::params![url, &body[..]])
                .expect("insert");
        });
    }
}

pub(crate) fn sqlite(path: &std::path::Path, answer: Answer) -> ClientWithMiddleware {
    let conn = rusqlite::Connection::open(path).expect("open floor db");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous");
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (url TEXT PRIMARY KEY, body BLOB)")
        .expect("table");
    client(Sqlite(Mutex::new(conn)), answer)
}

/// One sled tree: `get` (copied out, as a store hands out owned bytes) and `insert`.
struct Sled(sled::Db);

#[async_trait::async_trait]
impl FloorStorage for Sled {
    fn get_now(&self, url: &str) -> Option<Bytes> {
        let value = self.0.get(url).ok()??;
        Some(Bytes::copy_from_slice(&value))
    }
    async fn put(&self, url: &str, body: &Bytes) {
        self.0.insert(url, &body[..]).expect("sled insert");
    }
}

pub(crate) fn sled(path: &std::path::Path, answer: Answer) -> ClientWithMiddleware {
    client(Sled(sled::open(path).expect("sled")), answer)
}

/// [`Sled`] keyed by a 64-bit hash of the URL instead of its text: its keys' order is not the
/// URLs' order, as in any store keyed by a digest. URLs that differ in their last characters
/// (`page=41`, `page=42`) sit side by side in a tree keyed by text, so a client going through
/// them in turn finds the next one in the tree node the last one warmed; keyed by digests,
/// each lookup walks to a node of its own.
struct SledByDigest(sled::Db, std::hash::RandomState);

impl SledByDigest {
    fn key(&self, url: &str) -> [u8; 8] {
        std::hash::BuildHasher::hash_one(&self.1, url).to_be_bytes()
    }
}

#[async_trait::async_trait]
impl FloorStorage for SledByDigest {
    fn get_now(&self, url: &str) -> Option<Bytes> {
        let value = self.0.get(self.key(url)).ok()??;
        Some(Bytes::copy_from_slice(&value))
    }
    async fn put(&self, url: &str, body: &Bytes) {
        self.0
            .insert(self.key(url), &body[..])
            .expect("sled insert");
    }
}

/// The sled floor keyed by a digest of the URL (see [`SledByDigest`]).
pub(crate) fn sled_by_digest(path: &std::path::Path) -> ClientWithMiddleware {
    let db = sled::open(path).expect("sled");
    client(
        SledByDigest(db, std::hash::RandomState::new()),
        Answer::Body,
    )
}

/// One `GET` / `SET` of the body on a Redis connection manager, as the store uses.
struct Redis(redis::aio::ConnectionManager, String);

#[async_trait::async_trait]
impl FloorStorage for Redis {
    const REMOTE: bool = true;
    async fn get(&self, url: &str) -> Option<Bytes> {
        let mut conn = self.0.clone();
        let key = format!("{}:{url}", self.1);
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("GET");
        value.map(Bytes::from)
    }
    async fn put(&self, url: &str, body: &Bytes) {
        let mut conn = self.0.clone();
        let key = format!("{}:{url}", self.1);
        let () = redis::cmd("SET")
            .arg(key)
            .arg(&body[..])
            .query_async(&mut conn)
            .await
            .expect("SET");
    }
}

pub(crate) async fn redis(url: &str, prefix: &str, answer: Answer) -> ClientWithMiddleware {
    let client_ = redis::Client::open(url).expect("redis url");
    let conn = redis::aio::ConnectionManager::new(client_)
        .await
        .expect("redis connection");
    client(Redis(conn, prefix.to_owned()), answer)
}
