//! Re-keying ([`recreate_keys`]): after the key settings change (ignored parameters, matched
//! headers, a key function), every stored response whose stored request still holds all its
//! key was made of is moved to the key the current settings give it, instead of lying
//! unreachable under the old one.
//!
//! A response whose body the store keeps in a file (a download larger than memory) moves a
//! piece at a time, file to file: its head decoded, its body verified and copied as it is
//! read, never whole in memory.
//!
//! Calls `cache`, `store_calls`, `full_retry`, `file_pieces`, `error` (nothing that calls it).

use cache_core::codec::BodyVerifier;
use cache_core::{
    BodyFile, BodyFiles, CacheKey, CachedResponse, Entry, EntryMeta, Opened, StoreError,
    StoredEntry,
};
use cache_http::KeyRules;
use futures_util::StreamExt;
use url::Url;

use crate::cache::Cache;
use crate::error::Error;
use crate::file_pieces;
use crate::full_retry::retrying_while_full;
use crate::observe::StoreOp;
use crate::store_calls::{StoreCalls, within};

/// Values up to this size are read whole to be moved; a larger body kept in a file moves a
/// piece at a time.
const READ_WHOLE_UP_TO: u64 = 1024 * 1024;

/// The pieces such a body is copied in.
const PIECE: usize = 256 * 1024;

/// What [`CacheHandle::recreate_keys`](crate::CacheHandle::recreate_keys) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rekeyed {
    /// Responses moved to their new key (or dropped: a newer one is already there, or their
    /// URL changed while they were moved).
    pub moved: u64,
    /// Responses whose key did not change.
    pub unchanged: u64,
    /// Entries left where they are: their stored request no longer holds what their key was
    /// made of (a credential, a body, parameters the old rules removed), they are Vary
    /// variants or indexes, redirect aliases, or they do not decode.
    pub skipped: u64,
}

/// A stored response read to be moved.
enum Moving {
    /// Decoded whole.
    Whole(Box<CachedResponse>),
    /// Its head decoded, its body left in its file.
    InFile(Box<InFile>),
}

/// A response whose body is in a file: its head (an empty body), the file, and the verifier
/// the body must pass as it is read.
struct InFile {
    response: CachedResponse,
    body: BodyFile,
    verifier: BodyVerifier,
}

impl Moving {
    fn response(&self) -> &CachedResponse {
        match self {
            Self::Whole(response) => response,
            Self::InFile(in_file) => &in_file.response,
        }
    }
}

/// Moves every stored response keyed by `previous` to its key under the cache's settings.
pub(crate) async fn recreate_keys(cache: &Cache, previous: &KeyRules) -> Result<Rekeyed, Error> {
    let calls = &cache.live.store;
    // Listed first: the listing must not see the entries this moves.
    let mut metas: Vec<EntryMeta> = Vec::new();
    let mut entries = calls.store.entries();
    loop {
        let step = async { entries.next().await.transpose() };
        match calls.bounded(StoreOp::List, step).await? {
            Some(meta) => metas.push(meta),
            None => break,
        }
    }
    drop(entries);
    let mut done = Rekeyed::default();
    let changes = &cache.live.url_changes;
    for meta in metas {
        // Taken before the entry is read: an unsafe request (or the handle) that changes its
        // URL from then on must not see the response it invalidated written back under the
        // new key (see `url_changes`). Its group as listed, and below as the rules now make it.
        let listed_group = meta.url_group.map(|group| changes.seen(&group));
        let Some((meta, Some(moving))) = read_to_move(calls, &meta.key).await? else {
            done.skipped += 1;
            continue;
        };
        let request = &moving.response().request;
        let url = match Url::parse(&request.url) {
            Ok(url) if meta.variant_of.is_none() => url,
            _ => {
                done.skipped += 1;
                continue;
            }
        };
        // Only a request that, keyed by the old rules, gives the entry's key holds all its key
        // was made of: a credential's entry never moves to the key of a request without it.
        let (method, headers) = (&request.method, &request.headers);
        if previous.key(method, &url, headers, None) != meta.key {
            done.skipped += 1;
            continue;
        }
        let key = cache.settings.keys.key(method, &url, headers, None);
        if key == meta.key {
            done.unchanged += 1;
            continue;
        }
        let url_group = cache.settings.keys.url_group(&url);
        let seen = (changes.seen(&url_group), listed_group);
        let changed = || changes.changed_since_either(seen);
        // Its metadata only: a body there (a download stored since) stays unread.
        let newer_there = calls
            .stored_meta(&key)
            .await?
            .is_some_and(|there| there.created_at >= meta.created_at);
        if !newer_there && !changed() {
            let moved = EntryMeta::new(key, meta.url.clone(), meta.created_at, meta.expires_at)
                .with_url_group(Some(url_group));
            if !write_moved(calls, moved, moving).await? {
                done.skipped += 1;
                continue;
            }
            if changed() {
                // Changed while it was written: the move goes again (a newer write stays).
                calls.delete_if_created(&key, meta.created_at).await?;
            }
        }
        // Only the entry moved: one written there since stays.
        calls.delete_if_created(&meta.key, meta.created_at).await?;
        done.moved += 1;
    }
    Ok(done)
}

/// The entry under `key` as a move reads it: `None` when it is gone; its metadata alone when
/// it is no response this build reads (a Vary index, a value that does not decode). A body
/// over [`READ_WHOLE_UP_TO`] in a store's file stays there.
async fn read_to_move(
    calls: &StoreCalls,
    key: &CacheKey,
) -> Result<Option<(EntryMeta, Option<Moving>)>, StoreError> {
    if let Some(files) = calls.store.body_files() {
        let opened = files.open(key, READ_WHOLE_UP_TO);
        if let Some(Opened::Body(body)) = calls.bounded(StoreOp::Get, opened).await? {
            let meta = body.meta.clone();
            let head = calls.decode_head(key, &body.before, &body.after, body.len);
            let moving = head.ok().map(|(response, verifier)| {
                Moving::InFile(Box::new(InFile {
                    response,
                    body,
                    verifier,
                }))
            });
            return Ok(Some((meta, moving)));
        }
    }
    Ok(calls.inspect(key).await?.map(|(meta, entry)| {
        let moving = match entry {
            Some(Entry::Response(response)) => Some(Moving::Whole(Box::new(response))),
            _ => None,
        };
        (meta, moving)
    }))
}

/// Writes `moving` under `moved` (its new key); false when it cannot be (it does not encode
/// there, or a body read from its file does not verify or ended short: left where it is).
async fn write_moved(calls: &StoreCalls, moved: EntryMeta, moving: Moving) -> Result<bool, Error> {
    match moving {
        Moving::Whole(response) => {
            let Some(value) = calls.encode(&response, &moved.key) else {
                return Ok(false);
            };
            let moved = StoredEntry::new(moved, value);
            let put = || calls.bounded(StoreOp::Put, calls.store.put(moved.clone()));
            retrying_while_full(put).await?;
            Ok(true)
        }
        Moving::InFile(in_file) => {
            // Read from a file only where the store has body files.
            let Some(files) = calls.store.body_files() else {
                return Ok(false);
            };
            let InFile {
                response,
                body,
                verifier,
            } = *in_file;
            Ok(copy_body_file(calls, files, moved, &response, body, verifier).await?)
        }
    }
}

/// Copies the body in `body`'s file to a new entry `moved` of `files`, a piece at a time,
/// encoding it for its new key and verifying it as it was stored.
async fn copy_body_file(
    calls: &StoreCalls,
    files: &dyn BodyFiles,
    moved: EntryMeta,
    response: &CachedResponse,
    body: BodyFile,
    mut verifier: BodyVerifier,
) -> Result<bool, StoreError> {
    let Some(mut encoder) = calls.body_encoder(&moved.key, response, Some(body.len)) else {
        return Ok(false);
    };
    let mut spool = calls.bounded(StoreOp::Put, files.begin(&moved.key)).await?;
    let (mut file, mut copied) = (body.file, 0u64);
    while copied < body.len {
        let want = usize::try_from(body.len - copied).map_or(PIECE, |left| left.min(PIECE));
        let (read_on, piece) = file_pieces::read_piece(file, copied, want)
            .await
            .map_err(StoreError::backend)?;
        if piece.is_empty() {
            // Shorter than its record says: damaged, left where it is (dropping the spool
            // removes what was copied).
            return Ok(false);
        }
        verifier.update(&piece);
        encoder.update(&piece);
        copied += piece.len() as u64;
        file = read_on;
        within(calls.store_timeout, spool.write(piece.freeze())).await?;
    }
    let Some((before, after)) = encoder.finish().filter(|_| verifier.verify()) else {
        return Ok(false);
    };
    within(calls.store_timeout, spool.commit(moved, before, after)).await?;
    Ok(true)
}
