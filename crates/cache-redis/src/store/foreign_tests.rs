//! What a read finds under an entry's key that is no entry is deleted as found: never an entry
//! another client wrote there between that read and the delete.

use cache_core::CacheStore;
use cache_core::testing::{entry, key};

use super::{Foreign, RedisStore};

async fn store() -> (RedisStore, redis::aio::MultiplexedConnection) {
    let url = test_support::shared_redis().url();
    let store = RedisStore::builder()
        .prefix(test_support::unique_namespace("foreign"))
        .open(&url)
        .await
        .unwrap();
    let client = redis::Client::open(url).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    (store, conn)
}

async fn query(conn: &mut redis::aio::MultiplexedConnection, args: &[&str]) {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let () = cmd.query_async(conn).await.unwrap();
}

/// Each kind of foreign value a read can find is deleted while it is still there, and an entry
/// written after the read (the read's delete then comes late) stays.
#[tokio::test]
async fn a_foreign_value_is_deleted_only_while_it_is_still_there() {
    let (store, mut conn) = store().await;
    let redis_key = store.redis_key(&key(1));
    let plants: [(&[&str], Foreign); 3] = [
        (&["SET", &redis_key, "not a hash"], Foreign::OtherType),
        (
            &["HSET", &redis_key, "c", "123", "u", "x"],
            Foreign::Hash(Some(123)),
        ),
        (
            &["HSET", &redis_key, "c", "soon", "v", "x"],
            Foreign::Unparsed,
        ),
    ];
    for (plant, found) in plants {
        query(&mut conn, plant).await;
        store
            .forget_foreign(&key(1), &redis_key, found)
            .await
            .unwrap();
        let left: i64 = redis::cmd("EXISTS")
            .arg(&redis_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "{found:?}: deleted while still there");

        query(&mut conn, plant).await;
        // Another client deletes it and writes an entry before this read's delete runs.
        query(&mut conn, &["DEL", &redis_key]).await;
        let written = entry(1, bytes::Bytes::from_static(b"written since"), None);
        store.put(written.clone()).await.unwrap();
        store
            .forget_foreign(&key(1), &redis_key, found)
            .await
            .unwrap();
        let read = store.get(&key(1)).await.unwrap();
        assert_eq!(
            read,
            Some(written),
            "{found:?}: the entry written since was deleted"
        );
        store.delete(&key(1)).await.unwrap();
    }
}
