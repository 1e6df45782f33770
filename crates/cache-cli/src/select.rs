//! Which entries `ls` and `purge` take: by host, URL glob, expiry and age.

use std::time::{Duration, SystemTime};

use globset::{Glob, GlobMatcher};
use reqwest_caching::EntryMeta;

use crate::error::CliError;

/// The filters, as given on the command line. Entries must pass every one given.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Filter {
    /// Only entries of this host (`example.com`, or `host:port` for a port that is not the
    /// scheme's default).
    #[arg(long)]
    pub host: Option<String>,
    /// Only entries whose URL matches this glob (`*` matches any characters, `/` too).
    #[arg(long = "url", value_name = "GLOB")]
    pub url_glob: Option<String>,
    /// Only expired entries.
    #[arg(long)]
    pub expired: bool,
    /// Only entries stored longer ago than this (`90s`, `30m`, `12h`, `7d`).
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
}

impl Filter {
    /// True when at least one filter is given.
    pub fn any(&self) -> bool {
        self.host.is_some() || self.url_glob.is_some() || self.expired || self.older_than.is_some()
    }

    /// The filter, ready to match entries as of `now`.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] for an invalid glob.
    pub fn selector(&self, now: SystemTime) -> Result<Selector, CliError> {
        let glob = self
            .url_glob
            .as_deref()
            .map(|pattern| {
                Glob::new(pattern)
                    .map(|glob| glob.compile_matcher())
                    .map_err(|e| CliError::Usage(format!("--url {pattern:?}: {e}")))
            })
            .transpose()?;
        Ok(Selector {
            host: self.host.as_ref().map(|h| h.to_ascii_lowercase()),
            glob,
            expired: self.expired,
            // An age beyond the start of the clock selects nothing older: no cutoff then
            // would select everything.
            cutoff: self
                .older_than
                .map(|age| now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH)),
            now,
        })
    }
}

/// A [`Filter`] ready to match.
#[derive(Debug, Clone)]
pub struct Selector {
    host: Option<String>,
    glob: Option<GlobMatcher>,
    expired: bool,
    cutoff: Option<SystemTime>,
    now: SystemTime,
}

impl Selector {
    /// True when `meta` passes every filter.
    pub fn matches(&self, meta: &EntryMeta) -> bool {
        if self.expired && !meta.is_expired(self.now) {
            return false;
        }
        if self.cutoff.is_some_and(|cutoff| meta.created_at >= cutoff) {
            return false;
        }
        if let Some(host) = &self.host {
            let entry_host = host_of(&meta.url);
            if *host != entry_host && host != without_port(&entry_host) {
                return false;
            }
        }
        self.glob
            .as_ref()
            .is_none_or(|glob| glob.is_match(&meta.url))
    }
}

/// `host`, or `host:port` for a port other than the scheme's default, lowercase; empty for a
/// URL without a host.
pub fn host_of(url: &str) -> String {
    let Ok(url) = url::Url::parse(url) else {
        return String::new();
    };
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    }
}

/// `host:port` without its port; a host without a port as it is. An IPv6 address keeps its
/// brackets and colons (`[::1]:8080` is `[::1]`).
fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((bare, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => bare,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(url: &str, age_secs: u64, expires_in: Option<i64>, now: SystemTime) -> EntryMeta {
        let key = "00112233445566778899aabbccddeeff".parse().unwrap();
        let created = now - Duration::from_secs(age_secs);
        let expires = expires_in.map(|s| {
            if s >= 0 {
                now + Duration::from_secs(s.unsigned_abs())
            } else {
                now - Duration::from_secs(s.unsigned_abs())
            }
        });
        EntryMeta::new(key, url, created, expires)
    }

    #[test]
    fn every_filter_narrows() {
        let now = SystemTime::now();
        let fresh = meta("http://a.example:8080/x/1", 10, Some(60), now);
        let stale = meta("https://B.example/y?q=1", 7200, Some(-5), now);
        let select = |filter: Filter| {
            let s = filter.selector(now).unwrap();
            [&fresh, &stale].map(|m| s.matches(m))
        };
        assert_eq!(select(Filter::default()), [true, true]);
        let f = |f: fn(&mut Filter)| {
            let mut filter = Filter::default();
            f(&mut filter);
            filter
        };
        assert_eq!(select(f(|f| f.expired = true)), [false, true]);
        assert_eq!(
            select(f(|f| f.older_than = Some(Duration::from_secs(3600)))),
            [false, true]
        );
        assert_eq!(
            select(f(|f| f.host = Some("a.example".into()))),
            [true, false]
        );
        assert_eq!(
            select(f(|f| f.host = Some("a.example:8080".into()))),
            [true, false]
        );
        assert_eq!(
            select(f(|f| f.host = Some("b.example".into()))),
            [false, true]
        );
        // An IPv6 host, on another port or not.
        let v6 = [
            meta("http://[::1]:8080/x", 10, None, now),
            meta("http://[::1]/y", 10, None, now),
        ];
        for (host, taken) in [
            ("[::1]", [true, true]),
            ("[::1]:8080", [true, false]),
            ("[::2]", [false, false]),
        ] {
            let filter = Filter {
                host: Some(host.into()),
                ..Filter::default()
            };
            let s = filter.selector(now).unwrap();
            assert_eq!(v6.each_ref().map(|m| s.matches(m)), taken, "{host}");
        }
        assert_eq!(
            select(f(|f| f.url_glob = Some("http://*/x/*".into()))),
            [true, false]
        );
        assert_eq!(
            select(f(|f| f.url_glob = Some("*q=1".into()))),
            [false, true]
        );
        assert_eq!(
            select(f(|f| f.older_than = Some(Duration::from_secs(u64::MAX / 4)))),
            [false, false]
        );
    }

    #[test]
    fn a_bad_glob_is_a_usage_error() {
        let filter = Filter {
            url_glob: Some("a[".into()),
            ..Filter::default()
        };
        assert_eq!(
            filter.selector(SystemTime::now()).unwrap_err().exit_code(),
            2
        );
    }
}
