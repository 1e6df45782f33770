//! Bodies slower to end than `stream_after` (a watch stream, an origin writing as it
//! computes): the caller gets the response and the first part at once, as without the cache,
//! and the body is stored once the caller has read it to its end. They were read to their
//! end (or the size limit) before the caller got anything, which for a stream that waits on
//! its reader, or never ends, was never.

use std::time::Duration;

use reqwest_caching::{CacheHandle, CacheInfo, CacheMiddleware, CacheResponseExt, MemoryStore};
use reqwest_middleware::ClientWithMiddleware;

use crate::origin::{Origin, TRICKLE_FIRST, TRICKLE_REST};

/// Long enough for any wait the tests make on a loaded machine; the cache's own patience is
/// far shorter.
const WAIT: Duration = Duration::from_secs(20);

/// A client that streams a body still arriving after 100 ms: the origin's rest waits for
/// the test, so that is every `/trickle` body until the gate opens.
fn client(builder: reqwest_caching::CacheMiddlewareBuilder) -> (ClientWithMiddleware, CacheHandle) {
    built(builder.stream_after(Duration::from_millis(100)))
}

fn built(builder: reqwest_caching::CacheMiddlewareBuilder) -> (ClientWithMiddleware, CacheHandle) {
    let cache = builder.store_timeout(WAIT).build().expect("cache");
    let handle = cache.handle();
    (cache.into_client(reqwest::Client::new()), handle)
}

/// Sends a request to `path` (a `/trickle` body, or a redirect to one) and reads its first
/// part, while the origin holds back the rest: both must come without the body ending.
async fn first_part(
    client: &ClientWithMiddleware,
    origin: &Origin,
    path: &str,
) -> (reqwest::Response, CacheInfo) {
    let send = client.get(origin.url(path)).send();
    let mut response = tokio::time::timeout(WAIT, send)
        .await
        .expect("the response arrives while its body goes on")
        .expect("response");
    let info = response.cache_info().cloned().expect("info");
    let first = tokio::time::timeout(WAIT, response.chunk())
        .await
        .expect("the first part arrives while the body goes on")
        .expect("chunk");
    assert_eq!(first.as_deref(), Some(TRICKLE_FIRST));
    (response, info)
}

async fn rest_of(mut response: reqwest::Response) -> Vec<u8> {
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(WAIT, response.chunk())
        .await
        .expect("the body ends")
        .expect("chunk")
    {
        rest.extend_from_slice(&chunk);
    }
    rest
}

fn whole() -> Vec<u8> {
    [TRICKLE_FIRST, TRICKLE_REST].concat()
}

async fn assert_served_from_cache(client: &ClientWithMiddleware, origin: &Origin, name: &str) {
    let again = client
        .get(origin.url(&format!("/trickle/{name}")))
        .send()
        .await
        .unwrap();
    assert!(again.cache_info().unwrap().from_cache, "{name}: a hit");
    assert_eq!(again.bytes().await.unwrap(), whole(), "{name}");
    assert_eq!(
        origin.hits(&format!("/trickle/{name}")),
        1,
        "{name}: answered from the cache"
    );
}

#[tokio::test]
async fn a_slow_body_streams_to_the_caller_and_is_stored_at_its_end() {
    let origin = Origin::start().await;
    let (client, handle) = client(CacheMiddleware::builder().store(MemoryStore::new()));
    let (response, info) = first_part(&client, &origin, "/trickle/t").await;
    assert!(!info.stored && !info.from_cache, "{info:?}");
    assert!(info.key.is_some(), "{info:?}");
    assert_eq!(handle.count().await.unwrap(), 0, "nothing stored yet");
    origin.open_gate();
    assert_eq!(rest_of(response).await, TRICKLE_REST);
    assert_eq!(handle.count().await.unwrap(), 1, "stored at the end");
    assert_served_from_cache(&client, &origin, "t").await;
}

/// A store that keeps bodies in files writes the body to its file as it streams; signed, a
/// body of no announced length cannot be (the signature covers the length, which precedes
/// the body), and is kept in memory to its end instead.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_slow_body_streams_into_a_store_that_keeps_files() {
    for (signed, name) in [(false, "f"), (true, "signed")] {
        let dir = tempfile::tempdir().unwrap();
        let store = reqwest_caching::FsStore::open(dir.path()).unwrap();
        let origin = Origin::start().await;
        let mut builder = CacheMiddleware::builder().store(store);
        if signed {
            builder = builder.signing_keys(reqwest_caching::SigningKeys::new(
                b"a secret of 32 bytes or more....".to_vec(),
            ));
        }
        let (client, handle) = client(builder);
        let (response, info) = first_part(&client, &origin, &format!("/trickle/{name}")).await;
        assert!(!info.stored, "{name}: {info:?}");
        origin.open_gate();
        assert_eq!(rest_of(response).await, TRICKLE_REST, "{name}");
        assert_eq!(
            handle.count().await.unwrap(),
            1,
            "{name}: stored at the end"
        );
        assert_served_from_cache(&client, &origin, name).await;
    }
}

/// A caller that stops reading early stores nothing: the cache never read the rest.
#[tokio::test]
async fn a_slow_body_dropped_early_is_not_stored() {
    let origin = Origin::start().await;
    let (client, handle) = client(CacheMiddleware::builder().store(MemoryStore::new()));
    let (response, _) = first_part(&client, &origin, "/trickle/d").await;
    drop(response);
    origin.open_gate();
    assert_eq!(handle.count().await.unwrap(), 0, "nothing stored");
    let again = client.get(origin.url("/trickle/d")).send().await.unwrap();
    assert!(!again.cache_info().unwrap().from_cache);
    assert_eq!(again.bytes().await.unwrap(), whole());
    assert_eq!(origin.hits("/trickle/d"), 2, "the second request went out");
}

/// A slow body that grows past `max_body_size` reaches the caller whole and is not stored.
#[tokio::test]
async fn a_slow_body_over_the_size_limit_is_not_stored() {
    let origin = Origin::start().await;
    let limit = (TRICKLE_FIRST.len() + 1) as u64;
    let builder = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .max_body_size(limit);
    let (client, handle) = client(builder);
    let (response, _) = first_part(&client, &origin, "/trickle/l").await;
    origin.open_gate();
    assert_eq!(rest_of(response).await, TRICKLE_REST);
    assert_eq!(handle.count().await.unwrap(), 0, "nothing stored");
}

/// A body that ends within `stream_after` is stored before the caller gets it, as always.
#[tokio::test]
async fn a_body_that_ends_in_time_is_stored_before_it_is_returned() {
    let origin = Origin::start().await;
    origin.open_gate();
    // Patient enough for a loaded machine: the body ends as soon as the origin sends it.
    let builder = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .stream_after(WAIT);
    let (client, handle) = built(builder);
    let response = client.get(origin.url("/trickle/o")).send().await.unwrap();
    assert!(response.cache_info().unwrap().stored);
    assert_eq!(handle.count().await.unwrap(), 1);
    assert_eq!(response.bytes().await.unwrap(), whole());
    assert_served_from_cache(&client, &origin, "o").await;
}

/// An identical request made while a slow body streams to the first caller waits for it to
/// be stored (single-flight), rather than going to the origin as well: the leader's flight
/// lasts until its body is stored, not until its head is returned.
#[tokio::test]
async fn a_request_for_a_slow_body_in_flight_waits_for_it() {
    let origin = Origin::start().await;
    let (client, _) = client(CacheMiddleware::builder().store(MemoryStore::new()));
    let (response, _) = first_part(&client, &origin, "/trickle/sf").await;
    let second = tokio::spawn({
        let send = client.get(origin.url("/trickle/sf")).send();
        async move { tokio::time::timeout(WAIT, send).await }
    });
    // Time for the second request to join the flight (or, wrongly, reach the origin).
    tokio::time::sleep(Duration::from_millis(300)).await;
    origin.open_gate();
    assert_eq!(rest_of(response).await, TRICKLE_REST);
    let second = second
        .await
        .unwrap()
        .expect("the second request is answered")
        .unwrap();
    assert!(
        second.cache_info().unwrap().from_cache,
        "answered from the cache"
    );
    assert_eq!(second.bytes().await.unwrap(), whole());
    assert_eq!(
        origin.hits("/trickle/sf"),
        1,
        "one request reached the origin"
    );
}

/// A recording reads a slow body whole before returning: a caller that checks only the
/// status still records it.
#[tokio::test]
async fn a_recording_reads_a_slow_body_whole() {
    let origin = Origin::start().await;
    let builder = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .mode(reqwest_caching::CacheMode::Record);
    let (client, handle) = client(builder);
    let send = client.get(origin.url("/trickle/r")).send();
    let opened = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        origin.open_gate();
    };
    let (response, ()) = tokio::join!(send, opened);
    let response = response.unwrap();
    assert!(
        response.cache_info().unwrap().stored,
        "stored before returned"
    );
    drop(response);
    assert_eq!(handle.count().await.unwrap(), 1);
}

/// Strict mode stores a redirected response for its final URL alone (the redirect's own
/// directives were never seen); a slow one too, in a store that keeps files, where the
/// spool would have stored it for the URL asked for.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_slow_redirected_body_is_stored_for_its_final_url_alone_in_strict_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = reqwest_caching::FsStore::open(dir.path()).unwrap();
    let origin = Origin::start().await;
    let builder = CacheMiddleware::builder()
        .store(store)
        .strict_rfc9111(true)
        .expire_after(Duration::from_secs(600));
    let (client, _) = client(builder);
    let (response, _) = first_part(&client, &origin, "/to-trickle/s").await;
    origin.open_gate();
    assert_eq!(rest_of(response).await, TRICKLE_REST);
    let again = client
        .get(origin.url("/to-trickle/s"))
        .send()
        .await
        .unwrap();
    assert!(
        !again.cache_info().unwrap().from_cache,
        "not for the URL asked"
    );
    assert_eq!(origin.hits("/to-trickle/s"), 2);
    let hits = origin.hits("/trickle/s");
    let final_url = client.get(origin.url("/trickle/s")).send().await.unwrap();
    assert!(
        final_url.cache_info().unwrap().from_cache,
        "for the final URL"
    );
    assert_eq!(final_url.bytes().await.unwrap(), whole());
    assert_eq!(origin.hits("/trickle/s"), hits);
}

/// A slow body whose length the origin announced keeps it for the caller
/// (`content_length()`), though it streams.
#[tokio::test]
async fn a_slow_body_keeps_its_announced_length() {
    let origin = Origin::start().await;
    let (client, handle) = client(CacheMiddleware::builder().store(MemoryStore::new()));
    let (response, info) = first_part(&client, &origin, "/trickle/n?length").await;
    assert!(!info.stored, "it streams: {info:?}");
    // What is left of the announced length once the first part is read, as reqwest reports
    // it for a body read in part without the cache.
    let left = TRICKLE_REST.len() as u64;
    assert_eq!(response.content_length(), Some(left));
    origin.open_gate();
    assert_eq!(rest_of(response).await, TRICKLE_REST);
    assert_eq!(handle.count().await.unwrap(), 1, "stored at the end");
}

/// A `POST` that changes a URL while a slow body of it streams keeps that body from being
/// stored: it was the origin's answer before the change, and storing it once read would undo
/// the invalidation. In memory and in a store that keeps files.
#[tokio::test]
async fn a_slow_body_is_not_stored_over_an_invalidation_of_its_url() {
    #[cfg(feature = "fs")]
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<(&str, reqwest_caching::CacheMiddlewareBuilder)> = vec![
        (
            "memory",
            CacheMiddleware::builder().store(MemoryStore::new()),
        ),
        #[cfg(feature = "fs")]
        (
            "fs",
            CacheMiddleware::builder().store(reqwest_caching::FsStore::open(dir.path()).unwrap()),
        ),
    ];
    for (name, builder) in stores {
        let origin = Origin::start().await;
        let (client, handle) = client(builder);
        let (response, _) = first_part(&client, &origin, "/trickle/i").await;
        // The POST's head arrives at once (its body waits for the gate too): the URL's
        // entries are invalidated as it does.
        let post = client.post(origin.url("/trickle/i")).send().await.unwrap();
        assert!(post.status().is_success(), "{name}");
        drop(post);
        origin.open_gate();
        assert_eq!(rest_of(response).await, TRICKLE_REST, "{name}");
        assert_eq!(handle.count().await.unwrap(), 0, "{name}: not stored");
        let again = client.get(origin.url("/trickle/i")).send().await.unwrap();
        assert!(!again.cache_info().unwrap().from_cache, "{name}");
    }
}

/// The handle's `delete_url` while a slow body of the URL streams keeps it from being
/// stored, as an unsafe request does; and a `POST` to the URL a slow body was redirected to
/// keeps it from being stored for either URL.
#[tokio::test]
async fn a_slow_body_is_not_stored_over_a_deleted_url_or_a_changed_final_url() {
    let origin = Origin::start().await;
    let (client, handle) = client(CacheMiddleware::builder().store(MemoryStore::new()));
    let (deleted, _) = first_part(&client, &origin, "/trickle/h").await;
    handle.delete_url(&origin.url("/trickle/h")).await.unwrap();
    let (redirected, _) = first_part(&client, &origin, "/to-trickle/f").await;
    let post = client.post(origin.url("/trickle/f")).send().await.unwrap();
    assert!(post.status().is_success());
    drop(post);
    origin.open_gate();
    assert_eq!(rest_of(deleted).await, TRICKLE_REST);
    assert_eq!(rest_of(redirected).await, TRICKLE_REST);
    assert_eq!(handle.count().await.unwrap(), 0, "neither stored");
}

/// A body over the limit redirected to a URL that an unsafe request changes while the body
/// streams is not stored: the response is the final URL's, as a body read whole is not
/// stored then. (The spool checked the URL asked for alone, and stored it under that URL.)
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_spooled_body_is_not_stored_over_a_change_of_its_final_url() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start().await;
    let store = reqwest_caching::FsStore::open(dir.path()).unwrap();
    // Its first part is over the limit: the rest goes to the spool as it streams.
    let (client, handle) = client(CacheMiddleware::builder().max_body_size(4).store(store));
    let (redirected, _) = first_part(&client, &origin, "/to-trickle/s").await;
    let post = client.post(origin.url("/trickle/s")).send().await.unwrap();
    assert!(post.status().is_success());
    drop(post);
    // The same sent after the change: stored, so this path spools.
    let (control, _) = first_part(&client, &origin, "/to-trickle/t").await;
    origin.open_gate();
    assert_eq!(rest_of(control).await, TRICKLE_REST);
    assert_eq!(rest_of(redirected).await, TRICKLE_REST);
    assert_eq!(
        handle.count().await.unwrap(),
        1,
        "only the unchanged one stored"
    );
    let again = client
        .get(origin.url("/to-trickle/t"))
        .send()
        .await
        .unwrap();
    assert!(again.cache_info().unwrap().from_cache);
}

/// A URL changed while the spool commits (after its last check, before the entry is there)
/// does not keep the entry: the commit's write is taken back, as a write of a whole body is.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_url_changed_while_the_spool_commits_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start().await;
    let store = crate::gated::Gated::new(std::sync::Arc::new(
        reqwest_caching::FsStore::open(dir.path()).unwrap(),
    ));
    let mut committing = store.gate_commits();
    let (client, handle) = client(CacheMiddleware::builder().store(store));
    let (response, _) = first_part(&client, &origin, "/trickle/c").await;
    origin.open_gate();
    let rest = tokio::spawn(rest_of(response));
    let release = tokio::time::timeout(WAIT, committing.recv())
        .await
        .expect("the commit begins once the body has ended")
        .expect("a commit");
    handle.delete_url(&origin.url("/trickle/c")).await.unwrap();
    release.send(()).unwrap();
    assert_eq!(rest.await.unwrap(), TRICKLE_REST);
    assert_eq!(handle.count().await.unwrap(), 0, "taken back");
    let again = client.get(origin.url("/trickle/c")).send().await.unwrap();
    assert!(!again.cache_info().unwrap().from_cache);
}

/// A spool whose write or commit never ends (a hung disk) holds the caller's body no longer
/// than the store timeout: the body goes on to its end, uncached. It stopped at that chunk
/// for good.
#[cfg(feature = "fs")]
#[tokio::test]
async fn a_spool_that_hangs_holds_the_body_no_longer_than_the_store_timeout() {
    for gate in ["write", "commit"] {
        let dir = tempfile::tempdir().unwrap();
        let origin = Origin::start().await;
        let store = crate::gated::Gated::new(std::sync::Arc::new(
            reqwest_caching::FsStore::open(dir.path()).unwrap(),
        ));
        let mut hung = match gate {
            "write" => store.gate_writes(),
            _ => store.gate_commits(),
        };
        let cache = CacheMiddleware::builder()
            .store(store)
            .stream_after(Duration::from_millis(100))
            .store_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let handle = cache.handle();
        let client = cache.into_client(reqwest::Client::new());
        let (response, _) = first_part(&client, &origin, "/trickle/h").await;
        origin.open_gate();
        assert_eq!(rest_of(response).await, TRICKLE_REST, "{gate}");
        // Held, never released: the spool's call never ends.
        let _held = hung.try_recv().expect("the spool was called");
        assert_eq!(handle.count().await.unwrap(), 0, "{gate}: nothing stored");
        let again = client.get(origin.url("/trickle/h")).send().await.unwrap();
        assert!(!again.cache_info().unwrap().from_cache, "{gate}");
    }
}
