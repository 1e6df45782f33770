//! Bodies written as they stream and read back from their file ([`BodyFiles`]).

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use bytes::Bytes;
use cache_core::codec::EntryCodec;
use cache_core::{CacheKey, CacheStore, CachedRequest, CachedResponse, EntryMeta, Opened};
use cache_fs::FsStore;
use http::{HeaderMap, Method, StatusCode, Version};

fn key() -> CacheKey {
    "ab0123456789abcdef0123456789abcd".parse().unwrap()
}

fn response() -> CachedResponse {
    CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        HeaderMap::new(),
        Bytes::new(),
        "https://example.com/big",
        CachedRequest::new(Method::GET, "https://example.com/big", HeaderMap::new()),
    )
}

fn meta() -> EntryMeta {
    EntryMeta::new(key(), "https://example.com/big", SystemTime::now(), None)
}

/// Every file in the entry's shard directory except its lock.
fn shard_files(store: &FsStore) -> Vec<String> {
    let dir = store.record_path(&key()).parent().unwrap().to_path_buf();
    files_in(&dir)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    names.sort();
    names
}

/// 1 MiB of a pattern that catches misplaced chunks.
fn chunks() -> Vec<Bytes> {
    (0..64u32)
        .map(|i| {
            Bytes::from(
                (0..16 * 1024)
                    .map(|j| (i * 7 + j) as u8)
                    .collect::<Vec<u8>>(),
            )
        })
        .collect()
}

/// `renew` rewrites an entry's creation and expiry only while it is the write it names.
#[tokio::test(flavor = "multi_thread")]
async fn renew_changes_only_the_write_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let codec = EntryCodec::new();
    let mut big = response();
    big.body = Bytes::from(vec![b'b'; 100_000]);
    let written = meta();
    let value = codec.encode(Some(&key()), &big).unwrap();
    store
        .put(cache_core::StoredEntry::new(written.clone(), value))
        .await
        .unwrap();
    let files = store.body_files().unwrap();
    let later = written.created_at + std::time::Duration::from_secs(600);
    let until = Some(later + std::time::Duration::from_secs(60));
    let other = written.created_at - std::time::Duration::from_secs(1);
    assert!(!files.renew(&key(), other, later, until).await.unwrap());
    let kept = store.get(&key()).await.unwrap().unwrap();
    assert_eq!(
        kept.meta, written,
        "another write's renewal changed nothing"
    );
    assert!(
        files
            .renew(&key(), written.created_at, later, until)
            .await
            .unwrap()
    );
    let renewed = store.get(&key()).await.unwrap().unwrap();
    assert_eq!(
        renewed.meta.created_at,
        cache_core::time::truncate_to_millis(later)
    );
    assert_eq!(
        renewed.meta.expires_at,
        until.map(cache_core::time::truncate_to_millis)
    );
    assert_eq!(codec.decode(Some(&key()), &renewed.value).unwrap(), big);
    let missing: CacheKey = "cd0123456789abcdef0123456789abcd".parse().unwrap();
    assert!(!files.renew(&missing, later, later, until).await.unwrap());
}

/// A body stored compressed (LZ4, written whole under an earlier, larger `max_body_size`)
/// cannot be read in pieces: `open` reads it whole up to the limit and leaves it unread over
/// it (it read it whole whatever its size, so a file of gigabytes flagged compressed went
/// into memory, to be refused by the codec's own limit); `get` reads it whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_compressed_body_opens_whole_up_to_the_limit_and_unread_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let codec = EntryCodec::new().compress_above(1);
    let mut big = response();
    // A block of 4 KiB that compresses little, ten times: some KiB stored, over the limit.
    let block: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    big.body = Bytes::from(block.repeat(10));
    let value = codec.encode(Some(&key()), &big).unwrap();
    assert!(cache_core::codec::body_is_compressed(&value));
    let stored = value.len() as u64;
    assert!(
        value.len() > 2048 && value.len() < 10_000,
        "{}",
        value.len()
    );
    store
        .put(cache_core::StoredEntry::new(meta(), value))
        .await
        .unwrap();
    let files = store.body_files().unwrap();
    let Some(Opened::Whole(entry)) = files.open(&key(), stored).await.unwrap() else {
        panic!("a compressed body within the limit was not read whole");
    };
    assert_eq!(codec.decode(Some(&key()), &entry.value).unwrap(), big);
    match files.open(&key(), 1024).await.unwrap() {
        Some(Opened::Unread { meta: read, len }) => {
            assert_eq!(read.key, key());
            assert_eq!(len, stored, "the whole stored value's length");
        }
        other => panic!("over the limit: {:?}", other.map(|_| ())),
    }
    let whole = store.get(&key()).await.unwrap().expect("get reads it");
    assert_eq!(codec.decode(Some(&key()), &whole.value).unwrap(), big);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_body_commits_as_an_ordinary_entry_and_opens_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let files = store.body_files().expect("FsStore keeps bodies in files");
    let codec = EntryCodec::new();
    let mut encoder = codec.body_encoder(&key(), &response(), None).unwrap();
    let mut spool = files.begin(&key()).await.unwrap();
    let mut whole = Vec::new();
    for chunk in chunks() {
        encoder.update(&chunk);
        whole.extend_from_slice(&chunk);
        spool.write(chunk).await.unwrap();
    }
    assert!(
        store.get(&key()).await.unwrap().is_none(),
        "nothing visible before the commit"
    );
    let (before, after) = encoder.finish().unwrap();
    spool.commit(meta(), before, after).await.unwrap();

    // `get` reads it whole, exactly as `encode` would have written it.
    let stored = store.get(&key()).await.unwrap().unwrap();
    let mut expected = response();
    expected.body = Bytes::from(whole.clone());
    assert_eq!(codec.decode(Some(&key()), &stored.value).unwrap(), expected);

    // `open` hands the body as a file over the limit, whole under it.
    let Some(Opened::Body(mut file)) = files.open(&key(), 1024).await.unwrap() else {
        panic!("expected the body's file");
    };
    assert_eq!(file.len, whole.len() as u64);
    let mut read = Vec::new();
    file.file.read_to_end(&mut read).unwrap();
    assert_eq!(read, whole);
    let (head, mut verifier) = codec
        .decode_head(&key(), &file.before, &file.after, file.len)
        .unwrap();
    assert_eq!(head, response());
    verifier.update(&read);
    assert!(verifier.verify());
    assert!(matches!(
        files.open(&key(), 2 << 20).await.unwrap(),
        Some(Opened::Whole(_))
    ));
    // A record and its body, no temporary file.
    let names = shard_files(&store);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with(".tmp-")), "{names:?}");
}

/// Whether `open` hands a body as its file or reads it whole goes by the file's own length
/// and the envelope, not by the record's `body_len` and `body_compressed`, which anyone may
/// edit: a record claiming an empty (or compressed) body made `open` read a body of any size
/// whole into memory.
#[tokio::test(flavor = "multi_thread")]
async fn an_edited_record_does_not_make_a_large_body_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let files = store.body_files().unwrap();
    let codec = EntryCodec::new();
    let mut encoder = codec.body_encoder(&key(), &response(), None).unwrap();
    let mut spool = files.begin(&key()).await.unwrap();
    let mut len = 0;
    for chunk in chunks() {
        encoder.update(&chunk);
        len += chunk.len() as u64;
        spool.write(chunk).await.unwrap();
    }
    let (before, after) = encoder.finish().unwrap();
    spool.commit(meta(), before, after).await.unwrap();
    let path = store.record_path(&key());
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (field, claim) in [
        ("body_len", serde_json::json!(0)),
        ("body_compressed", serde_json::json!(true)),
    ] {
        record[field] = claim;
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        match files.open(&key(), 1024).await.unwrap() {
            Some(Opened::Body(file)) => assert_eq!(file.len, len, "{field}"),
            other => panic!("{field} edited: read whole: {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_spool_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let mut spool = store.body_files().unwrap().begin(&key()).await.unwrap();
    for chunk in chunks() {
        spool.write(chunk).await.unwrap();
    }
    assert_eq!(
        shard_files(&store).len(),
        1,
        "the temporary file while writing"
    );
    drop(spool);
    assert!(shard_files(&store).is_empty(), "{:?}", shard_files(&store));
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_bound_is_refused_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::builder()
        .max_bytes(100 * 1024)
        .open(dir.path())
        .unwrap();
    let mut spool = store.body_files().unwrap().begin(&key()).await.unwrap();
    // Refused at the first write past the bound, not once the whole body is on disk.
    let mut written = 0usize;
    let error = loop {
        let chunk = Bytes::from(vec![7u8; 16 * 1024]);
        match spool.write(chunk).await {
            Ok(()) => written += 16 * 1024,
            Err(error) => break error,
        }
        assert!(
            written <= 100 * 1024,
            "{written} bytes taken past the bound"
        );
    };
    assert!(
        matches!(error, cache_core::StoreError::TooLarge { .. }),
        "{error}"
    );
    drop(spool);
    assert!(shard_files(&store).is_empty(), "{:?}", shard_files(&store));
    // A body the bound holds, once the head is counted, is still refused at the commit.
    let mut spool = store.body_files().unwrap().begin(&key()).await.unwrap();
    spool
        .write(Bytes::from(vec![7u8; 100 * 1024]))
        .await
        .unwrap();
    let error = spool
        .commit(meta(), Bytes::from_static(b"head"), Bytes::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error, cache_core::StoreError::TooLarge { .. }),
        "{error}"
    );
    assert!(shard_files(&store).is_empty(), "{:?}", shard_files(&store));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_streamed_body_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let files = store.body_files().unwrap();
    for round in 0..2u8 {
        let mut spool = files.begin(&key()).await.unwrap();
        spool.write(Bytes::from(vec![round; 1000])).await.unwrap();
        let mut encoder = EntryCodec::new()
            .body_encoder(&key(), &response(), Some(1000))
            .unwrap();
        encoder.update(&[round; 1000]);
        let (before, after) = encoder.finish().unwrap();
        spool.commit(meta(), before, after).await.unwrap();
    }
    let stored = store.get(&key()).await.unwrap().unwrap();
    let body = cache_core::decode(&stored.value).unwrap().body;
    assert_eq!(body, vec![1u8; 1000]);
    assert_eq!(shard_files(&store).len(), 2, "{:?}", shard_files(&store));
}

/// A `begin` given up while its file is being created (a store timeout, a cancelled
/// request: here the blocking pool is busy and the caller stops waiting) leaves no file once
/// the creation runs: the spool made with it is dropped, and removes it. The file was made
/// and its path dropped, left for the next sweep at open.
#[test]
fn a_begin_given_up_leaves_no_file() {
    use cache_core::BodyFiles;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = tokio::task::spawn_blocking(move || held.recv());
        let key = key();
        let begin = store.begin(&key);
        let given_up = tokio::time::timeout(std::time::Duration::from_millis(50), begin).await;
        assert!(given_up.is_err(), "the pool's one thread is busy");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // Queued after the creation on the one thread: it has run by now.
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        assert_eq!(shard_files(&store), Vec::<String>::new());
    });
}
