//! Inspection by filter: [`EntryFilter`] selects stored entries by expiry, decodability, URL
//! pattern and age; [`matching`] walks the store's listing, reading an entry only when the
//! filter (or the caller) needs its value. Changes nothing: the handle deletes what it finds.
//!
//! Calls `store_calls`, `url_patterns`, `error` (nothing that calls it).

use std::time::{Duration, SystemTime};

use cache_core::{Entry, EntryMeta};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use url::Url;

use crate::error::Error;
use crate::observe::StoreOp;
use crate::store_calls::StoreCalls;
use crate::url_patterns::{UrlPattern, UrlPatterns};

/// Which stored entries a [`CacheHandle`](crate::CacheHandle) inspection or deletion takes:
/// every condition set must hold (none set: every entry).
///
/// ```
/// use reqwest_caching::{EntryFilter, UrlPattern};
/// use std::time::Duration;
///
/// // Expired entries of the API, stored more than a day ago.
/// let filter = EntryFilter::new()
///     .expired(true)
///     .url(UrlPattern::glob("api.example.com/v2"))
///     .older_than(Duration::from_secs(24 * 3600));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct EntryFilter {
    expired: Option<bool>,
    invalid: Option<bool>,
    url: Option<UrlPattern>,
    older_than: Option<Duration>,
}

impl EntryFilter {
    /// Every entry.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true`: only entries past their expiry; `false`: only entries still fresh (by the
    /// expiry they were stored with).
    pub fn expired(mut self, expired: bool) -> Self {
        self.expired = Some(expired);
        self
    }

    /// `true`: only entries that do not decode (written by an incompatible version, damaged,
    /// or failing their signature); `false`: only entries that do. Undecodable entries are
    /// never yielded by [`responses`](crate::CacheHandle::responses), which has no response
    /// to give for them; they are found by [`matching`](crate::CacheHandle::matching) and
    /// removed by [`delete_matching`](crate::CacheHandle::delete_matching).
    pub fn invalid(mut self, invalid: bool) -> Self {
        self.invalid = Some(invalid);
        self
    }

    /// Only entries whose stored URL matches `pattern`: a glob (`&str`) matched against
    /// `host[:port]/path?query`, or a [`UrlPattern::regex`] searched in the whole URL, as in
    /// [`urls_expire_after`](crate::CacheMiddlewareBuilder::urls_expire_after).
    pub fn url(mut self, pattern: impl Into<UrlPattern>) -> Self {
        self.url = Some(pattern.into());
        self
    }

    /// Only entries stored more than `age` ago.
    pub fn older_than(mut self, age: Duration) -> Self {
        self.older_than = Some(age);
        self
    }
}

/// An [`EntryFilter`] ready to judge entries at one instant.
struct Compiled {
    filter: EntryFilter,
    url: Option<UrlPatterns>,
    now: SystemTime,
}

impl Compiled {
    fn new(filter: EntryFilter, now: SystemTime) -> Result<Self, Error> {
        let url = filter.url.clone().map(UrlPattern::compile).transpose()?;
        Ok(Self { filter, url, now })
    }

    /// What the metadata alone decides.
    fn keeps_meta(&self, meta: &EntryMeta) -> bool {
        let expired = meta.expires_at.is_some_and(|at| at <= self.now);
        let old_enough = |age: Duration| {
            self.now
                .checked_sub(age)
                .is_some_and(|cutoff| meta.created_at < cutoff)
        };
        let url_matches =
            |patterns: &UrlPatterns| Url::parse(&meta.url).is_ok_and(|url| patterns.matches(&url));
        self.filter.expired.is_none_or(|want| want == expired)
            && self.filter.older_than.is_none_or(old_enough)
            && self.url.as_ref().is_none_or(url_matches)
    }

    fn keeps_decoded(&self, decoded: &Option<Entry>) -> bool {
        self.filter
            .invalid
            .is_none_or(|invalid| invalid == decoded.is_none())
    }
}

/// One entry the filter took: its metadata, and its value when it was read (`None` inside:
/// it did not decode).
pub(crate) struct Matched {
    pub(crate) meta: EntryMeta,
    pub(crate) decoded: Option<Option<Entry>>,
}

/// The entries `filter` takes, as a stream; each value is read when the filter needs it or
/// `read_values` asks. Every store call is bounded as requests' are; an invalid URL pattern
/// is the stream's first and only item.
pub(crate) fn matching(
    calls: &StoreCalls,
    filter: EntryFilter,
    now: SystemTime,
    read_values: bool,
) -> BoxStream<'_, Result<Matched, Error>> {
    let compiled = match Compiled::new(filter, now) {
        Ok(compiled) => compiled,
        Err(error) => return stream::once(async { Err(error) }).boxed(),
    };
    let read = read_values || compiled.filter.invalid.is_some();
    let state = (calls.store.entries(), compiled, false);
    stream::unfold(state, move |(mut entries, compiled, done)| async move {
        if done {
            return None;
        }
        loop {
            let step = async { entries.next().await.transpose() };
            let meta = match calls.bounded(StoreOp::List, step).await {
                Ok(Some(meta)) => meta,
                Ok(None) => return None,
                Err(error) => return Some((Err(error.into()), (entries, compiled, true))),
            };
            if !compiled.keeps_meta(&meta) {
                continue;
            }
            if !read {
                let matched = Matched {
                    meta,
                    decoded: None,
                };
                return Some((Ok(matched), (entries, compiled, false)));
            }
            let (meta, decoded) = match calls.inspect(&meta.key).await {
                // Gone since it was listed.
                Ok(None) => continue,
                Ok(Some(found)) => found,
                Err(error) => return Some((Err(error.into()), (entries, compiled, true))),
            };
            // The entry as read now (written again since the listing, perhaps) is what is
            // matched, and what a delete of the match removes: every rule applies to it.
            if compiled.keeps_meta(&meta) && compiled.keeps_decoded(&decoded) {
                let matched = Matched {
                    meta,
                    decoded: Some(decoded),
                };
                return Some((Ok(matched), (entries, compiled, false)));
            }
        }
    })
    .boxed()
}
