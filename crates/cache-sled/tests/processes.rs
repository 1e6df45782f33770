//! A process that ends without closing its database, and one that closes it: this test
//! binary runs itself as the children.

use std::process::Command;

use bytes::Bytes;
use cache_core::CacheStore;
use cache_core::testing::{entry, key};
use cache_sled::{SledStore, sled};

const CHILD_DIR: &str = "CACHE_SLED_TEST_CHILD_DIR";
const CHILD_ENDING: &str = "CACHE_SLED_TEST_CHILD_ENDING";

/// A value large enough to be kept in the `bodies` tree.
const LARGE: usize = 64 * 1024;

/// The id of the body a child writes with no record pointing to it, as a write whose
/// process died between the body and its record leaves one.
const ORPHAN_ID: u64 = 1 << 40;

/// Does nothing unless started by a test below as a child: stores an entry with a large
/// body, leaves a body no record points to, makes it all durable, then ends as
/// `CHILD_ENDING` says: `exit` (no destructor runs, as in a kill) or `close` (every handle
/// dropped).
#[tokio::test]
async fn child() {
    let (Ok(dir), Ok(ending)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ENDING)) else {
        return;
    };
    let db = sled::open(&dir).expect("open");
    let store = SledStore::builder().with_db(db.clone()).expect("store");
    let value = Bytes::from(vec![1u8; LARGE]);
    store.put(entry(1, value, None)).await.expect("put");
    let bodies = db.open_tree("bodies").expect("bodies");
    bodies
        .insert(ORPHAN_ID.to_be_bytes(), vec![2u8; LARGE])
        .expect("orphan");
    db.flush().expect("flush");
    match ending.as_str() {
        "exit" => std::process::exit(0),
        _ => {
            drop(store);
            drop(bodies);
            drop(db);
        }
    }
}

/// The database a child left, ending as `ending` says, opened again here: the directory
/// (removed when dropped), the store and its `bodies` tree.
fn opened_after_child(ending: &str) -> (tempfile::TempDir, SledStore, sled::Tree) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(exe)
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_ENDING, ending)
        .status()
        .expect("spawn child");
    assert!(status.success(), "the child failed (see its output)");
    test_support::wait_for_sled_lock(dir.path());
    let store = SledStore::open(dir.path()).unwrap();
    let bodies = store.db().open_tree("bodies").unwrap();
    (dir, store, bodies)
}

/// The open after a process ended with the database open drops the body no record points
/// to (in a store without a bound, nothing else ever would), and keeps the entry's.
#[tokio::test]
async fn a_process_ending_with_the_database_open_leaves_it_to_the_next_open_to_sweep() {
    let (_dir, store, bodies) = opened_after_child("exit");
    assert!(!bodies.contains_key(ORPHAN_ID.to_be_bytes()).unwrap());
    assert_eq!(bodies.len(), 1, "the entry's body stays");
    let found = store.get(&key(1)).await.unwrap().expect("stored");
    assert_eq!(found.value.len(), LARGE);
}

/// A process that closed the database leaves nothing to sweep: the next open does not go
/// over the records (the body it left on purpose is still there).
#[tokio::test]
async fn a_process_closing_the_database_leaves_nothing_to_sweep() {
    let (_dir, store, bodies) = opened_after_child("close");
    assert!(bodies.contains_key(ORPHAN_ID.to_be_bytes()).unwrap());
    assert_eq!(store.count().await.unwrap(), 1);
}
