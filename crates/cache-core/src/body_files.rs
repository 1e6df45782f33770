//! [`BodyFiles`]: the optional ability of a store that keeps bodies in files to take a body
//! larger than memory while it streams, and to hand it back as a file.
//!
//! A store offers it through [`CacheStore::body_files`](crate::CacheStore::body_files). The
//! middleware then caches responses over its `max_body_size`: it writes each chunk to a
//! [`BodySpool`] as the caller reads it, and commits the entry only once the body is
//! complete; a hit streams the body from the file. What is stored is the same entry as
//! [`CacheStore::put`](crate::CacheStore::put) stores (see [`EntryCodec::body_encoder`]),
//! so every other call (`get`, listing, export) sees an ordinary entry.
//!
//! [`EntryCodec::body_encoder`]: crate::codec::EntryCodec::body_encoder

use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{CacheKey, EntryMeta, StoreError, StoredEntry};

/// A store that can write a body as it arrives and read one back as a file.
#[async_trait]
pub trait BodyFiles: Send + Sync {
    /// Starts writing the body of an entry that will be stored under `key`. Nothing is
    /// visible until [`BodySpool::commit`]; a spool dropped before that leaves nothing
    /// behind.
    async fn begin(&self, key: &CacheKey) -> Result<Box<dyn BodySpool>, StoreError>;

    /// The entry under `key`: whole when its stored body is at most `inline_up_to` bytes
    /// (as [`CacheStore::get`](crate::CacheStore::get) reads it), otherwise its body's file
    /// opened, the rest in memory; [`Opened::Unread`] for a body over `inline_up_to` that
    /// reads only whole (stored compressed), which `get` reads.
    async fn open(&self, key: &CacheKey, inline_up_to: u64) -> Result<Option<Opened>, StoreError>;

    /// Renews the entry under `key` as a `304` does, without writing its value again (a body
    /// in its file is not rewritten for new headers): from now on it counts as created at
    /// `created_at` (the age of what it serves starts over) and fresh until `expires_at`.
    /// Only while it is still the entry created at `was_created` (the one the `304`
    /// confirmed, to the millisecond): false, and nothing changed, when it is gone or was
    /// written again since.
    async fn renew(
        &self,
        key: &CacheKey,
        was_created: SystemTime,
        created_at: SystemTime,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError>;

    /// Deletes the entry under `key` if its body is the very file `served` is open on (a
    /// body that failed its check takes its entry along, whatever its creation since: a `304`
    /// renews an entry without writing its body again). An entry written since has a body of
    /// its own and stays. True when it deleted. The default deletes nothing: a store that
    /// cannot tell its files apart leaves the entry to the next reader's check.
    async fn delete_if_serving(
        &self,
        key: &CacheKey,
        served: &std::fs::File,
    ) -> Result<bool, StoreError> {
        let _ = (key, served);
        Ok(false)
    }
}

/// The body of an entry being written.
#[async_trait]
pub trait BodySpool: Send + std::fmt::Debug {
    /// Appends the next chunk of the body.
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// Stores the entry `meta` whose value is `before`, the body written, then `after`,
    /// replacing any entry under its key (the key given to [`BodyFiles::begin`]).
    ///
    /// Returns [`StoreError::TooLarge`] when the store refuses the size; nothing is stored
    /// then, and the body is removed.
    async fn commit(
        self: Box<Self>,
        meta: EntryMeta,
        before: Bytes,
        after: Bytes,
    ) -> Result<(), StoreError>;
}

/// What [`BodyFiles::open`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Opened {
    /// The entry, read whole.
    Whole(StoredEntry),
    /// The entry with its body left in its file.
    Body(BodyFile),
    /// An entry whose body is over `inline_up_to` bytes and reads only whole (it is stored
    /// compressed, and compression does not stream), left unread: whoever asked for at
    /// most `inline_up_to` bytes in memory does not get more. The middleware asks for its
    /// `max_body_size`, which such a body can never decode under (a body is stored
    /// compressed only when that makes it smaller, and the codec refuses to decompress
    /// more than that size): read whole, a file of any size written there would have been
    /// read into memory only to be refused.
    /// [`CacheStore::get`](crate::CacheStore::get) reads it whole.
    Unread {
        /// Metadata.
        meta: EntryMeta,
        /// The stored value's length (the compressed body and the bytes around it), as
        /// [`CacheStore::get`](crate::CacheStore::get) would read it.
        len: u64,
    },
}

/// An entry whose body is read from its file: its value is `before`, the file's `len`
/// bytes, then `after`.
#[derive(Debug)]
#[non_exhaustive]
pub struct BodyFile {
    /// Metadata.
    pub meta: EntryMeta,
    /// The stored bytes before the body (the codec's envelope and head).
    pub before: Bytes,
    /// The stored bytes after the body (a signature, or nothing).
    pub after: Bytes,
    /// The body, opened for reading at its start. It stays readable while open even when
    /// the entry is replaced or deleted meanwhile.
    pub file: std::fs::File,
    /// The body's length.
    pub len: u64,
}

impl BodyFile {
    /// An entry from its parts.
    pub fn new(
        meta: EntryMeta,
        before: Bytes,
        after: Bytes,
        file: std::fs::File,
        len: u64,
    ) -> Self {
        Self {
            meta,
            before,
            after,
            file,
            len,
        }
    }
}
