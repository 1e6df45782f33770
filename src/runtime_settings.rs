//! [`RuntimeSettings`]: the settings a [`CacheHandle`](crate::CacheHandle) may change while
//! the cache runs (expiration, URL patterns, the session's mode), and [`Runtime`], their
//! compiled form that requests read. Each request takes one snapshot (one atomic load, see
//! [`Settings::runtime`](crate::settings::Settings)), so a change applies whole, to the
//! requests that start after it.
//!
//! Calls `error`, `mode`, `policy`, `scope`, `url_patterns` (nothing that calls it).

use cache_http::Expiration;
use url::Url;

use crate::error::Error;
use crate::mode::CacheMode;
use crate::policy::UserExpiration;
use crate::scope::CacheScope;
use crate::url_patterns::{UrlPattern, UrlPatterns};

/// The settings that can change while the cache runs, through
/// [`CacheHandle::reconfigure`](crate::CacheHandle::reconfigure); each setter as the
/// builder's of the same name.
///
/// ```
/// use reqwest_caching::{CacheMiddleware, CacheMode, Expiration, MemoryStore};
/// use std::time::Duration;
///
/// let handle = CacheMiddleware::builder().store(MemoryStore::new()).build()?.handle();
/// handle.reconfigure(|settings| {
///     settings
///         .expire_after(Duration::from_secs(600))
///         .urls_expire_after([("example.com/live", Expiration::DoNotCache)])
///         .mode(CacheMode::Offline)
/// })?;
/// assert_eq!(handle.settings().cache_mode(), CacheMode::Offline);
/// # Ok::<(), reqwest_caching::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct RuntimeSettings {
    pub(crate) expire_after: Expiration,
    /// The user set `expire_after` (rather than leaving the default).
    pub(crate) expire_after_explicit: bool,
    pub(crate) url_patterns: Vec<(UrlPattern, Expiration)>,
    pub(crate) mode: CacheMode,
    pub(crate) always_revalidate: bool,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            expire_after: Expiration::Never,
            expire_after_explicit: false,
            url_patterns: Vec::new(),
            mode: CacheMode::Default,
            always_revalidate: false,
        }
    }
}

impl RuntimeSettings {
    /// As [`CacheMiddlewareBuilder::expire_after`](crate::CacheMiddlewareBuilder::expire_after).
    pub fn expire_after(mut self, expiration: impl Into<Expiration>) -> Self {
        self.expire_after = expiration.into();
        self.expire_after_explicit = true;
        self
    }

    /// As [`CacheMiddlewareBuilder::urls_expire_after`](crate::CacheMiddlewareBuilder::urls_expire_after):
    /// replaces every pattern.
    pub fn urls_expire_after<I, P, E>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = (P, E)>,
        P: Into<UrlPattern>,
        E: Into<Expiration>,
    {
        self.url_patterns = patterns
            .into_iter()
            .map(|(p, e)| (p.into(), e.into()))
            .collect();
        self
    }

    /// As [`CacheMiddlewareBuilder::mode`](crate::CacheMiddlewareBuilder::mode).
    pub fn mode(mut self, mode: CacheMode) -> Self {
        self.mode = mode;
        self
    }

    /// As [`CacheMiddlewareBuilder::always_revalidate`](crate::CacheMiddlewareBuilder::always_revalidate).
    pub fn always_revalidate(mut self, on: bool) -> Self {
        self.always_revalidate = on;
        self
    }

    /// The session's expiration.
    pub fn expiration(&self) -> Expiration {
        self.expire_after
    }

    /// The URL patterns, in order.
    pub fn url_patterns(&self) -> &[(UrlPattern, Expiration)] {
        &self.url_patterns
    }

    /// The mode of requests that set none.
    pub fn cache_mode(&self) -> CacheMode {
        self.mode
    }

    /// True when requests in the default mode revalidate what has a validator.
    pub fn revalidates_always(&self) -> bool {
        self.always_revalidate
    }
}

/// [`RuntimeSettings`] compiled, as requests read them.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) settings: RuntimeSettings,
    url_patterns: UrlPatterns,
}

impl Runtime {
    /// # Errors
    ///
    /// A URL pattern that does not compile.
    pub(crate) fn new(settings: RuntimeSettings) -> Result<Self, Error> {
        let url_patterns = UrlPatterns::new(settings.url_patterns.clone())?;
        Ok(Self {
            settings,
            url_patterns,
        })
    }

    /// The mode of a request that asks for `asked` (per request or scope), if any.
    pub(crate) fn mode(&self, asked: Option<CacheMode>) -> CacheMode {
        match asked.unwrap_or(self.settings.mode) {
            CacheMode::Default if self.settings.always_revalidate => CacheMode::Revalidate,
            other => other,
        }
    }

    /// The user's expiration for a response: per request > scope > URL pattern > session.
    pub(crate) fn expiration(
        &self,
        per_request: Option<Expiration>,
        scope: Option<&CacheScope>,
        url: &Url,
    ) -> UserExpiration {
        let chosen = per_request
            .or_else(|| scope.and_then(CacheScope::expiration))
            .or_else(|| self.url_patterns.expiration_for(url));
        UserExpiration {
            expiration: chosen.unwrap_or(self.settings.expire_after),
            explicit: chosen.is_some() || self.settings.expire_after_explicit,
        }
    }
}
