//! A cache directory edited, committed or shared by hand: what is under the store's own names
//! may be anything (a link, a FIFO, a directory, a record of a later format or claiming any
//! size, a name no file can have, a body left out). The store never writes through it, never
//! fails for good on it, and never loses or hides an entry for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cache_core::codec::EntryCodec;
use cache_core::testing::{group, key};
use cache_core::{CacheStore, Opened};
use cache_fs::FsStore;

mod common;
use common::{bodies, chain, json, put_and_edit, response_entry};

/// Where the store keeps the marker listing `n` in URL group `g`.
fn marker(root: &Path, g: u64, n: u64) -> PathBuf {
    root.join("groups")
        .join(group(g).as_str())
        .join(key(n).as_str())
}

async fn put(store: &FsStore, n: u64) {
    store
        .put(response_entry(n, &EntryCodec::new()))
        .await
        .unwrap();
}

/// A link under a group marker's name (committed with the cache, pointing at a file of the
/// user's) is replaced by the marker, not written through: the store created markers with
/// `File::create`, which follows the link and empties its target.
#[cfg(unix)]
#[tokio::test]
async fn links_under_group_marker_names_are_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let precious = outside.path().join("precious");
    std::fs::write(&precious, b"the user's own file").unwrap();
    let created_through_link = outside.path().join("made-by-the-cache");
    let group_dir = marker(dir.path(), 1, 1).parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&group_dir).unwrap();
    std::os::unix::fs::symlink(&precious, marker(dir.path(), 1, 1)).unwrap();
    std::os::unix::fs::symlink(&created_through_link, marker(dir.path(), 1, 2)).unwrap();

    for n in 1..=3 {
        put(&store, n).await;
    }

    assert_eq!(std::fs::read(&precious).unwrap(), b"the user's own file");
    assert!(!created_through_link.exists(), "a file made through a link");
    for n in 1..=2 {
        let found = std::fs::symlink_metadata(marker(dir.path(), 1, n)).unwrap();
        assert!(found.is_file(), "marker {n} is a file of the store's");
    }
    let mut listed: Vec<_> = store
        .entries_for_url(&group(1))
        .await
        .unwrap()
        .into_iter()
        .map(|meta| meta.key)
        .collect();
    listed.sort();
    let mut written: Vec<_> = (1..=3).map(key).collect();
    written.sort();
    assert_eq!(listed, written, "every entry listed under its URL");
}

/// The lock file of the shard of the test entries.
fn lock_file(store: &FsStore) -> PathBuf {
    store.record_path(&key(1)).with_file_name(".lock")
}

/// A link or a FIFO under a shard's lock file is neither followed nor waited on: the shard's
/// writes fail with an error naming it (it is not removed: a writer removing it could remove
/// the lock file another had just made and locked), and go through once it is gone. Opening
/// a FIFO for writing blocked every write of the shard for good; a link made its target.
#[cfg(unix)]
#[tokio::test]
async fn links_and_fifos_under_a_lock_file_fail_writes_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    let lock_target = outside.path().join("lock-target");
    for fifo in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let lock = lock_file(&store);
        if fifo {
            let made = std::process::Command::new("mkfifo")
                .arg(&lock)
                .status()
                .expect("mkfifo (coreutils) runs");
            assert!(made.success(), "mkfifo made the FIFO");
        } else {
            std::os::unix::fs::symlink(&lock_target, &lock).unwrap();
        }
        let write = store.put(response_entry(1, &EntryCodec::new()));
        let written = tokio::time::timeout(Duration::from_secs(10), write).await;
        let Ok(written) = written else {
            // A reader on the FIFO lets the blocked open end, so the test fails, not hangs.
            drop(std::fs::File::open(&lock));
            panic!("a write blocked opening a FIFO as its shard's lock");
        };
        let refused = chain(&written.expect_err("written through"));
        assert!(
            refused.contains(".lock"),
            "the error names the lock: {refused}"
        );
        assert!(!lock_target.exists(), "a lock file made through a link");
        std::fs::remove_file(&lock).unwrap();
        put(&store, 1).await;
        assert!(store.get(&key(1)).await.unwrap().is_some());
    }
}

/// An entry whose body file is gone (left out of a commit or a copy, deleted by hand) reads
/// as an unreadable entry, which is listed, shown and deleted as one: it read as nothing
/// while still listed, so that no read, filter or delete by key reached it.
#[tokio::test]
async fn an_entry_whose_body_file_is_gone_reads_as_unreadable_and_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    put(&store, 1).await;
    let [body] = bodies(&store, 1).try_into().expect("one body file");
    std::fs::remove_file(body).unwrap();

    let read = store.get(&key(1)).await.unwrap().expect("read, not missed");
    assert!(
        cache_core::decode(&read.value).is_err(),
        "reads as unreadable"
    );
    let files = store.body_files().expect("the store keeps bodies in files");
    let opened = files.open(&key(1), 0).await.unwrap();
    assert!(
        matches!(&opened, Some(Opened::Whole(entry)) if entry.value.is_empty()),
        "opened as unreadable: {opened:?}"
    );
    assert!(store.delete(&key(1)).await.unwrap(), "deleted by its key");
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(
        !marker(dir.path(), 1, 1).exists(),
        "its marker went with it"
    );
}

/// A record naming a body no file can have (a NUL in it, more than 255 bytes) names no body
/// of its own: the entry is unreadable, not an error of every read, count and delete.
#[tokio::test]
async fn body_names_no_file_can_have_make_an_entry_unreadable_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let names = [
        format!("{}.\0.body", key(1)),
        format!("{}.{}.body", key(2), "a".repeat(300)),
    ];
    for (n, name) in (1..).zip(&names) {
        put_and_edit(&store, n, |doc| doc["body_file"] = name.as_str().into()).await;
    }
    for n in 1..=2 {
        let read = store.get(&key(n)).await.expect("no error").expect("listed");
        assert!(cache_core::decode(&read.value).is_err(), "{n}: unreadable");
    }
    assert!(store.delete(&key(1)).await.unwrap());
    assert_eq!(store.clear().await.unwrap(), 1);
}

/// The sweep leaves the group marker of a record this version cannot read (a later version's
/// format, sharing the directory), as it leaves its body: it removed the marker, and the
/// later version's URL lookups, deletes and invalidations missed the entry. A marker of no
/// record, or of something else under a record's name, goes.
#[tokio::test]
async fn a_sweep_keeps_the_marker_of_a_record_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    put_and_edit(&store, 1, |doc| doc["format"] = 2.into()).await;
    put(&store, 2).await;
    std::fs::remove_file(store.record_path(&key(2))).unwrap();
    // A directory under a record's name is no version's record: its marker is stale too.
    put(&store, 3).await;
    std::fs::remove_file(store.record_path(&key(3))).unwrap();
    std::fs::create_dir(store.record_path(&key(3))).unwrap();
    store.sweep().await.unwrap();
    assert!(
        marker(dir.path(), 1, 1).exists(),
        "the later version's marker went"
    );
    assert!(
        !marker(dir.path(), 1, 2).exists(),
        "a marker of no record stays"
    );
    assert!(
        !marker(dir.path(), 1, 3).exists(),
        "a marker of a directory stays"
    );
}

/// A directory where the store keeps a file (a record, a marker) is not the store's: it is
/// no entry, and no error to deletes and `clear`, where removing it failed them for good.
#[tokio::test]
async fn directories_under_the_store_s_file_names_fail_no_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    put(&store, 1).await;
    put(&store, 2).await;
    std::fs::create_dir(store.record_path(&key(3))).unwrap();
    std::fs::remove_file(marker(dir.path(), 1, 2)).unwrap();
    std::fs::create_dir(marker(dir.path(), 1, 2)).unwrap();

    assert_eq!(store.count().await.unwrap(), 2, "a directory is no entry");
    assert!(!store.delete(&key(3)).await.unwrap());
    assert!(
        store.delete(&key(2)).await.unwrap(),
        "deleted despite the directory"
    );
    assert_eq!(store.clear().await.unwrap(), 1);
    assert!(store.record_path(&key(3)).is_dir(), "left alone");
}

/// The byte bound counts what an entry's files hold, not the size its record claims: one
/// record claiming the largest size there is made the bound evict every other entry.
#[tokio::test]
async fn the_bound_counts_what_files_hold_not_what_records_claim() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    put_and_edit(&store, 1, |doc| doc["size"] = u64::MAX.into()).await;
    for n in 2..=4 {
        put(&store, n).await;
    }
    drop(store);
    let bounded = FsStore::builder()
        .max_bytes(1 << 20)
        .open(dir.path())
        .unwrap();
    for n in 1..=4 {
        assert!(bounded.get(&key(n)).await.unwrap().is_some(), "{n} evicted");
    }
}

/// A record file longer than any record (64 MiB) is unreadable, not read whole: a sparse
/// file of terabytes took memory without bound at every lookup, listing and count. Here a
/// record that would read (JSON takes the trailing spaces) made just too long.
#[tokio::test]
async fn a_record_file_longer_than_any_record_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    put(&store, 1).await;
    let record = store.record_path(&key(1));
    let mut padded = std::fs::read(&record).unwrap();
    padded.resize(64 << 20 | 1, b' ');
    assert_eq!(json(&record)["key"], key(1).as_str());
    std::fs::write(&record, &padded).unwrap();
    assert!(store.get(&key(1)).await.unwrap().is_none(), "read whole");
    assert!(store.delete(&key(1)).await.unwrap());
}

/// A body file claiming more bytes than the bound (a sparse file of a terabyte, or an entry
/// written before the bound was set) is evicted first, alone: counted whole it saturated
/// the total, and the bound evicted every older entry before it.
#[tokio::test]
async fn an_entry_over_the_bound_is_evicted_first_and_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    for n in 1..=4 {
        put(&store, n).await;
    }
    let [body] = bodies(&store, 4)
        .into_iter()
        .filter(|body| body.to_string_lossy().contains(key(4).as_str()))
        .collect::<Vec<_>>()
        .try_into()
        .expect("one body file of entry 4");
    std::fs::File::options()
        .write(true)
        .open(&body)
        .unwrap()
        .set_len(1 << 40)
        .expect("a sparse file (every common file system makes one)");
    drop(store);
    let bounded = FsStore::builder()
        .max_bytes(1 << 20)
        .open(dir.path())
        .unwrap();
    for n in 1..=3 {
        assert!(bounded.get(&key(n)).await.unwrap().is_some(), "{n} evicted");
    }
    assert_eq!(bounded.count().await.unwrap(), 3, "the large one went");
}

/// A write whose record cannot be put in place (a directory holds its name) fails and
/// takes back what it put in place before: its body file and its URL group marker, which
/// stayed, named by no record (the body until a sweep at open, the marker listing the key
/// under a URL it was not stored for).
#[tokio::test]
async fn a_write_that_fails_at_its_record_leaves_no_body_or_marker() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    std::fs::create_dir(store.record_path(&key(3))).unwrap();
    let failed = store.put(response_entry(3, &EntryCodec::new())).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(bodies(&store, 3), Vec::<PathBuf>::new());
    assert!(!marker(dir.path(), 1, 3).exists(), "the marker stayed");
}
