//! Finding what is stored for a request: the entry under its URL key, or, when that is a
//! Vary index (RFC 9111 §4.1), the variant the request's headers select. One read path for
//! every store: the store answers at once when it can ([`StoreCalls::read_servable_at_once`]);
//! a body over `max_body_size` in a store that keeps files stays in its file. When the store
//! would make the lookup wait (a server), the variant the URL's last index selects is read
//! with the index, in one store call ([`StoreCalls::read_servable_pair`]; see
//! [`VaryGuesses`](crate::vary_guesses::VaryGuesses); the variant keys are remembered in
//! [`VariantKeys`]). Calls only the store calls, the guesses and leaf modules.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use cache_core::{CacheKey, CachedRequest, CachedResponse, Decoded, Entry, EntryMeta, VaryIndex};
use cache_http::freshness::StoredFreshness;
use http::{HeaderMap, Method, StatusCode, Version};

use crate::file_body::FileBody;
use crate::live::Live;
use crate::read_index::ReadIndex;
use crate::store_calls::{AtOnce, Servable, StoreCalls};
use crate::variant_keys::VariantKeys;

/// What a lookup found under a request's URL key.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    /// The stored response the request selects.
    pub(crate) found: Option<Found>,
    /// The URL key's Vary index and its metadata, when the URL's responses vary.
    pub(crate) index: Option<ReadIndex>,
}

/// A stored response found for a request, under its own key (a variant's when the URL varies).
///
/// Holds the entry as the store handed it out: shared with a store that keeps entries decoded
/// (a hit copies only what it changes, the headers), or the only reference to a freshly
/// decoded one (taken apart without a copy).
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub(crate) key: CacheKey,
    /// Always a response (see [`Found::from_entry`]).
    decoded: Arc<Decoded>,
    /// The body's file, for an entry whose body is over `max_body_size` (then the
    /// response's body is empty).
    pub(crate) body: Option<Arc<FileBody>>,
}

impl Found {
    /// The found response, when what is stored under `key` is one (not a Vary index).
    fn from_entry(key: CacheKey, (decoded, body): Servable) -> Option<Self> {
        matches!(decoded.entry, Entry::Response(_)).then_some(Self { key, decoded, body })
    }

    pub(crate) fn meta(&self) -> &EntryMeta {
        &self.decoded.meta
    }

    pub(crate) fn response(&self) -> &CachedResponse {
        match &self.decoded.entry {
            Entry::Response(response) => response,
            // Never: `from_entry` keeps only responses. An empty response rather than a
            // panic, should that ever change.
            _ => &NO_RESPONSE,
        }
    }

    /// The metadata and response, owned: moved out when nothing else holds the entry,
    /// copied when the store shares it.
    pub(crate) fn into_owned(self) -> (EntryMeta, CachedResponse) {
        let (meta, entry) = Decoded::into_parts(self.decoded);
        match entry {
            Entry::Response(response) => (meta, response),
            _ => (meta, NO_RESPONSE.clone()),
        }
    }

    /// The response's headers, owned, and the entry for the rest: the headers are taken
    /// when nothing else holds the entry, copied when the store shares it (the only copy a
    /// hit from such a store makes: the served headers get their own `Age`).
    pub(crate) fn take_headers(mut self) -> (HeaderMap, Self) {
        if let Some(Decoded {
            entry: Entry::Response(response),
            ..
        }) = Arc::get_mut(&mut self.decoded)
        {
            return (std::mem::take(&mut response.headers), self);
        }
        (self.response().headers.clone(), self)
    }

    /// Whether the found response came through a redirect ([`Decoded::is_redirected`]).
    pub(crate) fn is_redirected(&self) -> bool {
        self.decoded.is_redirected()
    }

    /// The stored `Age` in seconds, when plain ([`Decoded::stored_age`]).
    pub(crate) fn stored_age(&self) -> Option<u64> {
        self.decoded.stored_age()
    }

    pub(crate) fn freshness(&self) -> StoredFreshness<'_> {
        StoredFreshness {
            created_at: self.meta().created_at,
            expires_at: self.meta().expires_at,
            headers: &self.response().headers,
        }
    }
}

/// What [`Found::response`] gives for an entry that is not a response, which it never holds.
static NO_RESPONSE: LazyLock<CachedResponse> = LazyLock::new(|| {
    let request = CachedRequest::new(Method::GET, String::new(), HeaderMap::new());
    CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        HeaderMap::new(),
        Bytes::new(),
        String::new(),
        request,
    )
});

/// The stored response for a request with this URL key and these headers, following a Vary
/// index to the variant the headers select. A store failure is a miss, and so is a response
/// an unsafe request invalidated while the store could not take it
/// ([`UnfinishedInvalidations`](crate::unfinished_invalidations::UnfinishedInvalidations));
/// `url_group` gives the request URL's group, for an entry that carries none.
pub(crate) async fn find(
    live: &Live,
    url_key: &CacheKey,
    request: &HeaderMap,
    url_group: impl FnOnce() -> CacheKey,
) -> Lookup {
    let mut lookup = find_stored(live, url_key, request).await;
    let unfinished = &live.unfinished_invalidations;
    if lookup
        .found
        .as_ref()
        .is_some_and(|found| unfinished.holds_back(found.meta(), url_group))
    {
        lookup.found = None;
    }
    lookup
}

/// [`find`], whatever invalidations did not reach the store.
async fn find_stored(live: &Live, url_key: &CacheKey, request: &HeaderMap) -> Lookup {
    let store = &live.store;
    // Nothing is sent unless the store answers at once (in the process): a read that waits
    // (a server) is sent by `find_waiting`, with the variant it guesses when there is one.
    let read = match store.read_servable_at_once(url_key).await {
        AtOnce::Answered(read) => {
            // Before the entry is read for the hit: see `Decoded::prefetch`.
            if let Some((decoded, _)) = &read {
                decoded.prefetch();
            }
            read
        }
        // Boxed: only lookups that wait go this way, and the hit path's future stays small.
        AtOnce::Waits => return Box::pin(find_waiting(live, url_key, request)).await,
    };
    // The first read's answer is taken apart before the second read: nothing of it but the
    // index (a pointer) lives across that await, so the hit path's future stays small.
    let index = match taken_apart(url_key, read) {
        UrlKeyRead::Done(lookup) => return lookup,
        UrlKeyRead::Index(index) => index,
    };
    let found = read_variant(store, &live.variant_keys, url_key, index.index(), request).await;
    Lookup {
        found,
        index: Some(index),
    }
}

/// [`find`] for a store that makes the URL key's read wait: when the URL was seen to vary, the
/// variant its last index selects is read with the index, in one store call (with a server,
/// one round trip where there were two: [`StoreCalls::read_servable_pair`]), and counts only
/// when the index read is that very write of the index, the one the guess was taken from
/// (same header list, generation and time written). That index was then in place from the
/// guess to its read, so the variant read meanwhile is the one a read after the index's would
/// have found, whatever order the store ran the two reads in. A guessed variant not found
/// (absent, not a response, or its read failed) is read again after the index, as without a
/// guess.
async fn find_waiting(live: &Live, url_key: &CacheKey, request: &HeaderMap) -> Lookup {
    let (store, guesses, keys) = (&live.store, &live.vary_guesses, &live.variant_keys);
    let guess = guesses
        .get(url_key)
        .map(|guess| (keys.key(url_key, &guess.index, request), guess));
    let (read, guessed) = match &guess {
        Some((key, _)) => {
            let [read, guessed] = store.read_servable_pair(url_key, key).await;
            (read, Some(guessed))
        }
        None => (store.read_servable_awaited(url_key).await, None),
    };
    let index = match taken_apart(url_key, read) {
        UrlKeyRead::Done(lookup) => {
            if guess.is_some() {
                guesses.forget(url_key);
            }
            return lookup;
        }
        UrlKeyRead::Index(index) => index,
    };
    let guessed = match (guess, guessed) {
        (Some((key, guess)), Some(read)) if guess.is_of(index.meta(), index.index()) => {
            read.and_then(|read| Found::from_entry(key, read))
        }
        _ => {
            guesses.remember(*url_key, index.meta(), index.index());
            None
        }
    };
    let found = match guessed {
        Some(found) => Some(found),
        None => read_variant(store, keys, url_key, index.index(), request).await,
    };
    Lookup {
        found,
        index: Some(index),
    }
}

/// What the URL key's read gave: the whole lookup, or a Vary index to follow.
enum UrlKeyRead {
    Done(Lookup),
    Index(ReadIndex),
}

fn taken_apart(url_key: &CacheKey, read: Option<Servable>) -> UrlKeyRead {
    let Some((decoded, body)) = read else {
        return UrlKeyRead::Done(Lookup::default());
    };
    match ReadIndex::of(decoded) {
        Ok(index) => UrlKeyRead::Index(index),
        Err(decoded) => UrlKeyRead::Done(Lookup {
            found: Found::from_entry(*url_key, (decoded, body)),
            index: None,
        }),
    }
}

/// The variant `index` selects for `request`, read. Its callers build their `Lookup`
/// themselves: a helper taking the index and returning the whole `Lookup` cost every
/// memory hit, varying or not, some 120 instructions more (callgrind, `profile-hits memory`).
async fn read_variant(
    store: &StoreCalls,
    keys: &VariantKeys,
    url_key: &CacheKey,
    index: &VaryIndex,
    request: &HeaderMap,
) -> Option<Found> {
    let key = keys.key(url_key, index, request);
    let read = store.read_servable(&key).await;
    read.and_then(|read| Found::from_entry(key, read))
}
