//! Parsing `Cache-Control` (RFC 9111 §5.2), leniently and without panics.
//!
//! - Directive names are case-insensitive; every `Cache-Control` field line counts.
//! - A directive given twice: the first occurrence is used (RFC 9111 §4.2.1).
//! - Arguments may be tokens or quoted strings (`max-age="60"` is read as 60).
//! - A delta-seconds value that is not a number is [`Seconds::Invalid`]: for a response the
//!   caller treats it as stale (RFC 9111 §4.2.1 encourages that). Values too large to
//!   represent saturate at 2^31 seconds (§1.2.2).

use std::time::Duration;

use http::HeaderMap;
use http::header::{CACHE_CONTROL, PRAGMA};

/// The largest delta-seconds a cache needs to represent (RFC 9111 §1.2.2).
const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

/// A delta-seconds argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seconds {
    /// A valid value.
    Valid(Duration),
    /// Present but not a non-negative integer.
    Invalid,
}

impl Seconds {
    pub(crate) fn parse(arg: Option<&str>) -> Self {
        let Some(arg) = arg else { return Self::Invalid };
        let arg = arg.trim_matches('"');
        if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
            return Self::Invalid;
        }
        // All digits: only overflow can fail, and an overflowing value saturates.
        let secs = arg
            .parse::<u64>()
            .unwrap_or(MAX_DELTA_SECONDS)
            .min(MAX_DELTA_SECONDS);
        Self::Valid(Duration::from_secs(secs))
    }

    /// The value, or `None` when invalid.
    pub fn valid(self) -> Option<Duration> {
        match self {
            Self::Valid(d) => Some(d),
            Self::Invalid => None,
        }
    }
}

/// The directives of one message's `Cache-Control` field lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// Lowercased names with their unquoted arguments, first occurrence first.
    entries: Vec<(String, Option<String>)>,
}

/// Directives whose argument, when present, narrows them to the fields it names.
const FIELD_LISTS: [&str; 2] = ["no-cache", "private"];

/// Directives a parse checks for repeats by scanning those it kept; past this many, by a set.
const SCANNED_UP_TO: usize = 32;

impl Directives {
    /// Parses every `Cache-Control` line of `headers`.
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut entries: Vec<(String, Option<String>)> = Vec::new();
        // The names kept so far, once there are more than a real header holds: an origin
        // may send hundreds of kilobytes of distinct names, and checking each against all
        // before it took seconds a parse (51,000 names: 4.1 s).
        let mut many: Option<std::collections::HashSet<String>> = None;
        // Where the first `no-cache` and `private` were kept: a repeat is answered there, not
        // by a search of every name kept (tens of thousands of bare repeats took a second).
        let mut field_list_at: [Option<usize>; FIELD_LISTS.len()] = [None; FIELD_LISTS.len()];
        for value in headers.get_all(CACHE_CONTROL) {
            // Non-UTF-8 bytes cannot be part of a directive: read what is readable.
            let text = String::from_utf8_lossy(value.as_bytes());
            for item in split_outside_quotes(&text) {
                let (name, arg) = match item.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"').to_owned())),
                    None => (item.trim(), None),
                };
                if name.is_empty() {
                    continue;
                }
                let name = name.to_ascii_lowercase();
                let first = match &mut many {
                    Some(seen) => seen.insert(name.clone()),
                    None if entries.len() < SCANNED_UP_TO => {
                        !entries.iter().any(|(n, _)| *n == name)
                    }
                    None => {
                        let seen = many.insert(entries.iter().map(|(n, _)| n.clone()).collect());
                        seen.insert(name.clone())
                    }
                };
                let field_list = FIELD_LISTS.iter().position(|list| *list == name);
                if first {
                    if let Some(list) = field_list {
                        field_list_at[list] = Some(entries.len());
                    }
                    entries.push((name, arg));
                } else if arg.is_none() {
                    // A bare `no-cache` (or `private`) beside one naming fields: the whole
                    // response is meant, the most restrictive reading (RFC 9111 §4.2.1).
                    let kept = field_list.and_then(|list| field_list_at[list]);
                    if let Some(kept) = kept.and_then(|at| entries.get_mut(at)) {
                        kept.1 = None;
                    }
                }
            }
        }
        Self { entries }
    }

    /// True when no directive is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when the directive is present (with or without argument).
    pub fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// Each directive (lowercased name, raw argument), first occurrences, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries
            .iter()
            .map(|(n, arg)| (n.as_str(), arg.as_deref()))
    }

    /// True when the directive is present without an argument: `no-cache`, not
    /// `no-cache="set-cookie"` (whose fields alone are kept from reuse, RFC 9111 §5.2.2.4).
    pub fn has_bare(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|(n, arg)| n == name && arg.is_none())
    }

    /// The delta-seconds argument of a directive, if present.
    pub fn seconds(&self, name: &str) -> Option<Seconds> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, arg)| Seconds::parse(arg.as_deref()))
    }

    /// The raw argument of a directive: `Some(None)` when present without one.
    pub fn argument(&self, name: &str) -> Option<Option<&str>> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, arg)| arg.as_deref())
    }
}

/// Splits on commas that are not inside a quoted string.
fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// True for `Pragma: no-cache` in a message without `Cache-Control` (HTTP/1.0, RFC 9111 §5.4).
pub fn pragma_no_cache(headers: &HeaderMap) -> bool {
    !headers.contains_key(CACHE_CONTROL)
        && headers.get_all(PRAGMA).iter().any(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cc(lines: &[&str]) -> Directives {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(line).unwrap());
        }
        Directives::parse(&headers)
    }

    #[test]
    fn names_are_case_insensitive_and_lines_combine() {
        let d = cc(&["Public, MAX-AGE=60", "must-revalidate"]);
        assert!(d.has("public") && d.has("must-revalidate"));
        assert_eq!(
            d.seconds("max-age"),
            Some(Seconds::Valid(Duration::from_secs(60)))
        );
    }

    /// Past the names a parse scans, repeats are found by a set: the first still wins, on
    /// either side of the switch, and every distinct name is kept once.
    #[test]
    fn first_occurrence_wins_among_many_names() {
        for count in [SCANNED_UP_TO - 1, SCANNED_UP_TO, SCANNED_UP_TO + 1, 5_000] {
            let names: Vec<String> = (0..count).map(|i| format!("x{i}=first")).collect();
            let again: Vec<String> = (0..count).map(|i| format!("X{i}=again")).collect();
            let d = cc(&[
                "max-age=10",
                &names.join(", "),
                "max-age=20",
                &again.join(", "),
            ]);
            assert_eq!(d.entries.len(), count + 1, "{count}");
            assert_eq!(
                d.seconds("max-age").and_then(Seconds::valid),
                Some(Duration::from_secs(10))
            );
            let last = format!("x{}", count - 1);
            assert_eq!(d.argument(&last), Some(Some("first")), "{count}");
        }
    }

    /// A bare `no-cache` or `private` repeated after one naming fields, among many names,
    /// makes the kept one bare (answered where the first was kept: a search of every name
    /// for each repeat made 33,000 names and 22,000 repeats some 7 × 10⁸ comparisons).
    #[test]
    fn bare_repeats_after_many_names_make_the_first_bare() {
        let names: Vec<String> = (0..33_000).map(|i| format!("x{i}")).collect();
        let repeats = vec!["no-cache, private"; 22_000].join(", ");
        let d = cc(&[
            "private=\"set-cookie\"",
            &names.join(", "),
            "no-cache=\"x\"",
            &repeats,
        ]);
        assert!(d.has_bare("no-cache") && d.has_bare("private"));
        assert_eq!(d.entries.len(), 33_002);
        let named = cc(&["no-cache=\"x\", private, no-cache=\"y\""]);
        assert!(
            !named.has_bare("no-cache"),
            "a repeat naming fields changes nothing"
        );
        assert!(named.has_bare("private"));
    }

    #[test]
    fn first_occurrence_wins() {
        let d = cc(&["max-age=10, max-age=20", "max-age=30"]);
        assert_eq!(
            d.seconds("max-age").and_then(Seconds::valid),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn malformed_values() {
        assert_eq!(
            cc(&["max-age=abc"]).seconds("max-age"),
            Some(Seconds::Invalid)
        );
        assert_eq!(cc(&["max-age"]).seconds("max-age"), Some(Seconds::Invalid));
        assert_eq!(
            cc(&["max-age=-5"]).seconds("max-age"),
            Some(Seconds::Invalid)
        );
        assert_eq!(
            cc(&["max-age=\"60\""]).seconds("max-age"),
            Some(Seconds::Valid(Duration::from_secs(60)))
        );
        assert_eq!(
            cc(&["max-age=99999999999999999999999"]).seconds("max-age"),
            Some(Seconds::Valid(Duration::from_secs(MAX_DELTA_SECONDS)))
        );
        assert_eq!(cc(&[",,, ,"]), Directives::default());
        assert_eq!(cc(&["="]), Directives::default());
    }

    #[test]
    fn commas_inside_quotes_do_not_split() {
        let d = cc(&["private=\"set-cookie, x-a\", max-age=5"]);
        assert_eq!(d.argument("private"), Some(Some("set-cookie, x-a")));
        assert_eq!(
            d.seconds("max-age").and_then(Seconds::valid),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn pragma_only_without_cache_control() {
        let mut h = HeaderMap::new();
        h.insert(PRAGMA, HeaderValue::from_static("No-Cache"));
        assert!(pragma_no_cache(&h));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        assert!(!pragma_no_cache(&h));
    }
}
