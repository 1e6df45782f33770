//! Fuzzes the key rules with whatever URL a caller could send: no panic, and the promises
//! that tie a request's key to the URL stored with its entry.
//!
//! ```sh
//! cargo +nightly fuzz run key_url -- -max_total_time=300
//! ```
//!
//! For every `http` or `https` URL that parses (others only must not panic), under the
//! default rules and under rules with ignored and credential parameters of their own:
//! - the key and the URL group computed together are the two computed apart;
//! - the URL stored with an entry (`redact_url`) is in the entry's URL group (a deletion by
//!   the stored URL, as a listing shows it, reaches the entry), and holds the value of no
//!   parameter the rules redact, however an origin splits its query;
//! - the normalized URL, parsed again, normalizes to itself and groups as the URL did.
#![no_main]

use cache_http::KeyRules;
use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = Url::parse(text) else {
        return;
    };
    let own = KeyRules::default()
        .ignored_parameters(["session", "a", "utm_source"])
        .credential_parameters(["tok", "b"]);
    for rules in [KeyRules::default(), own] {
        check(&rules, &url);
    }
});

fn check(rules: &KeyRules, url: &Url) {
    let headers = HeaderMap::new();
    let key = rules.key(&Method::GET, url, &headers, None);
    let group = rules.url_group(url);
    // Only the URLs a client sends (reqwest refuses other schemes) are held to the promises:
    // one without a host (`mailto:x`) has no `scheme://host` form to normalize to. The
    // others only must not panic.
    if !matches!(url.scheme(), "http" | "https") {
        let _ = (rules.redact_url(url), rules.normalized_url(url));
        return;
    }
    assert_eq!(
        rules.key_and_url_group(&Method::GET, url, &headers, None),
        (key, group),
        "key_and_url_group and key, url_group disagree for {url}"
    );

    let stored = rules.redact_url(url);
    assert_eq!(
        rules.url_group(&stored),
        group,
        "the stored URL {stored} is not in the group of {url}"
    );
    if let Some(query) = stored.query() {
        check_redacted(rules, query, &stored, url);
    }

    let normalized = rules.normalized_url(url);
    let Ok(reparsed) = Url::parse(&normalized) else {
        panic!("the normalized URL {normalized:?} of {url} does not parse");
    };
    assert_eq!(
        rules.normalized_url(&reparsed),
        normalized,
        "normalizing {url} twice changes it"
    );
    assert_eq!(
        rules.url_group(&reparsed),
        group,
        "the normalized URL {normalized} of {url} is in another group"
    );
}

/// The stored query `query` holds no redacted value, read either way an origin may read it:
/// split at `&` only, a credential keeps at most its name and a `;` (see `QueryPairs`);
/// split at `&` and `;`, no redacted parameter keeps a value.
fn check_redacted(rules: &KeyRules, query: &str, stored: &Url, url: &Url) {
    let decoded = |pair: &str| {
        url::form_urlencoded::parse(pair.as_bytes())
            .next()
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
    };
    for pair in query.split('&') {
        if let Some((name, value)) = decoded(pair) {
            assert!(
                !rules.is_credential_parameter(&name) || value.chars().all(|c| c == ';'),
                "the stored URL {stored} of {url} keeps the value of {name:?}"
            );
        }
        for part in pair.split(';') {
            if let Some((name, value)) = decoded(part) {
                assert!(
                    !rules.is_redacted(&name) || value.is_empty(),
                    "the stored URL {stored} of {url} keeps the value of {name:?} after a `;`"
                );
            }
        }
    }
}
