//! Copying, exporting and importing caches between every pair of stores: the entries stay
//! reachable by URL and answer requests without the origin.

use reqwest_caching::transfer::{self, Progress};

use crate::support::{BACKENDS, Backend, Harness, send};

/// What the source cache holds: plain, with a query, and a 64 KiB body.
const PATHS: &[&str] = &["/a", "/b?q=1", "/big/65536"];

/// A cache over `backend` holding [`PATHS`], each fetched once from its origin.
async fn filled(backend: Backend) -> Harness {
    let h = Harness::new(backend).await;
    for path in PATHS {
        let (_, info) = h.fetch(path).await;
        assert!(!info.from_cache);
    }
    assert_eq!(h.origin.total(), PATHS.len());
    h
}

/// `to` answers every path of `from`'s origin from the cache: the origin sees nothing, and
/// the handle finds each entry by URL.
async fn assert_serves(from: &Harness, to: &Harness, what: &str) {
    let before = from.origin.total();
    for path in PATHS {
        let url = from.origin.url(path);
        let entry = to.handle.get_url(&url).await.unwrap();
        assert!(entry.is_some(), "{what}: {path} found by URL");
        let (body, info) = send(to.client.get(&url)).await;
        assert!(info.from_cache, "{what}: {path} served from the copy");
        assert!(!body.is_empty(), "{what}: {path} has its body");
    }
    assert_eq!(
        from.origin.total(),
        before,
        "{what}: nothing reached the origin"
    );
    assert_eq!(to.origin.total(), 0, "{what}");
}

/// Progress is reported after every entry, growing, and ends at the returned total.
fn assert_progress(calls: &[Progress], done: Progress, count: u64, what: &str) {
    assert_eq!(done.entries, count, "{what}: every entry copied");
    assert_eq!(done.skipped, 0, "{what}");
    assert!(
        done.bytes > 64 * 1024,
        "{what}: bytes counted ({})",
        done.bytes
    );
    assert_eq!(calls.len() as u64, count, "{what}: one report per entry");
    assert!(
        calls
            .windows(2)
            .all(|w| w[0].entries < w[1].entries && w[0].bytes < w[1].bytes),
        "{what}: {calls:?}"
    );
    assert_eq!(calls.last(), Some(&done), "{what}");
}

#[tokio::test]
async fn copy_between_every_pair_of_stores() {
    for &source in BACKENDS {
        let from = filled(source).await;
        let count = from.handle.count().await.unwrap();
        assert_eq!(count, PATHS.len() as u64);
        for &destination in BACKENDS {
            if format!("{source:?}") == format!("{destination:?}") {
                continue;
            }
            let what = format!("{source:?} -> {destination:?}");
            let to = Harness::new(destination).await;
            let mut calls = Vec::new();
            let done = transfer::copy(&**from.handle.store(), &**to.handle.store(), |p| {
                calls.push(p);
            })
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            assert_progress(&calls, done, count, &what);
            assert_eq!(to.handle.count().await.unwrap(), count, "{what}");
            assert_serves(&from, &to, &what).await;
            assert_eq!(
                from.handle.count().await.unwrap(),
                count,
                "{what}: source intact"
            );
        }
    }
}

#[cfg(feature = "fs")]
#[tokio::test]
async fn export_then_import_through_a_directory_for_every_store() {
    use reqwest_caching::CacheStore as _;
    for &backend in BACKENDS {
        let what = format!("{backend:?}");
        let from = filled(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let mut calls = Vec::new();
        let exported = transfer::export(&**from.handle.store(), dir.path(), |p| calls.push(p))
            .await
            .unwrap();
        assert_progress(&calls, exported, PATHS.len() as u64, &what);
        let exported_dir = reqwest_caching::FsStore::open(dir.path()).unwrap();
        assert_eq!(
            exported_dir.count().await.unwrap(),
            PATHS.len() as u64,
            "{what}"
        );

        // Imported as a checkout of it would be (no empty directories): only read.
        test_support::remove_empty_dirs(dir.path());
        let before = test_support::tree_snapshot(dir.path());
        let to = Harness::new(backend).await;
        let mut calls = Vec::new();
        let imported = transfer::import(dir.path(), &**to.handle.store(), |p| calls.push(p))
            .await
            .unwrap();
        assert_eq!(
            test_support::tree_snapshot(dir.path()),
            before,
            "{what}: importing changed the directory"
        );
        assert_progress(&calls, imported, PATHS.len() as u64, &what);
        assert_eq!(imported.bytes, exported.bytes, "{what}: the same bytes");
        assert_serves(&from, &to, &what).await;
    }
}

#[cfg(feature = "fs")]
#[tokio::test]
async fn an_export_holds_no_credentials_and_is_readable() {
    let h = Harness::new(Backend::Memory).await;
    // `/big` answers with filler, not an echo of the request.
    let url = h.origin.url("/big/16?q=1&api_key=s3cr3t-key");
    let request = h
        .client
        .get(&url)
        .header("authorization", "Bearer s3cr3t-token");
    assert!(!send(request).await.1.from_cache);
    let dir = tempfile::tempdir().unwrap();
    transfer::export(&**h.handle.store(), dir.path(), |_| {})
        .await
        .unwrap();
    let files = crate::support::read_tree(dir.path());
    let contains = |needle: &[u8]| files.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"/big/16?q=1\""), "the redacted URL, readable");
    assert!(contains(b"\"status\": 200"), "the response head, readable");
    assert!(
        !contains(b"s3cr3t"),
        "no credential in any exported file: {}",
        String::from_utf8_lossy(&files)
    );
    assert_eq!(h.origin.total(), 1);
}

#[cfg(feature = "fs")]
#[tokio::test]
async fn importing_a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no such cache");
    let to = reqwest_caching::MemoryStore::new();
    let err = transfer::import(&missing, &to, |_| {}).await.unwrap_err();
    assert!(matches!(err, transfer::TransferError::Source(_)), "{err:?}");
    assert!(!missing.exists(), "not created");
}

/// An `FsStore` whose reads are counted by how they read a value: whole (`get`, or an
/// opening that gave the value whole) or with its body left in its file. Every call a copy
/// makes goes to the store (the trait's other methods keep their defaults), except where a
/// test asks otherwise: as a destination it may refuse a body as
/// too large when the spool begins or at its second piece ([`Refusal`]); as a source it may
/// claim each body file longer than it is, as a file shrinking while the copy reads it does.
#[cfg(feature = "fs")]
#[derive(Debug)]
pub(crate) struct Probed {
    inner: reqwest_caching::FsStore,
    whole: std::sync::atomic::AtomicUsize,
    from_file: std::sync::atomic::AtomicUsize,
    refusal: Option<Refusal>,
    claimed_beyond_file: u64,
}

/// Where a [`Probed`] destination refuses a body as too large.
#[cfg(feature = "fs")]
#[derive(Clone, Copy, Debug, PartialEq)]
enum Refusal {
    Begin,
    SecondPiece,
}

#[cfg(feature = "fs")]
impl Probed {
    pub(crate) fn new(inner: reqwest_caching::FsStore) -> Self {
        Self {
            inner,
            whole: Default::default(),
            from_file: Default::default(),
            refusal: None,
            claimed_beyond_file: 0,
        }
    }

    fn count(&self, counter: &std::sync::atomic::AtomicUsize) {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Values read whole, and bodies left in their files.
    pub(crate) fn reads(&self) -> (usize, usize) {
        let load = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::SeqCst);
        (load(&self.whole), load(&self.from_file))
    }

    fn files(&self) -> &dyn reqwest_caching::cache_core::BodyFiles {
        reqwest_caching::CacheStore::body_files(&self.inner).expect("an FsStore has body files")
    }
}

#[cfg(feature = "fs")]
fn too_large() -> reqwest_caching::StoreError {
    reqwest_caching::StoreError::TooLarge {
        size: 3 * 1024 * 1024,
        limit: 1024 * 1024,
    }
}

#[cfg(feature = "fs")]
#[async_trait::async_trait]
impl reqwest_caching::CacheStore for Probed {
    async fn get(
        &self,
        key: &reqwest_caching::CacheKey,
    ) -> Result<Option<reqwest_caching::StoredEntry>, reqwest_caching::StoreError> {
        self.count(&self.whole);
        self.inner.get(key).await
    }
    async fn put(
        &self,
        entry: reqwest_caching::StoredEntry,
    ) -> Result<(), reqwest_caching::StoreError> {
        self.inner.put(entry).await
    }
    async fn delete(
        &self,
        key: &reqwest_caching::CacheKey,
    ) -> Result<bool, reqwest_caching::StoreError> {
        self.inner.delete(key).await
    }
    async fn delete_if_created(
        &self,
        key: &reqwest_caching::CacheKey,
        created_at: std::time::SystemTime,
    ) -> Result<bool, reqwest_caching::StoreError> {
        self.inner.delete_if_created(key, created_at).await
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
        self.inner.clear().await
    }
    fn body_files(&self) -> Option<&dyn reqwest_caching::cache_core::BodyFiles> {
        Some(self)
    }
}

#[cfg(feature = "fs")]
#[async_trait::async_trait]
impl reqwest_caching::cache_core::BodyFiles for Probed {
    async fn begin(
        &self,
        key: &reqwest_caching::CacheKey,
    ) -> Result<Box<dyn reqwest_caching::cache_core::BodySpool>, reqwest_caching::StoreError> {
        match self.refusal {
            Some(Refusal::Begin) => Err(too_large()),
            Some(Refusal::SecondPiece) => Ok(Box::new(RefusingSpool {
                inner: self.files().begin(key).await?,
                pieces: 0,
            })),
            None => self.files().begin(key).await,
        }
    }
    async fn open(
        &self,
        key: &reqwest_caching::CacheKey,
        inline_up_to: u64,
    ) -> Result<Option<reqwest_caching::cache_core::Opened>, reqwest_caching::StoreError> {
        use reqwest_caching::cache_core::Opened;
        let mut opened = self.files().open(key, inline_up_to).await?;
        match &mut opened {
            Some(Opened::Body(body)) => {
                body.len += self.claimed_beyond_file;
                self.count(&self.from_file);
            }
            Some(_) => self.count(&self.whole),
            None => {}
        }
        Ok(opened)
    }
    async fn renew(
        &self,
        key: &reqwest_caching::CacheKey,
        was_created: std::time::SystemTime,
        created_at: std::time::SystemTime,
        expires_at: Option<std::time::SystemTime>,
    ) -> Result<bool, reqwest_caching::StoreError> {
        self.files()
            .renew(key, was_created, created_at, expires_at)
            .await
    }
}

/// A spool refusing its second piece as too large.
#[cfg(feature = "fs")]
#[derive(Debug)]
struct RefusingSpool {
    inner: Box<dyn reqwest_caching::cache_core::BodySpool>,
    pieces: usize,
}

#[cfg(feature = "fs")]
#[async_trait::async_trait]
impl reqwest_caching::cache_core::BodySpool for RefusingSpool {
    async fn write(&mut self, chunk: bytes::Bytes) -> Result<(), reqwest_caching::StoreError> {
        self.pieces += 1;
        if self.pieces > 1 {
            return Err(too_large());
        }
        self.inner.write(chunk).await
    }
    async fn commit(
        self: Box<Self>,
        meta: reqwest_caching::EntryMeta,
        before: bytes::Bytes,
        after: bytes::Bytes,
    ) -> Result<(), reqwest_caching::StoreError> {
        self.inner.commit(meta, before, after).await
    }
}

/// Between two cache directories a large body goes from file to file in pieces: the large
/// value is never read whole (a cache of 1 GiB downloads held them in memory, eight at a
/// time), and the copy stores the same bytes, small entries included.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_copy_between_directories_moves_large_bodies_file_to_file() {
    use reqwest_caching::FsStore;
    let (from_dir, to_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = Probed::new(FsStore::open(from_dir.path()).unwrap());
    // 3 MiB and a bit, not a whole number of pieces; and one small entry.
    let large: Vec<u8> = (0..3 * 1024 * 1024 + 12_345)
        .map(|i| (i % 251) as u8)
        .collect();
    for (n, body) in [(1, large), (2, b"small".to_vec())] {
        put_response(&from.inner, n, body).await;
    }
    let to = FsStore::open(to_dir.path()).unwrap();
    let done = transfer::copy(&from, &to, |_| {}).await.unwrap();
    assert_eq!((done.entries, done.skipped), (2, 0));
    assert_eq!(
        from.reads(),
        (1, 1),
        "read whole: only the small value; from its file: the large body"
    );
    assert_copied_as_stored(&from.inner, &to, [1, 2]).await;
}

/// A body in its file larger than a destination without body files takes is skipped without
/// being read: a cache directory's downloads of gigabytes were each read whole into memory
/// (eight at a time) only to be refused by SQLite's bound. Small entries are copied.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_body_over_the_destination_s_bound_is_not_read_to_be_refused() {
    use reqwest_caching::cache_core::testing::key;
    use reqwest_caching::{CacheStore, FsStore, SqliteStore};
    let (from_dir, to_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = Probed::new(FsStore::open(from_dir.path()).unwrap());
    for (n, len) in [(1, 3 * 1024 * 1024), (2, 16)] {
        put_response(&from.inner, n, vec![b'b'; len]).await;
    }
    let to = SqliteStore::builder(to_dir.path().join("to.sqlite"))
        .max_bytes(2 * 1024 * 1024)
        .open()
        .unwrap();
    assert!(
        to.max_value_bytes()
            .is_some_and(|max| max < 2 * 1024 * 1024)
    );
    let done = transfer::copy(&from, &to, |_| {}).await.unwrap();
    assert_eq!((done.entries, done.skipped), (1, 1));
    assert_eq!(
        from.reads(),
        (1, 1),
        "read whole: only the small value; the large one measured in its file"
    );
    assert!(to.get(&key(1)).await.unwrap().is_none());
    assert!(to.get(&key(2)).await.unwrap().is_some());
}

/// A destination whose bound is below a large body skips that entry, as it skips one read
/// whole, keeps the rest, and keeps no file of the skipped body.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_body_too_large_for_the_destination_is_skipped_and_leaves_no_file() {
    let to_dir = tempfile::tempdir().unwrap();
    let to = reqwest_caching::FsStore::builder()
        .max_bytes(2 * 1024 * 1024)
        .open(to_dir.path())
        .unwrap();
    assert_large_body_skipped(&to, to_dir.path(), "bounded").await;
}

/// Copies into `to` (a cache directory at `to_dir`, or a wrapper of one) a 3 MiB entry
/// `to` refuses as too large and a small one: the large one is skipped and leaves no file,
/// the small one is copied.
#[cfg(feature = "fs")]
async fn assert_large_body_skipped(
    to: &impl reqwest_caching::CacheStore,
    to_dir: &std::path::Path,
    what: &str,
) {
    use reqwest_caching::FsStore;
    use reqwest_caching::cache_core::testing::key;
    let from_dir = tempfile::tempdir().unwrap();
    let from = FsStore::open(from_dir.path()).unwrap();
    for (n, len) in [(1, 3 * 1024 * 1024), (2, 16)] {
        put_response(&from, n, vec![b'b'; len]).await;
    }
    let done = transfer::copy(&from, to, |_| {})
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!((done.entries, done.skipped), (1, 1), "{what}");
    assert!(to.get(&key(1)).await.unwrap().is_none(), "{what}");
    assert!(to.get(&key(2)).await.unwrap().is_some(), "{what}");
    let large_files: Vec<_> = test_support::tree_snapshot(to_dir)
        .into_iter()
        .filter(|(_, len, _)| *len > 100 * 1024)
        .collect();
    assert!(large_files.is_empty(), "{what}: {large_files:?}");
}

/// A body file shorter than its record says (damaged on disk) is copied as it is stored: the
/// copy holds the very bytes a whole read of the source gives, which the codec rejects at
/// their first read, as it does the source's. (A file shrinking while the copy reads it:
/// `a_body_file_shorter_than_opened_is_copied_as_far_as_it_goes`.)
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_truncated_body_file_is_copied_as_stored() {
    use reqwest_caching::cache_core::testing::key;
    use reqwest_caching::{CacheStore, FsStore};
    let (from_dir, to_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = FsStore::open(from_dir.path()).unwrap();
    put_response(&from, 1, vec![b'b'; 2 * 1024 * 1024]).await;
    let body_file = test_support::tree_snapshot(from_dir.path())
        .into_iter()
        .map(|(path, ..)| path)
        .find(|path| path.extension().is_some_and(|e| e == "body"))
        .expect("a body file");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&body_file)
        .unwrap();
    file.set_len(1024 * 1024).unwrap();
    let to = FsStore::open(to_dir.path()).unwrap();
    let done = copy_within_30_s(&from, &to).await;
    assert_eq!(done.entries, 1);
    let copied = to.get(&key(1)).await.unwrap().expect("copied");
    let stored = from.get(&key(1)).await.unwrap().expect("stored");
    assert!(copied.value == stored.value, "other bytes than stored");
    assert!(reqwest_caching::cache_core::decode(&copied.value).is_err());
}

/// A destination refusing a large body as too large when its spool begins, or at a later
/// piece, skips that entry as it skips one refused at the end (or read whole), copies the
/// rest, and keeps nothing of the refused body.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_body_refused_when_its_spool_begins_or_midway_is_skipped() {
    for refusal in [Refusal::Begin, Refusal::SecondPiece] {
        let to_dir = tempfile::tempdir().unwrap();
        let mut to = Probed::new(reqwest_caching::FsStore::open(to_dir.path()).unwrap());
        to.refusal = Some(refusal);
        assert_large_body_skipped(&to, to_dir.path(), &format!("{refusal:?}")).await;
    }
}

/// A body file that turns out shorter than it was when opened (it shrank while the copy
/// read it) is copied as far as it goes, as a whole read would have found it, and the copy
/// goes on: not an error that stops it.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_body_file_shorter_than_opened_is_copied_as_far_as_it_goes() {
    use reqwest_caching::FsStore;
    let (from_dir, to_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut from = Probed::new(FsStore::open(from_dir.path()).unwrap());
    from.claimed_beyond_file = 300 * 1024;
    for (n, len) in [(1, 2 * 1024 * 1024 + 7), (2, 16)] {
        put_response(&from.inner, n, vec![b'b'; len]).await;
    }
    let to = FsStore::open(to_dir.path()).unwrap();
    let done = copy_within_30_s(&from, &to).await;
    assert_eq!((done.entries, done.skipped), (2, 0));
    assert_eq!(from.reads().1, 1, "the large body read from its file");
    assert_copied_as_stored(&from.inner, &to, [1, 2]).await;
}

/// The entries under `key(n)` for each of `ns` are in `to` with the very bytes and metadata
/// `from` holds.
#[cfg(feature = "fs")]
async fn assert_copied_as_stored(
    from: &reqwest_caching::FsStore,
    to: &reqwest_caching::FsStore,
    ns: impl IntoIterator<Item = u64>,
) {
    use reqwest_caching::CacheStore;
    use reqwest_caching::cache_core::testing::key;
    for n in ns {
        let copied = to.get(&key(n)).await.unwrap().expect("copied");
        let stored = from.get(&key(n)).await.unwrap().expect("stored");
        assert!(copied.value == stored.value, "entry {n}: other bytes");
        assert_eq!(copied.meta, stored.meta, "entry {n}");
    }
}

/// Copies `from` into `to`, which must end within 30 s (a copy waiting on a file that
/// never grows would not).
#[cfg(feature = "fs")]
async fn copy_within_30_s(
    from: &impl reqwest_caching::CacheStore,
    to: &impl reqwest_caching::CacheStore,
) -> transfer::Progress {
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        transfer::copy(from, to, |_| {}),
    )
    .await
    .expect("the copy ends")
    .unwrap()
}

/// Puts into `store` an entry under `key(n)` holding a response with `body`.
#[cfg(feature = "fs")]
async fn put_response(store: &reqwest_caching::FsStore, n: u64, body: Vec<u8>) {
    use reqwest_caching::cache_core::testing::{key, sample_response};
    use reqwest_caching::{CacheStore, EntryMeta, StoredEntry};
    let mut response = sample_response();
    response.body = bytes::Bytes::from(body);
    let value = reqwest_caching::cache_core::encode(&response).unwrap();
    let meta = EntryMeta::new(
        key(n),
        "https://e.test/",
        std::time::SystemTime::now(),
        None,
    );
    store.put(StoredEntry::new(meta, value)).await.unwrap();
}

/// A copy into a SQLite store whose write lock another connection holds: the copy's writes
/// wait in the store's queue, and past its limit the store refuses more as full. The copy
/// waits and tries again, and once the lock is released it ends with every entry; it stopped
/// at the first refusal with `StoreError::Full`, the entries after it not copied.
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_waits_out_a_destination_full_for_a_moment() {
    use reqwest_caching::{CacheKey, CacheStore, EntryMeta, MemoryStore, SqliteStore, StoredEntry};

    const ENTRIES: u8 = 20;
    let from = MemoryStore::new();
    for n in 0..ENTRIES {
        let url = format!("https://example.com/items/{n}");
        let meta = EntryMeta::new(
            CacheKey::from_digest([n; 16]),
            url,
            std::time::SystemTime::now(),
            None,
        );
        let value = bytes::Bytes::from(vec![n; 4096]);
        from.put(StoredEntry::new(meta, value)).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("to.sqlite");
    // Room for two waiting writes: the copy writes eight at a time.
    let to = SqliteStore::builder(&path)
        .max_queued_bytes(8 * 1024)
        .open()
        .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let copying = tokio::spawn(async move {
        let done = transfer::copy(&from, &to, |_| {}).await;
        (done, to)
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !copying.is_finished(),
        "the copy ended while the destination was held"
    );
    other.execute_batch("COMMIT").unwrap();
    let (done, to) = copying.await.unwrap();
    let done = done.expect("the copy waits for room");
    assert_eq!(done.entries, u64::from(ENTRIES));
    assert_eq!(done.skipped, 0);
    assert_eq!(to.count().await.unwrap(), u64::from(ENTRIES));
    for n in 0..ENTRIES {
        let stored = to.get(&CacheKey::from_digest([n; 16])).await.unwrap();
        assert_eq!(stored.expect("copied").value, vec![n; 4096]);
    }
}
