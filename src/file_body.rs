//! A stored body served from its file ([`cache_core::BodyFiles`]), for entries larger than
//! `max_body_size`: read in 64 KiB pieces as the caller reads, never whole, and checked
//! against the entry's signature as it goes. A body that does not verify (or is cut short)
//! ends in an error instead of its end, and its entry is deleted. Calls nothing in the crate
//! but [`crate::file_pieces`].

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cache_core::codec::BodyVerifier;
use cache_core::{CacheKey, CacheStore};

use crate::file_pieces;

/// How much one read takes from the file.
const PIECE: usize = 64 * 1024;

/// An entry's body in its file, with what checks it.
#[derive(Debug)]
pub(crate) struct FileBody {
    file: File,
    len: u64,
    verifier: BodyVerifier,
    /// Where to delete the entry when its body does not verify.
    store: Arc<dyn CacheStore>,
    /// How long that delete may take; `None` for a read-only cache, which deletes nothing
    /// (not even an entry that does not verify).
    delete_within: Option<Duration>,
    key: CacheKey,
    /// The entry's creation: only that entry is deleted, not one written since. Moved on
    /// when a `304` renews the entry (its creation starts over: see [`FileBody::renewed`]).
    created_at: Mutex<SystemTime>,
}

/// Why a body served from a file failed at its end.
#[derive(Debug, thiserror::Error)]
enum FileBodyError {
    #[error("cached body does not match its entry (changed, cut short or mis-signed)")]
    Mismatch,
    #[error("cannot read the cached body")]
    Read(#[source] std::io::Error),
}

impl FileBody {
    pub(crate) fn new(
        file: File,
        len: u64,
        verifier: BodyVerifier,
        (store, key, created_at): (Arc<dyn CacheStore>, CacheKey, SystemTime),
        delete_within: Option<Duration>,
    ) -> Self {
        Self {
            file,
            len,
            verifier,
            store,
            delete_within,
            key,
            created_at: Mutex::new(created_at),
        }
    }

    /// The entry was renewed by a `304` and now counts as created at `created_at`: a body
    /// that then fails its check deletes the renewed entry (the same write, its creation
    /// moved), not nothing.
    pub(crate) fn renewed(&self, created_at: SystemTime) {
        *self.created_at.lock().unwrap_or_else(|e| e.into_inner()) = created_at;
    }

    fn created_at(&self) -> SystemTime {
        *self.created_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The body as a response body, read from the start of the file (each read at its own
    /// offset: bodies served from one file at once do not move each other's place).
    pub(crate) fn into_body(self: Arc<Self>) -> reqwest::Body {
        let start = self.file.try_clone();
        let length = self.len;
        let state = Reading {
            file: start.map_err(FileBodyError::Read),
            left: self.len,
            verifier: Some(self.verifier.clone()),
            body: self,
        };
        let body = futures_util::stream::unfold(state, Reading::next);
        crate::sized_body::streamed(body, Some(length))
    }
}

/// Where a served body is: the file, what is left of it (the next byte to read is the
/// body's length less that).
struct Reading {
    file: Result<File, FileBodyError>,
    left: u64,
    /// Taken once the body ended (verified or not): the stream is over.
    verifier: Option<BodyVerifier>,
    body: Arc<FileBody>,
}

impl Reading {
    async fn next(mut self) -> Option<(Result<Bytes, FileBodyError>, Self)> {
        let file = match std::mem::replace(&mut self.file, Err(FileBodyError::Mismatch)) {
            Ok(file) => file,
            Err(error) => {
                self.verifier.take()?;
                return Some((Err(error), self));
            }
        };
        if self.left == 0 {
            let verified = self.verifier.take()?.verify();
            if verified {
                return None;
            }
            // Before the caller sees the error: its next request must not find the entry
            // (within the store timeout; a read-only cache keeps it).
            let (store, key) = (&*self.body.store, &self.body.key);
            let created_at = self.body.created_at();
            if let Some(limit) = self.body.delete_within {
                let delete = delete_entry_of(store, key, created_at, &file);
                let deleted = tokio::time::timeout(limit, delete)
                    .await
                    .unwrap_or(Err(cache_core::StoreError::Timeout(limit)));
                if let Err(error) = deleted {
                    tracing::debug!(%key, %error, "cannot delete a cached body that does not verify");
                }
            }
            tracing::warn!(%key, "cached body does not verify");
            return Some((Err(FileBodyError::Mismatch), self));
        }
        let want = usize::try_from(self.left).map_or(PIECE, |left| left.min(PIECE));
        let offset = self.body.len - self.left;
        let (file, piece) = match file_pieces::read_piece(file, offset, want).await {
            Ok(read) => read,
            Err(error) => {
                self.verifier = None;
                return Some((Err(FileBodyError::Read(error)), self));
            }
        };
        if piece.is_empty() {
            // The file ended before its length: verification fails at the end.
            self.left = 0;
        } else {
            self.left -= piece.len() as u64;
            if let Some(verifier) = &mut self.verifier {
                verifier.update(&piece);
            }
        }
        self.file = Ok(file);
        if piece.is_empty() {
            // Cut short: on to the check at the end, which fails.
            return Box::pin(self.next()).await;
        }
        Some((Ok(piece.freeze()), self))
    }
}

/// Deletes the entry whose body `served` failed its check: the one created at `created_at`,
/// or, when another request's `304` renewed it since this body was opened (moving its
/// creation), the entry whose body is still this very file. An entry written since with a
/// body of its own stays.
async fn delete_entry_of(
    store: &dyn CacheStore,
    key: &CacheKey,
    created_at: SystemTime,
    served: &File,
) -> Result<(), cache_core::StoreError> {
    if store.delete_if_created(key, created_at).await? {
        return Ok(());
    }
    if let Some(files) = store.body_files() {
        files.delete_if_serving(key, served).await?;
    }
    Ok(())
}
