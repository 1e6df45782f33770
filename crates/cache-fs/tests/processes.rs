//! Several processes on one cache directory: this test binary runs itself as the children.

use std::process::Command;

use bytes::Bytes;
use cache_core::CacheStore;
use cache_core::testing::{entry, key};
use cache_fs::FsStore;

const CHILD_DIR: &str = "CACHE_FS_TEST_CHILD_DIR";
const CHILD_ID: &str = "CACHE_FS_TEST_CHILD_ID";
const ROUNDS: usize = 150;
const VALUE_LEN: usize = 64 * 1024;

/// Reads must never see a mix of two writes: every value is one byte repeated.
fn assert_whole(value: &Bytes) {
    assert_eq!(value.len(), VALUE_LEN, "a whole value");
    assert!(value.iter().all(|b| *b == value[0]), "a torn read");
}

/// Does nothing unless started by `two_processes_write_one_key` as a child: then writes and
/// reads one key `ROUNDS` times.
#[tokio::test]
async fn child_writer() {
    let (Ok(dir), Ok(id)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ID)) else {
        return;
    };
    let id: u8 = id.parse().expect("child id");
    let store = FsStore::open(dir).expect("open");
    for round in 0..ROUNDS {
        let fill = id
            .wrapping_mul(100)
            .wrapping_add(u8::try_from(round % 100).unwrap());
        let value = Bytes::from(vec![fill; VALUE_LEN]);
        store.put(entry(1, value, None)).await.expect("put");
        let read = store.get(&key(1)).await.expect("get").expect("present");
        assert_whole(&read.value);
    }
}

#[tokio::test]
async fn two_processes_write_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (1..=2u8)
        .map(|id| {
            Command::new(&exe)
                .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_ID, id.to_string())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    // Read while they write: never an error, never a torn value.
    let mut reads = 0;
    while reads < 2 * ROUNDS {
        if let Some(read) = store.get(&key(1)).await.expect("get") {
            assert_whole(&read.value);
        }
        reads += 1;
        tokio::task::yield_now().await;
    }
    for mut child in children {
        assert!(
            child.wait().unwrap().success(),
            "a child failed (see its output)"
        );
    }
    assert_whole(&store.get(&key(1)).await.unwrap().expect("stored").value);
    assert_eq!(store.count().await.unwrap(), 1);
    let shard = store.record_path(&key(1)).parent().unwrap().to_path_buf();
    let mut left: Vec<String> = std::fs::read_dir(&shard)
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left.len(), 3, "lock, record and one body: {left:?}");
    assert!(
        left.iter().all(|name| !name.starts_with(".tmp-")),
        "{left:?}"
    );
}
