//! What only the SQLite file can show: bytes on disk, hand-made damage (two processes on one
//! file: `sqlite_processes`).

use std::path::Path;

use reqwest_caching::SqliteStore;

use crate::support::{Backend, Harness, send};

fn file_bytes(path: &Path) -> Vec<u8> {
    // The WAL holds recent writes until a checkpoint: read both. While the store is open
    // the WAL exists, so failing to read it fails the test rather than skipping it.
    let mut bytes = std::fs::read(path).unwrap();
    let wal = path.with_extension("sqlite-wal");
    let more = std::fs::read(&wal).unwrap_or_else(|e| panic!("read {}: {e}", wal.display()));
    bytes.extend(more);
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn secrets_never_reach_the_file() {
    let h = Harness::with(Backend::Sqlite, |b| {
        b.ignored_parameters(["api_key", "Authorization", "token"])
    })
    .await;
    send(
        h.get("/big/16?api_key=SECRET-QUERY-1&q=1")
            .bearer_auth("SECRET-BEARER-2"),
    )
    .await;
    send(
        h.get("/big/16?token=SECRET-TOKEN-3")
            .header("cookie", "sid=SECRET-COOKIE-4"),
    )
    .await;
    send(
        h.client
            .get(h.origin.url("/big/16"))
            .basic_auth("user", Some("SECRET-PASSWORD-5")),
    )
    .await;
    // (The origin's body for /big does not echo the URL, so only the cache could leak them.)
    // They reached the origin...
    assert!(
        h.origin
            .seen()
            .iter()
            .any(|s| s.target.contains("SECRET-QUERY-1"))
    );
    // ...the entries exist...
    assert_eq!(h.handle.count().await.unwrap(), 3);
    // ...and the file holds none of them, nor their base64 form.
    let bytes = file_bytes(h.sqlite_path.as_ref().unwrap());
    assert!(
        contains(&bytes, b"/big/16?q=1"),
        "sanity: the file holds the redacted URLs"
    );
    for secret in [
        "SECRET-QUERY-1",
        "SECRET-BEARER-2",
        "SECRET-TOKEN-3",
        "SECRET-COOKIE-4",
        "SECRET-PASSWORD-5",
    ] {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "{secret} found in the SQLite file"
        );
    }
    assert!(
        !contains(&bytes, b"dXNlcjpTRUNSRVQtUEFTU1dPUkQtNQ"),
        "basic auth base64 found"
    );
}

#[tokio::test]
async fn a_corrupt_row_is_a_miss_and_is_stored_again() {
    let h = Harness::new(Backend::Sqlite).await;
    let (_, info) = h.fetch("/c").await;
    let key = info.key.unwrap();
    let conn = rusqlite::Connection::open(h.sqlite_path.as_ref().unwrap()).unwrap();
    let changed = conn
        .execute(
            "UPDATE reqwest_cache_entries SET value = X'DEADBEEF00' WHERE key = ?1",
            [key.as_str()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let (body, info) = h.fetch("/c").await;
    assert!(!info.from_cache, "corrupt entry is a miss");
    assert!(info.stored, "and is replaced");
    assert_eq!(body, "/c #2");
    let (body, info) = h.fetch("/c").await;
    assert!(info.from_cache);
    assert_eq!(body, "/c #2");
    assert_eq!(h.origin.hits("/c"), 2);
    assert_eq!(
        h.handle.stats().errors,
        0,
        "a corrupt entry is not a store error"
    );
}

#[tokio::test]
async fn open_appends_the_extension_like_requests_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("demo_cache")).unwrap();
    assert_eq!(store.path(), dir.path().join("demo_cache.sqlite"));
    assert!(dir.path().join("demo_cache.sqlite").exists());
    let kept = SqliteStore::open(dir.path().join("nested/dir/cache.db")).unwrap();
    assert_eq!(kept.path(), dir.path().join("nested/dir/cache.db"));
}

/// Opening a file that is not SQLite fails with `Unavailable`, keeping SQLite's own
/// "not a database" error whole as its source, and leaves the file as it was.
#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.sqlite");
    let junk = vec![0x42u8; 8192];
    std::fs::write(&path, &junk).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    let reqwest_caching::StoreError::Unavailable { source } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    let cause = source
        .downcast_ref::<rusqlite::Error>()
        .unwrap_or_else(|| panic!("the driver's error is kept whole: {source:?}"));
    assert_eq!(
        cause.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase),
        "{cause:?}"
    );
    assert!(
        cause.to_string().contains("not a database"),
        "the message says why: {cause}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        junk,
        "the file is left alone"
    );
}
