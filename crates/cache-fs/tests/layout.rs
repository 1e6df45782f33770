//! The files on disk: where they are, what they hold, and what crashes leave behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cache_core::codec::{EntryCodec, SigningKeys};
use cache_core::testing::{entry, group, key, sample_response};
use cache_core::{CacheKey, CacheStore, EntryMeta, StoredEntry};
use cache_fs::FsStore;
use futures_util::StreamExt;

mod common;
use common::{bodies, chain, files_under, json, put_and_edit, response_entry};

#[tokio::test]
async fn files_are_where_the_docs_say_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let written = response_entry(1, &EntryCodec::new());
    store.put(written.clone()).await.unwrap();

    let k = key(1).to_string();
    let record = dir
        .path()
        .join("entries")
        .join(&k[..2])
        .join(format!("{k}.json"));
    assert_eq!(store.record_path(&key(1)), record);
    let doc = json(&record);
    assert_eq!(doc["key"], k.as_str());
    assert_eq!(doc["url"], "https://example.com/final");
    assert_eq!(doc["created"], "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_eq!(doc["expires_at_ms"], 1_700_000_060_000_i64);
    assert_eq!(doc["url_group"], group(1).as_str());
    assert_eq!(doc["response"]["status"], 200);
    assert_eq!(doc["response"]["request"]["method"], "GET");
    let headers = doc["response"]["headers"].as_array().unwrap();
    assert!(headers.contains(&serde_json::json!(["content-type", "text/plain"])));

    let [body] = bodies(&store, 1).try_into().expect("one body file");
    assert_eq!(
        std::fs::read(&body).unwrap(),
        b"hello body",
        "the body, as is"
    );
    assert_eq!(
        doc["body_file"],
        body.file_name().unwrap().to_str().unwrap()
    );
    let marker = dir.path().join("groups").join(group(1).as_str()).join(&k);
    assert!(marker.is_file(), "the URL group lists the key");
    assert_eq!(store.get(&key(1)).await.unwrap(), Some(written));
}

#[tokio::test]
async fn signed_and_compressed_values_come_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let codec = EntryCodec::new()
        .compress_above(1)
        .signing_keys(SigningKeys::new(
            b"a secret of 32 bytes or more....".to_vec(),
        ));
    let mut written = response_entry(1, &codec);
    let mut big = sample_response();
    big.body = Bytes::from("compress me ".repeat(1000));
    written.value = codec.encode(Some(&key(1)), &big).unwrap();
    store.put(written.clone()).await.unwrap();
    let read = store.get(&key(1)).await.unwrap().expect("stored");
    assert_eq!(read, written);
    assert_eq!(codec.decode(Some(&key(1)), &read.value).unwrap(), big);
    let doc = json(&store.record_path(&key(1)));
    assert_eq!(doc["body_compressed"], true);
    assert_eq!(
        doc["value_tail"].as_str().unwrap().len(),
        64,
        "the signature"
    );
}

#[tokio::test]
async fn set_expiry_rewrites_only_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    store
        .put(response_entry(1, &EntryCodec::new()))
        .await
        .unwrap();
    let before = bodies(&store, 1);
    let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    assert!(store.set_expiry(&key(1), Some(later)).await.unwrap());
    assert_eq!(bodies(&store, 1), before, "the body file is untouched");
    assert_eq!(
        json(&store.record_path(&key(1)))["expires_at_ms"],
        1_800_000_000_000_i64
    );
    assert_eq!(
        store.get(&key(1)).await.unwrap().unwrap().meta.expires_at,
        Some(later)
    );
}

/// An origin may send `Expires: Fri, 31 Dec 9999 23:59:60 GMT`: an entry expiring past what an
/// HTTP date shows is stored and renewed (its date for people clamped to the last one, the
/// milliseconds exact), where formatting it panicked the write.
#[tokio::test]
async fn times_past_year_9999_are_stored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800);
    let mut entry = response_entry(1, &EntryCodec::new());
    entry.meta.expires_at = Some(far);
    store.put(entry).await.expect("stored");
    let record = json(&store.record_path(&key(1)));
    assert_eq!(record["expires"], "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_eq!(record["expires_at_ms"], 253_402_300_800_000_i64);
    let further = far + Duration::from_secs(86_400 * 365 * 1000);
    assert!(
        store
            .set_expiry(&key(1), Some(further))
            .await
            .expect("renewed")
    );
    let read = store.get(&key(1)).await.unwrap().expect("stored");
    assert_eq!(read.meta.expires_at, Some(further));
}

#[tokio::test]
async fn replacing_and_deleting_leave_no_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    for _ in 0..3 {
        store
            .put(response_entry(1, &EntryCodec::new()))
            .await
            .unwrap();
    }
    assert_eq!(bodies(&store, 1).len(), 1, "old bodies are removed");
    assert!(store.delete(&key(1)).await.unwrap());
    let left: Vec<_> = files_under(dir.path())
        .into_iter()
        .filter(|p| p.file_name().unwrap() != ".lock")
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new());
}

/// A write over the entry read only, refused over a newer one, leaves no file of its own
/// (its body and record were written under temporary names first); accepted, it leaves one
/// body, as a put does.
#[tokio::test]
async fn a_refused_conditional_write_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let written = |secs: u64| {
        let mut entry = response_entry(1, &EntryCodec::new());
        entry.meta.created_at += Duration::from_secs(secs);
        entry
    };
    store.put(written(0)).await.unwrap();
    store.put(written(5)).await.unwrap();
    let before = files_under(dir.path());
    let read = written(0).meta.created_at;
    assert!(!store.put_if_created(written(10), read).await.unwrap());
    assert_eq!(
        files_under(dir.path()),
        before,
        "the refused write left files"
    );
    let newer = written(5).meta.created_at;
    assert!(store.put_if_created(written(10), newer).await.unwrap());
    assert_eq!(bodies(&store, 1).len(), 1, "the replaced body is removed");
    let renewed = store.get(&key(1)).await.unwrap().expect("renewed");
    assert_eq!(renewed.meta.created_at, written(10).meta.created_at);
}

/// What a writer killed mid-write leaves: temporary files, and a body no record names.
#[tokio::test]
async fn files_of_a_dead_writer_are_ignored_then_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    store
        .put(entry(1, Bytes::from_static(b"kept"), None))
        .await
        .unwrap();
    let shard = store.record_path(&key(1)).parent().unwrap().to_path_buf();
    let k = key(1);
    let left = [
        shard.join(".tmp-1234-dead-0.json"),
        shard.join(".tmp-1234-dead-1.body"),
        shard.join(format!("{k}.1234-dead-2.body")),
    ];
    std::fs::write(&left[0], b"{\"key\": \"half a rec").unwrap();
    for path in &left[1..] {
        std::fs::write(path, b"half a body").unwrap();
    }

    assert_eq!(
        store.count().await.unwrap(),
        1,
        "temporary files are not entries"
    );
    let read = store.get(&key(1)).await.unwrap().unwrap();
    assert_eq!(read.value, "kept");
    assert_eq!(
        store.sweep().await.unwrap(),
        0,
        "too young: may be a live writer's"
    );
    assert!(left.iter().all(|p| p.exists()));

    make_an_hour_old(&left);
    // Reopening sweeps, as a restarted program would.
    let reopened = FsStore::open(dir.path()).unwrap();
    assert!(left.iter().all(|p| !p.exists()), "swept at open");
    assert_eq!(reopened.get(&key(1)).await.unwrap().unwrap().value, "kept");
}

/// Sets each file's modification an hour back: past the age after which a sweep takes what
/// no record names.
fn make_an_hour_old(paths: &[PathBuf]) {
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for path in paths {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(an_hour_ago).unwrap();
    }
}

/// A record this version cannot read (a later version's format, sharing the directory) may
/// name a body: no sweep removes that body, however old; the later version finds its entry
/// whole.
#[tokio::test]
async fn a_body_named_by_a_record_of_a_later_format_is_not_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    store
        .put(entry(1, Bytes::from_static(b"kept"), None))
        .await
        .unwrap();
    let path = store.record_path(&key(1));
    let mut doc = json(&path);
    doc["format"] = 2.into();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let bodies: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|file| file.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "body"))
        .collect();
    assert!(!bodies.is_empty(), "the entry's body is in a file");
    make_an_hour_old(&bodies);
    // Reopening sweeps, as a restarted program of this version would.
    drop(store);
    let reopened = FsStore::open(dir.path()).unwrap();
    assert_eq!(reopened.sweep().await.unwrap(), 0);
    assert!(bodies.iter().all(|body| body.exists()), "a body was swept");
    doc["format"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let read = reopened.get(&key(1)).await.unwrap().expect("the entry");
    assert_eq!(read.value, "kept");
}

/// `clear` removes every record, those it cannot read too (no listing shows them, so they
/// stayed for good), and a record file put in another key's shard is no entry: listed and
/// counted once, it was its key twice.
#[tokio::test]
async fn clear_takes_unreadable_records_and_a_misplaced_record_is_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    for n in [1, 2] {
        store
            .put(entry(n, Bytes::from_static(b"v"), None))
            .await
            .unwrap();
    }
    std::fs::write(store.record_path(&key(1)), b"not json").unwrap();
    let second = store.record_path(&key(2));
    let prefix = key(2).as_str()[..2].to_owned();
    let elsewhere =
        second
            .parent()
            .unwrap()
            .with_file_name(if prefix == "00" { "01" } else { "00" });
    std::fs::copy(&second, elsewhere.join(second.file_name().unwrap())).unwrap();
    let listed: Vec<CacheKey> = store
        .entries()
        .map(|meta| meta.unwrap().key)
        .collect()
        .await;
    assert_eq!(listed, vec![key(2)]);
    assert_eq!(
        store.count().await.unwrap(),
        2,
        "two record files of their own shards"
    );
    assert_eq!(store.clear().await.unwrap(), 2);
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(
        !store.record_path(&key(1)).exists(),
        "the unreadable record stayed"
    );
}

#[tokio::test]
async fn damaged_or_hand_edited_records_are_misses_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    store
        .put(response_entry(1, &EntryCodec::new()))
        .await
        .unwrap();
    store
        .put(response_entry(2, &EntryCodec::new()))
        .await
        .unwrap();
    let created_at = store.get(&key(1)).await.unwrap().unwrap().meta.created_at;
    std::fs::write(store.record_path(&key(1)), b"not json").unwrap();
    assert_eq!(store.get(&key(1)).await.unwrap(), None);
    assert!(
        !store.delete_if_created(&key(1), created_at).await.unwrap(),
        "a record that cannot be read may not be the one meant"
    );
    // A record may only name a body of its own key in its own directory.
    let path = store.record_path(&key(2));
    let mut doc = json(&path);
    doc["body_file"] = "../../../../etc/passwd".into();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let read = store.get(&key(2)).await.unwrap().expect("still listed");
    assert!(cache_core::decode(&read.value).is_err(), "reads as a miss");
    assert_eq!(store.count().await.unwrap(), 2);
    assert!(
        store.delete(&key(1)).await.unwrap(),
        "the damaged one can be deleted"
    );
}

/// A record is text anyone may edit (fs caches are meant to be committed): one naming a body
/// file outside its own directory must not make the store remove that file when the entry
/// is replaced, deleted or cleared.
#[tokio::test]
async fn a_record_naming_a_file_elsewhere_never_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let victims: Vec<PathBuf> = (0..4)
        .map(|n| {
            let victim = outside.path().join(format!("precious-{n}.body"));
            std::fs::write(&victim, b"not the cache's").unwrap();
            victim
        })
        .collect();
    let relative = |victim: &Path| {
        // From the shard directory (two levels under the store) out to the victim.
        let up = "../".repeat(dir.path().components().count() + 2);
        format!("{up}{}", victim.display())
    };
    // A name that classifies as the key's own body, through a directory named after it.
    let disguised = {
        let shard = store.record_path(&key(4)).parent().unwrap().to_path_buf();
        let hop = format!("{}.", key(4).as_str());
        std::fs::create_dir_all(shard.join(&hop)).unwrap();
        format!("{hop}/../{}", relative(&victims[3]))
    };
    let names = [
        victims[0].display().to_string(),
        relative(&victims[1]),
        victims[2].display().to_string(),
        disguised,
    ];
    for (n, name) in (1..).zip(&names) {
        put_and_edit(&store, n, |doc| doc["body_file"] = name.as_str().into()).await;
    }
    // Replaced, deleted, cleared: each path that forgets an entry's files.
    store
        .put(response_entry(1, &EntryCodec::new()))
        .await
        .unwrap();
    assert!(store.delete(&key(2)).await.unwrap());
    store.clear().await.unwrap();
    for victim in &victims {
        assert!(victim.exists(), "{} was removed", victim.display());
    }
}

/// Under a body file's name, something the store did not write: a link (committed with the
/// cache, pointing anywhere) is neither served as the body nor removed, and a directory is no
/// error to reads, deletes or sweeps (it failed each read, and the sweep at its shard).
#[cfg(unix)]
#[tokio::test]
async fn links_and_directories_under_a_body_name_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"the machine's own file").unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    for n in 1..=2 {
        store
            .put(response_entry(n, &EntryCodec::new()))
            .await
            .unwrap();
    }
    let body_path = |n: u64| {
        let record = store.record_path(&key(n));
        let name = json(&record)["body_file"].as_str().unwrap().to_owned();
        record.parent().unwrap().join(name)
    };
    std::fs::remove_file(body_path(1)).unwrap();
    std::os::unix::fs::symlink(&secret, body_path(1)).unwrap();
    std::fs::remove_file(body_path(2)).unwrap();
    std::fs::create_dir(body_path(2)).unwrap();

    let read = store.get(&key(1)).await.unwrap().expect("listed");
    assert!(
        !read.value.windows(6).any(|w| w == b"machin"),
        "the link's target was served as the body"
    );
    assert!(
        store.get(&key(2)).await.is_ok(),
        "a directory is a miss, not an error"
    );
    assert!(store.sweep().await.is_ok());
    // The same under the group markers: a file where a group's directory goes, a directory
    // where a key's marker goes.
    let groups = dir.path().join("groups");
    std::fs::write(groups.join(group(7).as_str()), b"not a directory").unwrap();
    let marker_dir = groups.join(group(1).as_str()).join(key(9).as_str());
    std::fs::create_dir_all(&marker_dir).unwrap();
    assert!(store.sweep().await.is_ok());
    assert_eq!(store.entries_for_url(&group(7)).await.unwrap(), Vec::new());
    assert!(store.delete(&key(1)).await.unwrap());
    assert!(store.delete(&key(2)).await.unwrap());
    assert!(secret.exists());
    assert!(store.sweep().await.is_ok());
}

/// Under a record's name, something the store did not write: a link to a record kept
/// elsewhere is not read (it was served as the entry), a FIFO does not hold the lookup (it
/// blocked it for good) and a directory is a miss (it failed every lookup of the key).
#[cfg(unix)]
#[tokio::test]
async fn links_fifos_and_directories_under_a_record_name_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    for n in 1..=3 {
        store
            .put(response_entry(n, &EntryCodec::new()))
            .await
            .unwrap();
    }
    let record = |n: u64| store.record_path(&key(n));
    let kept_elsewhere = outside.path().join("record.json");
    std::fs::rename(record(1), &kept_elsewhere).unwrap();
    std::os::unix::fs::symlink(&kept_elsewhere, record(1)).unwrap();
    std::fs::remove_file(record(2)).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(record(2))
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(made.success(), "mkfifo made the FIFO");
    std::fs::remove_file(record(3)).unwrap();
    std::fs::create_dir(record(3)).unwrap();

    assert!(
        store.get(&key(1)).await.unwrap().is_none(),
        "a link's target was read as the record"
    );
    let fifo = tokio::time::timeout(Duration::from_secs(10), store.get(&key(2))).await;
    if fifo.is_err() {
        // Opening the FIFO for writing lets the blocked read end, so the test fails, not hangs.
        drop(std::fs::OpenOptions::new().write(true).open(record(2)));
        panic!("the lookup blocked reading a FIFO");
    }
    assert!(fifo.unwrap().unwrap().is_none());
    assert!(
        store.get(&key(3)).await.unwrap().is_none(),
        "a directory is a miss, not an error"
    );
    assert!(store.sweep().await.is_ok());
    // A put over the link replaces the link, not what it points at.
    store
        .put(response_entry(1, &EntryCodec::new()))
        .await
        .unwrap();
    assert!(store.get(&key(1)).await.unwrap().is_some());
    assert!(kept_elsewhere.exists());
}

/// A directory of the store's that is a link (committed with the cache, pointing anywhere)
/// is refused, not written through: a shard or `groups` itself when the store opens, a
/// group's directory when an entry of the group is written. The store wrote its records,
/// bodies and markers wherever the link pointed.
#[cfg(unix)]
#[tokio::test]
async fn linked_directories_are_refused_not_written_through() {
    let elsewhere = tempfile::tempdir().unwrap();
    let shard = format!("entries/{}", &key(1).as_str()[..2]);
    for linked in [shard, "groups".to_owned()] {
        let dir = tempfile::tempdir().unwrap();
        drop(FsStore::open(dir.path()).unwrap());
        let path = dir.path().join(&linked);
        std::fs::remove_dir(&path).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &path).unwrap();
        let refused = chain(&FsStore::open(dir.path()).map(drop).unwrap_err());
        assert!(refused.contains(&linked), "{linked}: {refused}");
    }
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let group_dir = dir.path().join("groups").join(group(1).as_str());
    std::os::unix::fs::symlink(elsewhere.path(), &group_dir).unwrap();
    let put = store.put(response_entry(1, &EntryCodec::new())).await;
    let refused = chain(&put.unwrap_err());
    assert!(refused.contains("is a link"), "{refused}");
    assert_eq!(
        files_under(elsewhere.path()),
        Vec::<PathBuf>::new(),
        "nothing written through a link"
    );
}

/// Sizes are read from records anyone may edit: ones claiming the largest size there is are
/// counted, evicted and cleared without overflowing (a debug build panicked summing them).
#[tokio::test]
async fn records_claiming_huge_sizes_are_counted_without_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let huge = |doc: &mut serde_json::Value| doc["size"] = u64::MAX.into();
    for n in 1..=3 {
        put_and_edit(&store, n, huge).await;
    }
    drop(store);
    // Opening with a bound counts every record, and evicts down to it.
    let bounded = FsStore::builder()
        .max_bytes(1 << 20)
        .open(dir.path())
        .expect("opens");
    bounded
        .put(response_entry(4, &EntryCodec::new()))
        .await
        .unwrap();
    drop(bounded);
    let store = FsStore::open(dir.path()).unwrap();
    for n in 5..=7 {
        put_and_edit(&store, n, huge).await;
    }
    store.clear().await.expect("clears");
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test]
async fn the_byte_bound_evicts_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::builder()
        .max_bytes(10_000)
        .open(dir.path())
        .unwrap();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for n in 0..20u64 {
        let meta = EntryMeta::new(key(n), "https://e/", start + Duration::from_secs(n), None);
        store
            .put(StoredEntry::new(meta, Bytes::from(vec![b'x'; 1000])))
            .await
            .unwrap();
    }
    let mut kept = cache_core::store::collect_keys(store.entries(), |_| true)
        .await
        .unwrap();
    kept.sort();
    assert!(
        kept.len() <= 10,
        "{} entries of 1,000 bytes under 10,000",
        kept.len()
    );
    let mut newest: Vec<_> = (20 - kept.len() as u64..20).map(key).collect();
    newest.sort();
    assert_eq!(kept, newest, "the oldest went first");
    let too_big = StoredEntry::new(
        EntryMeta::new(key(99), "https://e/", start, None),
        Bytes::from(vec![0; 10_001]),
    );
    assert!(matches!(
        store.put(too_big).await,
        Err(cache_core::StoreError::TooLarge {
            size: 10_001,
            limit: 10_000
        })
    ));
}

/// A cache directory as a repository holds it (no empty directories) with what a dead writer
/// left, opened read-only: it reads as it is, every write is refused with an error saying so,
/// and not one file or directory is created, removed or touched (a writable open recreates
/// the shards and sweeps the dead writer's files).
#[tokio::test]
async fn a_read_only_store_reads_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let writer = FsStore::open(dir.path()).unwrap();
    writer
        .put(response_entry(1, &EntryCodec::new()))
        .await
        .unwrap();
    let shard = writer.record_path(&key(1)).parent().unwrap().to_path_buf();
    let dead = [shard.join(".tmp-1234-dead-0.json")];
    std::fs::write(&dead[0], b"{\"key\": \"half a rec").unwrap();
    make_an_hour_old(&dead);
    drop(writer);
    // A checkout keeps no empty directories: every shard but entry 1's is gone.
    test_support::remove_empty_dirs(dir.path());
    assert_eq!(
        std::fs::read_dir(shard.parent().unwrap()).unwrap().count(),
        1
    );
    let before = test_support::tree_snapshot(dir.path());

    let store = FsStore::open_read_only(dir.path()).unwrap();
    assert!(store.is_read_only());
    let read = store.get(&key(1)).await.unwrap().expect("entry 1 reads");
    assert_eq!(read.value, response_entry(1, &EntryCodec::new()).value);
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.entries().count().await, 1);
    assert!(
        store.get(&key(2)).await.unwrap().is_none(),
        "a missing shard is empty"
    );
    let refusals = [
        store
            .put(entry(2, Bytes::from_static(b"new"), None))
            .await
            .err(),
        store.delete(&key(1)).await.err(),
        store
            .put_if_created(
                entry(1, Bytes::from_static(b"new"), None),
                SystemTime::now(),
            )
            .await
            .err(),
        store
            .delete_if_created(&key(1), SystemTime::now())
            .await
            .err(),
        store.set_expiry(&key(1), None).await.err(),
        store.delete_expired(SystemTime::now()).await.err(),
        store.clear().await.err(),
        store.sweep().await.err(),
        store.body_files().unwrap().begin(&key(3)).await.err(),
    ];
    for refusal in refusals {
        let refusal = refusal.expect("a write to a read-only store is refused");
        assert!(chain(&refusal).contains("read-only"), "{}", chain(&refusal));
        assert!(!refusal.is_transient(), "not a store outage: {refusal:?}");
    }
    assert_eq!(
        test_support::tree_snapshot(dir.path()),
        before,
        "the directory was changed"
    );

    assert!(
        FsStore::open_read_only(dir.path().join("missing")).is_err(),
        "a missing directory is an error, not created"
    );
    assert!(!dir.path().join("missing").exists());
    // The same directory opened for writing recreates the shards and sweeps.
    FsStore::open(dir.path()).unwrap();
    assert!(!dead[0].exists());
}

/// `delete_if_serving` deletes the entry whose body is the very file given, whatever its
/// creation, and never an entry written since with the same creation but a body of its own.
#[cfg(unix)]
#[tokio::test]
async fn delete_if_serving_tells_bodies_apart_not_creations() {
    use cache_core::{BodyFiles, Opened};
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let files: &dyn BodyFiles = store.body_files().unwrap();
    let body_of = |opened: Option<Opened>| match opened {
        Some(Opened::Body(body)) => body.file,
        other => panic!("no body file: {other:?}"),
    };
    store
        .put(response_entry(1, &EntryCodec::new()))
        .await
        .unwrap();
    let first = body_of(files.open(&key(1), 0).await.unwrap());
    // Written again with the same creation: another body file.
    store
        .put(response_entry(1, &EntryCodec::new()))
        .await
        .unwrap();
    assert!(!files.delete_if_serving(&key(1), &first).await.unwrap());
    assert_eq!(store.count().await.unwrap(), 1, "the rewrite stays");
    let second = body_of(files.open(&key(1), 0).await.unwrap());
    assert!(files.delete_if_serving(&key(1), &second).await.unwrap());
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(!files.delete_if_serving(&key(1), &second).await.unwrap());
}
