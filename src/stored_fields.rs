//! Response fields that are never stored, so never replayed (RFC 9111 §3.1).
//!
//! - `Connection` and every field it lists, and the connection-specific fields RFC 9110
//!   §7.6.1 names (`Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`,
//!   `Trailer`): they describe one hop, not the response.
//! - The proxy's own fields (`Proxy-Authenticate`, `Proxy-Authentication-Info`): the key does
//!   not hold the proxy's identity.
//! - Fields a `no-cache="..."` directive lists (§5.2.2.4): they must not be reused without
//!   revalidation, and leaving them out lets the rest be reused while fresh.
//!
//! Runs when a response is stored or renewed, never on a hit.
//!
//! A leaf: calls nothing else in the crate.

use cache_http::cache_control::Directives;
use http::header::{self, HeaderMap, HeaderName};

/// Connection-specific and proxy fields, besides those `Connection` lists.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "proxy-authenticate",
    "proxy-authentication-info",
];

/// Removes from `headers` every field a cache must not store.
pub(crate) fn remove_unstored(headers: &mut HeaderMap) {
    let mut listed: Vec<HeaderName> = names_in(headers.get_all(header::CONNECTION).iter());
    // Parsed only when a line names `no-cache` (a directive's name is in its text as is, but
    // for case): most responses do not, and parsing every directive is the larger cost.
    if mentions_no_cache(headers) {
        let no_cache = Directives::parse(headers);
        if let Some(Some(fields)) = no_cache.argument("no-cache") {
            listed.extend(names_in(std::iter::once(fields.as_bytes())));
        }
    }
    // One pass over the names present (a response has a dozen or so) rather than a lookup
    // per hop-by-hop name: most responses carry none of them.
    listed.extend(
        headers
            .keys()
            .filter(|name| HOP_BY_HOP.contains(&name.as_str()))
            .cloned(),
    );
    for name in listed {
        headers.remove(name);
    }
}

/// True when a `Cache-Control` line holds `no-cache` in any case.
fn mentions_no_cache(headers: &HeaderMap) -> bool {
    headers.get_all(header::CACHE_CONTROL).iter().any(|line| {
        line.as_bytes()
            .windows(b"no-cache".len())
            .any(|window| window.eq_ignore_ascii_case(b"no-cache"))
    })
}

/// The field names in comma-separated lists (unparseable members are skipped).
fn names_in<'a, V: AsRef<[u8]> + 'a>(lines: impl Iterator<Item = V>) -> Vec<HeaderName> {
    let mut names = Vec::new();
    for line in lines {
        for member in line.as_ref().split(|&b| b == b',') {
            if let Ok(name) = HeaderName::from_bytes(member.trim_ascii()) {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn connection_and_what_it_lists_rfc_9111_section_3_1() {
        let mut h = map(&[
            ("connection", "a, B"),
            ("connection", "close"),
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("proxy-authenticate", "Basic"),
            ("upgrade", "h2c"),
        ]);
        remove_unstored(&mut h);
        assert_eq!(names(&h), ["c"]);
    }

    /// Every connection-specific and proxy field goes, whatever its length; fields of the
    /// same lengths that are not among them stay.
    #[test]
    fn every_hop_by_hop_field_goes_and_only_those() {
        let mut pairs: Vec<(&str, &str)> = HOP_BY_HOP.iter().map(|name| (*name, "x")).collect();
        let kept = [
            "set-cookie",
            "expires",
            "xy",
            "proxy-connectiox",
            "content-type",
        ];
        pairs.extend(kept.iter().map(|name| (*name, "x")));
        let mut h = map(&pairs);
        remove_unstored(&mut h);
        let mut expected = kept.to_vec();
        expected.sort_unstable();
        assert_eq!(names(&h), expected);
    }

    #[test]
    fn fields_named_by_no_cache_rfc_9111_section_5_2_2_4() {
        let mut h = map(&[
            ("cache-control", "no-cache=\"a, b\", max-age=60"),
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
        ]);
        remove_unstored(&mut h);
        assert_eq!(names(&h), ["c", "cache-control"]);
        // Any case, on any line.
        let mut loud = map(&[
            ("cache-control", "max-age=60"),
            ("cache-control", "NO-Cache=\"A\""),
            ("a", "1"),
            ("b", "2"),
        ]);
        remove_unstored(&mut loud);
        assert_eq!(names(&loud), ["b", "cache-control"]);
        let mut plain = map(&[("cache-control", "no-cache"), ("a", "1")]);
        remove_unstored(&mut plain);
        assert_eq!(names(&plain), ["a", "cache-control"]);
        let mut junk = map(&[("connection", " , (x), "), ("a", "1")]);
        remove_unstored(&mut junk);
        assert_eq!(names(&junk), ["a"]);
    }
}
