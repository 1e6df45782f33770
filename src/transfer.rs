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

use cache_core::{CacheStore, StoreError};
use futures_util::StreamExt;

/// How many entries a copy reads and writes at once: enough to hide a remote store's round
/// trips, few enough that memory holds only a handful of values.
const IN_FLIGHT: usize = 8;

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
/// a few at a time, so memory does not grow with the size of the cache.
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
            let Some(entry) = from.get(&meta.key).await.map_err(TransferError::Source)? else {
                return Ok(None);
            };
            let bytes = entry.value.len() as u64;
            match to.put(entry).await {
                Ok(()) => Ok(Some(bytes)),
                Err(StoreError::TooLarge { .. }) => Ok(None),
                Err(e) => Err(TransferError::Destination(e)),
            }
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
