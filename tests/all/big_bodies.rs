//! Bodies over `max_body_size` in a store that keeps files (FsStore): written to the store
//! while they stream to the caller, committed only once complete, served from their file;
//! a cut download or a body dropped early leaves nothing behind.

use std::path::Path;

use reqwest_caching::{CacheMiddleware, CacheResponseExt, FsStore, SigningKeys};

use crate::origin::{Origin, pattern};

/// The limit the tests use: every body over it goes to a file.
const LIMIT: u64 = 64 * 1024;
/// Several times the limit, and not a multiple of any chunk size.
const SIZE: usize = 1_000_003;
/// Another size for the same body without `Content-Length` (the origin counts by path).
const CHUNKED: usize = 1_000_033;

struct Setup {
    client: reqwest_middleware::ClientWithMiddleware,
    handle: reqwest_caching::CacheHandle,
    origin: Origin,
    dir: tempfile::TempDir,
}

async fn setup(signed: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let mut builder = CacheMiddleware::builder().store(store).max_body_size(LIMIT);
    if signed {
        builder = builder.signing_keys(SigningKeys::new(
            b"a secret of 32 bytes or more....".to_vec(),
        ));
    }
    let cache = builder.build().unwrap();
    let handle = cache.handle();
    Setup {
        client: cache.into_client(reqwest::Client::new()),
        handle,
        origin: Origin::start().await,
        dir,
    }
}

/// Every file under `entries/` but the shard locks: records, bodies and temporaries.
fn entry_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for shard in std::fs::read_dir(dir.join("entries")).unwrap() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            if name != ".lock" {
                found.push(name);
            }
        }
    }
    found.sort();
    found
}

/// Requests that reached the origin for `path` (its query aside).
fn hits(s: &Setup, path: &str) -> usize {
    s.origin.hits(path.split('?').next().unwrap_or(path))
}

async fn fetch(s: &Setup, path: &str) -> (Vec<u8>, reqwest_caching::CacheInfo) {
    let response = s.client.get(s.origin.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let info = response.cache_info().cloned().unwrap();
    (response.bytes().await.unwrap().to_vec(), info)
}

/// A body streamed to the caller as it is written to its file, and served from that file
/// later, keeps its length: `content_length()` reads a body's size hint, which a stream has
/// none of (a download's progress bar had no total, through the cache only).
#[tokio::test]
async fn a_body_streamed_or_served_from_its_file_keeps_its_length() {
    let s = setup(false).await;
    let path = format!("/pattern/{SIZE}");
    for round in ["written as it streams", "served from its file"] {
        let response = s.client.get(s.origin.url(&path)).send().await.unwrap();
        assert_eq!(response.content_length(), Some(SIZE as u64), "{round}");
        assert_eq!(response.bytes().await.unwrap().len(), SIZE, "{round}");
    }
    assert_eq!(hits(&s, &path), 1, "the second came from the file");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_limit_is_stored_as_it_streams_and_served_from_its_file() {
    for path in [
        format!("/pattern/{SIZE}"),
        format!("/pattern/{CHUNKED}?chunked"),
    ] {
        let size = if path.ends_with("chunked") {
            CHUNKED
        } else {
            SIZE
        };
        let s = setup(false).await;
        let (body, info) = fetch(&s, &path).await;
        assert_eq!(body, pattern(0..size), "{path}: the caller got it whole");
        assert!(!info.from_cache && !info.stored, "{path}: {info:?}");
        assert_eq!(
            s.handle.count().await.unwrap(),
            1,
            "{path}: committed at its end"
        );
        let files = entry_files(s.dir.path());
        assert_eq!(files.len(), 2, "{path}: a record and a body: {files:?}");
        assert!(files.iter().all(|f| !f.starts_with(".tmp-")), "{files:?}");

        let (body, info) = fetch(&s, &path).await;
        assert!(info.from_cache, "{path}: {info:?}");
        assert_eq!(
            body,
            pattern(0..size),
            "{path}: the same bytes from the file"
        );
        assert_eq!(
            hits(&s, &path),
            1,
            "{path}: the second one never reached the origin"
        );

        // HEAD answers from the entry too; a range of a body kept in a file goes to the origin.
        let head = s.client.head(s.origin.url(&path)).send().await.unwrap();
        assert!(head.from_cache(), "{path}");
        let ranged = s
            .client
            .get(s.origin.url(&path))
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert!(!ranged.from_cache(), "{path}");
        assert_eq!(hits(&s, &path), 2, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_bodies_are_signed_as_they_stream_and_verified_as_they_are_served() {
    let s = setup(true).await;
    let path = format!("/pattern/{SIZE}");
    fetch(&s, &path).await;
    let (body, info) = fetch(&s, &path).await;
    assert!(info.from_cache);
    assert_eq!(body, pattern(0..SIZE));
    assert_eq!(s.origin.hits(&path), 1);

    // Without a length announced first, the signature cannot be begun: passed on uncached.
    let chunked = format!("/pattern/{CHUNKED}?chunked");
    for _ in 0..2 {
        let (body, info) = fetch(&s, &chunked).await;
        assert_eq!(body, pattern(0..CHUNKED));
        assert!(!info.from_cache);
    }
    assert_eq!(hits(&s, &chunked), 2);
    assert_eq!(s.handle.count().await.unwrap(), 1);

    // A body changed on disk: the bytes stream, then the body fails, and the entry goes.
    let body_file = entry_files(s.dir.path())
        .into_iter()
        .find(|f| f.ends_with(".body"))
        .unwrap();
    let shard = s.dir.path().join("entries").join(&body_file[..2]);
    let mut bytes = std::fs::read(shard.join(&body_file)).unwrap();
    bytes[SIZE / 2] ^= 1;
    std::fs::write(shard.join(&body_file), bytes).unwrap();
    let response = s.client.get(s.origin.url(&path)).send().await.unwrap();
    assert!(response.from_cache());
    let error = response.bytes().await.unwrap_err();
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain = format!("{chain}: {cause}");
        source = cause.source();
    }
    assert!(chain.contains("does not match its entry"), "{chain}");
    assert_eq!(s.handle.count().await.unwrap(), 0, "the entry was deleted");
    let (body, info) = fetch(&s, &path).await;
    assert!(!info.from_cache);
    assert_eq!(body, pattern(0..SIZE));
    assert_eq!(s.origin.hits(&path), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_download_leaves_nothing_behind() {
    let s = setup(false).await;
    // Over the limit, then the origin fails the connection.
    let path = format!("/cut/{}", 4 * LIMIT);
    for n in 1..=2 {
        let response = s.client.get(s.origin.url(&path)).send().await.unwrap();
        assert!(
            response.bytes().await.is_err(),
            "the caller sees the failure"
        );
        assert_eq!(s.origin.hits(&path), n, "never served from the cache");
    }
    // Content-Length over the limit, the connection closed early.
    let short = format!("/short/{}/{}", 4 * LIMIT, 2 * LIMIT);
    let response = s.client.get(s.origin.url(&short)).send().await.unwrap();
    assert!(response.bytes().await.is_err());
    assert_eq!(s.handle.count().await.unwrap(), 0);
    assert_eq!(entry_files(s.dir.path()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_the_caller_drops_early_leaves_nothing_behind() {
    let s = setup(false).await;
    let path = format!("/pattern/{CHUNKED}?chunked");
    let mut response = s.client.get(s.origin.url(&path)).send().await.unwrap();
    let mut read = 0;
    while read <= 2 * LIMIT as usize {
        read += response.chunk().await.unwrap().unwrap().len();
    }
    assert_eq!(entry_files(s.dir.path()).len(), 1, "the body being written");
    drop(response);
    assert_eq!(entry_files(s.dir.path()), Vec::<String>::new());
    assert_eq!(s.handle.count().await.unwrap(), 0);
    // The next request goes to the origin, and stores it.
    let (body, _) = fetch(&s, &path).await;
    assert_eq!(body, pattern(0..CHUNKED));
    assert_eq!(hits(&s, &path), 2);
    assert_eq!(s.handle.count().await.unwrap(), 1);
}

/// A `304` renews an entry whose body is in its file as it renews any other: its creation
/// too, so the age it serves starts over (a request's `max-age` then takes it, where its age
/// counted from the first download and sent every such request back to the origin).
#[tokio::test(flavor = "multi_thread")]
async fn a_304_renews_a_body_kept_in_its_file_from_now() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let clock = std::sync::Arc::new(reqwest_caching::ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(store)
        .max_body_size(LIMIT)
        .clock(std::sync::Arc::clone(&clock) as _)
        .expire_after(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let client = cache.into_client(reqwest::Client::new());
    let origin = Origin::start().await;
    let url = origin.url(&format!("/custom/renewed?h=ETag:\"big\"&size={SIZE}"));
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.bytes().await.unwrap().len(), SIZE);
    clock.advance(std::time::Duration::from_secs(600));
    let revalidated = client.get(&url).send().await.unwrap();
    let info = revalidated.cache_info().cloned().unwrap();
    assert!(info.revalidated && info.from_cache, "{info:?}");
    assert_eq!(revalidated.bytes().await.unwrap(), pattern(0..SIZE));
    assert_eq!(origin.hits("/custom/renewed"), 2);
    // Ten seconds on, a request taking responses up to 30 s old is answered from the entry,
    // whose age is ten seconds, not 610.
    clock.advance(std::time::Duration::from_secs(10));
    let hit = client
        .get(&url)
        .header("cache-control", "max-age=30")
        .send()
        .await
        .unwrap();
    let info = hit.cache_info().cloned().unwrap();
    assert!(info.from_cache && !info.revalidated, "{info:?}");
    assert_eq!(hit.headers()["age"], "10");
    assert_eq!(hit.bytes().await.unwrap(), pattern(0..SIZE));
    assert_eq!(
        origin.hits("/custom/renewed"),
        2,
        "the origin was asked again"
    );
}

/// A `304` whose fields change how the response may be reused (here `no-cache` where the
/// stored head allowed `stale-while-revalidate`) does not renew an entry whose body is in
/// its file: that head is not written again (its signature covers it with the body), so the
/// renewed entry kept the old rules, and was served stale the origin now forbids. It goes,
/// and the next request fetches the response again.
#[tokio::test(flavor = "multi_thread")]
async fn a_304_changing_the_reuse_rules_does_not_renew_a_body_kept_in_its_file() {
    let (s, clock) = following_origin_with_clock().await;
    let (client, origin) = (&s.client, &s.origin);
    let url = origin.url(&format!(
        "/custom/rules?h=ETag:\"big\"&h=Cache-Control:max-age%3D60,stale-while-revalidate%3D3600\
         &n=Cache-Control:no-cache&size={SIZE}"
    ));
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.bytes().await.unwrap().len(), SIZE);
    clock.advance(std::time::Duration::from_secs(120));
    // Validated before use (a request's `no-cache`), not served stale while revalidating.
    let revalidated = client
        .get(&url)
        .header("cache-control", "no-cache")
        .send()
        .await
        .unwrap();
    let info = revalidated.cache_info().cloned().unwrap();
    assert!(info.revalidated && !info.stored, "{info:?}");
    assert_eq!(revalidated.headers()["cache-control"], "no-cache");
    assert_eq!(revalidated.bytes().await.unwrap(), pattern(0..SIZE));
    clock.advance(std::time::Duration::from_secs(10));
    let next = client.get(&url).send().await.unwrap();
    let info = next.cache_info().cloned().unwrap();
    assert!(
        !info.stale_while_revalidate && !info.from_cache,
        "served under the old rules: {info:?}"
    );
    assert_eq!(next.bytes().await.unwrap(), pattern(0..SIZE));
    assert_eq!(origin.hits("/custom/rules"), 3);
}

/// A `304` changing only the lifetime (`max-age`, as origins that send it with every answer
/// do) still renews an entry whose body is in its file: the lifetime goes into the entry's
/// expiry, and the body is not fetched again.
#[tokio::test(flavor = "multi_thread")]
async fn a_304_changing_only_the_lifetime_renews_a_body_kept_in_its_file() {
    let (s, clock) = following_origin_with_clock().await;
    let (client, origin) = (&s.client, &s.origin);
    let url = origin.url(&format!(
        "/custom/lifetime?h=ETag:\"big\"&h=Cache-Control:max-age%3D60\
         &n=Cache-Control:max-age%3D600&size={SIZE}"
    ));
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.bytes().await.unwrap().len(), SIZE);
    clock.advance(std::time::Duration::from_secs(120));
    let revalidated = client.get(&url).send().await.unwrap();
    let info = revalidated.cache_info().cloned().unwrap();
    assert!(info.revalidated && info.stored, "{info:?}");
    assert_eq!(revalidated.bytes().await.unwrap(), pattern(0..SIZE));
    clock.advance(std::time::Duration::from_secs(300));
    let hit = client.get(&url).send().await.unwrap();
    let info = hit.cache_info().cloned().unwrap();
    assert!(info.from_cache && !info.revalidated, "{info:?}");
    assert_eq!(hit.bytes().await.unwrap(), pattern(0..SIZE));
    assert_eq!(origin.hits("/custom/lifetime"), 2);
}

/// A background refresh (`stale-while-revalidate`) of an entry whose body is over the memory
/// limit stores the new answer: such a body is stored as it is read, and the refresh, whose
/// answer no caller reads, dropped it unread, so the entry stayed stale for the whole window
/// and each stale hit sent the origin another request for nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_background_refresh_stores_a_body_kept_in_its_file() {
    let (s, clock) = following_origin_with_clock().await;
    let (client, origin) = (&s.client, &s.origin);
    let url = origin.url(&format!(
        "/custom/refreshed?h=Cache-Control:max-age%3D60,stale-while-revalidate%3D3600&size={SIZE}"
    ));
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.bytes().await.unwrap().len(), SIZE);
    clock.advance(std::time::Duration::from_secs(120));
    let stale = client.get(&url).send().await.unwrap();
    assert!(stale.cache_info().unwrap().stale_while_revalidate);
    assert_eq!(stale.bytes().await.unwrap(), pattern(0..SIZE));
    // The refreshed entry answers `only-if-cached` fresh (a stale one is the cache's 504).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let only = client
            .get(&url)
            .header("cache-control", "only-if-cached")
            .send()
            .await
            .unwrap();
        if only.status() == 200 {
            let info = only.cache_info().cloned().unwrap();
            assert!(info.from_cache && !info.is_expired, "{info:?}");
            assert_eq!(only.bytes().await.unwrap(), pattern(0..SIZE));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the background refresh stored nothing: {} (origin hits {})",
            only.status(),
            origin.hits("/custom/refreshed")
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(origin.hits("/custom/refreshed"), 2);
}

/// A cache over files in a directory of its own, signing, bodies over [`LIMIT`] in files,
/// entries fresh for 60 s of a clock the test moves.
async fn signed_with_clock() -> (Setup, std::sync::Arc<reqwest_caching::ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(reqwest_caching::ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(FsStore::open(dir.path()).unwrap())
        .max_body_size(LIMIT)
        .signing_keys(SigningKeys::new(
            b"a secret of 32 bytes or more....".to_vec(),
        ))
        .clock(std::sync::Arc::clone(&clock) as _)
        .expire_after(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let setup = Setup {
        handle: cache.handle(),
        client: cache.into_client(reqwest::Client::new()),
        origin: Origin::start().await,
        dir,
    };
    (setup, clock)
}

/// A cache over files in a directory of its own, bodies over [`LIMIT`] in files, following
/// `Cache-Control`, on a clock the test moves; its origin dates its answers on that clock
/// (an answer is not old on arrival when the test has moved it).
async fn following_origin_with_clock() -> (Setup, std::sync::Arc<reqwest_caching::ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(reqwest_caching::ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(FsStore::open(dir.path()).unwrap())
        .max_body_size(LIMIT)
        .cache_control(true)
        .clock(std::sync::Arc::clone(&clock) as _)
        .build()
        .unwrap();
    let setup = Setup {
        handle: cache.handle(),
        client: cache.into_client(reqwest::Client::new()),
        origin: Origin::start_with_clock(Some(std::sync::Arc::clone(&clock))).await,
        dir,
    };
    (setup, clock)
}

/// Flips a byte in the middle of the one body file under `dir`, writing over the same file.
fn change_the_body_file(dir: &Path) {
    let body_file = entry_files(dir)
        .into_iter()
        .find(|f| f.ends_with(".body"))
        .unwrap();
    let path = dir.join("entries").join(&body_file[..2]).join(&body_file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[SIZE / 2] ^= 1;
    std::fs::write(&path, bytes).unwrap();
}

/// A body changed on disk that a `304` confirmed (renewing its entry, whose creation starts
/// over) still takes its entry with it when it fails its check: the served body knows the
/// renewed creation (it knew the one before, and the delete found no such entry).
#[tokio::test(flavor = "multi_thread")]
async fn a_body_failing_its_check_after_a_304_still_deletes_its_entry() {
    let (s, clock) = signed_with_clock().await;
    let (client, handle, origin, dir) = (&s.client, &s.handle, &s.origin, &s.dir);
    let url = origin.url(&format!("/custom/checked?h=ETag:\"big\"&size={SIZE}"));
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.bytes().await.unwrap().len(), SIZE);
    change_the_body_file(dir.path());
    clock.advance(std::time::Duration::from_secs(600));
    let revalidated = client.get(&url).send().await.unwrap();
    assert!(revalidated.cache_info().unwrap().revalidated);
    assert!(
        revalidated.bytes().await.is_err(),
        "the changed body failed"
    );
    assert_eq!(handle.count().await.unwrap(), 0, "the entry was deleted");
    assert_eq!(origin.hits("/custom/checked"), 2);
}

/// A body that fails its check takes its entry along even when another request's `304`
/// renewed the entry while it was being read (moving its creation): the entry still serves
/// this very file, so it is the one to go.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_body_failing_its_check_after_another_requests_304_deletes_its_entry() {
    use futures_util::StreamExt;
    let (s, clock) = signed_with_clock().await;
    let (client, handle, origin, dir) = (&s.client, &s.handle, &s.origin, &s.dir);
    let url = origin.url(&format!("/custom/read-across?h=ETag:\"big\"&size={SIZE}"));
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.bytes().await.unwrap().len(), SIZE);
    // A reader opens the body and takes its first piece.
    let reader = client.get(&url).send().await.unwrap();
    assert!(reader.cache_info().unwrap().from_cache);
    let mut pieces = reader.bytes_stream();
    assert!(pieces.next().await.unwrap().is_ok());
    // The body changes on disk past that piece (the same file, written over).
    change_the_body_file(dir.path());
    // Another request, once the entry is stale, has it confirmed by a 304 (renewed), and
    // reads none of its body.
    clock.advance(std::time::Duration::from_secs(600));
    let renewing = client.get(&url).send().await.unwrap();
    assert!(renewing.cache_info().unwrap().revalidated);
    drop(renewing);
    assert_eq!(handle.count().await.unwrap(), 1);
    let mut failed = false;
    while let Some(piece) = pieces.next().await {
        failed |= piece.is_err();
    }
    assert!(failed, "the changed body failed");
    assert_eq!(handle.count().await.unwrap(), 0, "the entry was deleted");
    assert_eq!(origin.hits("/custom/read-across"), 2);
}

/// A server-sent event stream need not end: the cache passes it on as it streams (the caller
/// gets the head and the first event at once, as without the cache) and stores nothing. It
/// read the body to its end or the size limit first, which for an event stream was never.
#[tokio::test]
async fn an_event_stream_streams_through_and_is_not_stored() {
    use reqwest_caching::MemoryStore;
    use std::time::Duration;
    let origin = Origin::start().await;
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .build()
        .expect("cache");
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    for n in 1..=2 {
        let send = client.get(origin.url("/events/e")).send();
        let mut response = tokio::time::timeout(Duration::from_secs(10), send)
            .await
            .expect("the head arrives while the stream goes on")
            .unwrap();
        let info = response.cache_info().cloned().expect("info");
        assert!(!info.stored && !info.from_cache, "#{n}: {info:?}");
        let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the first event arrives")
            .unwrap();
        assert_eq!(first.as_deref(), Some(&b"data: first\n\n"[..]), "#{n}");
        assert_eq!(
            origin.hits("/events/e"),
            n,
            "each request reached the origin"
        );
    }
    assert_eq!(handle.count().await.unwrap(), 0, "nothing stored");
}

/// An entry whose body was stored compressed under a larger `max_body_size` (by another
/// client of the directory, or before the limit was lowered) and is over this client's
/// limit even compressed is not read (whole, as compression must be read, it could never
/// decode under the limit): it is deleted as unreadable and the request goes to the origin;
/// the response then stored (as it streams, into a file) answers the next request.
#[tokio::test(flavor = "multi_thread")]
async fn a_compressed_body_over_the_limit_is_left_unread_and_refetched() {
    const SMALL_LIMIT: u64 = 4 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start().await;
    let path = format!("/pattern/{SIZE}");
    let writer = CacheMiddleware::builder()
        .store(FsStore::open(dir.path()).unwrap())
        .max_body_size(4 << 20)
        .compress_above(1024)
        .build()
        .unwrap()
        .into_client(reqwest::Client::new());
    let written = writer.get(origin.url(&path)).send().await.unwrap();
    assert_eq!(written.bytes().await.unwrap().len(), SIZE);
    let body_sizes: Vec<u64> = body_file_sizes(dir.path());
    assert!(
        matches!(body_sizes[..], [size] if size > SMALL_LIMIT && size < SIZE as u64 / 2),
        "one body file, compressed, over the small limit: {body_sizes:?}"
    );

    let cache = CacheMiddleware::builder()
        .store(FsStore::open(dir.path()).unwrap())
        .max_body_size(SMALL_LIMIT)
        .build()
        .unwrap();
    let s = Setup {
        handle: cache.handle(),
        client: cache.into_client(reqwest::Client::new()),
        origin,
        dir,
    };
    let (body, info) = fetch(&s, &path).await;
    assert_eq!(body, pattern(0..SIZE));
    assert!(!info.from_cache, "{info:?}");
    assert_eq!(hits(&s, &path), 2, "the request went to the origin");
    let (body, info) = fetch(&s, &path).await;
    assert!(info.from_cache, "the refetched response answers: {info:?}");
    assert_eq!(body, pattern(0..SIZE));
    assert_eq!(hits(&s, &path), 2);
}

/// The sizes of the body files under `entries/` (every file but records, locks and
/// temporaries).
fn body_file_sizes(dir: &Path) -> Vec<u64> {
    let mut sizes = Vec::new();
    for shard in std::fs::read_dir(dir.join("entries")).unwrap() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let file = file.unwrap();
            let name = file.file_name().to_string_lossy().into_owned();
            if name != ".lock" && !name.starts_with(".tmp-") && !name.ends_with(".json") {
                sizes.push(file.metadata().unwrap().len());
            }
        }
    }
    sizes
}

/// A read-only cache keeps an entry whose body fails its check (it changes nothing, by its
/// promise): the caller's body ends in the error all the same. The entry was deleted.
#[tokio::test]
async fn a_read_only_cache_keeps_an_entry_whose_body_fails_its_check() {
    let s = setup(true).await;
    let path = format!("/pattern/{SIZE}");
    fetch(&s, &path).await;
    change_the_body_file(s.dir.path());
    s.handle.set_read_only(true);
    let response = s.client.get(s.origin.url(&path)).send().await.unwrap();
    assert!(response.from_cache());
    assert!(response.bytes().await.is_err(), "the changed body failed");
    assert_eq!(s.handle.count().await.unwrap(), 1, "read-only: kept");
}
