//! URL group sets on a real server: how long they live, both ways of keeping them alive, sets
//! an earlier build made persistent, a server refusing `PEXPIREAT ... NX/GT`, and sets that
//! keep getting new keys.

use std::time::{Duration, SystemTime};

use cache_core::testing::{group, grouped_entry, key};
use cache_core::{CacheStore, StoredEntry};

use super::RedisStore;
use crate::group_sets::Refusal;

/// A set's time, as far off as an entry kept for good gives it (year 9999): over a century.
fn for_good(ttl_ms: i64) -> bool {
    ttl_ms > 100 * 365 * 24 * 3_600_000
}

fn in_secs(secs: u64) -> Option<SystemTime> {
    Some(SystemTime::now() + Duration::from_secs(secs))
}

/// Entry `n` of group 1, expiring in `secs` seconds.
fn expiring(n: u64, secs: u64) -> StoredEntry {
    let mut entry = grouped_entry(n, 1, None);
    entry.meta.expires_at = in_secs(secs);
    entry
}

/// A store on `server` under a new prefix keeping entries no longer than they are fresh, and a
/// connection to read the server directly.
async fn store_on(url: &str) -> (RedisStore, redis::aio::MultiplexedConnection, String) {
    let prefix = test_support::unique_namespace("groups");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .ttl_offset(Some(Duration::ZERO))
        .open(url)
        .await
        .unwrap();
    let client = redis::Client::open(url).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    (store, conn, format!("{prefix}:g:{}", group(1)))
}

async fn pttl(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

/// A URL group's set lives as long as its longest-lived entry: it takes the first entry's
/// TTL, grows with a longer one (also through `set_expiry`), never shrinks, and is kept for
/// good with an entry that never expires; with the plain commands and with the script.
#[tokio::test]
async fn url_group_sets_outlive_their_entries() {
    group_sets_outlive_their_entries(false).await;
}

#[tokio::test]
async fn url_group_sets_outlive_their_entries_by_script() {
    group_sets_outlive_their_entries(true).await;
}

async fn group_sets_outlive_their_entries(by_script: bool) {
    let (store, mut conn, set) = store_on(&test_support::shared_redis().url()).await;
    if by_script {
        store.group_adds.use_script();
    }
    store.put(expiring(1, 100)).await.unwrap();
    let first = pttl(&mut conn, &set).await;
    // Slack for a loaded machine, far from the next entry's 1,000 s.
    assert!((40_000..=100_000).contains(&first), "{first}");
    store.put(expiring(2, 1_000)).await.unwrap();
    assert!(
        pttl(&mut conn, &set).await > 900_000,
        "a longer entry extends the set"
    );
    store.put(expiring(3, 10)).await.unwrap();
    assert!(
        pttl(&mut conn, &set).await > 900_000,
        "a shorter one never shortens it"
    );
    assert!(store.set_expiry(&key(1), in_secs(5_000)).await.unwrap());
    assert!(
        pttl(&mut conn, &set).await > 4_000_000,
        "set_expiry extends it too"
    );
    store.put(grouped_entry(4, 1, None)).await.unwrap();
    let kept = pttl(&mut conn, &set).await;
    assert!(
        for_good(kept),
        "a never-expiring entry keeps it for good: {kept}"
    );
    store.put(expiring(5, 10)).await.unwrap();
    assert!(store.set_expiry(&key(2), in_secs(20)).await.unwrap());
    let after = pttl(&mut conn, &set).await;
    assert!(for_good(after), "and nothing shortens it then: {after}");
    assert_eq!(store.entries_for_url(&group(1)).await.unwrap().len(), 5);
    assert_eq!(
        store.group_adds.by_script(),
        by_script,
        "the way asked for ran"
    );
}

/// A set an earlier build made persistent (it held an entry kept for good) stays for good
/// when a timed entry joins it: it is never given the newcomer's shorter time.
#[tokio::test]
async fn a_set_left_persistent_stays_for_good() {
    for by_script in [false, true] {
        let (store, mut conn, set) = store_on(&test_support::shared_redis().url()).await;
        if by_script {
            store.group_adds.use_script();
        }
        store.put(grouped_entry(1, 1, None)).await.unwrap();
        let () = redis::cmd("PERSIST")
            .arg(&set)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            pttl(&mut conn, &set).await,
            -1,
            "as an earlier build left it"
        );
        store.put(expiring(2, 10)).await.unwrap();
        let ttl = pttl(&mut conn, &set).await;
        assert!(for_good(ttl), "by script: {by_script}, {ttl}");
        assert_eq!(store.entries_for_url(&group(1)).await.unwrap().len(), 2);
    }
}

/// A server that refuses the plain commands' options (older than 7.0: when the transaction is
/// queued; or when it runs) still stores the entry and its set, by script, with the set taking
/// its entries' time, and is added to by script from then on; on one server and on a cluster
/// (where the set is written in a transaction of its own).
#[tokio::test]
async fn a_server_refusing_the_options_gets_the_script() {
    for refusal in [Refusal::Queued, Refusal::Executed] {
        let (single, mut conn, set) = store_on(&test_support::shared_redis().url()).await;
        let on_cluster = cluster_store().await;
        for store in [&single, &on_cluster] {
            *store.group_adds.refused.lock().unwrap() = Some(refusal);
            store.put(expiring(1, 100)).await.unwrap();
            assert!(store.group_adds.by_script(), "{refusal:?} {store:?}");
            store.put(expiring(2, 1_000)).await.unwrap();
            assert!(store.set_expiry(&key(1), in_secs(2_000)).await.unwrap());
            let listed = store.entries_for_url(&group(1)).await.unwrap();
            assert_eq!(listed.len(), 2, "{refusal:?} {store:?}");
            assert!(store.get(&key(2)).await.unwrap().is_some());
        }
        let ttl = pttl(&mut conn, &set).await;
        assert!(
            (1_500_000..=2_000_000).contains(&ttl),
            "{refusal:?}: the set takes its entries' time: {ttl}"
        );
    }
}

/// Any other failure of the plain commands is the write's: it fails, and the store keeps
/// them (here a value of another type under the set's key).
#[tokio::test]
async fn other_failures_keep_the_plain_commands() {
    let (store, mut conn, set) = store_on(&test_support::shared_redis().url()).await;
    let () = redis::cmd("SET")
        .arg(&set)
        .arg("not a set")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(store.put(expiring(1, 100)).await.is_err());
    assert!(!store.group_adds.by_script());
}

/// A store on the cluster under a new prefix, keeping entries no longer than they are fresh.
async fn cluster_store() -> RedisStore {
    RedisStore::builder()
        .prefix(test_support::unique_namespace("groups-cluster"))
        .ttl_offset(Some(Duration::ZERO))
        .open_cluster(test_support::shared_redis_cluster().urls())
        .await
        .unwrap()
}

/// `command`'s reply, through the store's own connection (a cluster's routes it).
async fn run<T: redis::FromRedisValue>(store: &RedisStore, command: &redis::Cmd) -> T {
    store.connection.query(command).await.unwrap()
}

/// The members of group 1's set.
async fn set_size(store: &RedisStore) -> i64 {
    run(
        store,
        redis::cmd("SCARD").arg(store.group_set_key(&group(1))),
    )
    .await
}

/// A URL whose keys keep changing (a token per user, short-lived entries): its set holds
/// about its live entries, not every key it ever had. The set grew by one member per key
/// for as long as new keys kept extending its life; nothing but a lookup of the URL pruned it.
#[tokio::test]
async fn a_set_that_keeps_getting_keys_holds_its_live_entries() {
    let (store, _conn, _set) = store_on(&test_support::shared_redis().url()).await;
    // Keeps the set alive through the short entries' end, as a stream of new keys does.
    store.put(expiring(999, 1_000)).await.unwrap();
    let short = SystemTime::now() + Duration::from_millis(1_000);
    for n in 0..150 {
        let mut entry = grouped_entry(n, 1, None);
        entry.meta.expires_at = Some(short);
        store.put(entry).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    for n in 1_000..1_149 {
        store.put(expiring(n, 1_000)).await.unwrap();
    }
    let size = set_size(&store).await;
    assert!(
        (150..=166).contains(&size),
        "150 live of 300 keys, {size} members"
    );
    assert_eq!(store.entries_for_url(&group(1)).await.unwrap().len(), 150);
}

/// Entries the server dropped on its own (evicted under `maxmemory`): their members go the
/// same way, whichever way they were added: kept for good as the default settings keep them
/// (on one server and a cluster), or timed and added by script.
#[tokio::test]
async fn members_of_evicted_entries_are_pruned() {
    let (single, _conn, _set) = store_on(&test_support::shared_redis().url()).await;
    let (by_script, _conn, _set) = store_on(&test_support::shared_redis().url()).await;
    by_script.group_adds.use_script();
    let cluster = cluster_store().await;
    let for_good = |n: u64| grouped_entry(n, 1, None);
    let timed = |n: u64| expiring(n, 1_000);
    let stores: [(&RedisStore, &dyn Fn(u64) -> StoredEntry); 3] = [
        (&single, &for_good),
        (&by_script, &timed),
        (&cluster, &for_good),
    ];
    for (store, entry) in stores {
        for n in 0..100 {
            store.put(entry(n)).await.unwrap();
        }
        for n in 0..80 {
            let _: i64 = run(store, redis::cmd("DEL").arg(store.redis_key(&key(n)))).await;
        }
        for n in 100..200 {
            store.put(entry(n)).await.unwrap();
        }
        let size = set_size(store).await;
        assert!(
            (120..=136).contains(&size),
            "{store:?}: 120 live, {size} members"
        );
        assert_eq!(store.entries_for_url(&group(1)).await.unwrap().len(), 120);
    }
}

/// A member read as gone whose entry is there when it is removed (rewritten in between)
/// stays listed, on one server and a cluster; one whose entry went, moved to another group,
/// or was replaced by something that is not an entry (a string, a hash of someone else's),
/// goes.
#[tokio::test]
async fn members_written_again_since_read_stay_listed() {
    let (single, _conn, _set) = store_on(&test_support::shared_redis().url()).await;
    for store in [&single, &cluster_store().await] {
        for n in 1..=5 {
            store.put(grouped_entry(n, 1, None)).await.unwrap();
        }
        assert!(store.delete(&key(2)).await.unwrap());
        store.put(grouped_entry(3, 2, None)).await.unwrap();
        let (string, foreign_hash) = (store.redis_key(&key(4)), store.redis_key(&key(5)));
        let () = run(store, redis::cmd("SET").arg(&string).arg("not an entry")).await;
        let _: i64 = run(store, redis::cmd("DEL").arg(&foreign_hash)).await;
        let hset = redis::cmd("HSET")
            .arg(&foreign_hash)
            .arg("name")
            .arg("value")
            .clone();
        let _: i64 = run(store, &hset).await;
        let read_as_gone = [1, 2, 3, 4, 5].map(|n| key(n).to_string()).to_vec();
        store.remove_gone(&group(1), read_as_gone).await.unwrap();
        let listed: Vec<String> = run(
            store,
            redis::cmd("SMEMBERS").arg(store.group_set_key(&group(1))),
        )
        .await;
        assert_eq!(listed, [key(1).to_string()], "{store:?}");
    }
}

/// Every delete takes the entry's member out of its URL group's set, on one server and a
/// cluster: `delete`, `delete_if_created`, `delete_expired`, and a write already past its
/// retention. A set kept for good (an entry that never expires) outlived its last entry with
/// every deleted member in it: one set per URL ever deleted, for good.
#[tokio::test]
async fn deleted_entries_leave_their_url_group_set() {
    let (single, _conn, _set) = store_on(&test_support::shared_redis().url()).await;
    for store in [&single, &cluster_store().await] {
        for n in 1..=4 {
            store.put(grouped_entry(n, 1, None)).await.unwrap();
        }
        // Expired for the sweep below, long before the server would drop it.
        let mut expired = grouped_entry(5, 1, None);
        expired.meta.expires_at = in_secs(600);
        store.put(expired).await.unwrap();
        assert_eq!(set_size(store).await, 5, "{store:?}");
        assert!(store.delete(&key(1)).await.unwrap());
        let created = grouped_entry(2, 1, None).meta.created_at;
        assert!(store.delete_if_created(&key(2), created).await.unwrap());
        let later = SystemTime::now() + Duration::from_secs(1_200);
        assert_eq!(store.delete_expired(later).await.unwrap(), 1);
        let mut past = grouped_entry(3, 1, None);
        past.meta.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
        store.put(past).await.unwrap();
        let listed: Vec<String> = run(
            store,
            redis::cmd("SMEMBERS").arg(store.group_set_key(&group(1))),
        )
        .await;
        assert_eq!(listed, [key(4).to_string()], "{store:?}");
        assert!(store.delete(&key(4)).await.unwrap());
        let exists: i64 = run(
            store,
            redis::cmd("EXISTS").arg(store.group_set_key(&group(1))),
        )
        .await;
        assert_eq!(exists, 0, "{store:?}: the set outlived its last entry");
    }
}

/// A `set_expiry` cut short (its future dropped once its first command is out, as a store
/// timeout or a dropped request does) never leaves the entry outliving its URL group's set:
/// the set is extended first. The entry's renewal went first, and a cut then left the entry
/// listed by no lookup of its URL once the set's old time passed.
#[tokio::test]
async fn a_cut_set_expiry_never_leaves_the_entry_outliving_its_set() {
    use std::future::Future;
    let (store, mut conn, set) = store_on(&test_support::shared_redis().url()).await;
    store.put(expiring(1, 100)).await.unwrap();
    let first = key(1);
    let mut cut = Box::pin(store.set_expiry(&first, in_secs(100_000)));
    let waker = futures_util::task::noop_waker();
    let polled = cut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker));
    assert!(polled.is_pending(), "answered without the server");
    // Held unpolled a while, then dropped: what its first poll queued is sent meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(cut);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let entry = pttl(&mut conn, &store.redis_key(&key(1))).await;
    let set = pttl(&mut conn, &set).await;
    assert!(
        entry <= set + 1_000,
        "the entry lives {entry} ms, its set {set} ms"
    );
}

/// On a cluster the entry is written between two adds to its URL group's set. A prune
/// between the first add and the write (reading the entry gone) takes the member out, and
/// the second add puts it back. A caller that stopped waiting there (its time limit) cut the
/// second add, and the written entry was listed nowhere: no delete by URL or invalidation
/// found it. The write and the second add now run to their end whatever the caller does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_put_cut_after_its_write_still_lists_the_entry() {
    let store = cluster_store().await;
    let gate = store.group_adds.second_add_gate.arm();
    let entry = grouped_entry(1, 1, None);
    let putting = tokio::spawn({
        let store = store.clone();
        let entry = entry.clone();
        async move { store.put(entry).await }
    });
    gate.reached().await;
    // A prune that read the entry before the write landed took the member out.
    let set = store.group_set_key(&group(1));
    let removed: i64 = store
        .connection
        .query(redis::cmd("SREM").arg(&set).arg(key(1).as_str()))
        .await
        .unwrap();
    assert_eq!(removed, 1, "the first add listed it");
    gate.cut(putting).await;
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = store.entries_for_url(&group(1)).await.unwrap();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(listed.len(), 1, "the written entry is listed again");
    assert_eq!(listed[0].key, key(1));
    assert!(store.get(&key(1)).await.unwrap().is_some());
}
