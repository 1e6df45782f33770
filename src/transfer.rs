//! Copying a cache from one store to another: [`copy`], and `export` / `import` to and
//! from the readable directory format of `FsStore` (feature `fs`).
//!
//! Entries move as the stores hold them (encoded bytes and metadata, keys unchanged), so
//! they stay reachable by the same requests, keep their creation and expiry times, and a
//! signed entry still verifies with the same signing keys. Expired entries are copied too:
//! they can still be revalidated.
//!
//! A copy trusts its source: an entry is written under the key it was listed with, whatever
//! its stored request says. Checking keys against requests would not make an untrusted
//! directory safe (keys are computed from public parts of a request, so a hostile directory
//! can hold any response under the right key). To take caches from others, sign entries
//! ([`signing_keys`](crate::CacheMiddlewareBuilder::signing_keys)): a signature covers the
//! entry's key, so an entry moved to another key, or altered, fails verification at its
//! first read and is dropped, never served.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use reqwest_caching::{MemoryStore, transfer};
//!
//! let from = MemoryStore::new();
//! let to = MemoryStore::new();
//! let done = transfer::copy(&from, &to, |progress| {
//!     eprintln!("{} entries, {} bytes", progress.entries, progress.bytes);
//! })
//! .await?;
//! assert_eq!(done.entries, 0);
//! # Ok(())
//! # }
//! ```
//!
//! Calls nothing else in the crate but the store types it re-exports (`FsStore`).

use cache_core::{BodyFile, BodyFiles, CacheKey, CacheStore, Opened, StoreError, StoredEntry};
use futures_util::StreamExt;

/// How many entries a copy reads and writes at once: enough to hide a remote store's round
/// trips, few enough that memory holds only a handful of values.
const IN_FLIGHT: usize = 8;

/// Bodies over this many bytes go from body file to body file a piece at a time when both
/// stores keep bodies in files; smaller entries are read whole, which costs less.
const STREAMED_OVER: u64 = 1024 * 1024;

/// The pieces such a body is read in.
const PIECE: usize = 256 * 1024;

/// How far a copy has got; the callback receives it after every entry, and the copy returns
/// the last one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Entries written to the destination.
    pub entries: u64,
    /// Their stored bytes (encoded values).
    pub bytes: u64,
    /// Entries not copied: deleted from the source while the copy ran, or refused by the
    /// destination as too large.
    pub skipped: u64,
}

/// Why a copy stopped. Entries copied before it stay in the destination.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Listing or reading the source failed.
    #[error("reading the source store failed")]
    Source(#[source] StoreError),
    /// Writing the destination failed.
    #[error("writing the destination store failed")]
    Destination(#[source] StoreError),
}

/// Copies every entry of `from` into `to`, replacing entries under the same keys, and calls
/// `on_progress` after each one.
///
/// It streams: entries are listed with [`CacheStore::entries`] and read, written and dropped
/// a few at a time, so memory does not grow with the size of the cache. Between two stores
/// that keep bodies in files ([`CacheStore::body_files`], as `FsStore` does), a body over
/// 1 MiB goes from file to file a piece at a time, never whole in memory; into any other
/// store an entry is written whole, as that store keeps it.
///
/// # Errors
///
/// [`TransferError::Source`] or [`TransferError::Destination`] on the first store error
/// (an entry too large for the destination is skipped, not an error).
pub async fn copy<F, T>(
    from: &F,
    to: &T,
    mut on_progress: impl FnMut(Progress),
) -> Result<Progress, TransferError>
where
    F: CacheStore + ?Sized,
    T: CacheStore + ?Sized,
{
    let mut moved = from
        .entries()
        .map(|meta| async move {
            let meta = meta.map_err(TransferError::Source)?;
            copy_entry(from, to, &meta.key).await
        })
        .buffer_unordered(IN_FLIGHT);
    let mut progress = Progress::default();
    while let Some(outcome) = moved.next().await {
        match outcome? {
            Some(bytes) => {
                progress.entries += 1;
                progress.bytes += bytes;
            }
            None => progress.skipped += 1,
        }
        on_progress(progress);
    }
    Ok(progress)
}

/// Copies the entry under `key`: its stored bytes, or `None` when it was skipped (gone from
/// the source, or too large for the destination).
async fn copy_entry<F, T>(from: &F, to: &T, key: &CacheKey) -> Result<Option<u64>, TransferError>
where
    F: CacheStore + ?Sized,
    T: CacheStore + ?Sized,
{
    if let (Some(source), Some(destination)) = (from.body_files(), to.body_files()) {
        let opened = source
            .open(key, STREAMED_OVER)
            .await
            .map_err(TransferError::Source)?;
        match opened {
            None => return Ok(None),
            Some(Opened::Whole(entry)) => return put_whole(to, entry).await,
            Some(Opened::Body(body)) => return copy_body_file(destination, key, body).await,
            // A kind of opening this version does not know: read whole below.
            Some(_) => {}
        }
    }
    match from.get(key).await.map_err(TransferError::Source)? {
        Some(entry) => put_whole(to, entry).await,
        None => Ok(None),
    }
}

/// Writes `entry` to `to`; `None` when `to` refuses it as too large.
async fn put_whole<T: CacheStore + ?Sized>(
    to: &T,
    entry: StoredEntry,
) -> Result<Option<u64>, TransferError> {
    let bytes = entry.value.len() as u64;
    match to.put(entry).await {
        Ok(()) => Ok(Some(bytes)),
        Err(StoreError::TooLarge { .. }) => Ok(None),
        Err(e) => Err(TransferError::Destination(e)),
    }
}

/// Writes the entry whose body is in `body`'s file into `to`'s body files, a piece at a time.
/// The entry written is the one `put` would write with the whole value (see
/// [`BodySpool::commit`](cache_core::BodySpool::commit)).
async fn copy_body_file(
    to: &dyn BodyFiles,
    key: &CacheKey,
    body: BodyFile,
) -> Result<Option<u64>, TransferError> {
    let BodyFile {
        meta,
        before,
        after,
        file,
        len,
        ..
    } = body;
    let bytes = before.len() as u64 + len + after.len() as u64;
    let mut spool = to.begin(key).await.map_err(TransferError::Destination)?;
    let (mut file, mut left) = (Some(file), len);
    while left > 0 {
        let want = usize::try_from(left).map_or(PIECE, |left| left.min(PIECE));
        let taken = file.take();
        let read = tokio::task::spawn_blocking(move || {
            let mut file = taken?;
            let mut piece = bytes::BytesMut::zeroed(want);
            let read = std::io::Read::read(&mut file, &mut piece);
            Some((file, piece, read))
        })
        .await;
        let (opened, mut piece, read) = match read {
            Ok(Some(done)) => done,
            // The pool gone (the runtime shutting down), or no file (never: it is put back).
            _ => return Err(source_error(key, "its body file could not be read")),
        };
        let n = read.map_err(|e| TransferError::Source(StoreError::backend(e)))?;
        if n == 0 {
            // Shorter than its record says: a damaged entry, not copied as if whole.
            return Err(source_error(
                key,
                "its body file ends before its stated length",
            ));
        }
        piece.truncate(n);
        left -= n as u64;
        file = Some(opened);
        spool
            .write(piece.freeze())
            .await
            .map_err(TransferError::Destination)?;
    }
    match spool.commit(meta, before, after).await {
        Ok(()) => Ok(Some(bytes)),
        Err(StoreError::TooLarge { .. }) => Ok(None),
        Err(e) => Err(TransferError::Destination(e)),
    }
}

/// A source error about the entry under `key`.
fn source_error(key: &CacheKey, what: &str) -> TransferError {
    let error = std::io::Error::other(format!("the entry {key}: {what}"));
    TransferError::Source(StoreError::backend(error))
}

/// Copies every entry of `from` into the cache directory `dir` (created if needed), the
/// readable format of [`FsStore`](crate::FsStore).
///
/// # Errors
///
/// As [`copy`]; opening `dir` failing is a [`TransferError::Destination`].
#[cfg(feature = "fs")]
pub async fn export<F: CacheStore + ?Sized>(
    from: &F,
    dir: impl AsRef<std::path::Path>,
    on_progress: impl FnMut(Progress),
) -> Result<Progress, TransferError> {
    let to = crate::FsStore::open(dir).map_err(TransferError::Destination)?;
    copy(from, &to, on_progress).await
}

/// Copies every entry of the cache directory `dir` (written by [`export`] or an
/// [`FsStore`](crate::FsStore)) into `to`. `dir` is only read
/// ([`FsStore::open_read_only`](crate::FsStore::open_read_only)): nothing in it is created
/// or swept, so it may be on read-only media.
///
/// # Errors
///
/// As [`copy`]; a `dir` that is not a directory (or cannot be opened) is a
/// [`TransferError::Source`].
#[cfg(feature = "fs")]
pub async fn import<T: CacheStore + ?Sized>(
    dir: impl AsRef<std::path::Path>,
    to: &T,
    on_progress: impl FnMut(Progress),
) -> Result<Progress, TransferError> {
    let dir = dir.as_ref();
    // Said plainly: a mistyped path is the likely cause.
    if !dir.is_dir() {
        let missing = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is not a cache directory", dir.display()),
        );
        return Err(TransferError::Source(StoreError::unavailable(missing)));
    }
    let from = crate::FsStore::open_read_only(dir).map_err(TransferError::Source)?;
    copy(&from, to, on_progress).await
}
