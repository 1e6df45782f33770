//! Finding what is stored for a request: the entry under its URL key, or, when that is a
//! Vary index (RFC 9111 §4.1), the variant the request's headers select. One read path for
//! every store: [`StoreCalls::read`] answers at once when the store can; a body over
//! `max_body_size` in a store that keeps files stays in its file. Calls only the store
//! calls and leaf modules.

use std::sync::Arc;

use cache_core::{CacheKey, CachedResponse, Entry, EntryMeta, VaryIndex};
use cache_http::freshness::StoredFreshness;
use cache_http::vary::variant_key;
use http::HeaderMap;

use crate::file_body::FileBody;
use crate::store_calls::StoreCalls;

/// What a lookup found under a request's URL key.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    /// The stored response the request selects.
    /// Boxed, as the index: a lookup is passed along the hit path several times, and a
    /// pointer moves for free where the response and its metadata would be copied.
    pub(crate) found: Option<Box<Found>>,
    /// The URL key's Vary index and its metadata, when the URL's responses vary.
    pub(crate) index: Option<Box<(EntryMeta, VaryIndex)>>,
}

/// A stored response found for a request, under its own key (a variant's when the URL varies).
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub(crate) key: CacheKey,
    pub(crate) meta: EntryMeta,
    pub(crate) response: CachedResponse,
    /// The body's file, for an entry whose body is over `max_body_size` (then `response`'s
    /// body is empty).
    pub(crate) body: Option<Arc<FileBody>>,
}

impl Found {
    /// The found response, when what is stored under `key` is one (not a Vary index).
    fn from_entry(
        key: CacheKey,
        (meta, entry, body): (EntryMeta, Entry, Option<Arc<FileBody>>),
    ) -> Option<Box<Self>> {
        match entry {
            Entry::Response(response) => Some(Box::new(Self {
                key,
                meta,
                response,
                body,
            })),
            _ => None,
        }
    }

    pub(crate) fn freshness(&self) -> StoredFreshness<'_> {
        StoredFreshness {
            created_at: self.meta.created_at,
            expires_at: self.meta.expires_at,
            headers: &self.response.headers,
        }
    }
}

/// The stored response for a request with this URL key and these headers, following a Vary
/// index to the variant the headers select. A store failure is a miss.
pub(crate) async fn find(store: &StoreCalls, url_key: &CacheKey, request: &HeaderMap) -> Lookup {
    // The first read's answer is taken apart before the second read: nothing of it but the
    // boxed index lives across that await, so the hit path's future stays small.
    let index = match store.read_servable(url_key).await {
        None => return Lookup::default(),
        Some((meta, Entry::VaryIndex(index), _)) => Box::new((meta, index)),
        Some(read) => {
            return Lookup {
                found: Found::from_entry(*url_key, read),
                index: None,
            };
        }
    };
    let key = variant_key(url_key, &index.1, request);
    let variant = store.read_servable(&key).await;
    Lookup {
        found: variant.and_then(|read| Found::from_entry(key, read)),
        index: Some(index),
    }
}
