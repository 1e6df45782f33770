//! Settings and defaults no other test reaches: the client background refreshes use, the
//! default middleware falling back to memory, and the one-line `cached_client()`.
//!
//! The default store lives in the current directory, which is the whole process's: those
//! tests run this test binary again in a temporary directory, as a child that is the same
//! test started with `CHILD_ROLE` set (so nothing passes by doing nothing when run alone).

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest_caching::{CacheMiddleware, DEFAULT_SQLITE_PATH};

use crate::origin::Origin;
use crate::support::{BACKENDS, Harness, wait_until};

const CHILD_ROLE: &str = "REQWEST_CACHING_TEST_CHILD_ROLE";

/// Background refreshes go out through `background_client`: the origin sees that client's
/// default header on the refresh, and not on the request the caller sent.
#[tokio::test]
async fn background_refreshes_use_the_background_client() {
    for &backend in BACKENDS {
        let mut headers = HeaderMap::new();
        headers.insert("x-sent-by", HeaderValue::from_static("background-client"));
        let background = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        let h = Harness::with(backend, |b| {
            b.expire_after(Duration::from_secs(60))
                .stale_while_revalidate(true)
                .background_client(background)
        })
        .await;
        h.fetch("/bg").await;
        h.clock.advance(Duration::from_secs(61));
        let (body, info) = h.fetch("/bg").await;
        assert!(info.stale_while_revalidate, "{backend:?}: {info:?}");
        assert_eq!(body, "/bg #1");
        wait_until(|| h.handle.pending_refreshes() == 0).await;
        let seen: Vec<_> = h
            .origin
            .seen()
            .into_iter()
            .filter(|s| s.target == "/bg")
            .collect();
        assert_eq!(seen.len(), 2, "{backend:?}: the request and one refresh");
        assert!(
            !seen[0].headers.contains_key("x-sent-by"),
            "{backend:?}: the caller's request went through the caller's client"
        );
        assert_eq!(
            seen[1].headers.get("x-sent-by").map(|v| v.as_bytes()),
            Some(&b"background-client"[..]),
            "{backend:?}: the refresh went through the background client"
        );
        let (body, info) = h.fetch("/bg").await;
        assert!(info.from_cache && !info.is_expired, "{backend:?}: {info:?}");
        assert_eq!(body, "/bg #2", "{backend:?}: the refresh was stored");
    }
}

/// Runs `test` again as a child in `dir` (its current directory) and checks it passed.
async fn run_child_in(test: &str, dir: &Path) {
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .current_dir(dir)
        .env(CHILD_ROLE, test)
        .output()
        .await
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("child checks passed") && stdout.contains("1 passed"),
        "the child ran its checks: {stdout}"
    );
}

fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ROLE).is_ok_and(|role| role == test)
}

/// `CacheMiddleware::default()` where `./http_cache.sqlite` cannot be opened (it is a
/// directory): no panic, no error, and a working cache in memory, leaving nothing on disk.
#[tokio::test]
async fn default_falls_back_to_memory_when_sqlite_cannot_open() {
    const TEST: &str = "builder_settings::default_falls_back_to_memory_when_sqlite_cannot_open";
    if is_child(TEST) {
        let cache = CacheMiddleware::default();
        let handle = cache.handle();
        let client = cache.into_client(reqwest::Client::new());
        let origin = Origin::start().await;
        let (_, info) = crate::support::send(client.get(origin.url("/d"))).await;
        assert!(info.stored && !info.from_cache, "{info:?}");
        let (body, info) = crate::support::send(client.get(origin.url("/d"))).await;
        assert!(info.from_cache, "{info:?}");
        assert_eq!(body, "/d #1");
        assert_eq!(origin.hits("/d"), 1);
        assert_eq!(handle.count().await.unwrap(), 1);
        assert_eq!(handle.stats().errors, 0);
        println!("child checks passed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(DEFAULT_SQLITE_PATH)).unwrap();
    run_child_in(TEST, dir.path()).await;
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [DEFAULT_SQLITE_PATH], "nothing else written");
    let inside = std::fs::read_dir(dir.path().join(DEFAULT_SQLITE_PATH)).unwrap();
    assert_eq!(inside.count(), 0, "nothing written inside the directory");
}

/// `cached_client()` caches in `./http_cache.sqlite`: the repeat is a hit, and the entry is
/// in that file in the current directory.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn cached_client_caches_in_the_current_directory() {
    const TEST: &str = "builder_settings::cached_client_caches_in_the_current_directory";
    if is_child(TEST) {
        let client = reqwest_caching::cached_client().expect("open ./http_cache.sqlite");
        let origin = Origin::start().await;
        let (_, info) = crate::support::send(client.get(origin.url("/c"))).await;
        assert!(info.stored && !info.from_cache, "{info:?}");
        let (body, info) = crate::support::send(client.get(origin.url("/c"))).await;
        assert!(info.from_cache, "{info:?}");
        assert_eq!(body, "/c #1");
        assert_eq!(origin.hits("/c"), 1);
        println!("child checks passed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run_child_in(TEST, dir.path()).await;
    let file = dir.path().join(DEFAULT_SQLITE_PATH);
    assert!(file.is_file(), "{} created", file.display());
    let store = reqwest_caching::SqliteStore::open(&file).unwrap();
    let count = reqwest_caching::CacheStore::count(&store).await.unwrap();
    assert_eq!(count, 1, "the entry is in the file");
}

/// `CacheHandle::reconfigure`: expiration, URL patterns and the session's mode change while
/// the cache runs; a request in flight finishes under the settings it started with.
#[tokio::test]
async fn settings_change_at_runtime_atomically() {
    use reqwest_caching::{CacheMode, Expiration, UrlPattern};
    use std::time::Duration;
    for &backend in crate::support::BACKENDS {
        let h = crate::support::Harness::new(backend).await;
        h.handle
            .reconfigure(|s| {
                s.expire_after(Duration::from_secs(10))
                    .urls_expire_after([("127.0.0.1:*/live", Expiration::DoNotCache)])
            })
            .unwrap();
        assert_eq!(h.handle.settings().url_patterns().len(), 1);
        h.fetch("/a").await;
        h.fetch("/live").await;
        assert!(!h.fetch("/live").await.1.from_cache, "{backend:?}");
        assert!(h.fetch("/a").await.1.from_cache);
        h.clock.advance(Duration::from_secs(11));
        assert!(
            !h.fetch("/a").await.1.from_cache,
            "{backend:?}: expired after 10 s"
        );

        // In flight across a change: stored under the settings it started with.
        let in_flight = tokio::spawn(h.client.get(h.origin.url("/held/x")).send());
        let origin = &h.origin;
        crate::support::wait_until(|| origin.hits("/held/x") == 1).await;
        h.handle
            .reconfigure(|s| {
                s.urls_expire_after([(UrlPattern::regex("/held/"), Expiration::DoNotCache)])
            })
            .unwrap();
        h.origin.open_gate();
        let response = in_flight.await.unwrap().unwrap();
        let info = reqwest_caching::CacheResponseExt::cache_info(&response).unwrap();
        assert!(info.stored, "{backend:?}: {info:?}");
        let (_, info) = h.fetch("/held/x").await;
        assert!(
            !info.from_cache && !info.stored,
            "{backend:?}: the new rule"
        );
        assert_eq!(h.origin.hits("/held/x"), 2);

        // The session's mode, and always-revalidate.
        h.handle
            .reconfigure(|s| s.mode(CacheMode::Offline))
            .unwrap();
        let (_, info) = h.fetch("/never-fetched").await;
        assert!(info.offline_miss, "{backend:?}");
        assert_eq!(h.origin.hits("/never-fetched"), 0);
        h.handle
            .reconfigure(|s| s.mode(CacheMode::Default).always_revalidate(true))
            .unwrap();
        h.fetch("/etag/r").await;
        assert!(h.fetch("/etag/r").await.1.revalidated, "{backend:?}");
        assert_eq!(h.origin.hits("/etag/r"), 2);

        // A pattern that does not compile changes nothing.
        let before = h.handle.settings();
        let error = h
            .handle
            .reconfigure(|s| {
                s.expire_after(Expiration::Immediately)
                    .urls_expire_after([(UrlPattern::regex("("), Expiration::Never)])
            })
            .unwrap_err();
        assert!(matches!(error, reqwest_caching::Error::InvalidRegex { .. }));
        assert_eq!(h.handle.settings(), before);
    }
}
