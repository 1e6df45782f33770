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
//! Calls nothing else in the crate but the store types it re-exports (`FsStore`),
//! `file_pieces` and `full_retry`.

use cache_core::{BodyFile, BodyFiles, CacheKey, CacheStore, Opened, StoreError, StoredEntry};
use futures_util::StreamExt;

use crate::file_pieces;
use crate::full_retry::retrying_while_full;

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
/// that keep bodies in files ([`CacheStore::body_files`], as `FsStore` does), an uncompressed
/// body over 1 MiB goes from file to file a piece at a time, never whole in memory (a
/// compressed one is read whole: it was written whole, within the `max_body_size` of its
/// time). Otherwise (either store without body files) an entry is read and written whole;
/// a body over 1 MiB in a source's file is first measured against the destination's
/// [`CacheStore::max_value_bytes`] (skipped when over it, never read), and such bodies are
/// read one at a time. Between two stores with body files, a destination with a size bound
/// refuses an entry too large for it only at its end, so such a body is first written out
/// in full (then removed) and skipped.
///
/// # Errors
///
/// [`TransferError::Source`] or [`TransferError::Destination`] on the first store error
/// (an entry too large for the destination is skipped, not an error). A destination that
/// reports itself full ([`StoreError::Full`]: SQLite's write queue while its writer is held,
/// Redis at `maxmemory`) is given a few more tries over about 2.5 s before that ends the
/// copy (a full disk still does).
pub async fn copy<F, T>(
    from: &F,
    to: &T,
    mut on_progress: impl FnMut(Progress),
) -> Result<Progress, TransferError>
where
    F: CacheStore + ?Sized,
    T: CacheStore + ?Sized,
{
    let large_reads = tokio::sync::Semaphore::new(1);
    let large_reads = &large_reads;
    let mut moved = from
        .entries()
        .map(|meta| async move {
            let meta = meta.map_err(TransferError::Source)?;
            copy_entry(from, to, &meta.key, large_reads).await
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
///
/// A value over [`STREAMED_OVER`] in a source's body file that must be read whole (the
/// destination keeps no body files, or the body is compressed) is first measured against
/// the destination's [`CacheStore::max_value_bytes`], and skipped when over it: read whole
/// only to be refused, a download of gigabytes (or a hostile directory's body file of a
/// terabyte) ran the copy out of memory. Such reads take `large_reads` (one at a time), so
/// memory holds one large value, not [`IN_FLIGHT`] of them.
async fn copy_entry<F, T>(
    from: &F,
    to: &T,
    key: &CacheKey,
    large_reads: &tokio::sync::Semaphore,
) -> Result<Option<u64>, TransferError>
where
    F: CacheStore + ?Sized,
    T: CacheStore + ?Sized,
{
    let mut _large_read = None;
    if let Some(source) = from.body_files() {
        let opened = source
            .open(key, STREAMED_OVER)
            .await
            .map_err(TransferError::Source)?;
        let whole_len = match (opened, to.body_files()) {
            (None, _) => return Ok(None),
            (Some(Opened::Whole(entry)), _) => return put_whole(to, entry).await,
            (Some(Opened::Body(body)), Some(destination)) => {
                return copy_body_file(destination, key, body).await;
            }
            (Some(Opened::Body(body)), None) => {
                Some(body.before.len() as u64 + body.len + body.after.len() as u64)
            }
            // A compressed body over `STREAMED_OVER`, left unread: it reads only whole.
            (Some(Opened::Unread { len, .. }), _) => Some(len),
            // A kind of opening this version does not know: read whole below.
            (Some(_), _) => None,
        };
        if let Some(len) = whole_len {
            if to.max_value_bytes().is_some_and(|max| len > max) {
                return Ok(None);
            }
            _large_read = Some(large_reads.acquire().await);
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
    match retrying_while_full(|| to.put(entry.clone())).await {
        Ok(()) => Ok(Some(bytes)),
        Err(error) => skipped_if_too_large(error),
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
    let mut spool = match to.begin(key).await {
        Ok(spool) => spool,
        Err(error) => return skipped_if_too_large(error),
    };
    let (mut file, mut copied) = (file, 0u64);
    while copied < len {
        let want = usize::try_from(len - copied).map_or(PIECE, |left| left.min(PIECE));
        let (read_on, piece) = file_pieces::read_piece(file, copied, want)
            .await
            .map_err(|e| TransferError::Source(StoreError::backend(e)))?;
        if piece.is_empty() {
            // The file shrank since it was opened: the bytes it holds are what is stored, as
            // a whole read would find them (the codec rejects them at their first read).
            break;
        }
        copied += piece.len() as u64;
        file = read_on;
        if let Err(error) = spool.write(piece.freeze()).await {
            return skipped_if_too_large(error);
        }
    }
    let bytes = before.len() as u64 + copied + after.len() as u64;
    match spool.commit(meta, before, after).await {
        Ok(()) => Ok(Some(bytes)),
        Err(error) => skipped_if_too_large(error),
    }
}

/// A destination's refusal as too large skips the entry, as [`put_whole`] does; any other
/// error stops the copy.
fn skipped_if_too_large(error: StoreError) -> Result<Option<u64>, TransferError> {
    match error {
        StoreError::TooLarge { .. } => Ok(None),
        error => Err(TransferError::Destination(error)),
    }
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
