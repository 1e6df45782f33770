//! What the tests of the files on disk share: stored entries, and reading and editing their
//! files by hand.
// Each test binary uses its own share of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cache_core::codec::EntryCodec;
use cache_core::testing::{group, key, sample_response};
use cache_core::{CacheStore, EntryMeta, StoredEntry};
use cache_fs::FsStore;

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for file in std::fs::read_dir(dir).expect("list") {
        let path = file.expect("list").path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The body files of `key`'s shard.
pub fn bodies(store: &FsStore, n: u64) -> Vec<PathBuf> {
    let shard = store
        .record_path(&key(n))
        .parent()
        .expect("shard")
        .to_path_buf();
    files_under(&shard)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "body"))
        .collect()
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read record")).expect("record is JSON")
}

/// Stores entry `n`, then edits its record by hand as `edit` does (what a person or a commit
/// may do to a cache's files).
pub async fn put_and_edit(store: &FsStore, n: u64, edit: impl FnOnce(&mut serde_json::Value)) {
    store
        .put(response_entry(n, &EntryCodec::new()))
        .await
        .unwrap();
    let path = store.record_path(&key(n));
    let mut doc = json(&path);
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
}

pub fn response_entry(n: u64, codec: &EntryCodec) -> StoredEntry {
    let value = codec
        .encode(Some(&key(n)), &sample_response())
        .expect("encode");
    let meta = EntryMeta::new(
        key(n),
        "https://example.com/final",
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_060)),
    )
    .with_url_group(Some(group(1)));
    StoredEntry::new(meta, value)
}

/// An error with its sources, as a log line shows it.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
