//! The conformance suite against a real `redis-server` and a real 3-node Redis Cluster, both
//! started by test-support. Each scenario gets its own key prefix.

use std::sync::Arc;
use std::time::Duration;

use cache_core::CacheStore;
use cache_core::testing::StoreUnderTest;
use cache_redis::RedisStore;
use test_support::{shared_redis, shared_redis_cluster, unique_namespace};

const TTL_OFFSET: Duration = Duration::from_secs(600);

mod single {
    use super::*;

    async fn redis_store() -> StoreUnderTest {
        let url = shared_redis().url();
        let prefix = unique_namespace("conformance");
        let open = move |url: String, prefix: String| async move {
            let store = RedisStore::builder()
                .prefix(prefix)
                .ttl_offset(Some(TTL_OFFSET))
                .open(&url)
                .await
                .expect("connect to redis-server");
            Arc::new(store) as Arc<dyn CacheStore>
        };
        let store = open(url.clone(), prefix.clone()).await;
        StoreUnderTest::new(store)
            .with_retention(TTL_OFFSET)
            .with_reopen(move || open(url.clone(), prefix.clone()))
    }

    cache_core::store_conformance_tests!(redis_store);
}

mod cluster {
    use super::*;

    async fn cluster_store() -> StoreUnderTest {
        let urls = shared_redis_cluster().urls();
        let prefix = unique_namespace("conformance");
        let open = move |urls: Vec<String>, prefix: String| async move {
            let store = RedisStore::builder()
                .prefix(prefix)
                .ttl_offset(Some(TTL_OFFSET))
                .open_cluster(urls)
                .await
                .expect("connect to the redis cluster");
            Arc::new(store) as Arc<dyn CacheStore>
        };
        let store = open(urls.clone(), prefix.clone()).await;
        StoreUnderTest::new(store)
            .with_retention(TTL_OFFSET)
            .with_reopen(move || open(urls.clone(), prefix.clone()))
    }

    cache_core::store_conformance_tests!(cluster_store);
}

/// Two prefixes on one server never see each other's entries.
#[tokio::test]
async fn prefixes_keep_caches_apart() {
    let url = shared_redis().url();
    let a = RedisStore::builder()
        .prefix(unique_namespace("a"))
        .open(&url)
        .await
        .unwrap();
    let b = RedisStore::builder()
        .prefix(unique_namespace("b"))
        .open(&url)
        .await
        .unwrap();
    a.put(cache_core::testing::entry(
        1,
        bytes::Bytes::from_static(b"a"),
        None,
    ))
    .await
    .unwrap();
    assert_eq!(b.count().await.unwrap(), 0);
    assert_eq!(b.get(&cache_core::testing::key(1)).await.unwrap(), None);
    assert_eq!(b.clear().await.unwrap(), 0);
    assert_eq!(a.count().await.unwrap(), 1);
}

/// A server that is not there is a transient error, not a hang or a panic.
#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let port = test_support::unused_port();
    let err = RedisStore::builder()
        .timeout(Duration::from_millis(300))
        .open(&format!("redis://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// Entries expire by Redis's own TTL: expiry plus the offset.
#[tokio::test]
async fn entries_carry_a_native_ttl() {
    let server = shared_redis();
    let prefix = unique_namespace("ttl");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .ttl_offset(Some(TTL_OFFSET))
        .open(&server.url())
        .await
        .unwrap();
    let expires = std::time::SystemTime::now() + Duration::from_secs(60);
    let entry = cache_core::testing::entry(1, bytes::Bytes::from_static(b"t"), Some(expires));
    store.put(entry.clone()).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}:{}", entry.meta.key))
        .query_async(&mut conn)
        .await
        .unwrap();
    let expected = (Duration::from_secs(60) + TTL_OFFSET).as_millis() as i64;
    assert!(
        // A minute of slack for a loaded machine; without the offset it would be 600 s less.
        (expected - 60_000..=expected).contains(&ttl),
        "PTTL {ttl} ms, expected about {expected}"
    );
    // Never-expiring entries have no TTL.
    store
        .put(cache_core::testing::entry(
            2,
            bytes::Bytes::from_static(b"n"),
            None,
        ))
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}:{}", cache_core::testing::key(2)))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ttl, -1);
}

/// A store on the shared server under a new prefix (returned), and a connection of our own
/// to the server (another program's, to write under the store's keys).
async fn store_with_raw_connection(
    namespace: &str,
) -> (RedisStore, String, redis::aio::MultiplexedConnection) {
    let server = shared_redis();
    let prefix = unique_namespace(namespace);
    let store = RedisStore::builder()
        .prefix(&prefix)
        .open(&server.url())
        .await
        .unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    (store, prefix, conn)
}

/// A value of another type under an entry's key is a miss and is removed.
#[tokio::test]
async fn foreign_values_are_misses_and_deleted() {
    let (store, prefix, mut conn) = store_with_raw_connection("foreign").await;
    let key = cache_core::testing::key(1);
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:{key}"))
        .arg("plain string")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}:{key}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

/// `set_expiry` renews entries only: under the key, a value of another type or a hash
/// without an entry's fields (another program's) is left as it was, and the call says
/// nothing was renewed (it failed on the first and renewed the second).
#[tokio::test]
async fn set_expiry_leaves_a_value_that_is_no_entry() {
    let (store, prefix, mut conn) = store_with_raw_connection("expiry-foreign").await;
    let (string, hash) = (cache_core::testing::key(1), cache_core::testing::key(2));
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:{string}"))
        .arg("plain string")
        .query_async(&mut conn)
        .await
        .unwrap();
    // With a field named as an entry's URL group, naming a key.
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}:{hash}"))
        .arg("theirs")
        .arg("yes")
        .arg("g")
        .arg(cache_core::testing::key(3).as_str())
        .query_async(&mut conn)
        .await
        .unwrap();
    // An entry's fields but a creation not as the store writes it: reads take it for no
    // entry, so no renewal does either.
    let odd_creation = cache_core::testing::key(4);
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}:{odd_creation}"))
        .arg("u")
        .arg("https://example.com/")
        .arg("c")
        .arg("-5")
        .arg("v")
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let later = Some(std::time::SystemTime::now() + std::time::Duration::from_secs(60));
    assert!(!store.set_expiry(&odd_creation, later).await.unwrap());
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:{odd_creation}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in [string, hash] {
        assert!(!store.set_expiry(&key, later).await.unwrap(), "{key}");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}:{key}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(ttl, -1, "{key}: no expiry given to it");
    }
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{prefix}:{hash}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fields, ["theirs", "g"]);
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    let mut planted = vec![format!("{prefix}:{string}"), format!("{prefix}:{hash}")];
    planted.sort();
    assert_eq!(keys, planted, "no URL group set made for them");
}

/// A Redis at `maxmemory` with `noeviction` refuses writes as `StoreError::Full` (not a
/// transient failure: the middleware's breaker stays closed and reads go on).
#[tokio::test]
async fn a_full_redis_is_full() {
    let server = test_support::RedisServer::start_with_args(&[
        "--maxmemory",
        "2mb",
        "--maxmemory-policy",
        "noeviction",
    ]);
    let store = RedisStore::open(&server.url()).await.expect("connect");
    let value = bytes::Bytes::from(vec![b'v'; 50_000]);
    let mut refused = None;
    for n in 0..200 {
        if let Err(error) = store
            .put(cache_core::testing::entry(n, value.clone(), None))
            .await
        {
            refused = Some(error);
            break;
        }
    }
    let error = refused.expect("2 MB fills up");
    assert!(
        matches!(error, cache_core::StoreError::Full { .. }),
        "{error:?}"
    );
    assert!(!error.is_transient());
    // What was stored stays readable.
    assert!(
        store
            .get(&cache_core::testing::key(0))
            .await
            .unwrap()
            .is_some()
    );
}

/// A store at `url` under `prefix`, keeping decoded copies up to `copies` bytes.
async fn store_with_copies(url: &str, prefix: &str, copies: u64) -> RedisStore {
    RedisStore::builder()
        .prefix(prefix)
        .decoded_copies(copies)
        .open(url)
        .await
        .expect("connect to redis-server")
}

/// A response written with `put_decoded` is read without decoding; not with copies off.
#[tokio::test]
async fn a_written_response_is_read_without_decoding() {
    let url = shared_redis().url();
    let with = store_with_copies(&url, &unique_namespace("copies"), 1 << 20).await;
    let without = store_with_copies(&url, &unique_namespace("no-copies"), 0).await;
    cache_core::testing::written_response_is_read_without_decoding(&with, &without).await;
}

/// A write of an entry already past what Redis keeps deletes the key, and the key's copy.
#[tokio::test]
async fn a_write_past_retention_drops_the_copy() {
    use cache_core::codec::EntryCodec;
    use cache_core::testing::{entry, key, sample_response};
    let url = shared_redis().url();
    let store = store_with_copies(&url, &unique_namespace("copies-past"), 1 << 20).await;
    let response = sample_response();
    let value = EntryCodec::new()
        .encode(Some(&key(1)), &response)
        .expect("encodes");
    store
        .put_decoded(entry(1, value.clone(), None), response)
        .await
        .unwrap();
    assert!(store.decoded_copies_bytes() > 0, "no copy kept");
    // Expired a day ago: past the default hour Redis keeps an entry after expiry.
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
    store.put(entry(1, value, Some(long_ago))).await.unwrap();
    assert!(store.get(&key(1)).await.unwrap().is_none());
    assert_eq!(
        store.decoded_copies_bytes(),
        0,
        "the copy outlived its entry"
    );
}

/// An entry's decoded copy goes with the entry: deleted, expired and deleted, or cleared.
#[tokio::test]
async fn copies_go_with_their_entries() {
    let url = shared_redis().url();
    let store = store_with_copies(&url, &unique_namespace("copies-go"), 1 << 20).await;
    cache_core::testing::copies_go_with_their_entries(&store, || store.decoded_copies_bytes())
        .await;
}

/// Another client's overwrite, expiry change and delete are read at once by a store holding
/// a copy of the entry before.
#[tokio::test]
async fn another_client_s_writes_are_read_at_once() {
    let url = shared_redis().url();
    let prefix = unique_namespace("copies-shared");
    let reader = store_with_copies(&url, &prefix, 1 << 20).await;
    let writer = store_with_copies(&url, &prefix, 1 << 20).await;
    cache_core::testing::copies_follow_another_instance(&reader, &writer).await;
}

/// A store at `url` under `prefix` keeping decoded copies, holding the copy of entry 1 that
/// its `put_decoded` of the sample response kept.
async fn store_holding_a_copy(url: &str, prefix: &str) -> RedisStore {
    use cache_core::codec::EntryCodec;
    use cache_core::testing::{entry, key, sample_response};
    let store = store_with_copies(url, prefix, 1 << 20).await;
    let response = sample_response();
    let value = EntryCodec::new()
        .encode(Some(&key(1)), &response)
        .expect("encodes");
    store
        .put_decoded(entry(1, value, None), response)
        .await
        .unwrap();
    assert!(store.decoded_copies_bytes() > 0, "no copy kept");
    store
}

/// With a copy kept, a hit reads the value, creation and expiry only, and the copy answers
/// for them: here though another program removed the entry's URL field (which every write
/// of this store sets with them, in the same `HSET`). Read whole, without a copy, that hash
/// is not an entry.
#[tokio::test]
async fn a_kept_copy_is_checked_by_its_value_and_times() {
    use cache_core::testing::key;
    let server = shared_redis();
    let prefix = unique_namespace("copies-fields");
    let reader = store_holding_a_copy(&server.url(), &prefix).await;
    let codec = cache_core::codec::EntryCodec::new();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let removed: i64 = redis::cmd("HDEL")
        .arg(format!("{prefix}:{}", key(1)))
        .arg("u")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let read = reader.get_decoded(&key(1), &codec).await.unwrap();
    assert!(
        matches!(read, Some(Ok(_))),
        "the copy did not answer: {read:?}"
    );
    let without_copies = store_with_copies(&server.url(), &prefix, 0).await;
    assert!(
        without_copies
            .get_decoded(&key(1), &codec)
            .await
            .unwrap()
            .is_none()
    );
}

/// A copy that no longer answers is dropped even when decoding keeps no new one (here the
/// value another client wrote does not decode): the key's later reads do not ask with it
/// first, a round trip each for nothing.
#[tokio::test]
async fn a_copy_that_cannot_answer_is_dropped() {
    use cache_core::testing::{entry, key};
    let url = shared_redis().url();
    let prefix = unique_namespace("copies-stale");
    let reader = store_holding_a_copy(&url, &prefix).await;
    let writer = store_with_copies(&url, &prefix, 0).await;
    let codec = cache_core::codec::EntryCodec::new();
    let foreign = bytes::Bytes::from_static(b"not an entry's value");
    writer.put(entry(1, foreign, None)).await.unwrap();
    let read = reader.get_decoded(&key(1), &codec).await.unwrap();
    assert!(matches!(read, Some(Err(_))), "{read:?}");
    assert_eq!(
        reader.decoded_copies_bytes(),
        0,
        "a copy that cannot answer was kept"
    );
}

/// A pair read whose one key holds something else: that key is a miss and is deleted, the
/// other is read as usual (the pipeline's replies are judged one by one).
#[tokio::test]
async fn a_foreign_value_in_a_pair_read_spoils_only_its_own_read() {
    use cache_core::codec::EntryCodec;
    use cache_core::testing::{entry, key, sample_response};
    let server = shared_redis();
    let prefix = unique_namespace("pair-foreign");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .open(&server.url())
        .await
        .unwrap();
    let codec = EntryCodec::new();
    let value = codec.encode(Some(&key(2)), &sample_response()).unwrap();
    store.put(entry(2, value, None)).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let foreign = format!("{prefix}:{}", key(1));
    let _: () = redis::cmd("SET")
        .arg(&foreign)
        .arg("plain string")
        .query_async(&mut conn)
        .await
        .unwrap();

    let [first, second] = store.get_decoded_pair(&key(1), &key(2), &codec).await;
    assert!(first.expect("a miss, not a failure").is_none());
    let second = second.expect("read").expect("stored").expect("decodes");
    assert_eq!(second.meta.key, key(2));
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&foreign)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the foreign value was deleted");
}

/// A pair read is one round trip: the server reads both commands at once (one read of the
/// connection), where two reads sent apart are two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_read_reaches_the_server_in_one_read() {
    use cache_core::codec::EntryCodec;
    use cache_core::testing::{entry, key, sample_response};
    // A server of its own: no other test's commands in its counts.
    let server = test_support::RedisServer::start();
    let store = RedisStore::open(&server.url()).await.expect("connect");
    let codec = EntryCodec::new();
    for n in [1, 2] {
        let value = codec.encode(Some(&key(n)), &sample_response()).unwrap();
        store.put(entry(n, value, None)).await.unwrap();
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut reads_processed = async || -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut conn)
            .await
            .unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix("total_reads_processed:"))
            .expect("INFO stats has total_reads_processed")
            .trim()
            .parse()
            .unwrap()
    };
    // The first pair reads whole entries; the next ones, by the copies it kept. Many times:
    // reads sent apart reach the server apart only now and then (as when its worker is
    // preempted between the two sends).
    let before = reads_processed().await;
    const PAIRS: u64 = 40;
    for _ in 0..PAIRS {
        let [first, second] = store.get_decoded_pair(&key(1), &key(2), &codec).await;
        assert!(first.unwrap().unwrap().is_ok() && second.unwrap().unwrap().is_ok());
    }
    // The pairs' reads and this INFO's own.
    let reads = reads_processed().await - before - 1;
    assert_eq!(
        reads, PAIRS,
        "{PAIRS} pairs took {reads} reads of the connection"
    );
}

/// A renewal whose URL group cannot be added to (here the set's key holds a string) writes
/// nothing: the entry is never renewed past a set that does not list it (written first and
/// the add failing after, the renewed entry outlived its set and an invalidation of its URL
/// missed it, and the caller was told of a failure for a write that landed).
#[tokio::test]
async fn a_renewal_whose_group_cannot_be_joined_writes_nothing() {
    let server = shared_redis();
    let prefix = unique_namespace("renewgroup");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .open(&server.url())
        .await
        .unwrap();
    let grouped = |body: &'static [u8], secs: u64| {
        let mut entry = cache_core::testing::entry(1, bytes::Bytes::from_static(body), None);
        entry.meta.created_at += Duration::from_secs(secs);
        entry.meta.url_group = Some(cache_core::testing::group(1));
        entry
    };
    let read = grouped(b"read", 0);
    store.put(read.clone()).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let set = format!("{prefix}:g:{}", cache_core::testing::group(1));
    let () = redis::cmd("SET")
        .arg(&set)
        .arg("not a set")
        .query_async(&mut conn)
        .await
        .unwrap();
    let renewal = store
        .put_if_created(grouped(b"renewed", 5), read.meta.created_at)
        .await;
    assert!(renewal.is_err(), "{renewal:?}");
    let kept = store.get(&cache_core::testing::key(1)).await.unwrap();
    assert_eq!(kept.map(|entry| entry.value), Some(read.value));
}

/// Another program's key under the prefix, or member of a URL group's set, that is no text
/// is passed over: read as text, it failed every page of a scan it was on (so every `count`,
/// listing, sweep and `clear`, which then left the entries after it) and every listing of
/// the URL group (so every invalidation of the URL).
#[tokio::test]
async fn names_that_are_no_text_are_passed_over() {
    let (store, prefix, mut conn) = store_with_raw_connection("no-text").await;
    let stored = cache_core::testing::grouped_entry(1, 7, None);
    store.put(stored.clone()).await.unwrap();
    let mut foreign_key = format!("{prefix}:").into_bytes();
    foreign_key.extend_from_slice(b"\xff\xfe");
    let _: () = redis::cmd("SET")
        .arg(&foreign_key)
        .arg("another program's")
        .query_async(&mut conn)
        .await
        .unwrap();
    let group = cache_core::testing::group(7);
    let _: i64 = redis::cmd("SADD")
        .arg(format!("{prefix}:g:{group}"))
        .arg(&b"\xff\xfe"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let listed = store.entries_for_url(&group).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, stored.meta.key);
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.clear().await.unwrap(), 1);
    assert!(store.get(&stored.meta.key).await.unwrap().is_none());
}
