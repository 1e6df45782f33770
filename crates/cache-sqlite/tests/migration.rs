//! A file written before entries carried a URL group opens, keeps its rows readable, and
//! indexes new writes by URL.

use bytes::Bytes;
use cache_core::CacheStore;
use cache_core::testing::{entry, group, grouped_entry, key};
use cache_sqlite::SqliteStore;

#[tokio::test]
async fn a_file_without_url_group_columns_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        // The schema as the previous release created it, with one row.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE reqwest_cache_entries (
                 key TEXT PRIMARY KEY NOT NULL,
                 url TEXT NOT NULL,
                 created_at INTEGER NOT NULL,
                 expires_at INTEGER,
                 value BLOB NOT NULL
             );",
        )
        .unwrap();
        let old = entry(1, Bytes::from_static(b"old row"), None);
        conn.execute(
            "INSERT INTO reqwest_cache_entries (key, url, created_at, expires_at, value)
             VALUES (?1, ?2, ?3, NULL, ?4)",
            rusqlite::params![
                old.meta.key.as_str(),
                old.meta.url,
                cache_core::time::to_millis(old.meta.created_at),
                &old.value[..]
            ],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let old = store.get(&key(1)).await.unwrap().expect("old row readable");
    assert_eq!(&old.value[..], b"old row");
    assert_eq!(old.meta.url_group, None);
    store.put(grouped_entry(2, 7, Some(1))).await.unwrap();
    let found = store.entries_for_url(&group(7)).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].variant_of, Some(key(1)));
    drop(store);
    // Opening the upgraded file again changes nothing.
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.count().await.unwrap(), 2);
}
