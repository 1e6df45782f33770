//! Record and replay for tests: `CacheMiddleware::record(dir)` stores every response the
//! settings allow into a fixture directory, whatever its freshness headers say;
//! `CacheMiddleware::replay(dir)` answers from it without the network, and a request nothing
//! recorded answers fails with a `ReplayMiss` naming it.

use reqwest_caching::reqwest_middleware::{ClientWithMiddleware, Error as ChainError};
use reqwest_caching::{CacheMiddleware, CacheMode, CacheResponseExt, FsStore, ReplayMiss};

use crate::origin::Origin;
use crate::support::{custom, read_tree, send};

/// The requests of one recorded session: paths, and headers the origin answers with that
/// would keep a normal cache from storing or reusing them.
fn session() -> Vec<String> {
    vec![
        "/plain".to_owned(),
        "/etag/e".to_owned(),
        custom("no-store", &["Cache-Control: no-store"]),
        custom("max-age-0", &["Cache-Control: max-age=0"]),
        custom("no-cache", &["Cache-Control: no-cache", "Pragma: no-cache"]),
        custom("expired", &["Expires: Thu, 01 Jan 1970 00:00:00 GMT"]),
        custom("private", &["Cache-Control: private, max-age=60"]),
    ]
}

fn client(cache: CacheMiddleware) -> ClientWithMiddleware {
    cache.into_client(reqwest::Client::new())
}

/// The `ReplayMiss` a replayed request failed with.
fn replay_miss(result: Result<reqwest::Response, ChainError>) -> ReplayMiss {
    match result {
        Err(ChainError::Middleware(error)) => match error.downcast_ref::<ReplayMiss>() {
            Some(miss) => miss.clone(),
            None => panic!("another middleware error: {error:#}"),
        },
        Err(other) => panic!("expected a replay miss, got {other:?}"),
        Ok(response) => panic!("expected a replay miss, got {}", response.status()),
    }
}

#[tokio::test]
async fn record_a_session_then_replay_it_without_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    let origin = Origin::start().await;
    let recorder = client(CacheMiddleware::record(&fixtures).unwrap());
    let mut recorded = Vec::new();
    for path in session() {
        let response = recorder.get(origin.url(&path)).send().await.unwrap();
        assert!(response.cache_info().unwrap().stored, "{path}: recorded");
        recorded.push(response.text().await.unwrap());
    }
    let head = recorder
        .head(origin.url("/head-only"))
        .send()
        .await
        .unwrap();
    assert!(head.cache_info().unwrap().stored, "HEAD recorded");
    // Recording goes to the origin every time, and keeps the last answer.
    let (again, _) = send(recorder.get(origin.url("/plain"))).await;
    assert_eq!(again, "/plain #2");
    recorded[0] = again;
    let sent = origin.total();
    assert_eq!(sent, session().len() + 2);

    // A new process would open the directory afresh: so does this replay.
    let player = client(CacheMiddleware::replay(&fixtures).unwrap());
    for (path, body) in session().iter().zip(&recorded) {
        let (replayed, info) = send(player.get(origin.url(path))).await;
        assert_eq!(&replayed, body, "{path}");
        assert!(info.from_cache && !info.stored, "{path}: {info:?}");
    }
    let head = player.head(origin.url("/head-only")).send().await.unwrap();
    assert!(
        head.status().is_success() && head.from_cache(),
        "HEAD replayed"
    );
    let head = player.head(origin.url("/plain")).send().await.unwrap();
    assert!(head.from_cache(), "a HEAD replayed from a recorded GET");
    assert_eq!(origin.total(), sent, "the replay sent nothing");

    // With the origin gone, the same.
    origin.stop().await;
    let (body, _) = send(player.get(origin.url("/etag/e"))).await;
    assert_eq!(body, "/etag/e #1");
}

#[tokio::test]
async fn a_replay_miss_names_the_request_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start().await;
    let recorder = client(CacheMiddleware::record(dir.path()).unwrap());
    send(recorder.get(origin.url("/recorded"))).await;
    let player = client(CacheMiddleware::replay(dir.path()).unwrap());

    let miss = replay_miss(player.get(origin.url("/other?page=2")).send().await);
    assert_eq!(miss.method, http::Method::GET);
    assert_eq!(miss.url, origin.url("/other?page=2"));
    let message = miss.to_string();
    assert!(
        message.contains("GET") && message.contains(&origin.url("/other?page=2")),
        "{message}"
    );
    // Named as stored: without the credential in the query.
    let miss = replay_miss(player.get(origin.url("/other?api_key=s3cret")).send().await);
    assert_eq!(miss.url, origin.url("/other"));
    // A method the cache does not record is a miss too, never sent.
    let miss = replay_miss(player.post(origin.url("/recorded")).body("x").send().await);
    assert_eq!(miss.method, http::Method::POST);
    // Per request: a replay miss inside a normal cache.
    let normal = client(
        CacheMiddleware::builder()
            .store(FsStore::open(dir.path()).unwrap())
            .build()
            .unwrap(),
    );
    let miss = normal
        .get(origin.url("/third"))
        .with_extension(CacheMode::Replay)
        .send()
        .await;
    assert_eq!(replay_miss(miss).url, origin.url("/third"));
    assert_eq!(origin.total(), 1, "only the recording reached the origin");

    let missing = CacheMiddleware::replay(dir.path().join("nothing-here"));
    assert!(
        matches!(missing, Err(reqwest_caching::Error::NoRecording(_))),
        "a replay of a directory that does not exist"
    );
    assert!(!dir.path().join("nothing-here").exists(), "not created");
}

/// Recording stores what the settings allow, not more: statuses outside `allowable_codes`,
/// cookies, bodies over the limit and `DoNotCache` URLs are not recorded; credentials are
/// never written, and replay finds the entries without them.
#[tokio::test]
async fn record_keeps_what_the_settings_forbid_out() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start().await;
    let recorder = CacheMiddleware::builder()
        .store(FsStore::open(dir.path()).unwrap())
        .per_credential(false)
        .max_body_size(1024)
        .urls_expire_after([(
            format!("{}/live/*", origin.url("").trim_start_matches("http://")),
            reqwest_caching::Expiration::DoNotCache,
        )])
        .mode(CacheMode::Record)
        .build()
        .unwrap();
    let recorder = client(recorder);
    let secret = "tok-5ecret-never-stored";
    let (_, info) = send(
        recorder
            .get(origin.url("/with-token"))
            .bearer_auth(secret)
            .header("x-api-key", secret),
    )
    .await;
    assert!(info.stored, "recorded, without its credentials");
    // No body size here: FsStore records bodies over max_body_size as they stream.
    let forbidden = [
        "/status/500".to_owned(),
        custom("cookie", &["Set-Cookie: session=1"]),
        "/live/feed".to_owned(),
    ];
    for path in &forbidden {
        let (_, info) = send(recorder.get(origin.url(path))).await;
        assert!(!info.stored, "{path}: not recorded");
    }
    let files = String::from_utf8_lossy(&read_tree(dir.path())).into_owned();
    assert!(!files.contains(secret), "a credential reached the fixtures");
    let sent = origin.total();

    let player = client(CacheMiddleware::replay(dir.path()).unwrap());
    let (body, info) = send(player.get(origin.url("/with-token"))).await;
    assert!(info.from_cache, "found without the token");
    assert_eq!(body, "/with-token #1");
    for path in &forbidden {
        let miss = replay_miss(player.get(origin.url(path)).send().await);
        assert_eq!(miss.url, origin.url(path), "{path}");
    }
    assert_eq!(origin.total(), sent, "the replay sent nothing");
}

/// Review findings on recording: a recording keeps every answer it took (an unsafe request
/// through the recorder deletes nothing), never keeps `Set-Cookie` even in strict mode, and
/// honours the caller's own `no-store`.
#[tokio::test]
async fn recording_keeps_its_answers_no_cookies_and_the_callers_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    let origin = Origin::start().await;
    let strict_recorder = CacheMiddleware::builder()
        .store(FsStore::open(&fixtures).unwrap())
        .per_credential(false)
        .mode(CacheMode::Record)
        .strict_rfc9111(true)
        .cache_set_cookie(true)
        .build()
        .unwrap();
    let recorder = client(strict_recorder);
    let (_, info) = send(recorder.get(origin.url("/items"))).await;
    assert!(info.stored);
    // A DELETE of the URL (not an allowable method: passed on) succeeds at the origin...
    let deleted = recorder.delete(origin.url("/items")).send().await.unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    // ...and a response that sets cookies is recorded without them, strict mode or not.
    let (_, info) = send(recorder.get(origin.url("/headers"))).await;
    assert!(info.stored, "{info:?}");
    let tree = String::from_utf8_lossy(&crate::support::read_tree(&fixtures)).to_lowercase();
    assert!(
        !tree.contains("set-cookie"),
        "a cookie reached the fixtures"
    );
    // The caller's own no-store holds even while recording.
    let (_, info) = send(
        recorder
            .get(origin.url("/secret-page"))
            .header("Cache-Control", "no-store"),
    )
    .await;
    assert!(!info.stored, "{info:?}");

    let player = client(CacheMiddleware::replay(&fixtures).unwrap());
    let (body, info) = send(player.get(origin.url("/items"))).await;
    assert!(
        info.from_cache,
        "the DELETE through the recorder deleted the recording"
    );
    assert_eq!(body, "/items #1");
    replay_miss(player.get(origin.url("/secret-page")).send().await);
}

/// A replay only reads its fixtures: recorded, then committed (a repository keeps no empty
/// directories) with a dead recorder's file an hour old and a record this version cannot
/// read, the directory replays and is left exactly as it was, as a read-only checkout needs
/// (the store opened for writing recreated the shards and swept the file).
#[tokio::test]
async fn a_replay_changes_nothing_in_its_fixture_directory() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start().await;
    let recorder = client(CacheMiddleware::record(dir.path()).unwrap());
    let (recorded, _) = send(recorder.get(origin.url("/recorded"))).await;
    send(recorder.get(origin.url("/damaged"))).await;
    drop(recorder);
    test_support::remove_empty_dirs(dir.path());
    let records: Vec<_> = std::fs::read_dir(dir.path().join("entries"))
        .unwrap()
        .flat_map(|shard| std::fs::read_dir(shard.unwrap().path()).unwrap())
        .map(|file| file.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(records.len(), 2);
    let damaged = records
        .iter()
        .find(|path| std::fs::read_to_string(path).unwrap().contains("/damaged"))
        .unwrap();
    std::fs::write(damaged, b"{\"not\": \"a record\"}").unwrap();
    let dead = records[0].with_file_name(".tmp-1234-dead-0.json");
    std::fs::write(&dead, b"{\"key\": \"half a rec").unwrap();
    test_support::backdate(&dead, std::time::Duration::from_secs(3600));
    let before = test_support::tree_snapshot(dir.path());

    let player = client(CacheMiddleware::replay(dir.path()).unwrap());
    let (replayed, info) = send(player.get(origin.url("/recorded"))).await;
    assert_eq!(replayed, recorded);
    assert!(info.from_cache, "{info:?}");
    replay_miss(player.get(origin.url("/other")).send().await);
    replay_miss(player.get(origin.url("/damaged")).send().await);
    replay_miss(player.post(origin.url("/recorded")).body("x").send().await);
    assert_eq!(origin.total(), 2, "only the recording reached the origin");
    assert_eq!(
        test_support::tree_snapshot(dir.path()),
        before,
        "the replay changed the fixtures"
    );
}
