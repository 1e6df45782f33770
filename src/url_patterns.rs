//! Expiration by URL pattern ([`UrlPattern`]): globs matched as requests-cache matches them,
//! regular expressions searched in the whole URL; first match wins.
//!
//! Calls `error` (nothing that calls it).

use cache_http::Expiration;
use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use url::Url;

use crate::error::Error;

/// A pattern of [`urls_expire_after`](crate::CacheMiddlewareBuilder::urls_expire_after): a
/// glob (what a `&str` or `String` becomes) or a regular expression, as requests-cache accepts
/// both.
///
/// - A **glob** is matched as requests-cache matches it: without the scheme (one given is
///   ignored), against the host (lowercase), a non-default port, the path and the query
///   (`?` and what follows, when the URL has one); `*` matches any characters including `/`,
///   and a pattern matches every URL it is a prefix of (`example.com/api` covers
///   `example.com/api/v2/users?page=2`).
/// - A **regular expression** ([`regex`] syntax) is searched in the whole URL as requested,
///   less user info and fragment: `scheme://host[:port]/path[?query]`. Anchor it (`^`, `$`)
///   to match all of it; a pattern naming a scheme or a query parameter matches only URLs
///   that have them.
///
/// ```
/// use reqwest_caching::{CacheMiddleware, Expiration, MemoryStore, UrlPattern};
/// use std::time::Duration;
///
/// let cache = CacheMiddleware::builder()
///     .store(MemoryStore::new())
///     .urls_expire_after([
///         (UrlPattern::regex(r"^https://api\.example\.com/v\d+/live"), Expiration::DoNotCache),
///         (UrlPattern::regex(r"[?&]fresh=1(&|$)"), Expiration::Immediately),
///         (UrlPattern::glob("*.example.com/static"), Expiration::Never),
///         ("example.com/api".into(), Duration::from_secs(60).into()),
///     ])
///     .build()?;
/// # Ok::<(), reqwest_caching::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlPattern(Kind);

#[derive(Clone, Debug)]
enum Kind {
    Glob(String),
    Regex(String),
    /// A [`Regex`] built elsewhere, kept as built: compiled again from its text, it lost the
    /// flags its builder set (case-insensitive, ignoring whitespace).
    Compiled(Regex),
}

/// Patterns compare by kind and text (a compiled one's flags aside).
impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Glob(a), Self::Glob(b)) | (Self::Regex(a), Self::Regex(b)) => a == b,
            (Self::Compiled(a), Self::Compiled(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for Kind {}

impl UrlPattern {
    /// A glob, matched as requests-cache matches glob patterns (see [`UrlPattern`]).
    pub fn glob(pattern: impl Into<String>) -> Self {
        Self(Kind::Glob(pattern.into()))
    }

    /// A regular expression, searched in the whole URL (see [`UrlPattern`]); it is compiled
    /// by [`build`](crate::CacheMiddlewareBuilder::build), which fails with
    /// [`Error::InvalidRegex`] when it does not compile.
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self(Kind::Regex(pattern.into()))
    }

    /// The pattern's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Kind::Glob(text) | Kind::Regex(text) => text,
            Kind::Compiled(regex) => regex.as_str(),
        }
    }

    /// True for a regular expression.
    pub fn is_regex(&self) -> bool {
        matches!(self.0, Kind::Regex(_) | Kind::Compiled(_))
    }
}

impl From<&str> for UrlPattern {
    fn from(glob: &str) -> Self {
        Self::glob(glob)
    }
}

impl From<String> for UrlPattern {
    fn from(glob: String) -> Self {
        Self::glob(glob)
    }
}

impl From<&String> for UrlPattern {
    fn from(glob: &String) -> Self {
        Self::glob(glob.as_str())
    }
}

/// A regular expression as built, its builder's flags kept (`RegexBuilder::case_insensitive`).
impl From<Regex> for UrlPattern {
    fn from(regex: Regex) -> Self {
        Self(Kind::Compiled(regex))
    }
}

/// One compiled pattern.
#[derive(Debug, Clone)]
enum Matcher {
    Glob(GlobMatcher),
    Regex(Regex),
}

/// Compiled `urls_expire_after` patterns, in the order given.
#[derive(Debug, Clone, Default)]
pub(crate) struct UrlPatterns {
    patterns: Vec<(Matcher, Expiration)>,
    any_regex: bool,
}

impl UrlPatterns {
    pub(crate) fn new(patterns: Vec<(UrlPattern, Expiration)>) -> Result<Self, Error> {
        let mut compiled = Vec::with_capacity(patterns.len());
        for (pattern, expiration) in patterns {
            let matcher = match pattern.0 {
                Kind::Glob(text) => Matcher::Glob(compile_glob(text)?),
                Kind::Compiled(regex) => Matcher::Regex(regex),
                Kind::Regex(text) => match Regex::new(&text) {
                    Ok(regex) => Matcher::Regex(regex),
                    Err(source) => {
                        return Err(Error::InvalidRegex {
                            pattern: text,
                            source,
                        });
                    }
                },
            };
            compiled.push((matcher, expiration));
        }
        let any_regex = compiled.iter().any(|(m, _)| matches!(m, Matcher::Regex(_)));
        Ok(Self {
            patterns: compiled,
            any_regex,
        })
    }

    /// The expiration of the first pattern matching `url`.
    pub(crate) fn expiration_for(&self, url: &Url) -> Option<Expiration> {
        if self.patterns.is_empty() {
            return None;
        }
        let host = url.host_str().unwrap_or_default();
        let mut glob_target = match url.port() {
            Some(port) => format!("{host}:{port}{}", url.path()),
            None => format!("{host}{}", url.path()),
        };
        if let Some(query) = url.query() {
            glob_target.push('?');
            glob_target.push_str(query);
        }
        let whole = self
            .any_regex
            .then(|| format!("{}://{glob_target}", url.scheme()));
        self.patterns.iter().find_map(|(matcher, expiration)| {
            let matched = match matcher {
                Matcher::Glob(glob) => glob.is_match(&glob_target),
                Matcher::Regex(regex) => whole.as_deref().is_some_and(|w| regex.is_match(w)),
            };
            matched.then_some(*expiration)
        })
    }
}

impl UrlPattern {
    /// The pattern compiled alone, to test URLs against.
    pub(crate) fn compile(self) -> Result<UrlPatterns, Error> {
        UrlPatterns::new(vec![(self, Expiration::Never)])
    }
}

impl UrlPatterns {
    /// True when some pattern matches `url`.
    pub(crate) fn matches(&self, url: &Url) -> bool {
        self.expiration_for(url).is_some()
    }
}

/// A glob as requests-cache reads it: scheme dropped, a prefix of what it matches.
fn compile_glob(pattern: String) -> Result<GlobMatcher, Error> {
    // Only a leading `scheme://`: one in the query (`?next=https://…`) is the pattern's.
    let without_scheme = pattern
        .split_once("://")
        .filter(|(scheme, _)| is_scheme(scheme))
        .map_or(pattern.as_str(), |(_, rest)| rest);
    let prefix_glob = format!("{}*", without_scheme.trim_end_matches('*'));
    match GlobBuilder::new(&prefix_glob)
        .literal_separator(false)
        .build()
    {
        Ok(glob) => Ok(glob.compile_matcher()),
        Err(source) => Err(Error::InvalidPattern { pattern, source }),
    }
}

/// True for what a glob may begin with before `://`: a scheme, or a glob of one (`*`,
/// `http*`, `http?`). Not text holding a `/` or `?`, which the host, path or query has.
fn is_scheme(text: &str) -> bool {
    !text.is_empty() && !text.contains(['/', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn glob(p: &str, e: Expiration) -> (UrlPattern, Expiration) {
        (p.into(), e)
    }

    #[test]
    fn first_matching_pattern_wins() {
        let minute = Expiration::After(Duration::from_secs(60));
        let patterns = UrlPatterns::new(vec![
            glob("*.site1.com", minute),
            glob("https://site2.com/static", Expiration::Never),
            glob("site2.com/*", Expiration::DoNotCache),
            glob("127.0.0.1:8080/api/*/items", Expiration::Immediately),
        ])
        .unwrap();
        let at = |u: &str| patterns.expiration_for(&Url::parse(u).unwrap());
        assert_eq!(at("https://api.site1.com/x?q=1"), Some(minute));
        assert_eq!(
            at("http://site2.com/static/logo.png"),
            Some(Expiration::Never)
        );
        assert_eq!(at("http://site2.com/other"), Some(Expiration::DoNotCache));
        assert_eq!(
            at("http://127.0.0.1:8080/api/v1/items"),
            Some(Expiration::Immediately)
        );
        assert_eq!(at("http://127.0.0.1:9090/api/v1/items"), None);
        assert_eq!(at("https://site3.com/"), None);
    }

    /// A glob naming a query matches it (the query is part of what globs see, as in
    /// requests-cache); one without still covers URLs with any query.
    #[test]
    fn globs_see_the_query() {
        let patterns = UrlPatterns::new(vec![
            glob("site.com/list?page=1", Expiration::Never),
            glob("site.com/list", Expiration::Immediately),
        ])
        .unwrap();
        let at = |u: &str| patterns.expiration_for(&Url::parse(u).unwrap());
        assert_eq!(
            at("https://site.com/list?page=1&x=2"),
            Some(Expiration::Never)
        );
        assert_eq!(
            at("https://site.com/list?page=2"),
            Some(Expiration::Immediately)
        );
        assert_eq!(at("https://site.com/list"), Some(Expiration::Immediately));
    }

    /// A regular expression is searched in the whole URL: scheme, port and query count,
    /// user info and fragment do not.
    #[test]
    fn regexes_match_the_whole_url() {
        let patterns = UrlPatterns::new(vec![
            (
                UrlPattern::regex(r"^https://site\.com/v\d+/"),
                Expiration::Never,
            ),
            (
                UrlPattern::regex(r"[?&]live=1(&|$)"),
                Expiration::DoNotCache,
            ),
            (UrlPattern::regex(r":8080/"), Expiration::Immediately),
            (UrlPattern::regex(r"secret|#top"), Expiration::Never),
        ])
        .unwrap();
        let at = |u: &str| patterns.expiration_for(&Url::parse(u).unwrap());
        assert_eq!(at("https://site.com/v2/users"), Some(Expiration::Never));
        assert_eq!(at("http://site.com/v2/users"), None, "the scheme counts");
        assert_eq!(
            at("http://site.com/x?a=1&live=1"),
            Some(Expiration::DoNotCache)
        );
        assert_eq!(at("http://site.com/x?live=10"), None);
        assert_eq!(at("http://site.com:8080/x"), Some(Expiration::Immediately));
        assert_eq!(
            at("http://u:secret@site.com/x#top"),
            None,
            "no user info, no fragment"
        );
    }

    /// A `Regex` built with flags keeps them (compiled again from its text, a
    /// case-insensitive pattern turned case-sensitive and stopped matching).
    #[test]
    fn a_built_regex_keeps_its_flags() {
        let regex = regex::RegexBuilder::new("/API/")
            .case_insensitive(true)
            .build()
            .unwrap();
        let pattern = UrlPattern::from(regex);
        assert!(pattern.is_regex());
        assert_eq!(pattern.as_str(), "/API/");
        let patterns = UrlPatterns::new(vec![(pattern, Expiration::Never)]).unwrap();
        let url = Url::parse("https://site.com/api/users").unwrap();
        assert_eq!(patterns.expiration_for(&url), Some(Expiration::Never));
    }

    /// Only a leading scheme is dropped from a glob: one in its query is part of it (the
    /// glob was cut to what followed it, matching another site's every URL).
    #[test]
    fn a_scheme_in_a_glob_s_query_is_kept() {
        let patterns = UrlPatterns::new(vec![glob(
            "site.com/go?next=https://app.site.com",
            Expiration::Never,
        )])
        .unwrap();
        let at = |u: &str| patterns.expiration_for(&Url::parse(u).unwrap());
        assert_eq!(
            at("https://site.com/go?next=https://app.site.com/x"),
            Some(Expiration::Never)
        );
        assert_eq!(at("https://app.site.com/"), None);
        let wildcard =
            UrlPatterns::new(vec![glob("http*://site.com/api", Expiration::Never)]).unwrap();
        let url = Url::parse("https://site.com/api/v1").unwrap();
        assert_eq!(
            wildcard.expiration_for(&url),
            Some(Expiration::Never),
            "a glob of a scheme is a scheme"
        );
    }

    #[test]
    fn invalid_patterns_are_errors() {
        let err = UrlPatterns::new(vec![glob("site.com/[", Expiration::Never)]).unwrap_err();
        assert!(matches!(err, Error::InvalidPattern { .. }), "{err:?}");
        let err = UrlPatterns::new(vec![(UrlPattern::regex("site(.com"), Expiration::Never)])
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidRegex { pattern, .. } if pattern == "site(.com"),
            "{err:?}"
        );
    }
}
