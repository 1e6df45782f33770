//! The conformance suite against a real DynamoDB Local started by test-support. Each scenario
//! gets its own table.

use std::sync::Arc;
use std::time::Duration;

use cache_core::CacheStore;
use cache_core::testing::StoreUnderTest;
use cache_dynamodb::DynamoStore;
use cache_dynamodb::aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use cache_dynamodb::aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use test_support::{shared_dynamo, unique_namespace};

const TTL_OFFSET: Duration = Duration::from_secs(600);

async fn open(table: String) -> Arc<dyn CacheStore> {
    let store = DynamoStore::builder()
        .table(table)
        .ttl_offset(Some(TTL_OFFSET))
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .expect("connect to DynamoDB Local");
    Arc::new(store)
}

async fn dynamo_store() -> StoreUnderTest {
    let table = unique_namespace("t");
    StoreUnderTest::new(open(table.clone()).await)
        .with_retention(TTL_OFFSET)
        .with_reopen(move || open(table.clone()))
}

cache_core::store_conformance_tests!(dynamo_store);

/// A store over `table`, keeping decoded copies up to `copies` bytes.
async fn store_with_copies(table: &str, copies: u64) -> DynamoStore {
    DynamoStore::builder()
        .table(table)
        .decoded_copies(copies)
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .expect("connect to DynamoDB Local")
}

/// A response written with `put_decoded` is read without decoding; not with copies off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_written_response_is_read_without_decoding() {
    let with = store_with_copies(&unique_namespace("copies"), 1 << 20).await;
    let without = store_with_copies(&unique_namespace("no-copies"), 0).await;
    cache_core::testing::written_response_is_read_without_decoding(&with, &without).await;
}

/// An entry's decoded copy goes with the entry: deleted, expired and deleted, or cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_go_with_their_entries() {
    let store = store_with_copies(&unique_namespace("copies-go"), 1 << 20).await;
    cache_core::testing::copies_go_with_their_entries(&store, || store.decoded_copies_bytes())
        .await;
}

/// Another client's overwrite, expiry change and delete are read at once by a store holding
/// a copy of the entry before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_s_writes_are_read_at_once() {
    let table = unique_namespace("shared");
    let reader = store_with_copies(&table, 1 << 20).await;
    let writer = store_with_copies(&table, 1 << 20).await;
    cache_core::testing::copies_follow_another_instance(&reader, &writer).await;
}

/// Values over the item limit are chunked, chunks replaced with the entry, and none left over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_are_chunked_without_leftovers() {
    let store = local_store(&unique_namespace("chunks")).await;
    let big = bytes::Bytes::from(
        (0..1_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    store
        .put(cache_core::testing::entry(1, big.clone(), None))
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&cache_core::testing::key(1))
            .await
            .unwrap()
            .unwrap()
            .value,
        big
    );
    let items = |store: DynamoStore| async move { raw_items(&store).await.len() };
    assert_eq!(
        items(store.clone()).await,
        1 + 3,
        "an entry item and three chunk items"
    );
    store
        .put(cache_core::testing::entry(
            1,
            bytes::Bytes::from_static(b"small"),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(
        items(store.clone()).await,
        1,
        "the replaced entry's chunks are gone"
    );
    assert!(store.delete(&cache_core::testing::key(1)).await.unwrap());
    assert_eq!(items(store).await, 0);
}

/// A chunked write over the entry read only: refused over a newer entry, its chunks go and
/// the newer entry's stay; accepted, the replaced entry's chunks go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_conditional_write_leaves_no_chunks() {
    let store = local_store(&unique_namespace("ifchunks")).await;
    cache_core::testing::conditional_writes_of_large_values(&store, 1_000_000, |after| {
        let store = store.clone();
        async move {
            let items = raw_items(&store).await.len();
            assert_eq!(items, 1 + 3, "{after}: one entry and its three chunks only");
        }
    })
    .await;
}

/// A store on its own table of the local server.
async fn local_store(table: &str) -> DynamoStore {
    DynamoStore::builder()
        .table(table)
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .unwrap()
}

/// Every item of the store's table (entries and chunks), read with a client of our own.
async fn raw_items(
    store: &DynamoStore,
) -> Vec<std::collections::HashMap<String, cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue>>
{
    let client = aws_sdk_dynamodb_client(&shared_dynamo().endpoint()).await;
    // Every page: a scan page stops at 1 MB, which two or three chunks fill.
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let output = client
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(output.items.unwrap_or_default());
        start = output.last_evaluated_key.filter(|key| !key.is_empty());
        if start.is_none() {
            return items;
        }
    }
}

async fn aws_sdk_dynamodb_client(endpoint: &str) -> cache_dynamodb::aws_sdk_dynamodb::Client {
    use cache_dynamodb::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = cache_dynamodb::aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("t", "t", None, None, "static"))
        .build();
    cache_dynamodb::aws_sdk_dynamodb::Client::from_conf(config)
}

/// Creates `table` on the server at `endpoint` by hand, keyed by the string attribute `key`
/// alone and with no index (as an earlier version of the store, or another program, did).
async fn create_table_keyed_by(endpoint: &str, table: &str, key: &str) {
    use cache_dynamodb::aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    aws_sdk_dynamodb_client(endpoint)
        .await
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// An endpoint with nothing behind it is a transient error, not a panic.
#[tokio::test]
async fn unreachable_endpoint_is_unavailable() {
    let port = test_support::unused_port();
    let err = DynamoStore::builder()
        .open_local(&format!("http://127.0.0.1:{port}"), "us-east-1")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// `set_expiry` moves the TTL attribute of a chunked value's chunks with the entry's, so
/// DynamoDB never deletes chunks under an entry whose life was extended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_expiry_moves_the_chunks_ttl_too() {
    let table = unique_namespace("chunk-ttl");
    let store = DynamoStore::builder()
        .table(&table)
        .ttl_offset(Some(Duration::from_secs(60)))
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .unwrap();
    let soon = std::time::SystemTime::now() + Duration::from_secs(10);
    let later = std::time::SystemTime::now() + Duration::from_secs(100_000);
    let big = bytes::Bytes::from(vec![7u8; 900_000]);
    store
        .put(cache_core::testing::entry(1, big, Some(soon)))
        .await
        .unwrap();
    let ttls = |store: DynamoStore| async move {
        let mut ttls: Vec<Option<i64>> = raw_items(&store)
            .await
            .iter()
            .map(|item| {
                item.get("l")
                    .and_then(|v| v.as_n().ok())
                    .map(|n| n.parse().unwrap())
            })
            .collect();
        ttls.sort();
        ttls.dedup();
        ttls
    };
    let before = ttls(store.clone()).await;
    assert_eq!(
        before.len(),
        1,
        "entry and chunks share one TTL: {before:?}"
    );
    let key = cache_core::testing::key(1);
    assert!(store.set_expiry(&key, Some(later)).await.unwrap());
    let after = ttls(store.clone()).await;
    assert_eq!(after.len(), 1, "all moved together: {after:?}");
    assert!(after[0] > before[0], "{before:?} -> {after:?}");
    assert!(store.set_expiry(&key, None).await.unwrap());
    assert_eq!(ttls(store.clone()).await, [None], "no TTL on any item");
    assert_eq!(store.get(&key).await.unwrap().unwrap().value.len(), 900_000);
}

/// A put cut off while its chunks go up (a timeout drops the future) leaves chunks DynamoDB's
/// TTL will remove, even for an entry that would never expire; a completed put confirms its
/// chunks for as long as the entry lives, and an entry whose chunks are gone is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_a_cut_put_are_only_provisional() {
    let table = unique_namespace("cut");
    let store = DynamoStore::builder()
        .table(&table)
        .ttl_offset(None)
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .unwrap();
    let is_chunk = |item: &std::collections::HashMap<String, _>| {
        item.get("t")
            .and_then(|t: &cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue| t.as_s().ok())
            .map(String::as_str)
            == Some("c")
    };
    // 40 chunks of 380 KB, written in batches of 25: the put is cut after the first batch.
    let big = bytes::Bytes::from(vec![7u8; 15_000_000]);
    let mut cut = false;
    for attempt in 0..5 {
        let put = tokio::spawn({
            let store = store.clone();
            let entry = cache_core::testing::entry(attempt, big.clone(), None);
            async move { store.put(entry).await }
        });
        while !put.is_finished() && !raw_items(&store).await.iter().any(is_chunk) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if !put.is_finished() {
            put.abort();
            // The put may have written its entry item (and begun confirming its chunks, which
            // the entry then uses) between the look and the abort, the more likely the longer
            // a scan of 15 MB takes: only a put stopped before its entry item was cut while
            // its chunks went up.
            let cancelled = put.await.is_err_and(|e| e.is_cancelled());
            let key = cache_core::testing::key(attempt);
            if cancelled && store.get(&key).await.unwrap().is_none() {
                cut = true;
                break;
            }
        }
        store.clear().await.unwrap();
    }
    assert!(cut, "every put finished before it could be cut");
    let left: Vec<_> = raw_items(&store)
        .await
        .into_iter()
        .filter(is_chunk)
        .collect();
    assert!(!left.is_empty());
    for chunk in &left {
        assert!(
            chunk.contains_key("l"),
            "a chunk of a cut put is kept for good"
        );
    }
    // A complete put of a never-expiring entry confirms its chunks: no deletion time. Only its
    // own items are counted: a batch of the cut put that was already on the wire when the task
    // was aborted can still land after `clear`.
    store.clear().await.unwrap();
    let small = bytes::Bytes::from(vec![7u8; 1_000_000]);
    let complete = cache_core::testing::entry(9, small, None);
    let prefix = complete.meta.key.as_str().to_owned();
    store.put(complete).await.unwrap();
    let items: Vec<_> = raw_items(&store)
        .await
        .into_iter()
        .filter(|item| {
            item.get("k")
                .and_then(|k| k.as_s().ok())
                .is_some_and(|k| k.starts_with(&prefix))
        })
        .collect();
    assert_eq!(items.len(), 4, "the entry and its three chunks");
    assert!(
        items.iter().all(|item| !item.contains_key("l")),
        "{items:?}"
    );
}

/// A table created before the URL group index existed gets it when a store opens it.
///
/// On a server of its own: DynamoDB Local builds an index added to a table in a pool of ten
/// threads where every table with TTL enabled keeps one busy for good, so on the shared server
/// (a table per test) the index build waited behind the others' and never started.
#[tokio::test]
async fn an_older_table_gets_the_url_group_index() {
    let server = test_support::DynamoServer::start();
    let table = unique_namespace("old-table");
    create_table_keyed_by(&server.endpoint(), &table, "k").await;
    let store = DynamoStore::builder()
        .table(table)
        .ttl_offset(Some(TTL_OFFSET))
        .open_local(&server.endpoint(), "us-east-1")
        .await
        .expect("connect to DynamoDB Local");
    store
        .put(cache_core::testing::grouped_entry(1, 5, None))
        .await
        .unwrap();
    let found = store
        .entries_for_url(&cache_core::testing::group(5))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}

/// A store on a new table keeping entries until deleted (`ttl_offset(None)`): chunks of a
/// never-expiring entry are confirmed with no deletion time.
async fn kept_for_good(name: &str) -> DynamoStore {
    DynamoStore::builder()
        .table(unique_namespace(name))
        .ttl_offset(None)
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .unwrap()
}

/// Deletes the item under `key` behind the store's back (a cut-off step, the TTL).
async fn delete_raw(store: &DynamoStore, key: &str) {
    aws_sdk_dynamodb_client(&shared_dynamo().endpoint())
        .await
        .delete_item()
        .table_name(store.table())
        .key(
            "k",
            cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue::S(key.to_owned()),
        )
        .send()
        .await
        .unwrap();
}

/// An entry of a megabyte: three chunks.
fn chunked_entry(n: u64) -> cache_core::StoredEntry {
    cache_core::testing::entry(n, bytes::Bytes::from(vec![7u8; 1_000_000]), None)
}

/// An entry found dead (one of its chunks gone: never confirmed, and expired) is removed with
/// the chunks of it that are left: those kept for good (confirmed before a confirmation was
/// cut off) stayed, named by nothing, and nothing removed them but `clear`.
#[tokio::test]
async fn a_dead_entry_goes_with_its_chunks() {
    let store = kept_for_good("dead").await;
    let entry = chunked_entry(1);
    let prefix = entry.meta.key.as_str().to_owned();
    store.put(entry).await.unwrap();
    let ours = |items: Vec<std::collections::HashMap<String, _>>| -> Vec<String> {
        items
            .into_iter()
            .filter_map(|item| {
                let key: &cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue =
                    item.get("k")?;
                Some(key.as_s().ok()?.clone())
            })
            .filter(|key| key.starts_with(&prefix))
            .collect()
    };
    let mut keys = ours(raw_items(&store).await);
    keys.sort();
    assert_eq!(keys.len(), 4, "the entry and its three chunks: {keys:?}");
    // The last chunk gone, as an unconfirmed one the TTL removed.
    delete_raw(&store, &keys[3]).await;
    assert!(
        store
            .get(&cache_core::testing::key(1))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(ours(raw_items(&store).await), Vec::<String>::new());
}

/// Chunks kept for good whose entry went without them (a delete cut off between its entry
/// and its chunks) are removed by a sweep; another entry's stay. Nothing removed them but
/// `clear`.
#[tokio::test]
async fn a_sweep_removes_chunks_no_entry_names() {
    let store = kept_for_good("orphans").await;
    for n in 1..=2 {
        store.put(chunked_entry(n)).await.unwrap();
    }
    let chunks_of = |items: Vec<std::collections::HashMap<String, _>>, n: u64| -> usize {
        let prefix = format!("{}#", cache_core::testing::key(n).as_str());
        items
            .iter()
            .filter(|item| {
                let key: Option<&cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue> =
                    item.get("k");
                key.and_then(|k| k.as_s().ok())
                    .is_some_and(|k| k.starts_with(&prefix))
            })
            .count()
    };
    delete_raw(&store, cache_core::testing::key(1).as_str()).await;
    assert_eq!(chunks_of(raw_items(&store).await, 1), 3);
    store
        .delete_expired(std::time::SystemTime::now())
        .await
        .unwrap();
    let items = raw_items(&store).await;
    assert_eq!(chunks_of(items.clone(), 1), 0, "the orphaned chunks go");
    assert_eq!(chunks_of(items, 2), 3, "the other entry's stay");
    let two = store.get(&cache_core::testing::key(2)).await.unwrap();
    assert_eq!(two.expect("entry 2").value.len(), 1_000_000);
}

/// An entry past its retention (here one that expired six years ago, as an import of old
/// entries writes it) is removed by a sweep: DynamoDB's TTL skips deletion times over five
/// years old, and every read already passes over it, so nothing else ever removed it.
#[tokio::test]
async fn a_sweep_removes_entries_past_retention() {
    let store = DynamoStore::builder()
        .table(unique_namespace("long-past"))
        .ttl_offset(Some(TTL_OFFSET))
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .unwrap();
    let six_years_ago = std::time::SystemTime::now() - Duration::from_secs(6 * 365 * 24 * 3600);
    let old = cache_core::testing::entry(1, bytes::Bytes::from_static(b"old"), Some(six_years_ago));
    store.put(old).await.unwrap();
    assert_eq!(raw_items(&store).await.len(), 1);
    assert!(
        store
            .get(&cache_core::testing::key(1))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .delete_expired(std::time::SystemTime::now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(raw_items(&store).await.len(), 0);
}

/// `set_expiry` renews entries only: an item under the key that is none (another program's,
/// an entry item created before 1970) is left as it was, and the call says nothing was
/// renewed (it said true and gave the item expiry attributes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_expiry_leaves_an_item_that_is_no_entry() {
    use cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue;
    let store = DynamoStore::builder()
        .table(unique_namespace("expiry-foreign"))
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .unwrap();
    let theirs = std::collections::HashMap::from([
        (
            "k".to_owned(),
            AttributeValue::S(cache_core::testing::key(1).to_string()),
        ),
        ("theirs".to_owned(), AttributeValue::S("yes".to_owned())),
    ]);
    put_raw(&store, theirs).await;
    put_raw(&store, raw_entry(2, -1_000, None)).await;
    let before = raw_items(&store).await;
    for n in 1..=2 {
        let later = Some(std::time::SystemTime::now() + Duration::from_secs(60));
        let key = cache_core::testing::key(n);
        assert!(!store.set_expiry(&key, later).await.unwrap(), "item {n}");
    }
    assert_eq!(raw_items(&store).await, before, "unchanged");
}

/// Puts `item` as it is into the store's table, with a client of our own (another program's
/// write, or a hand edit).
async fn put_raw(
    store: &DynamoStore,
    item: std::collections::HashMap<
        String,
        cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue,
    >,
) {
    let client = aws_sdk_dynamodb_client(&shared_dynamo().endpoint()).await;
    client
        .put_item()
        .table_name(store.table())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

/// An entry item written as this crate writes one, created at `created_ms`, deleted by
/// DynamoDB at `delete_at_secs` when given.
fn raw_entry(
    n: u64,
    created_ms: i64,
    delete_at_secs: Option<i64>,
) -> std::collections::HashMap<String, cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue> {
    use cache_dynamodb::aws_sdk_dynamodb::primitives::Blob;
    use cache_dynamodb::aws_sdk_dynamodb::types::AttributeValue;
    let mut item = std::collections::HashMap::from([
        (
            "k".to_owned(),
            AttributeValue::S(cache_core::testing::key(n).to_string()),
        ),
        ("t".to_owned(), AttributeValue::S("e".to_owned())),
        (
            "u".to_owned(),
            AttributeValue::S("https://example.com/".to_owned()),
        ),
        ("c".to_owned(), AttributeValue::N(created_ms.to_string())),
        (
            "v".to_owned(),
            AttributeValue::B(Blob::new(b"value".to_vec())),
        ),
    ]);
    if let Some(at) = delete_at_secs {
        item.insert("l".to_owned(), AttributeValue::N(at.to_string()));
    }
    item
}

/// An entry item created before 1970 (another program's, or edited by hand; this crate never
/// writes one) is no entry: not listed, and removed by a sweep. It read as created in 1970,
/// so that a delete on its creation never matched it, and with no expiry it stayed for good.
#[tokio::test]
async fn an_item_created_before_1970_is_no_entry_and_is_swept() {
    let store = local_store(&unique_namespace("before-1970")).await;
    put_raw(&store, raw_entry(1, -1000, None)).await;
    let listed = cache_core::store::collect_keys(store.entries(), |_| true)
        .await
        .unwrap();
    assert_eq!(listed, Vec::new(), "listed as an entry");
    assert_swept_away(&store).await;
}

/// A sweep now leaves the store's table empty.
async fn assert_swept_away(store: &DynamoStore) {
    store
        .delete_expired(std::time::SystemTime::now())
        .await
        .unwrap();
    assert_eq!(raw_items(store).await.len(), 0, "left by the sweep");
}

/// An entry past its deletion time but not expired (the time set by hand, say) is removed by
/// a sweep: every read already passed over it, and the sweep took only expired entries, so
/// that it stayed wherever DynamoDB's TTL does not run (or skips it).
#[tokio::test]
async fn an_entry_past_its_deletion_time_but_not_expired_is_swept() {
    let store = local_store(&unique_namespace("past-l")).await;
    let now_ms = cache_core::time::to_millis(std::time::SystemTime::now());
    put_raw(&store, raw_entry(1, now_ms, Some(1))).await;
    let read = store.get(&cache_core::testing::key(1)).await.unwrap();
    assert!(read.is_none(), "read past its deletion time");
    assert_swept_away(&store).await;
}

/// A server that accepts connections and never answers fails the open, with a transient
/// error, after one retry: the SDK has no timeouts of its own, and the open waited for
/// good.
#[tokio::test]
async fn a_server_that_never_answers_fails_the_open() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            connections.push(connection);
        }
    });
    let open = DynamoStore::builder()
        .table(unique_namespace("silent"))
        .timeout(Duration::from_millis(300))
        .open_local(&endpoint, "us-east-1");
    // A bound on the test, not a speed check: without timeouts the open never returns.
    let opened = tokio::time::timeout(Duration::from_secs(60), open)
        .await
        .expect("the open returned");
    let error = opened.expect_err("opened against a silent server");
    assert!(error.is_transient(), "{error:?}");
    // One attempt and its one retry (each request that timed out drops its connection);
    // retried as a refused connection is, the open took five.
    let attempts = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        attempts <= 2,
        "{attempts} attempts at a server that never answers"
    );
    held.abort();
}

/// A table of the store's name made by someone else, keyed otherwise, is refused at open
/// with an error saying why: it failed every write and read instead, one error per call.
#[tokio::test]
async fn a_table_keyed_otherwise_is_refused_at_open() {
    let table = unique_namespace("foreign-table");
    create_table_keyed_by(&shared_dynamo().endpoint(), &table, "id").await;
    let refused = DynamoStore::builder()
        .table(&table)
        .open_local(&shared_dynamo().endpoint(), "us-east-1")
        .await
        .expect_err("a table keyed by `id` is not the store's");
    let message = std::error::Error::source(&refused).map(ToString::to_string);
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains(&table) && m.contains("`id`")),
        "{refused}: {message:?}"
    );
}

/// The entry item holds the URL whatever the value's size: a URL too long for an item is
/// refused as too large, as a value over the limit is, not with the server's validation
/// error (which the middleware warns of and counts as a store error, and which ends a copy rather than
/// skipping the entry). A long URL that fits is stored, its value chunked beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_too_long_for_an_item_is_too_large() {
    let store = local_store(&unique_namespace("long-url")).await;
    let entry = |url_len: usize, value_len: usize| {
        let value = bytes::Bytes::from(vec![7u8; value_len]);
        let mut entry = cache_core::testing::entry(1, value, None);
        entry.meta.url = format!("https://example.com/?q={}", "a".repeat(url_len));
        entry
    };
    for (url_len, value_len) in [(420_000, 10), (395_000, 300_000)] {
        let refused = store.put(entry(url_len, value_len)).await;
        assert!(
            matches!(refused, Err(cache_core::StoreError::TooLarge { .. })),
            "a URL of {url_len} bytes: {refused:?}"
        );
    }
    assert!(raw_items(&store).await.is_empty(), "nothing written");
    let fits = entry(380_000, 300_000);
    store.put(fits.clone()).await.unwrap();
    let read = store
        .get(&cache_core::testing::key(1))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(read.meta.url, fits.meta.url);
    assert_eq!(read.value, fits.value);
}

/// Loses the server's answer to the first entry `PutItem` (conditional ones only, when
/// `conditional`): the server wrote the item, the client is told of a server error, as a
/// timeout loses an answer. A client that retries, as aws-config's does by default, sends
/// the write again.
#[derive(Debug, Default)]
struct LosesFirstPut {
    conditional: bool,
    /// The attempt on its way is that write.
    armed: std::sync::atomic::AtomicBool,
    /// An answer was lost (shared with the test).
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Intercept for LosesFirstPut {
    fn name(&self) -> &'static str {
        "LosesFirstPut"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use std::sync::atomic::Ordering;
        let request = context.request();
        let put = request.headers().get("x-amz-target") == Some("DynamoDB_20120810.PutItem");
        let has = |text: &[u8]| {
            request
                .body()
                .bytes()
                .is_some_and(|body| body.windows(text.len()).any(|w| w == text))
        };
        // The entry item, not a chunk's (chunks go by `BatchWriteItem`).
        let wanted = put && (!self.conditional || has(b"ConditionExpression"));
        if wanted && !self.lost.load(Ordering::SeqCst) {
            self.armed.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use std::sync::atomic::Ordering;
        if self.armed.swap(false, Ordering::SeqCst) {
            self.lost.store(true, Ordering::SeqCst);
            *context.response_mut().status_mut() = 500u16.try_into()?;
        }
        Ok(())
    }
}

/// A store whose client retries, and loses the first answer `loses` picks.
async fn store_losing(table: &str, loses: LosesFirstPut) -> DynamoStore {
    use cache_dynamodb::aws_sdk_dynamodb::config::retry::RetryConfig;
    use cache_dynamodb::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = cache_dynamodb::aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(shared_dynamo().endpoint())
        .credentials_provider(Credentials::new("t", "t", None, None, "static"))
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(10)))
        .interceptor(loses)
        .build();
    DynamoStore::builder()
        .table(table)
        .with_client(cache_dynamodb::aws_sdk_dynamodb::Client::from_conf(config))
        .await
        .unwrap()
}

/// A write whose answer was lost, sent again by a client that retries. Unconditional, of a
/// chunked value, the second attempt replaced the entry with itself and was told so: the
/// store took the chunks of the entry it replaced, its own, for the old entry's and deleted
/// them. Conditional, the second attempt failed its condition on the entry the first wrote:
/// the store took that for a refusal, deleted the chunks and said it had not written (a
/// value inline too). A chunked entry then read as a miss. It is now whole, and a
/// conditional write says it was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sent_again_keeps_the_chunks_it_wrote() {
    for (conditional, size) in [(false, 1_000_000), (true, 1_000_000), (true, 1_000)] {
        let loses = LosesFirstPut {
            conditional,
            ..LosesFirstPut::default()
        };
        let lost = std::sync::Arc::clone(&loses.lost);
        let store = store_losing(&unique_namespace("resent"), loses).await;
        let first = cache_core::testing::entry(1, bytes::Bytes::from_static(b"first"), None);
        if conditional {
            store.put(first.clone()).await.unwrap();
        }
        let big = bytes::Bytes::from(vec![9u8; size]);
        let mut second = cache_core::testing::entry(1, big.clone(), None);
        second.meta.created_at = first.meta.created_at + Duration::from_secs(1);
        if conditional {
            let written = store
                .put_if_created(second, first.meta.created_at)
                .await
                .unwrap();
            assert!(written, "the write was made");
        } else {
            store.put(second).await.unwrap();
        }
        let what = format!("conditional {conditional}, {size} bytes");
        assert!(
            lost.load(std::sync::atomic::Ordering::SeqCst),
            "{what}: an answer lost"
        );
        let read = store
            .get(&cache_core::testing::key(1))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: the entry written, whole"));
        assert_eq!(read.value, big, "{what}");
        let chunks = if size > 350_000 { 3 } else { 0 };
        assert_eq!(raw_items(&store).await.len(), 1 + chunks, "{what}");
    }
}
