//! A file of an earlier version upgraded in place, and which reads run on the calling task.

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

/// Only small values are read on the calling task (`get_decoded_now`); a large one would hold
/// the runtime thread for its whole copy, so it is left to the blocking pool.
#[tokio::test]
async fn large_values_are_not_read_on_the_runtime_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = committing_each_write(&dir.path().join("quick.sqlite"));
    let codec = cache_core::codec::EntryCodec::new();
    store
        .put(entry(1, Bytes::from(vec![1u8; 1024]), None))
        .await
        .unwrap();
    store
        .put(entry(2, Bytes::from(vec![2u8; 4 * 1024 * 1024]), None))
        .await
        .unwrap();
    assert!(
        store.get_decoded_now(&key(1), &codec).is_some(),
        "small: at once"
    );
    assert!(
        store.get_decoded_now(&key(2), &codec).is_none(),
        "4 MiB: not on the calling thread"
    );
    let big = store.get(&key(2)).await.unwrap().expect("read on the pool");
    assert_eq!(big.value.len(), 4 * 1024 * 1024);
}

/// A store whose `put` returns once its row is committed. With the default commit delay a
/// write waits in the writer's open transaction, and a read on the calling task meeting the
/// commit of it (the writer busy) rightly answers "not now": these tests are about which
/// values are read at once and what they show, not about that race.
fn committing_each_write(path: &std::path::Path) -> SqliteStore {
    SqliteStore::builder(path)
        .commit_delay(std::time::Duration::ZERO)
        .open()
        .unwrap()
}

/// How late a store may see another process's commit (the crate's documented 5 ms, a read
/// transaction kept between reads), with room for a loaded machine's clock checks.
const OTHERS_SEEN_WITHIN: std::time::Duration = std::time::Duration::from_millis(10);

/// Decoded copies never outlive a change made elsewhere: another connection (as another
/// process would) rewriting the value in place with bytes of the same length, or changing
/// only the metadata, shows in the first read of a store that kept a copy once the store's
/// kept read transaction may have caught up ([`OTHERS_SEEN_WITHIN`]; without the wait, a read
/// within 5 ms of the one before it may still see the file as it was, copy or no copy).
#[tokio::test]
async fn kept_decoded_copies_see_changes_made_by_other_connections() {
    use cache_core::codec::EntryCodec;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copies.sqlite");
    let store = committing_each_write(&path);
    let codec = EntryCodec::new();
    let body = |text: &'static str| {
        let mut response = cache_core::testing::sample_response();
        response.body = Bytes::from_static(text.as_bytes());
        cache_core::encode(&response).unwrap()
    };
    store.put(entry(1, body("first"), None)).await.unwrap();
    let read = |store: &SqliteStore| {
        let decoded = store
            .get_decoded_now(&key(1), &codec)
            .expect("a small value is read on the calling task")
            .unwrap()
            .expect("stored")
            .expect("decodes");
        let cache_core::Entry::Response(response) = &decoded.entry else {
            panic!("a response was stored");
        };
        (response.body.clone(), decoded.meta.expires_at)
    };
    assert_eq!(read(&store).0, "first");
    assert_eq!(read(&store).0, "first", "the second read keeps a copy");

    let other = rusqlite::Connection::open(&path).unwrap();
    let same_length = body("other");
    other
        .execute(
            "UPDATE reqwest_cache_entries SET value = ?1 WHERE key = ?2",
            rusqlite::params![&same_length[..], key(1).as_str()],
        )
        .unwrap();
    std::thread::sleep(OTHERS_SEEN_WITHIN);
    assert_eq!(read(&store).0, "other");

    other
        .execute(
            "UPDATE reqwest_cache_entries SET expires_at = 4000000000000 WHERE key = ?1",
            [key(1).as_str()],
        )
        .unwrap();
    let expires = std::time::UNIX_EPOCH + std::time::Duration::from_secs(4_000_000_000);
    std::thread::sleep(OTHERS_SEEN_WITHIN);
    assert_eq!(read(&store), (Bytes::from_static(b"other"), Some(expires)));

    other
        .execute(
            "DELETE FROM reqwest_cache_entries WHERE key = ?1",
            [key(1).as_str()],
        )
        .unwrap();
    std::thread::sleep(OTHERS_SEEN_WITHIN);
    let gone = store.get_decoded_now(&key(1), &codec).unwrap().unwrap();
    assert!(gone.is_none());
}

/// Rows edited by hand or by another program, with a column of another type than the store
/// writes (a TEXT value, a REAL time, a BLOB URL, a TEXT expiry, a BLOB key), or a creation
/// before 1970 (read as 1970, no delete or renewal by creation time matched it): each is no entry
/// to a read, a listing, a lookup by URL or a sweep, which pass over it, and a write of its
/// key replaces it. Each failed every read of its key, every listing of the store, or every
/// lookup of its URL (so every invalidation of it).
#[tokio::test]
async fn rows_with_columns_of_another_type_are_passed_over() {
    let (_dir, path, store) = store_to_edit(6).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let edit = |set: &str, n: u64| edit_row(&conn, set, n);
    edit("value = 'not a blob'", 1);
    edit("created_at = 1.5", 2);
    edit("url = X'ff00'", 3);
    edit("expires_at = 'soon'", 4);
    edit("created_at = -5", 6);
    conn.execute(
        "INSERT INTO reqwest_cache_entries (key, url, created_at, expires_at, value, url_group)
         VALUES (X'00ff', 'https://example.com/', 0, NULL, X'00', ?1)",
        [group(7).as_str()],
    )
    .unwrap();
    drop(conn);

    for n in [1, 2, 3, 4, 6] {
        let read = store.get(&key(n)).await;
        assert!(matches!(read, Ok(None)), "key {n}: {read:?}");
    }
    // Listings read no value: the row whose value alone is foreign is listed (so it can be
    // deleted, and an invalidation of its URL removes it).
    let listed = listed_keys(&store).await;
    assert_eq!(listed, [key(1), key(5)]);
    let found = store.entries_for_url(&group(7)).await.unwrap();
    assert_eq!(
        found.iter().map(|meta| meta.key).collect::<Vec<_>>(),
        [key(1), key(5)]
    );
    store
        .delete_expired(std::time::SystemTime::now())
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM reqwest_cache_entries WHERE key = ?1",
            [key(4).as_str()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "an expiry that never comes is swept");
    store.put(grouped_entry(1, 7, None)).await.unwrap();
    assert!(
        store.get(&key(1)).await.unwrap().is_some(),
        "a write replaces the row"
    );
}

/// A key that is text but not UTF-8 (another program's row) is passed over by listings,
/// also when it ends a listing's page: read as a `Value`, it failed its page, so every
/// listing of the store (`entries`, and the sweeps and the command-line tool's commands
/// that list), and no read by key could reach it to remove it.
#[tokio::test]
async fn a_key_of_text_that_is_no_utf8_is_passed_over_by_listings() {
    const PAGE: usize = 512;
    let rows = PAGE as u64 + 20;
    let (_dir, path, store) = store_to_edit(rows).await;
    let mut keys: Vec<String> = (1..=rows).map(|n| key(n).as_str().to_owned()).collect();
    keys.sort();
    // Right after the first page's last-but-one key: the last key of the first page.
    let mut foreign = keys[PAGE - 2].clone().into_bytes();
    foreign.push(0xff);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO reqwest_cache_entries (key, url, created_at, expires_at, value, url_group)
         VALUES (CAST(?1 AS TEXT), 'https://example.com/', 0, NULL, X'00', ?2)",
        rusqlite::params![foreign, group(7).as_str()],
    )
    .unwrap();
    let foreign_type: String = conn
        .query_row(
            "SELECT typeof(key) FROM reqwest_cache_entries WHERE CAST(key AS BLOB) = ?1",
            [&foreign],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(foreign_type, "text");
    drop(conn);
    let listed: Vec<String> = listed_keys(&store)
        .await
        .iter()
        .map(|key| key.as_str().to_owned())
        .collect();
    assert_eq!(
        listed, keys,
        "every entry listed, in order, the foreign row passed over"
    );
    assert_eq!(
        store.entries_for_url(&group(7)).await.unwrap().len(),
        keys.len()
    );
}

/// A renewal (`put_if_created`) of a row whose creation time is text that is no UTF-8
/// renews nothing, and says so: it failed as a store error.
#[tokio::test]
async fn a_renewal_of_a_row_with_a_creation_of_no_utf8_renews_nothing() {
    let (_dir, path, store) = store_to_edit(1).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    edit_row(&conn, "created_at = CAST(X'ff' AS TEXT)", 1);
    let renewed = store
        .put_if_created(grouped_entry(1, 7, None), std::time::UNIX_EPOCH)
        .await;
    assert!(matches!(renewed, Ok(false)), "{renewed:?}");
}

/// Rows whose URL group or Vary parent is text that is no key are no entries to a read or a
/// listing, and a write of their key replaces them. Read as none, a damaged group hid the
/// entry from every invalidation of its URL while hits went on serving it.
#[tokio::test]
async fn rows_with_a_group_or_parent_that_is_no_key_are_passed_over() {
    let (_dir, path, store) = store_to_edit(3).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (column, n) in [("url_group", 1), ("variant_of", 2)] {
        edit_row(
            &conn,
            &format!("{column} = 'ffffffffffffffffffffffffffffffgg'"),
            n,
        );
    }
    drop(conn);
    for n in [1, 2] {
        let read = store.get(&key(n)).await;
        assert!(matches!(read, Ok(None)), "key {n}: {read:?}");
    }
    let listed = listed_keys(&store).await;
    assert_eq!(listed, [key(3)]);
    store.put(grouped_entry(1, 7, None)).await.unwrap();
    assert!(
        store.get(&key(1)).await.unwrap().is_some(),
        "a write replaces the row"
    );
}

/// `set_expiry` renews what a read takes for an entry only: a row with a column of another
/// type, or a group or parent that is no key, is left as it was, and the call says nothing
/// was renewed (it renewed them and said so).
#[tokio::test]
async fn set_expiry_leaves_rows_that_are_no_entries() {
    let (_dir, path, store) = store_to_edit(9).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let edit = |set: &str, n: u64| edit_row(&conn, set, n);
    edit("value = 'not a blob'", 1);
    edit("created_at = 1.5", 2);
    edit("url = X'ff00'", 3);
    edit("url_group = 'ffffffffffffffffffffffffffffffgg'", 4);
    edit("variant_of = 'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF'", 5);
    edit("url_group = ''", 6);
    edit("expires_at = 1.5", 8);
    edit("created_at = -5", 9);
    let expiry = |n: u64| -> Option<i64> {
        conn.query_row(
            "SELECT expires_at FROM reqwest_cache_entries WHERE key = ?1",
            [key(n).as_str()],
            |row| row.get(0),
        )
        .unwrap()
    };
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    for n in 1..=5 {
        assert!(
            !store.set_expiry(&key(n), Some(later)).await.unwrap(),
            "row {n}"
        );
        assert_eq!(expiry(n), None, "row {n} unchanged");
    }
    assert!(!store.set_expiry(&key(8), Some(later)).await.unwrap());
    assert!(
        !store.set_expiry(&key(9), Some(later)).await.unwrap(),
        "row 9"
    );
    assert_eq!(expiry(9), None, "row 9 unchanged");
    let kept: f64 = conn
        .query_row(
            "SELECT expires_at FROM reqwest_cache_entries WHERE key = ?1",
            [key(8).as_str()],
            |row| row.get(0),
        )
        .unwrap();
    assert!((kept - 1.5).abs() < f64::EPSILON, "row 8 unchanged");
    for n in [6, 7] {
        assert!(
            store.set_expiry(&key(n), Some(later)).await.unwrap(),
            "row {n}"
        );
        assert!(expiry(n).is_some(), "row {n} renewed");
    }
}

/// A store in a new file holding `rows` entries of one URL group, the file's path, and its
/// directory (removed when dropped), for rows edited by hand.
async fn store_to_edit(rows: u64) -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    for n in 1..=rows {
        store.put(grouped_entry(n, 7, None)).await.unwrap();
    }
    (dir, path, store)
}

/// Sets `set` (SQL, `column = value`) in the row of `key(n)`, which must be there.
fn edit_row(conn: &rusqlite::Connection, set: &str, n: u64) {
    let sql = format!("UPDATE reqwest_cache_entries SET {set} WHERE key = ?1");
    assert_eq!(conn.execute(&sql, [key(n).as_str()]).unwrap(), 1, "{set}");
}

/// The keys `store` lists, in its order.
async fn listed_keys(store: &SqliteStore) -> Vec<cache_core::CacheKey> {
    use futures_util::TryStreamExt;
    store
        .entries()
        .map_ok(|meta| meta.key)
        .try_collect()
        .await
        .unwrap()
}

/// A URL's entries are found through the URL-group index in a file this version creates, and
/// in one an earlier release created without it: without it every invalidation of a URL and
/// every `rm --url` read the whole table.
#[tokio::test]
async fn a_url_s_entries_are_found_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.sqlite");
    let uses_index = || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT key FROM reqwest_cache_entries WHERE url_group = 'g'",
            )
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX reqwest_cache_entries_url_group")),
            "the lookup scans the table: {plan:?}"
        );
    };
    let store = SqliteStore::open(&path).unwrap();
    store.put(grouped_entry(1, 7, None)).await.unwrap();
    uses_index();
    drop(store);
    // As the releases that made the index only when adding its column left a new file.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP INDEX reqwest_cache_entries_url_group")
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    uses_index();
    assert_eq!(store.entries_for_url(&group(7)).await.unwrap().len(), 1);
}
