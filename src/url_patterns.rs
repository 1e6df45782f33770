//! Expiration by URL pattern: globs matched against `host[:port]/path`, first match wins.
//!
//! Calls `error` (nothing that calls it).

use cache_http::Expiration;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use url::Url;

use crate::error::Error;

/// Compiled `urls_expire_after` patterns.
///
/// A pattern is matched as requests-cache matches it: without the scheme (one given is
/// ignored), against the host (lowercase), a non-default port and the path, never the query;
/// `*` matches any characters including `/`, and a pattern matches every URL it is a prefix of
/// (`example.com/api` covers `example.com/api/v2/users`).
#[derive(Debug, Clone, Default)]
pub(crate) struct UrlPatterns {
    globs: GlobSet,
    expirations: Vec<Expiration>,
}

impl UrlPatterns {
    pub(crate) fn new(patterns: Vec<(String, Expiration)>) -> Result<Self, Error> {
        let mut set = GlobSetBuilder::new();
        let mut expirations = Vec::with_capacity(patterns.len());
        for (pattern, expiration) in patterns {
            let without_scheme = pattern
                .split_once("://")
                .map_or(pattern.as_str(), |(_, rest)| rest);
            let prefix_glob = format!("{}*", without_scheme.trim_end_matches('*'));
            let glob = GlobBuilder::new(&prefix_glob)
                .literal_separator(false)
                .build()
                .map_err(|source| Error::InvalidPattern {
                    pattern: pattern.clone(),
                    source,
                })?;
            set.add(glob);
            expirations.push(expiration);
        }
        let globs = set.build().map_err(|source| Error::InvalidPattern {
            pattern: "(the pattern set)".to_owned(),
            source,
        })?;
        Ok(Self { globs, expirations })
    }

    /// The expiration of the first pattern matching `url`.
    pub(crate) fn expiration_for(&self, url: &Url) -> Option<Expiration> {
        if self.expirations.is_empty() {
            return None;
        }
        let host = url.host_str().unwrap_or_default();
        let target = match url.port() {
            Some(port) => format!("{host}:{port}{}", url.path()),
            None => format!("{host}{}", url.path()),
        };
        // GlobSet reports matches in insertion order, so the first is the first pattern given.
        let first = *self.globs.matches(&target).first()?;
        self.expirations.get(first).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_matching_pattern_wins() {
        let minute = Expiration::After(Duration::from_secs(60));
        let patterns = UrlPatterns::new(vec![
            ("*.site1.com".into(), minute),
            ("https://site2.com/static".into(), Expiration::Never),
            ("site2.com/*".into(), Expiration::DoNotCache),
            ("127.0.0.1:8080/api/*/items".into(), Expiration::Immediately),
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

    #[test]
    fn invalid_glob_is_an_error() {
        let err = UrlPatterns::new(vec![("site.com/[".into(), Expiration::Never)]).unwrap_err();
        assert!(matches!(err, Error::InvalidPattern { .. }), "{err:?}");
    }
}
