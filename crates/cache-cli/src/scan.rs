//! Reading entries with their values: sizes for `stats`, and the format check that every
//! command changing or moving entries does first.

use std::future::ready;

use futures_util::stream::{BoxStream, StreamExt};
use reqwest_caching::cache_core::{BodyFile, Opened};
use reqwest_caching::{CacheKey, CacheStore, EntryMeta, StoreError, StoredEntry};

use crate::entry_format::{self, FORMAT_VERSION, HeadCheck, Unreadable};
use crate::error::CliError;

/// How many values are read at once: hides a remote store's round trips, keeps few values
/// in memory.
const READ_AHEAD: usize = 8;

/// The entry under `key`, its body left in its file when the store keeps it in one and it
/// is over [`READ_WHOLE_UP_TO`] bytes; read whole otherwise.
pub async fn open_one(
    store: &dyn CacheStore,
    key: &CacheKey,
) -> Result<Option<Opened>, StoreError> {
    match store.body_files() {
        Some(files) => files.open(key, READ_WHOLE_UP_TO).await,
        None => Ok(store.get(key).await?.map(Opened::Whole)),
    }
}

/// An entry read whole.
#[derive(Debug)]
pub struct Scanned {
    /// Its metadata.
    pub meta: EntryMeta,
    /// The length of its stored (encoded) value.
    pub bytes: u64,
    /// Whether this build can read it.
    pub readable: Result<(), Unreadable>,
}

/// The largest body read into memory to check its entry, in a store that keeps bodies in
/// files: a larger one is checked by the bytes around it, its file left unread (such a store
/// holds downloads larger than memory, and [`READ_AHEAD`] of them are read at once).
const READ_WHOLE_UP_TO: u64 = 1 << 20;

/// The largest compressed body read whole to check its entry (only the whole value says
/// whether it decompresses).
pub const READ_COMPRESSED_UP_TO: u64 = 256 << 20;

/// Every entry `select` keeps, read with its value (a body kept in its file over
/// [`READ_WHOLE_UP_TO`] bytes is not read: its entry is checked without it). Entries deleted
/// between the listing and the read are left out, and so are those `select` no longer keeps
/// as read: an expired entry renewed meanwhile (a `304`) was selected by its listing and
/// deleted as read, fresh.
pub fn scan<'a>(
    store: &'a dyn CacheStore,
    select: impl Fn(&EntryMeta) -> bool + Send + Sync + 'a,
) -> BoxStream<'a, Result<Scanned, StoreError>> {
    let select = std::sync::Arc::new(select);
    let select_read = std::sync::Arc::clone(&select);
    store
        .entries()
        .filter(move |listed| ready(listed.as_ref().map_or(true, |meta| select(meta))))
        .map(move |listed| async move { read_one(store, &listed?.key).await })
        .buffer_unordered(READ_AHEAD)
        .filter_map(move |read| {
            let kept = match read {
                Ok(Some(scanned)) if !select_read(&scanned.meta) => None,
                read => read.transpose(),
            };
            ready(kept)
        })
        .boxed()
}

/// How many records `store` holds beyond the `listed` entries a scan found: records or rows
/// it cannot read as entries (damaged, foreign), which no listing shows and so no command
/// takes. On a cache in use, entries written during the scan count here too. 0 when the
/// store cannot count.
pub async fn unlisted(store: &dyn CacheStore, listed: u64) -> u64 {
    match store.count().await {
        Ok(stored) => stored.saturating_sub(listed),
        Err(_) => 0,
    }
}

/// The entry under `key` as [`scan`] reads it: a body kept in its file over
/// [`READ_WHOLE_UP_TO`] bytes is not read, its entry checked without it. `None` when there
/// is none (deleted since it was listed, say).
pub async fn read_one(
    store: &dyn CacheStore,
    key: &CacheKey,
) -> Result<Option<Scanned>, StoreError> {
    Ok(match open_one(store, key).await? {
        Some(Opened::Body(file)) => {
            let check = entry_format::check_head(key, &file.before, &file.after, file.len);
            match check {
                // A compressed body is no larger than the response it holds was allowed to
                // be: read whole, up to a bound, to check it.
                Ok(HeadCheck::NeedsBody) if file.len <= READ_COMPRESSED_UP_TO => {
                    store.get(key).await?.map(read_whole)
                }
                _ => Some(read_in_file(file, check)),
            }
        }
        Some(Opened::Whole(entry)) => Some(read_whole(entry)),
        // A compressed body over `READ_WHOLE_UP_TO`, which the store left unread (`len`: the
        // whole value's).
        Some(Opened::Unread { meta, len }) => {
            if len <= READ_COMPRESSED_UP_TO {
                store.get(key).await?.map(read_whole)
            } else {
                let readable = Err(compressed_not_checked());
                Some(Scanned {
                    bytes: len,
                    readable,
                    meta,
                })
            }
        }
        // A kind of opening this build does not know: nothing it can vouch for, but its
        // metadata, read whole.
        Some(_) => store.get(key).await?.map(|entry| Scanned {
            bytes: 0,
            readable: Err(Unreadable::Invalid(
                "opened in a way this build does not know".to_owned(),
            )),
            meta: entry.meta,
        }),
        None => None,
    })
}

/// An entry read whole.
fn read_whole(entry: StoredEntry) -> Scanned {
    Scanned {
        bytes: entry.value.len() as u64,
        readable: entry_format::decode(&entry.value).map(drop),
        meta: entry.meta,
    }
}

/// An entry whose body stays in its file, as `check` ([`entry_format::check_head`]) found it.
fn read_in_file(file: BodyFile, check: Result<HeadCheck, Unreadable>) -> Scanned {
    Scanned {
        bytes: ((file.before.len() + file.after.len()) as u64).saturating_add(file.len),
        readable: match check {
            Ok(HeadCheck::Readable) => Ok(()),
            Ok(HeadCheck::NeedsBody) => Err(compressed_not_checked()),
            Err(unreadable) => Err(unreadable),
        },
        meta: file.meta,
    }
}

/// Why an entry whose compressed body is over [`READ_COMPRESSED_UP_TO`] is not vouched for.
pub fn compressed_not_checked() -> Unreadable {
    Unreadable::Invalid(format!(
        "a compressed body over {} not checked",
        crate::output::size(READ_COMPRESSED_UP_TO)
    ))
}

/// The entries of a newer format met so far: any makes the command stop before it changes
/// anything.
#[derive(Debug, Default)]
pub struct NewerFormats {
    newest: u8,
    count: u64,
    first_url: Option<String>,
}

impl NewerFormats {
    /// Notes `entry` when it is of a newer format; true when it is.
    pub fn note(&mut self, entry: &Scanned) -> bool {
        let Err(Unreadable::Newer(version)) = entry.readable else {
            return false;
        };
        self.newest = self.newest.max(version);
        self.count += 1;
        self.first_url.get_or_insert_with(|| entry.meta.url.clone());
        true
    }

    /// `Ok` when none was met.
    ///
    /// # Errors
    ///
    /// [`CliError::NewerFormat`] otherwise.
    pub fn refuse(self) -> Result<(), CliError> {
        match self.first_url {
            None => Ok(()),
            Some(url) => Err(CliError::NewerFormat {
                version: self.newest,
                ours: FORMAT_VERSION,
                count: self.count,
                url,
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::stream::BoxStream;
    use reqwest_caching::cache_core::codec::EntryCodec;
    use reqwest_caching::cache_core::{BodyFiles, CachedRequest, CachedResponse};
    use reqwest_caching::{CacheKey, FsStore, StoredEntry};

    use super::*;

    /// A store whose whole-value reads, and listings of every entry, are counted.
    #[derive(Debug)]
    pub(crate) struct CountedGets {
        pub(crate) inner: FsStore,
        pub(crate) gets: AtomicUsize,
        pub(crate) listings: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl CacheStore for CountedGets {
        async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key).await
        }
        async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
            self.inner.put(entry).await
        }
        async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
            self.inner.delete(key).await
        }
        async fn delete_if_created(
            &self,
            key: &CacheKey,
            created_at: std::time::SystemTime,
        ) -> Result<bool, StoreError> {
            self.inner.delete_if_created(key, created_at).await
        }
        fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
            self.listings.fetch_add(1, Ordering::SeqCst);
            self.inner.entries()
        }
        async fn entries_for_url(
            &self,
            url_group: &CacheKey,
        ) -> Result<Vec<EntryMeta>, StoreError> {
            self.inner.entries_for_url(url_group).await
        }
        async fn clear(&self) -> Result<u64, StoreError> {
            self.inner.clear().await
        }
        fn body_files(&self) -> Option<&dyn BodyFiles> {
            self.inner.body_files()
        }
    }

    impl CountedGets {
        /// An `FsStore` in `dir`, its whole-value reads counted.
        pub(crate) fn open(dir: &std::path::Path) -> Arc<Self> {
            Arc::new(Self {
                inner: FsStore::open(dir).unwrap(),
                gets: AtomicUsize::new(0),
                listings: AtomicUsize::new(0),
            })
        }

        /// Stores a response of `body` under `key`, as written whole (a body over 1 MiB
        /// stays in its file).
        pub(crate) async fn put_response(&self, key: CacheKey, body: Vec<u8>) {
            let url = "https://example.com/big";
            let meta = EntryMeta::new(key, url, std::time::SystemTime::now(), None);
            self.put_meta(meta, body).await;
        }

        /// Stores a response of `body` under `meta`.
        pub(crate) async fn put_meta(&self, meta: EntryMeta, body: Vec<u8>) {
            let value = EntryCodec::new().encode(None, &response(body)).unwrap();
            self.put(StoredEntry::new(meta, value)).await.unwrap();
        }

        pub(crate) fn listings(&self) -> usize {
            self.listings.load(Ordering::SeqCst)
        }

        pub(crate) fn gets(&self) -> usize {
            self.gets.load(Ordering::SeqCst)
        }
    }

    /// A store listing every entry of an `FsStore` as expired, whatever it holds: the
    /// listing of an entry renewed since.
    #[derive(Debug)]
    struct ListedExpired(FsStore);

    #[async_trait::async_trait]
    impl CacheStore for ListedExpired {
        async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
            self.0.get(key).await
        }
        async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
            self.0.put(entry).await
        }
        async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
            self.0.delete(key).await
        }
        fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
            self.0
                .entries()
                .map(|meta| {
                    meta.map(|mut meta| {
                        meta.expires_at = Some(std::time::UNIX_EPOCH);
                        meta
                    })
                })
                .boxed()
        }
        async fn clear(&self) -> Result<u64, StoreError> {
            self.0.clear().await
        }
    }

    /// An entry listed as `select` keeps it but read as it does not (renewed between the
    /// two) is not scanned: `purge --expired` deleted it, fresh.
    #[tokio::test]
    async fn an_entry_no_longer_selected_as_read_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = ListedExpired(FsStore::open(dir.path()).unwrap());
        let value = EntryCodec::new()
            .encode(None, &response(b"fresh".to_vec()))
            .unwrap();
        let meta = EntryMeta::new(
            CacheKey::from_digest([3; 16]),
            "https://example.com/big",
            std::time::SystemTime::now(),
            None,
        );
        store.put(StoredEntry::new(meta, value)).await.unwrap();
        let now = std::time::SystemTime::now();
        let expired: Vec<_> = scan(&store, move |meta| meta.is_expired(now))
            .collect()
            .await;
        assert!(expired.is_empty(), "{expired:?}");
        let all: Vec<_> = scan(&store, |_| true).collect().await;
        assert_eq!(all.len(), 1);
    }

    /// A response to a GET of `https://example.com/big` with `body`.
    pub(crate) fn response(body: Vec<u8>) -> CachedResponse {
        let url = "https://example.com/big";
        let request = CachedRequest::new(http::Method::GET, url, http::HeaderMap::new());
        let (status, version) = (http::StatusCode::OK, http::Version::HTTP_11);
        CachedResponse::new(
            status,
            version,
            http::HeaderMap::new(),
            body.into(),
            url,
            request,
        )
    }

    /// `len` bytes LZ4 shrinks by about half, not more: runs of 8 of a random byte (its codec
    /// stores a body compressed only when that saves room), so the compressed body stays
    /// over the size read whole.
    fn runs_of_noise(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        (0..len / 8)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                [x as u8; 8]
            })
            .collect()
    }

    /// A body kept in its file over the inline size is checked by the bytes around it and
    /// never read (a store of downloads larger than memory had eight read at once); a
    /// compressed one is read whole, the only way to check it: the store's `open` leaves it
    /// unread over the inline size (`Opened::Unread`), and `get` reads it.
    #[tokio::test]
    async fn a_body_in_its_file_is_not_read_to_check_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = CountedGets::open(dir.path());
        let two_mib = 2 << 20;
        let four_mib = 4 << 20;
        let values = [
            EntryCodec::new()
                .encode(None, &response(vec![b'a'; two_mib]))
                .unwrap(),
            EntryCodec::new()
                .compress_above(1)
                .encode(None, &response(runs_of_noise(four_mib)))
                .unwrap(),
            EntryCodec::new()
                .encode(None, &response(b"small".to_vec()))
                .unwrap(),
        ];
        for (n, value) in values.iter().enumerate() {
            let key = CacheKey::from_digest([n as u8; 16]);
            let meta = EntryMeta::new(
                key,
                "https://example.com/big",
                std::time::SystemTime::now(),
                None,
            );
            store
                .put(StoredEntry::new(meta, value.clone()))
                .await
                .unwrap();
        }
        let mut scanned: Vec<Scanned> = scan(&*store, |_| true).map(Result::unwrap).collect().await;
        scanned.sort_by_key(|s| s.meta.key);
        let bytes: Vec<u64> = scanned.iter().map(|s| s.bytes).collect();
        let lengths: Vec<u64> = values.iter().map(|v| v.len() as u64).collect();
        assert_eq!(bytes, lengths);
        assert!(scanned.iter().all(|s| s.readable.is_ok()), "{scanned:?}");
        // The compressed one, through `get`: the only entry read twice.
        assert_eq!(store.gets.load(Ordering::SeqCst), 1);
    }
}
