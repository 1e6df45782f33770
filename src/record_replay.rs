//! Record and replay for tests, VCR-style: [`CacheMiddleware::record`] and
//! [`CacheMiddleware::replay`] over a fixture directory (the [`FsStore`] format). Sugar over
//! the builder; calls only [`builder`](crate::builder) (feature `fs`).

use std::path::{Path, PathBuf};

use cache_fs::FsStore;

use crate::error::Error;
use crate::middleware::CacheMiddleware;
use crate::mode::CacheMode;

impl CacheMiddleware {
    /// A cache that records every response it may keep into the fixture directory `dir`
    /// (created if missing), for [`replay`](Self::replay): each request goes to the origin
    /// and its response is stored whatever its freshness headers say
    /// ([`CacheMode::Record`]).
    ///
    /// Credentials are left out of the keys (as
    /// [`per_credential(false)`](crate::CacheMiddlewareBuilder::per_credential)), so a
    /// replay without the secret the recording used (in CI, say) finds the same entries;
    /// they are never stored either way. The directory holds one readable JSON record and
    /// one body file per response: review it before you commit it.
    ///
    /// For other settings (ignored parameters, allowable codes, a filter), build it
    /// yourself with the same settings for both: `CacheMiddleware::builder()
    /// .store(FsStore::open(dir)?).per_credential(false).mode(CacheMode::Record)`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the directory cannot be created or opened.
    pub fn record(dir: impl AsRef<Path>) -> Result<Self, Error> {
        fixtures(FsStore::open(dir)?, CacheMode::Record)
    }

    /// A cache that answers only from the fixture directory `dir` that
    /// [`record`](Self::record) wrote, and never sends a request ([`CacheMode::Replay`]):
    /// each request is answered with its recorded response, however old, and a request with
    /// none fails with a [`ReplayMiss`](crate::ReplayMiss) naming its method and URL.
    ///
    /// ```no_run
    /// use reqwest_caching::{CacheMiddleware, ReplayMiss};
    ///
    /// // In a #[tokio::test]: `RECORD=1 cargo test` records from the real service, plain
    /// // `cargo test` replays the fixtures, without a network.
    /// # async fn test() -> Result<(), Box<dyn std::error::Error>> {
    /// let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/items");
    /// let cache = match std::env::var_os("RECORD") {
    ///     Some(_) => CacheMiddleware::record(fixtures)?,
    ///     None => CacheMiddleware::replay(fixtures)?,
    /// };
    /// let client = cache.into_client(reqwest::Client::new());
    ///
    /// let items = client.get("https://api.example.com/items").send().await?;
    /// assert_eq!(items.status(), 200);
    ///
    /// // Not recorded: an error that names the request, never a request to the network.
    /// match client.get("https://api.example.com/other").send().await {
    ///     Err(reqwest_caching::reqwest_middleware::Error::Middleware(e)) => {
    ///         let miss = e.downcast_ref::<ReplayMiss>().expect("a replay miss");
    ///         assert_eq!(miss.url, "https://api.example.com/other");
    ///     }
    ///     other => panic!("expected a replay miss, got {other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// The directory is only read ([`FsStore::open_read_only`], and the cache
    /// [read-only](crate::CacheMiddlewareBuilder::read_only)): nothing in it is created,
    /// swept or deleted, so it may be a read-only checkout (a build sandbox, a container
    /// image), and a fixture this version cannot read stays for the version that can.
    ///
    /// # Errors
    ///
    /// [`Error::NoRecording`] when `dir` does not exist (nothing was recorded there: the
    /// directory is not created); [`Error::Store`] when it cannot be opened.
    pub fn replay(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::NoRecording(PathBuf::from(dir)));
        }
        fixtures(FsStore::open_read_only(dir)?, CacheMode::Replay)
    }
}

fn fixtures(store: FsStore, mode: CacheMode) -> Result<CacheMiddleware, Error> {
    CacheMiddleware::builder()
        .read_only(store.is_read_only())
        .store(store)
        .per_credential(false)
        .mode(mode)
        .build()
}
