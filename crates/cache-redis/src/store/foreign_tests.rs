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

/// How many of the keys named exist (`EXISTS`).
async fn exists(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
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
        assert_eq!(
            exists(&mut conn, &redis_key).await,
            0,
            "{found:?}: deleted while still there"
        );

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

/// An entry whose creation, expiry, URL group or Vary parent field is damaged (not
/// milliseconds as written, not a key) is no entry: a read finds nothing and deletes it. Read as none, a damaged expiry
/// served the entry fresh for good, and a damaged group hid it from every invalidation of its
/// URL. A read by a decoded copy reads the value and times only (the other fields are written
/// with them): it sees a damaged expiry, not a group or parent changed alone.
#[tokio::test]
async fn an_entry_with_a_damaged_field_is_no_entry() {
    let (store, mut conn) = store().await;
    let codec = cache_core::codec::EntryCodec::new();
    let redis_key = store.redis_key(&key(1));
    let response = cache_core::testing::sample_response();
    let value = cache_core::encode(&response).unwrap();
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    for (field, damaged) in [
        ("x", "soon"),
        ("g", "ffffffffffffffffffffffffffffffgg"),
        ("p", "ffffffffffffffffffffffffffffffgg"),
        // Creations not as the store writes them: read as numbers, they matched no delete
        // or renewal by creation (the scripts compare the text), and one before 1970 read
        // as 1970.
        ("c", "+1700000000000"),
        ("c", "01700000000000"),
        ("c", "-5"),
        ("u", "(bytes that are no UTF-8)"),
    ] {
        let copy_reads: &[bool] = if field == "x" || field == "c" {
            &[false, true]
        } else {
            &[false]
        };
        for &copy_kept in copy_reads {
            let what = format!("{field}, copy kept: {copy_kept}");
            let mut written = entry(1, value.clone(), Some(soon));
            written.meta = written.meta.with_url_group(Some(key(2)));
            if copy_kept {
                store.put_decoded(written, response.clone()).await.unwrap();
                assert!(store.copies.kept(&key(1), &codec).is_some(), "{what}");
            } else {
                store.put(written).await.unwrap();
            }
            match field {
                // A URL that is no text: the whole read failed as a value of another shape,
                // and the delete's check (the creation alone) left the hash for good.
                "u" => {
                    let () = redis::cmd("HSET")
                        .arg(&redis_key)
                        .arg("u")
                        .arg(&b"\xff\xfe"[..])
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
                _ => query(&mut conn, &["HSET", &redis_key, field, damaged]).await,
            }
            let read = store.get_decoded(&key(1), &codec).await.unwrap();
            assert!(read.is_none(), "{what}: {read:?}");
            assert_eq!(store.get(&key(1)).await.unwrap(), None, "{what}");
            assert_eq!(
                exists(&mut conn, &redis_key).await,
                0,
                "{what}: deleted as read"
            );
        }
    }
}
